//! `atenex bench docproc`: extraction + chunking speed on the document fixtures, and the PDF
//! extractor comparison that chose `pdf-extract` (docs/services.md).

use crate::chunker::{self, ChunkerConfig};
use crate::extract::{self, Format, Limits};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// One fixture's numbers.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub bytes: usize,
    pub pages: usize,
    pub chunks: usize,
    pub per_second: f64,
}

/// Runs extraction + chunking of `name` for about `budget`; documents per second.
fn time(format: Format, data: &[u8], budget: Duration) -> anyhow::Result<(f64, usize, usize)> {
    let limits = Limits::default();
    let config = ChunkerConfig::default();
    let start = Instant::now();
    let mut runs = 0u64;
    let (mut pages, mut chunks) = (0, 0);
    while start.elapsed() < budget || runs == 0 {
        let p = extract::extract(format, data, &limits)?;
        let c = chunker::chunk(&p, &config, None);
        pages = p.iter().filter(|p| p.number.is_some()).count();
        chunks = c.len();
        runs += 1;
    }
    Ok((runs as f64 / start.elapsed().as_secs_f64(), pages, chunks))
}

/// Extraction + chunking of each text-bearing fixture in `dir`.
pub fn fixtures(dir: &Path, budget: Duration) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for name in [
        "multipage.pdf",
        "tables.docx",
        "page.html",
        "notes.md",
        "cafe-cp1252.txt",
    ] {
        let data = std::fs::read(dir.join(name))?;
        let format = Format::from_extension(name).expect("known fixture");
        let (per_second, pages, chunks) = time(format, &data, budget)?;
        rows.push(Row {
            name: name.to_owned(),
            bytes: data.len(),
            pages,
            chunks,
            per_second,
        });
    }
    Ok(rows)
}

/// How well and how fast two PDF extractors read a PDF whose source text is known: the share of
/// the source's distinct words found in the extracted text, and documents per second.
#[derive(Debug, Clone)]
pub struct PdfCandidate {
    pub name: &'static str,
    pub word_recall: f64,
    pub per_second: f64,
    pub per_page: bool,
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_lowercase)
        .collect()
}

pub fn compare_pdf(pdf: &[u8], source: &str, budget: Duration) -> Vec<PdfCandidate> {
    // The source's raw blocks (pandoc page breaks) are markup, not text.
    let text: String = source
        .lines()
        .filter(|l| !l.starts_with("```") && !l.starts_with('<'))
        .collect::<Vec<_>>()
        .join("\n");
    let want = words(&text);
    let recall = |text: &str| {
        let got = words(text);
        let missing: Vec<&String> = want.iter().filter(|w| !got.contains(*w)).collect();
        if !missing.is_empty() {
            tracing::debug!(?missing, "words not extracted");
        }
        1.0 - missing.len() as f64 / want.len().max(1) as f64
    };
    let mut out = Vec::new();
    let rate = |f: &dyn Fn() -> String| {
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < budget || runs == 0 {
            std::hint::black_box(f());
            runs += 1;
        }
        runs as f64 / start.elapsed().as_secs_f64()
    };
    let pdf_extract = || {
        pdf_extract::extract_text_from_mem_by_pages(pdf)
            .map(|p| p.join("\n"))
            .unwrap_or_default()
    };
    out.push(PdfCandidate {
        name: "pdf-extract 0.12 (by pages)",
        word_recall: recall(&pdf_extract()),
        per_second: rate(&pdf_extract),
        per_page: true,
    });
    let lopdf_text = || {
        lopdf::Document::load_mem(pdf)
            .and_then(|d| {
                let pages: Vec<u32> = d.get_pages().keys().copied().collect();
                pages
                    .iter()
                    .map(|p| d.extract_text(&[*p]))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map(|p| p.join("\n"))
            .unwrap_or_default()
    };
    out.push(PdfCandidate {
        name: "lopdf 0.42 Document::extract_text",
        word_recall: recall(&lopdf_text()),
        per_second: rate(&lopdf_text),
        per_page: true,
    });
    out
}
