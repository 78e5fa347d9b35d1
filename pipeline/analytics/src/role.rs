//! Which instance of a group counts: the active/standby decision, sans-IO.
//!
//! Several `atenex analytics` instances run in one group; exactly one of them counts every
//! partition of the input (windows are per company, and a company's records are spread over all
//! partitions: two counting instances would each write partial counts). The instances hold a
//! **lease**: the single partition of a coordination topic (`analytics.lease`), handed out by
//! Kafka's group protocol to one member of the lease group `<group>.lease`. The member holding it
//! is active; the others stand by.
//!
//! The lease only elects. What makes two writers impossible is the transactional id: every
//! instance of a group uses the same one, so an instance that becomes active fences the one before
//! it (`initTransactions` bumps the producer epoch and aborts its open transaction) before it
//! reads the committed offsets. A zombie — an active instance frozen or cut off past its session
//! timeout while another took over — can still run, but its next transaction fails as fenced:
//! it steps down, and rejoins the lease group as a new member so that it does not keep a lease
//! the group gave to someone else.
//!
//! [`Role`] turns what the lease group and the producer said into what the instance must do; the
//! live adapter ([`crate::live`]) carries it out and the simulator's model driver drives it for
//! its several instances.

/// What happened to this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleEvent {
    /// The lease group assigned this instance the lease partition.
    LeaseAssigned,
    /// The lease was revoked or lost (a rebalance, an expired session).
    LeaseRevoked,
    /// A transaction failed because another producer with the same transactional id started
    /// after this one: another instance is active.
    Fenced,
}

/// What the instance must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Fence the previous active instance (start the transactional producer), restore from the
    /// committed offsets of every input partition, and count.
    Activate,
    /// Stop counting: drop the open transaction and the state (what was committed is the next
    /// active instance's starting point). With `rejoin`, leave the lease group and join it again
    /// as a new member.
    StepDown { rejoin: bool },
}

/// An instance's role. Starts as a standby that does not hold the lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Role {
    active: bool,
    holds_lease: bool,
}

impl Role {
    pub const ACTIVE: &str = "active";
    pub const STANDBY: &str = "standby";

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn holds_lease(&self) -> bool {
        self.holds_lease
    }

    /// The role's name for `/health`, logs and metrics.
    pub fn name(&self) -> &'static str {
        if self.active {
            Self::ACTIVE
        } else {
            Self::STANDBY
        }
    }

    /// Applies `event`; returns the change the instance must carry out, if any.
    pub fn on(&mut self, event: RoleEvent) -> Option<RoleChange> {
        match event {
            RoleEvent::LeaseAssigned => {
                self.holds_lease = true;
                (!self.active).then(|| {
                    self.active = true;
                    RoleChange::Activate
                })
            }
            RoleEvent::LeaseRevoked => {
                self.holds_lease = false;
                self.active.then(|| {
                    self.active = false;
                    RoleChange::StepDown { rejoin: false }
                })
            }
            RoleEvent::Fenced => {
                // Another instance is active: whatever the lease group last said to this one is
                // out of date. Leave the lease to whoever the group gives it next.
                let was_active = self.active;
                self.active = false;
                let held = std::mem::take(&mut self.holds_lease);
                (was_active || held).then_some(RoleChange::StepDown { rejoin: true })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoleEvent::*;

    #[test]
    fn the_lease_holder_is_active_and_only_it() {
        let mut r = Role::default();
        assert_eq!(r.name(), "standby");
        assert_eq!(r.on(LeaseRevoked), None, "a standby has nothing to stop");
        assert_eq!(r.on(LeaseAssigned), Some(RoleChange::Activate));
        assert!(r.is_active() && r.holds_lease());
        assert_eq!(
            r.on(LeaseAssigned),
            None,
            "already active: no second restore"
        );
        assert_eq!(
            r.on(LeaseRevoked),
            Some(RoleChange::StepDown { rejoin: false })
        );
        assert!(!r.is_active() && !r.holds_lease());
        assert_eq!(r.on(LeaseAssigned), Some(RoleChange::Activate));
    }

    #[test]
    fn a_fenced_instance_steps_down_and_gives_the_lease_back() {
        let mut r = Role::default();
        r.on(LeaseAssigned);
        assert_eq!(r.on(Fenced), Some(RoleChange::StepDown { rejoin: true }));
        assert!(!r.is_active() && !r.holds_lease());
        assert_eq!(
            r.on(Fenced),
            None,
            "a standby without the lease: nothing to do"
        );
        // The group's next assignment is a new lease: active again (and it fences in turn).
        assert_eq!(r.on(LeaseAssigned), Some(RoleChange::Activate));
        assert_eq!(r.name(), "active");
    }
}
