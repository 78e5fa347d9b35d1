//! The simulator (DESIGN §5). A scenario (`scenarios/*.toml`) names a generated stream, faults and
//! expectations; the model driver runs it through the very cores the production jobs run — the
//! analytics window core and the landing sink — under virtual time, on an in-memory log and an
//! in-memory filesystem with crash semantics; the checker asserts the invariants; the render is
//! the snapshot a human reviews.
//!
//! This is the first slice of issue #8: generated `embeddings.ready` streams, the model driver for
//! analytics and landing with landing crashes, the invariants, snapshots, `atenex sim run`. Still
//! to come: recorded streams as input, analytics crashes, broker restarts, OpenAI faults, the broker
//! driver and its agreement test, the report through its own core.

pub mod broker;
pub mod check;
pub mod generate;
pub mod model;
pub mod render;
pub mod runner;
pub mod scenario;
