//! The daily reports as the report job publishes them: `<reports>/daily_chunk_count/date=D/`
//! with its Parquet file and `_SUCCESS`, on a local path or `hdfs://` (the report's own store).

use anyhow::Context as _;
use atenex_report::read::{Row, rows_of};
use atenex_report::store::Location;
use serde::Serialize;
use std::collections::BTreeMap;

/// The largest report file the dashboard reads.
const MAX_REPORT_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct Reports {
    location: Location,
}

/// One day's report as the pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    pub date: String,
    /// Per company: total chunks, unique chunks, documents.
    pub companies: BTreeMap<String, CompanyTotals>,
    pub rows: Vec<ReportRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CompanyTotals {
    pub total_chunks: i64,
    pub unique_chunks: i64,
    pub documents: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub company_id: String,
    pub document_id: String,
    pub total_chunks: i64,
    pub unique_chunks: i64,
}

impl Reports {
    /// The reports directory (`.../atenex/reports`), a local path or an `hdfs://` URL.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let location =
            Location::open(url).with_context(|| format!("--reports {url}: cannot open"))?;
        Ok(Self { location })
    }

    fn table(&self) -> String {
        self.location.join("daily_chunk_count")
    }

    /// A valid date (`YYYY-MM-DD`), or `None`: nothing else is ever joined into a path.
    fn day(&self, date: &str) -> Option<String> {
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        Some(format!("{}/date={date}", self.table()))
    }

    /// The dates with a published report (`_SUCCESS` written), newest first.
    pub fn dates(&self) -> anyhow::Result<Vec<String>> {
        let store = &self.location.store;
        let mut dates: Vec<String> = store
            .subdirs(&self.table())?
            .into_iter()
            .filter_map(|d| d.strip_prefix("date=").map(str::to_owned))
            .filter(|d| {
                self.day(d)
                    .is_some_and(|dir| store.exists(&format!("{dir}/_SUCCESS")).unwrap_or(false))
            })
            .collect();
        dates.sort_by(|a, b| b.cmp(a));
        Ok(dates)
    }

    /// The Parquet file of `date`'s report (`None`: no such report).
    pub fn parquet(&self, date: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(dir) = self.day(date) else {
            return Ok(None);
        };
        let path = format!("{dir}/{}", atenex_report::report::PART);
        if !self.location.store.exists(&path)? {
            return Ok(None);
        }
        Ok(Some(self.location.store.read(&path, MAX_REPORT_BYTES)?))
    }

    /// `date`'s report: its rows and the totals per company (`None`: no such report).
    pub fn day_report(&self, date: &str) -> anyhow::Result<Option<DayReport>> {
        let Some(bytes) = self.parquet(date)? else {
            return Ok(None);
        };
        let rows = rows_of(date, bytes.into())?;
        Ok(Some(summarize(date, rows)))
    }
}

fn summarize(date: &str, rows: Vec<Row>) -> DayReport {
    let mut companies: BTreeMap<String, CompanyTotals> = BTreeMap::new();
    for r in &rows {
        let c = companies.entry(r.company_id.clone()).or_default();
        c.total_chunks += r.total_chunks;
        c.unique_chunks += r.unique_chunks;
        c.documents += 1;
    }
    DayReport {
        date: date.to_owned(),
        companies,
        rows: rows
            .into_iter()
            .map(|r| ReportRow {
                company_id: r.company_id,
                document_id: r.document_id,
                total_chunks: r.total_chunks,
                unique_chunks: r.unique_chunks,
            })
            .collect(),
    }
}
