//! PDF: the page count and encryption checked with `lopdf` first (cheap, before any text work),
//! then `pdf-extract` page by page.

use super::{ExtractError, Format, Limits};
use crate::chunker::Page;

pub fn extract(bytes: &[u8], limits: &Limits) -> Result<Vec<Page>, ExtractError> {
    let corrupt = |detail: String| ExtractError::Corrupt {
        format: Format::Pdf,
        detail,
    };
    let doc = match lopdf::Document::load_mem(bytes) {
        Ok(d) => d,
        Err(lopdf::Error::Decryption(_)) | Err(lopdf::Error::InvalidPassword) => {
            return Err(ExtractError::Encrypted);
        }
        Err(e) => return Err(corrupt(e.to_string())),
    };
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let count = doc.get_pages().len();
    if count > limits.max_pdf_pages {
        return Err(ExtractError::Limit(format!(
            "{count} pages, more than ATENEX_DOCPROC_MAX_PDF_PAGES={}",
            limits.max_pdf_pages
        )));
    }
    let texts = pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| match e {
        pdf_extract::OutputError::PdfError(lopdf::Error::Decryption(_)) => ExtractError::Encrypted,
        e => corrupt(e.to_string()),
    })?;
    Ok(texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Page {
            number: Some(i as u32 + 1),
            text,
        })
        .collect())
}
