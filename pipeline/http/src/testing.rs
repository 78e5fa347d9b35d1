//! Raw TCP clients for tests of a server's limits (this crate's and the binary's hostile suite):
//! they behave as slow, idle or flooding clients do, which an HTTP client library will not.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long [`until_closed`] waits for the server to close before it fails the test.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// A connection to `addr` whose reads give up after [`CLOSE_WITHIN`].
pub fn connect(addr: impl ToSocketAddrs) -> TcpStream {
    let s = TcpStream::connect(addr).expect("the server accepts connections");
    s.set_read_timeout(Some(CLOSE_WITHIN))
        .expect("a read timeout can be set");
    s
}

/// Everything the server sends until it closes the connection; panics if it keeps it open for
/// [`CLOSE_WITHIN`].
pub fn until_closed(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
