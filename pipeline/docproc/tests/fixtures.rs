//! The document fixtures (fixtures/documents/, made by pandoc and LibreOffice with make.sh): what
//! extraction and chunking give for each, as reviewed snapshots, and each refusal's reason.

use atenex_docproc::chunker::{self, ChunkerConfig, Unit};
use atenex_docproc::extract::{self, ExtractError, Format, Limits};
use std::fmt::Write as _;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/documents")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The chunks of a fixture under the defaults and under small windows (40 words, 10 overlap), in a
/// form meant to be read.
fn render(name: &str) -> String {
    let format = Format::from_extension(name).unwrap();
    let pages = extract::extract(format, &fixture(name), &Limits::default()).unwrap();
    let mut out = String::new();
    for (label, config) in [
        (
            "defaults (1000 words, 200 overlap)",
            ChunkerConfig::default(),
        ),
        (
            "40 words, 10 overlap",
            ChunkerConfig {
                size: 40,
                overlap: 10,
                unit: Unit::Words,
            },
        ),
    ] {
        writeln!(out, "== {label}").unwrap();
        for c in chunker::chunk(&pages, &config, None) {
            writeln!(
                out,
                "[{} page {:?} words {}] {}",
                c.index,
                c.page,
                c.text.split(' ').count(),
                c.text
            )
            .unwrap();
        }
    }
    out
}

#[test]
fn multipage_pdf() {
    insta::assert_snapshot!(render("multipage.pdf"));
}

/// pdfTeX places words by position: the extractor must still separate them and compose accents.
#[test]
fn pdftex_pdf() {
    let out = render("tables-tex.pdf");
    assert!(out.contains("ninety-five percent on time"), "{out}");
    assert!(out.contains("vérifie"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn docx_with_a_table() {
    insta::assert_snapshot!(render("tables.docx"));
}

#[test]
fn html_without_its_script_and_style() {
    let out = render("page.html");
    assert!(!out.contains("should-not-appear"), "{out}");
    assert!(!out.contains("hidden-style-rule"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn markdown() {
    let out = render("notes.md");
    assert!(!out.contains("https://example.com"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn cp1252_text_reads_like_its_utf8_twin() {
    let utf8 = render("cafe-utf8.txt");
    assert_eq!(render("cafe-cp1252.txt"), utf8);
    assert!(
        utf8.contains("Señor Núñez") && utf8.contains("12,50 €"),
        "{utf8}"
    );
    insta::assert_snapshot!(utf8);
}

#[test]
fn refusals_say_why() {
    let limits = Limits::default();
    assert_eq!(
        extract::extract(Format::Pdf, &fixture("scanned.pdf"), &limits),
        Err(ExtractError::NoText)
    );
    assert_eq!(
        extract::extract(Format::Pdf, &fixture("encrypted.pdf"), &limits),
        Err(ExtractError::Encrypted)
    );
    let truncated = extract::extract(Format::Pdf, &fixture("truncated.pdf"), &limits);
    assert!(
        matches!(
            truncated,
            Err(ExtractError::Corrupt {
                format: Format::Pdf,
                ..
            })
        ),
        "{truncated:?}"
    );
    // A PDF is not a DOCX.
    let wrong = extract::extract(Format::Docx, &fixture("multipage.pdf"), &limits);
    assert!(
        matches!(wrong, Err(ExtractError::Corrupt { .. })),
        "{wrong:?}"
    );
    let few_pages = Limits {
        max_pdf_pages: 2,
        ..limits
    };
    let e = extract::extract(Format::Pdf, &fixture("multipage.pdf"), &few_pages).unwrap_err();
    assert!(e.to_string().contains("3 pages"), "{e}");
    let small = Limits {
        max_text_bytes: 100,
        ..limits
    };
    let e = extract::extract(Format::Md, &fixture("notes.md"), &small).unwrap_err();
    assert!(
        e.to_string().contains("ATENEX_DOCPROC_MAX_TEXT_BYTES"),
        "{e}"
    );
}

/// A DOCX whose document.xml is about `size` bytes: paragraphs of 1,000 `a`s.
fn docx_bomb(size: usize) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("word/document.xml", options).unwrap();
    let para = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", "a".repeat(1000));
    let para = para.as_bytes();
    zip.write_all(b"<w:document><w:body>").unwrap();
    for _ in 0..size / para.len() {
        zip.write_all(para).unwrap();
    }
    zip.write_all(b"</w:body></w:document>").unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn docx_bombs_are_refused_by_ratio_and_by_size() {
    let bomb = docx_bomb(5_000_000);
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let e = extract::extract(Format::Docx, &bomb, &Limits::default()).map(|p| p.len());
    assert!(
        matches!(&e, Err(e) if e.to_string().contains("ATENEX_DOCPROC_MAX_DOCX_RATIO")),
        "{e:?}, {} bytes compressed",
        bomb.len()
    );
    let lenient_ratio = Limits {
        max_docx_ratio: u64::MAX,
        max_docx_entry_bytes: 1_000_000,
        ..Limits::default()
    };
    let e = extract::extract(Format::Docx, &bomb, &lenient_ratio).map(|p| p.len());
    assert!(
        matches!(&e, Err(e) if e.to_string().contains("ATENEX_DOCPROC_MAX_DOCX_ENTRY_BYTES")),
        "{e:?}"
    );
    // Within both limits it is just a document.
    let lenient = Limits {
        max_docx_ratio: u64::MAX,
        ..Limits::default()
    };
    let pages = extract::extract(Format::Docx, &bomb, &lenient).unwrap();
    assert_eq!(
        pages[0].text.split_whitespace().count(),
        5_000_000 / para_len()
    );
}

fn para_len() -> usize {
    "<w:p><w:r><w:t></w:t></w:r></w:p>".len() + 1000
}
