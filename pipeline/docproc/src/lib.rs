//! The docproc service (`atenex docproc`): consumes `documents.raw`, reads each document from
//! object storage, extracts its text ([`extract`]), splits it into chunks ([`chunker`]) and
//! produces them to `chunks.processed`. Documents that cannot be processed go to
//! `documents.raw.dlq` with the reason. See docs/services.md.

pub mod bench;
pub mod chunker;
pub mod extract;
pub mod service;
