//! `atenex bench docproc`.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DocprocBench {
    /// The document fixtures.
    #[arg(long, default_value = "fixtures/documents")]
    dir: PathBuf,
    /// Time spent on each measurement, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    millis: u64,
}

pub fn run(b: DocprocBench) -> anyhow::Result<()> {
    let budget = Duration::from_millis(b.millis);
    println!("extraction + chunking (1000 words, 200 overlap), one core:");
    println!("| fixture | bytes | pages | chunks | documents/s | pages/s | MB/s |");
    println!("|---|---|---|---|---|---|---|");
    for r in atenex_docproc::bench::fixtures(&b.dir, budget)? {
        let pages = if r.pages > 0 {
            format!("{:.0}", r.per_second * r.pages as f64)
        } else {
            "–".into()
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {pages} | {:.1} |",
            r.name,
            r.bytes,
            r.pages,
            r.chunks,
            r.per_second,
            r.per_second * r.bytes as f64 / 1e6
        );
    }
    println!("\nPDF extractors (word recall: the share of the source's distinct words extracted):");
    println!("| PDF (made by) | extractor | word recall | documents/s |");
    println!("|---|---|---|---|");
    for (pdf, source, maker) in [
        ("multipage.pdf", "multipage.md", "LibreOffice 7.4"),
        ("tables-tex.pdf", "tables.md", "pandoc + pdfTeX"),
    ] {
        let data = std::fs::read(b.dir.join(pdf))?;
        let source = std::fs::read_to_string(b.dir.join("src").join(source))?;
        for c in atenex_docproc::bench::compare_pdf(&data, &source, budget) {
            println!(
                "| {pdf} ({maker}) | {} | {:.1} % | {:.0} |",
                c.name,
                100.0 * c.word_recall,
                c.per_second
            );
        }
    }
    Ok(())
}
