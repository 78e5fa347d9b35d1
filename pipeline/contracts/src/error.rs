//! Validation errors that say which topic, which field and what is wrong.

use std::fmt;

/// A payload that does not meet its topic's contract.
///
/// `field` is the JSON path of the offending field (`company_id`, `vector[3]`), or `<value>` when
/// the value as a whole is wrong (not JSON, not an object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContractError {
    pub topic: String,
    pub field: String,
    pub problem: String,
}

impl ContractError {
    pub fn new(topic: &str, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            topic: topic.to_owned(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The whole value is wrong (not JSON, not an object, empty).
    pub fn value(topic: &str, problem: impl Into<String>) -> Self {
        Self::new(topic, WHOLE_VALUE, problem)
    }
}

/// The `field` of an error about the value as a whole.
pub const WHOLE_VALUE: &str = "<value>";

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: field `{}`: {}",
            self.topic, self.field, self.problem
        )
    }
}
