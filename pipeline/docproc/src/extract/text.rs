//! Text formats: TXT (with its encoding fallback), Markdown and HTML.

use super::{ExtractError, Format};
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// UTF-8 (a BOM dropped), else Windows-1252: every byte maps to a character, so legacy latin-1
/// and cp1252 files read right instead of failing.
pub fn txt(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// Markdown to plain text: text, code and link texts kept; markup, URLs and raw HTML dropped; a
/// line break after each block.
pub fn markdown(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for event in Parser::new(source) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) => out.push_str("- "),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableCell
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// HTML to plain text, without scripts and styles, decoded as its bytes say (UTF-8, else
/// Windows-1252).
pub fn html(bytes: &[u8]) -> Result<String, ExtractError> {
    let text = txt(bytes);
    html2text::config::plain_no_decorate()
        .no_link_wrapping()
        .string_from_read(text.as_bytes(), usize::MAX / 4)
        .map_err(|e| ExtractError::Corrupt {
            format: Format::Html,
            detail: e.to_string(),
        })
}
