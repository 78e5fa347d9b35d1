//! Reading lines of files the pipeline did not write (recorded streams, configuration) with a
//! bound on each line, so that a file without newlines (`/dev/zero`, a corrupt or hostile
//! recording) ends with an error instead of taking all the memory.

use std::io::{self, BufRead, Read};

/// The longest line of a recorded stream (an `embeddings.ready` envelope with 3,072 floats is
/// about 80 kB).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The largest configuration or scenario file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Appends the next line, with its `\n`, to `buf`; returns its length (0 at the end). A line of
/// more than `max` bytes (its newline not counted) is an `InvalidData` error, and no more than
/// `max` plus one buffer of it is ever held.
pub fn read_line_bounded<R: BufRead + ?Sized>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let start = buf.len();
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(buf.len() - start);
        }
        let (used, ended) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let content = buf.len() - start + used - usize::from(ended);
        if content > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line longer than {max} bytes (no newline where one was due)"),
            ));
        }
        buf.extend_from_slice(&available[..used]);
        input.consume(used);
        if ended {
            return Ok(buf.len() - start);
        }
    }
}

/// The whole of `input`, line by line, each line bounded by `max_line`.
pub fn read_all_bounded<R: BufRead + ?Sized>(
    input: &mut R,
    max_line: usize,
) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    while read_line_bounded(input, &mut all, max_line)? > 0 {}
    Ok(all)
}

/// A small text file (configuration, scenario): at most `max` bytes, else an `InvalidData` error
/// naming the bound (a link to `/dev/zero` or a huge file is refused, not read whole).
pub fn read_small_text(path: &std::path::Path, max: u64) -> io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes: not a configuration file"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_up_to_the_bound_and_not_a_byte_more() {
        let text = b"ab\nabcd\nabcde\nx";
        let mut r = io::BufReader::with_capacity(2, &text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line_bounded(&mut r, &mut buf, 4).unwrap(), 3);
        assert_eq!(read_line_bounded(&mut r, &mut buf, 4).unwrap(), 5);
        assert_eq!(buf, b"ab\nabcd\n");
        let e = read_line_bounded(&mut r, &mut buf, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 4 bytes"));
        assert!(buf.len() <= 8 + 4 + 2, "held: {}", buf.len());
    }

    #[test]
    fn an_endless_line_is_cut_at_the_bound() {
        let mut zero = io::BufReader::new(io::repeat(0));
        let mut buf = Vec::new();
        assert!(read_line_bounded(&mut zero, &mut buf, 1 << 20).is_err());
        assert!(buf.len() <= (1 << 20) + 8192);
        assert!(read_all_bounded(&mut io::BufReader::new(io::repeat(b'a')), 1000).is_err());
        let all = read_all_bounded(&mut &b"a\nbb\n\nccc"[..], 3).unwrap();
        assert_eq!(all, b"a\nbb\n\nccc");
    }

    #[test]
    fn small_files_only() {
        assert!(
            read_small_text(std::path::Path::new("/dev/zero"), 1000)
                .unwrap_err()
                .to_string()
                .contains("larger than 1000 bytes")
        );
    }
}
