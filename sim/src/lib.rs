//! The simulator (docs/semantics.md, what the simulator checks). A scenario (`scenarios/*.toml`) names a stream, faults and
//! expectations; the model driver runs it through the production jobs' own tasks — the analytics
//! task and the landing task — under virtual time, on an in-memory log and an in-memory
//! filesystem with crash semantics; the checker asserts the invariants; the render is
//! the snapshot a human reviews.
//!
//! The broker driver runs the same scenario through a real Kafka broker with the real jobs and
//! services; `cargo test` asserts both drivers render the reviewed snapshot (docs/simulation.md).

pub mod broker;
pub mod check;
pub mod faults;
pub mod generate;
pub mod log;
pub mod model;
pub mod outcome;
pub mod reference;
pub mod render;
pub mod runner;
pub mod scenario;
pub mod store;
