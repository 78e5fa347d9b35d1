//! Accepted document types, checked twice: by what the client declares (the part's
//! `Content-Type`, or the file name's extension when that is absent or generic) and by the content
//! itself (magic bytes for PDF and DOCX, text for TXT, Markdown and HTML). Pure.

use memchr::memmem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocType {
    Pdf,
    Docx,
    Txt,
    Md,
    Html,
}

/// For 415 messages.
pub const ACCEPTED: &str = "pdf (application/pdf), docx (application/vnd.openxmlformats-officedocument.wordprocessingml.document), txt (text/plain), md (text/markdown), html (text/html)";

impl DocType {
    pub fn name(self) -> &'static str {
        match self {
            DocType::Pdf => "pdf",
            DocType::Docx => "docx",
            DocType::Txt => "txt",
            DocType::Md => "md",
            DocType::Html => "html",
        }
    }

    /// The inverse of [`name`](Self::name) (the `doc_type` of a documents.raw event).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pdf, Self::Docx, Self::Txt, Self::Md, Self::Html]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// From a MIME type (parameters such as `; charset=utf-8` ignored).
    pub fn from_mime(content_type: &str) -> Option<Self> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Some(match mime.as_str() {
            "application/pdf" => DocType::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                DocType::Docx
            }
            "text/plain" => DocType::Txt,
            "text/markdown" | "text/x-markdown" => DocType::Md,
            "text/html" => DocType::Html,
            _ => return None,
        })
    }

    pub fn from_extension(filename: &str) -> Option<Self> {
        let ext = filename.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => DocType::Pdf,
            "docx" => DocType::Docx,
            "txt" | "text" => DocType::Txt,
            "md" | "markdown" => DocType::Md,
            "html" | "htm" => DocType::Html,
            _ => return None,
        })
    }

    /// What the client declared: its `Content-Type`, unless absent or generic
    /// (`application/octet-stream`), then the file name's extension.
    pub fn declared(content_type: Option<&str>, filename: &str) -> Option<Self> {
        match content_type.map(str::trim) {
            Some(ct)
                if !ct.is_empty()
                    && !ct
                        .to_ascii_lowercase()
                        .starts_with("application/octet-stream") =>
            {
                Self::from_mime(ct)
            }
            _ => Self::from_extension(filename),
        }
    }

    /// Whether the content is what was declared; the error says what it looks like instead.
    /// (The whole content at once: [`ContentCheck`] does the same as it streams in.)
    pub fn check_content(self, bytes: &[u8]) -> Result<(), String> {
        let mut check = ContentCheck::new(self);
        check.update(bytes);
        check.finish()
    }
}

/// The part of a DOCX (a ZIP) that holds the document.
const DOCX_PART: &[u8] = b"word/document.xml";
/// How much of the start the checks look at (PDF readers look for the header in the first 1 KB).
const HEAD: usize = 1024;

/// [`DocType::check_content`] over content that arrives in pieces, in memory bounded by the head
/// (1 KB) whatever the size: the head for magic bytes and HTML tags, and running flags for the
/// rest (NUL bytes, control characters, UTF-8 validity across the pieces, the DOCX part name
/// across the pieces).
#[derive(Debug, Clone)]
pub struct ContentCheck {
    doc_type: DocType,
    head: Vec<u8>,
    nul: bool,
    control: bool,
    utf8: bool,
    /// The start of a UTF-8 character cut by the end of a piece (at most 3 bytes).
    carry: Vec<u8>,
    docx_part: bool,
    /// The last bytes seen, for a part name cut by the end of a piece.
    tail: Vec<u8>,
}

impl ContentCheck {
    pub fn new(doc_type: DocType) -> Self {
        Self {
            doc_type,
            head: Vec::with_capacity(HEAD),
            nul: false,
            control: false,
            utf8: true,
            carry: Vec::new(),
            docx_part: false,
            tail: Vec::new(),
        }
    }

    pub fn update(&mut self, piece: &[u8]) {
        let room = HEAD - self.head.len();
        self.head.extend_from_slice(&piece[..piece.len().min(room)]);
        self.nul |= memchr::memchr(0, piece).is_some();
        self.control |= piece
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
        self.utf8_update(piece);
        if !self.docx_part {
            let keep = DOCX_PART.len() - 1;
            let mut seam = std::mem::take(&mut self.tail);
            let old = seam.len();
            seam.extend_from_slice(&piece[..piece.len().min(keep)]);
            self.docx_part = memmem::find(piece, DOCX_PART).is_some()
                || memmem::find(&seam, DOCX_PART).is_some();
            // The last `keep` bytes of everything so far.
            seam.truncate(old);
            seam.extend_from_slice(&piece[piece.len().saturating_sub(keep)..]);
            self.tail = seam[seam.len().saturating_sub(keep)..].to_vec();
        }
    }

    fn utf8_update(&mut self, mut piece: &[u8]) {
        if !self.utf8 {
            return;
        }
        // First complete the character the previous piece cut.
        while !self.carry.is_empty() {
            let Some((&b, rest)) = piece.split_first() else {
                return;
            };
            piece = rest;
            self.carry.push(b);
            match std::str::from_utf8(&self.carry) {
                Ok(_) => self.carry.clear(),
                Err(e) if e.error_len().is_some() => {
                    self.utf8 = false;
                    return;
                }
                Err(_) => {}
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry = piece[e.valid_up_to()..].to_vec(),
            Err(_) => self.utf8 = false,
        }
    }

    /// UTF-8 without NUL, or single-byte text (Latin-1/CP1252, which docproc decodes) without
    /// control characters other than tab, newlines and form feed.
    fn is_text(&self) -> bool {
        !self.nul && ((self.utf8 && self.carry.is_empty()) || !self.control)
    }

    /// The verdict once every piece was given.
    pub fn finish(self) -> Result<(), String> {
        let head = &self.head;
        let ok = match self.doc_type {
            // The header may follow a few bytes of junk (PDF readers look in the first 1 KB).
            DocType::Pdf => memmem::find(head, b"%PDF-").is_some(),
            // A ZIP whose entries include the main document part.
            DocType::Docx => head.starts_with(b"PK\x03\x04") && self.docx_part,
            DocType::Txt | DocType::Md => self.is_text(),
            DocType::Html => self.is_text() && looks_like_html(head),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "declared as {} but the content is not ({})",
                self.doc_type.name(),
                describe(head, self.is_text())
            ))
        }
    }
}

fn looks_like_html(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with("<!doctype html")
        || t.starts_with("<html")
        || ["<html", "<head", "<body"]
            .iter()
            .any(|tag| t.contains(tag))
}

fn describe(head: &[u8], is_text: bool) -> &'static str {
    if head.starts_with(b"%PDF-") {
        "it looks like a PDF"
    } else if head.starts_with(b"PK\x03\x04") {
        "it looks like a ZIP archive"
    } else if head.starts_with(b"\x7fELF") || head.starts_with(b"MZ") {
        "it looks like an executable"
    } else if is_text {
        "it looks like plain text"
    } else {
        "it looks like binary data"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_by_mime_type_else_by_extension() {
        assert_eq!(
            DocType::declared(Some("application/pdf"), "x.txt"),
            Some(DocType::Pdf)
        );
        assert_eq!(
            DocType::declared(Some("text/plain; charset=utf-8"), "x"),
            Some(DocType::Txt)
        );
        assert_eq!(
            DocType::declared(Some("application/octet-stream"), "a.MD"),
            Some(DocType::Md)
        );
        assert_eq!(DocType::declared(None, "page.htm"), Some(DocType::Html));
        assert_eq!(DocType::declared(Some("image/png"), "a.pdf"), None);
        assert_eq!(DocType::declared(None, "a.exe"), None);
        assert_eq!(DocType::declared(None, "noextension"), None);
    }

    #[test]
    fn content_must_match() {
        assert!(DocType::Pdf.check_content(b"%PDF-1.7\n...").is_ok());
        assert!(
            DocType::Pdf
                .check_content(b"hello")
                .unwrap_err()
                .contains("plain text")
        );
        let docx = b"PK\x03\x04....[Content_Types].xml....word/document.xml....";
        assert!(DocType::Docx.check_content(docx).is_ok());
        assert!(
            DocType::Docx
                .check_content(b"PK\x03\x04 other zip")
                .is_err()
        );
        assert!(DocType::Txt.check_content("héllo\n".as_bytes()).is_ok());
        assert!(
            DocType::Txt.check_content(b"caf\xe9 cr\xe8me\r\n").is_ok(),
            "Latin-1"
        );
        assert!(
            DocType::Txt
                .check_content(b"\x7fELF\x02\x01\x01\x00")
                .unwrap_err()
                .contains("executable")
        );
        assert!(DocType::Md.check_content(b"# Title\n\x00").is_err());
        assert!(
            DocType::Html
                .check_content(b"\xef\xbb\xbf <!DOCTYPE html><html></html>")
                .is_ok()
        );
        assert!(DocType::Html.check_content(b"just words").is_err());
    }

    /// The verdict of a check fed `bytes` cut at `cuts`.
    fn in_pieces(t: DocType, bytes: &[u8], cuts: &[usize]) -> Result<(), String> {
        let mut check = ContentCheck::new(t);
        let mut at = 0;
        for &c in cuts {
            let c = c.clamp(at, bytes.len());
            check.update(&bytes[at..c]);
            at = c;
        }
        check.update(&bytes[at..]);
        check.finish()
    }

    #[test]
    fn a_part_name_or_a_character_cut_between_pieces_is_seen_whole() {
        let docx = b"PK\x03\x04....word/document.xml....";
        for cut in 0..docx.len() {
            assert!(
                in_pieces(DocType::Docx, docx, &[cut, cut + 3]).is_ok(),
                "{cut}"
            );
        }
        let text = "naïve € 𝄞\x01".as_bytes();
        for cut in 0..text.len() {
            assert!(in_pieces(DocType::Txt, text, &[cut]).is_ok(), "{cut}");
        }
        // A character never completed is not UTF-8; with a control byte, not Latin-1 either.
        assert!(in_pieces(DocType::Txt, b"ok \x01 \xe2\x82", &[5]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn pieces_or_whole_the_verdict_is_the_same(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
            t in 0usize..5,
        ) {
            let t = [DocType::Pdf, DocType::Docx, DocType::Txt, DocType::Md, DocType::Html][t];
            let mut cuts = cuts;
            cuts.sort_unstable();
            proptest::prop_assert_eq!(in_pieces(t, &bytes, &cuts), t.check_content(&bytes));
            // Text, as defined on the whole content.
            let text = !bytes.contains(&0)
                && (std::str::from_utf8(&bytes).is_ok()
                    || !bytes.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)));
            proptest::prop_assert_eq!(in_pieces(DocType::Txt, &bytes, &cuts).is_ok(), text);
            let docx = bytes.starts_with(b"PK\x03\x04") && memmem::find(&bytes, DOCX_PART).is_some();
            proptest::prop_assert_eq!(in_pieces(DocType::Docx, &bytes, &cuts).is_ok(), docx);
        }
    }
}
