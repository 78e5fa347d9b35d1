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
    pub fn check_content(self, bytes: &[u8]) -> Result<(), String> {
        let head = &bytes[..bytes.len().min(1024)];
        let ok = match self {
            // The header may follow a few bytes of junk (PDF readers look in the first 1 KB).
            DocType::Pdf => memmem::find(head, b"%PDF-").is_some(),
            // A ZIP whose entries include the main document part.
            DocType::Docx => {
                bytes.starts_with(b"PK\x03\x04")
                    && memmem::find(bytes, b"word/document.xml").is_some()
            }
            DocType::Txt | DocType::Md => is_text(bytes),
            DocType::Html => is_text(bytes) && looks_like_html(head),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "declared as {} but the content is not ({})",
                self.name(),
                describe(bytes)
            ))
        }
    }
}

/// UTF-8 without NUL, or single-byte text (Latin-1/CP1252, which docproc decodes) without control
/// characters other than tab, newlines and form feed.
fn is_text(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    std::str::from_utf8(bytes).is_ok()
        || !bytes
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
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

fn describe(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"%PDF-") {
        "it looks like a PDF"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "it looks like a ZIP archive"
    } else if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"MZ") {
        "it looks like an executable"
    } else if is_text(bytes) {
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
}
