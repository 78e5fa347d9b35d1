//! Reading a report back: the rows of the Parquet files of a local report directory (the demo's
//! summary, the simulator's broker driver, tests).

use anyhow::Context as _;
use datafusion::arrow::array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub company_id: String,
    pub document_id: String,
    pub total_chunks: i64,
    pub unique_chunks: i64,
}

/// Every row of the `*.parquet` files in `dir`, sorted.
pub fn read_rows(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        rows.extend(rows_of(&path.display().to_string(), bytes.into())?);
    }
    rows.sort();
    Ok(rows)
}

/// The rows of one report Parquet file's bytes, in file order; `name` is for messages.
pub fn rows_of(name: &str, bytes: bytes::Bytes) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
        .with_context(|| format!("{name}: not a Parquet file"))?
        .build()?
    {
        let batch = batch?;
        let column = |n: &str| {
            batch
                .column_by_name(n)
                .with_context(|| format!("{name}: no column {n}"))
        };
        let strings = |n| typed::<StringArray>(column(n)?, name, n, "a string");
        let ints = |n| typed::<Int64Array>(column(n)?, name, n, "an int64");
        let (companies, documents) = (strings("company_id")?, strings("document_id")?);
        let (totals, uniques) = (ints("total_chunks")?, ints("unique_chunks")?);
        for i in 0..batch.num_rows() {
            let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_owned());
            rows.push(Row {
                company_id: text(&companies).unwrap_or_default(),
                document_id: text(&documents).unwrap_or_default(),
                total_chunks: totals.value(i),
                unique_chunks: uniques.value(i),
            });
        }
    }
    Ok(rows)
}

/// Column `n` of file `name` as the array type `A` (`what` names it in the error).
fn typed<A: Array + Clone + 'static>(
    column: &std::sync::Arc<dyn Array>,
    name: &str,
    n: &str,
    what: &str,
) -> anyhow::Result<A> {
    column
        .as_any()
        .downcast_ref::<A>()
        .cloned()
        .with_context(|| format!("{name}: {n} is not {what} column"))
}
