//! `atenex docproc`: documents.raw → text → chunks.processed (docs/services.md).

use crate::ingest::StorageArgs;
use crate::limits::ShutdownArgs;
use crate::{KafkaArgs, Observability};
use atenex_contracts::Topic;
use atenex_docproc::chunker::{ChunkerConfig, Unit};
use atenex_docproc::extract::Limits;
use atenex_docproc::service::Docproc;
use atenex_ingest::storage::Storage;
use atenex_kafka::{GroupConsumer, GroupSettings, Producer};
use clap::Args;

#[derive(Args, Debug)]
pub struct DocprocArgs {
    /// The store ingest writes (the same value as its --storage); events whose s3_path is
    /// outside it are dead-lettered.
    #[command(flatten)]
    storage: StorageArgs,

    /// Consumer group.
    #[arg(
        long,
        value_name = "ID",
        env = "ATENEX_DOCPROC_GROUP",
        default_value = "atenex-docproc"
    )]
    group: String,

    /// Chunk size, in --chunk-unit.
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_CHUNK_SIZE",
        default_value_t = 1000, value_parser = crate::parse::count::<1, 1_000_000>)]
    chunk_size: usize,

    /// Overlap between consecutive chunks of a page, in --chunk-unit (less than --chunk-size).
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_CHUNK_OVERLAP",
        default_value_t = 200, value_parser = crate::parse::count::<0, 1_000_000>)]
    chunk_overlap: usize,

    /// What sizes count: words (as the original service) or tokens (cl100k_base, the embedding
    /// models' tokenizer).
    #[arg(
        long,
        value_name = "UNIT",
        env = "ATENEX_CHUNK_UNIT",
        default_value = "words"
    )]
    chunk_unit: Unit,

    /// Largest document read, in bytes (larger: dead-lettered).
    #[arg(long, value_name = "BYTES", env = "ATENEX_DOCPROC_MAX_INPUT_BYTES", default_value_t = Limits::default().max_input_bytes, value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    max_input_bytes: u64,

    /// Most pages in a PDF.
    #[arg(long, value_name = "N", env = "ATENEX_DOCPROC_MAX_PDF_PAGES", default_value_t = Limits::default().max_pdf_pages, value_parser = crate::parse::count::<1, 1_000_000>)]
    max_pdf_pages: usize,

    /// Largest uncompressed word/document.xml of a DOCX, in bytes.
    #[arg(long, value_name = "BYTES", env = "ATENEX_DOCPROC_MAX_DOCX_ENTRY_BYTES", default_value_t = Limits::default().max_docx_entry_bytes, value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    max_docx_entry_bytes: u64,

    /// Largest expansion ratio (uncompressed / compressed) of a DOCX's document.xml.
    #[arg(long, value_name = "N", env = "ATENEX_DOCPROC_MAX_DOCX_RATIO", default_value_t = Limits::default().max_docx_ratio, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_docx_ratio: u64,

    /// Most text taken from one document, in bytes.
    #[arg(long, value_name = "BYTES", env = "ATENEX_DOCPROC_MAX_TEXT_BYTES", default_value_t = Limits::default().max_text_bytes, value_parser = crate::parse::count::<1, 1_099_511_627_776>)]
    max_text_bytes: usize,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,

    #[command(flatten)]
    observability: Observability,
}

pub async fn run(args: DocprocArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let kafka = args.kafka.config();
    let storage = Storage::open(&args.storage.storage)?;
    // A missing bucket or refused credentials stop the service here, not at the first document.
    storage
        .check(false, std::time::Duration::from_secs(15))
        .await?;
    let docproc = Docproc::new(
        storage,
        Producer::new(&kafka)?,
        ChunkerConfig {
            size: args.chunk_size,
            overlap: args.chunk_overlap,
            unit: args.chunk_unit,
        },
        Limits {
            max_input_bytes: args.max_input_bytes,
            max_pdf_pages: args.max_pdf_pages,
            max_docx_entry_bytes: args.max_docx_entry_bytes,
            max_docx_ratio: args.max_docx_ratio,
            max_text_bytes: args.max_text_bytes,
        },
    )?;
    let mut settings = GroupSettings::new(&args.group, &[Topic::DocumentsRaw.name()]);
    settings.max_batch = 50;
    let consumer = GroupConsumer::new(&kafka, settings)?;
    health.set_ready(true);
    tracing::info!(storage = %atenex_kafka::observe::redacted(&args.storage.storage), group = %args.group, "docproc running");
    let summary = consumer
        .run(shutdown, async |batch| {
            docproc.handle(batch).await.map(drop)
        })
        .await?;
    tracing::info!(records = summary.records, "docproc stopped");
    Ok(())
}
