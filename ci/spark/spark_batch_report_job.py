"""The seed's Spark daily report job (../shared/seed/big_data_pipeline.md, section 4), with the
paths as arguments and Spark local[2], to compare `atenex report` with it on the same tree and
machine (docs/report.md). Not run by CI.

    python3 -m venv ~/.cache/atenex/pyspark-venv && ~/.cache/atenex/pyspark-venv/bin/pip install pyspark
    ~/.cache/atenex/pyspark-venv/bin/python ci/spark/spark_batch_report_job.py \
        <landing topics dir> <reports dir> YYYY-MM-DD
"""
import sys
import time

from pyspark.sql import SparkSession


def daily_chunk_report_job(landing, reports, date):
    year, month, day = date.split("-")
    spark = (
        SparkSession.builder.appName("AtenexDailyChunkReport")
        .master("local[2]")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    input_path = f"{landing}/embeddings.ready/year={year}/month={month}/day={day}/*/"
    output_path = f"{reports}/daily_chunk_count/date={year}-{month}-{day}"
    started = time.time()
    df = spark.read.json(input_path)
    if "document_id" not in df.columns or "company_id" not in df.columns:
        print(f"Error: Required columns not found in {input_path}")
        spark.stop()
        return
    report_df = df.groupBy("company_id", "document_id").count().withColumnRenamed("count", "total_chunks")
    report_df.write.mode("overwrite").parquet(output_path)
    rows = spark.read.parquet(output_path).count()
    print(f"spark: {rows} rows in {time.time() - started:.1f}s (excluding JVM start-up)")
    spark.stop()


if __name__ == "__main__":
    t0 = time.time()
    daily_chunk_report_job(sys.argv[1], sys.argv[2], sys.argv[3])
    print(f"spark: total {time.time() - t0:.1f}s including session start-up")
