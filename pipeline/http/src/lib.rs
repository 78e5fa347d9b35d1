//! Every HTTP server of the pipeline (gateway, ingest, the OpenAI mock, the admin listeners) is
//! served by [`serve`], so that none of them can be held by a slow or idle client:
//!
//! - a request's head must arrive whole within [`Limits::header_timeout`], counted from when the
//!   connection is ready for it (accepted, or idle after the previous answer): slow headers and
//!   idle keep-alive connections are closed;
//! - a request body must keep arriving at [`Limits::min_body_rate`] bytes/s on average once
//!   [`Limits::body_grace`] has passed, or the request is answered 408 ([`body_rate`]);
//! - at most [`Limits::max_connections`] connections are served at once; one more is answered
//!   503 and closed at once, so that file descriptors never run out;
//! - on shutdown the listener closes, idle connections close, requests in flight get up to
//!   [`Limits::shutdown_timeout`] to finish, and whatever is still open then is cut.
//!
//! Every limit with its default: docs/limits.md.

pub mod body_rate;
pub mod limits;
pub mod server;
pub mod testing;

pub use limits::Limits;
pub use server::serve;
