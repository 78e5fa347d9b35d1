//! DOCX: the text runs (`w:t`) of `word/document.xml`; a line per paragraph (`w:p`), tabs between
//! table cells (`w:tc`), `w:tab` and `w:br` kept as whitespace. The entry is read through a
//! `take` of the size limit whatever its header claims, and its compression ratio is checked.

use super::{ExtractError, Format, Limits};
use quick_xml::events::Event;
use std::io::Read;

pub fn extract(bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    let corrupt = |detail: String| ExtractError::Corrupt {
        format: Format::Docx,
        detail,
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| corrupt(format!("not a ZIP archive: {e}")))?;
    let mut entry = zip
        .by_name("word/document.xml")
        .map_err(|e| corrupt(format!("no word/document.xml: {e}")))?;
    let declared = entry.size();
    let compressed = entry.compressed_size().max(1);
    if declared > limits.max_docx_entry_bytes {
        return Err(bomb(declared, limits));
    }
    if declared / compressed > limits.max_docx_ratio {
        return Err(ExtractError::Limit(format!(
            "word/document.xml expands {}x, more than ATENEX_DOCPROC_MAX_DOCX_RATIO={}",
            declared / compressed,
            limits.max_docx_ratio
        )));
    }
    let mut xml = Vec::with_capacity(declared.min(limits.max_docx_entry_bytes) as usize);
    (&mut entry)
        .take(limits.max_docx_entry_bytes + 1)
        .read_to_end(&mut xml)
        .map_err(|e| corrupt(format!("word/document.xml: {e}")))?;
    if xml.len() as u64 > limits.max_docx_entry_bytes {
        return Err(bomb(xml.len() as u64, limits));
    }
    paragraphs(&xml).map_err(corrupt)
}

fn bomb(size: u64, limits: &Limits) -> ExtractError {
    ExtractError::Limit(format!(
        "word/document.xml is {size} bytes uncompressed, more than ATENEX_DOCPROC_MAX_DOCX_ENTRY_BYTES={}",
        limits.max_docx_entry_bytes
    ))
}

fn paragraphs(xml: &[u8]) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = String::new();
    let mut in_text = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().into_inner() == "t" => in_text = true,
            Ok(Event::End(e)) => match e.local_name().into_inner() {
                "t" => in_text = false,
                "p" => out.push('\n'),
                "tc" => out.push('\t'),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.local_name().into_inner() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                out.push_str(&t.xml10_content());
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else {
                    let name: &str = r.as_ref();
                    if let Some(s) = quick_xml::escape::resolve_predefined_entity(name) {
                        out.push_str(s);
                    }
                }
            }
            Ok(Event::Eof) => return Ok(out),
            Err(e) => {
                return Err(format!(
                    "word/document.xml at byte {}: {e}",
                    reader.buffer_position()
                ));
            }
            Ok(_) => {}
        }
        buf.clear();
    }
}
