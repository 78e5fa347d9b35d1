//! The embedding service (`atenex embedding`): consumes `chunks.processed`, embeds the texts with
//! OpenAI's embeddings API in batches packed across documents, and produces `embeddings.ready`.
//! See docs/services.md.
//!
//! - [`batcher`]: which chunks go into which request (pure);
//! - [`retry`]: when and how long to wait before trying again (pure);
//! - [`client`]: one HTTP request and its classified outcome;
//! - [`service`]: the consumer-batch handler.

pub mod batcher;
pub mod client;
pub mod retry;
pub mod service;
