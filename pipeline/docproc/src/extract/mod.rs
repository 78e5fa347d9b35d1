//! Text extraction: a stored document's bytes → its pages of plain text. Pure functions of the
//! bytes and the [`Limits`]; no I/O.
//!
//! | format | how | pages |
//! |---|---|---|
//! | PDF | `pdf-extract` (over `lopdf`), page by page | 1-based |
//! | DOCX | `zip` + `quick-xml`: the `w:t` runs of `word/document.xml`, one line per paragraph, table cells separated by tabs | none |
//! | TXT | UTF-8, else Windows-1252 (a superset of printable latin-1) | none |
//! | Markdown | `pulldown-cmark` events: text and code kept, markup and raw HTML dropped | none |
//! | HTML | `html2text` (html5ever): scripts and styles dropped | none |
//!
//! Every failure is an [`ExtractError`] whose message is the dead letter's reason; a panic inside
//! a parser is caught and reported as a corrupt document.

mod docx;
mod pdf;
mod text;

use crate::chunker::Page;

/// Bounds against hostile documents (decompression bombs, page floods). Defaults in `Default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest stored object read (bytes).
    pub max_input_bytes: u64,
    /// Most pages in a PDF.
    pub max_pdf_pages: usize,
    /// Largest uncompressed DOCX entry read (bytes).
    pub max_docx_entry_bytes: u64,
    /// Largest uncompressed/compressed ratio of a DOCX entry.
    pub max_docx_ratio: u64,
    /// Most text extracted from one document (bytes of UTF-8).
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50_000_000,
            max_pdf_pages: 2_000,
            max_docx_entry_bytes: 100_000_000,
            max_docx_ratio: 100,
            max_text_bytes: 20_000_000,
        }
    }
}

/// The document types: ingest's, which checked the declared type against the content.
pub use atenex_ingest::file_type::DocType as Format;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported document type: {0}")]
    Unsupported(String),
    #[error("corrupt {format:?} document: {detail}")]
    Corrupt { format: Format, detail: String },
    #[error("encrypted PDF (password protected): not processed")]
    Encrypted,
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("no extractable text (a scanned document without a text layer? OCR is not done)")]
    NoText,
}

/// Extracts `bytes` as `format`. Pages with no text are kept (a PDF's page numbers stay right),
/// but a document with no text at all is [`ExtractError::NoText`].
pub fn extract(format: Format, bytes: &[u8], limits: &Limits) -> Result<Vec<Page>, ExtractError> {
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(ExtractError::Limit(format!(
            "{} bytes, more than ATENEX_DOCPROC_MAX_INPUT_BYTES={}",
            bytes.len(),
            limits.max_input_bytes
        )));
    }
    let pages = std::panic::catch_unwind(|| match format {
        Format::Pdf => pdf::extract(bytes, limits),
        Format::Docx => docx::extract(bytes, limits).map(unpaged),
        Format::Txt => Ok(unpaged(text::txt(bytes))),
        Format::Md => Ok(unpaged(text::markdown(&text::txt(bytes)))),
        Format::Html => text::html(bytes).map(unpaged),
    })
    .unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the parser panicked".into());
        Err(ExtractError::Corrupt { format, detail })
    })?;
    let total: usize = pages.iter().map(|p| p.text.len()).sum();
    if total > limits.max_text_bytes {
        return Err(ExtractError::Limit(format!(
            "{total} bytes of text, more than ATENEX_DOCPROC_MAX_TEXT_BYTES={}",
            limits.max_text_bytes
        )));
    }
    if pages.iter().all(|p| p.text.trim().is_empty()) {
        return Err(ExtractError::NoText);
    }
    Ok(pages)
}

fn unpaged(text: String) -> Vec<Page> {
    vec![Page { number: None, text }]
}
