//! The contracts of the Atenex pipeline: what every service, job and tool agrees on.
//!
//! - [`topics`]: topic names, dead-letter and late topics, dead-letter header names.
//! - [`ids`]: `document_id` (UUID text) and `chunk_id` (`"{document_id}_{index}"`).
//! - [`payloads`]: the JSON values of the four topics, decoded and validated with errors that name
//!   the topic, the field and the problem ([`ContractError`]).
//! - [`envelope`]: recorded streams, one kcat `-J` object per line, read and written as a stream;
//! - [`raw_envelope`]: the same lines scanned without allocating, for tools that copy values.
//!
//! Everything here is pure: no I/O beyond the `Read`/`Write` handed in, no clock.

pub mod envelope;
pub mod error;
pub mod ids;
pub mod lines;
pub mod payloads;
pub mod raw_envelope;
pub mod topics;

pub use envelope::{Envelope, EnvelopeReader, EnvelopeWriter, Header, ReadError, TimestampType};
pub use error::ContractError;
pub use ids::{ChunkId, DocumentId};
pub use payloads::{
    AnalyticsWindow, ChunkKeys, ChunkProcessed, DocumentRaw, EmbeddingReady, Payload, decode,
};
pub use topics::Topic;
