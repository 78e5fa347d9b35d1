"""The daily chunk report on Spark: `atenex report --engine spark` (docs/report.md).

Embedded in the `atenex` binary and run through spark-submit. Same semantics as the default
engine (pipeline/report/src/extract.rs and report.rs): one day of landed `embeddings.ready`
records, counted per (company_id, document_id): `total_chunks` = records, `unique_chunks` =
distinct `chunk_id`. Blank lines are ignored; a line that is not a JSON object, is not JSON, is
longer than --max-line-bytes, or has an id that is an object, an array or a boolean is malformed
(exit 5, or skipped and counted with --skip-bad-records); a record without company_id or
document_id (null is missing) fails the run (exit 4). Ids may be strings or numbers (a number
counts as its text).

It talks to `atenex` through the staging directory it is given (any Hadoop URL: file://, hdfs://),
so that it works in YARN cluster mode too, where the driver runs on another node:
  <staging>/_inputs        the files to read, one URL per line (atenex lists the day)
  <staging>/_spark/        the Parquet written here (one file, sorted)
  <staging>/_summary.json  the counts, on success
  <staging>/_error.json    {"code": 4|5, "message": ...} on a data error, then exit with that code
"""

import argparse
import json
import sys

from pyspark.sql import SparkSession, functions as F, types as T

QUOTED_BAD = 5

IDS = T.StructType(
    [
        T.StructField("company_id", T.StringType()),
        T.StructField("document_id", T.StringType()),
        T.StructField("chunk_id", T.StringType()),
        T.StructField("_corrupt", T.StringType()),
    ]
)


def bad_id_type(line):
    """Which id of `line` is an object, an array or a boolean (None: none). Given only the rare
    lines whose id text could be one (Spark renders such a value as its JSON text), None for the
    others: Spark evaluates a Python UDF on every row, whatever the CASE around it."""
    if line is None:
        return None
    try:
        record = json.loads(line)
    except ValueError as e:
        return "not JSON: %s" % e
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("company_id", "document_id", "chunk_id"):
        value = record.get(key)
        if isinstance(value, (dict, list, bool)):
            return "invalid type: %s, expected a string or a number (field %s)" % (
                type(value).__name__.replace("dict", "map").replace("list", "sequence").replace("bool", "boolean"),
                key,
            )
    return None


def write_text(spark, url, text):
    """Writes a small file through Hadoop's FileSystem (file://, hdfs://), replacing it."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    out = fs.create(path, True)
    out.write(bytearray(text.encode("utf-8")))
    out.close()


def read_text(spark, url):
    """A small file's text, through Hadoop's FileSystem (Spark's readers skip `_` names)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.open(path)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def fail(spark, staging, code, message):
    write_text(spark, staging + "/_error.json", json.dumps({"code": code, "message": message}))
    print("atenex report (spark): " + message, file=sys.stderr)
    spark.stop()
    sys.exit(code)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--staging", required=True)
    p.add_argument("--skip-bad-records", action="store_true")
    p.add_argument("--max-line-bytes", type=int, required=True)
    args = p.parse_args()
    staging = args.staging.rstrip("/")

    spark = SparkSession.builder.appName("atenex-daily-chunk-count").getOrCreate()
    inputs = [u for u in read_text(spark, staging + "/_inputs").splitlines() if u.strip()]
    if not inputs:
        fail(spark, staging, 1, "no input files in %s/_inputs" % staging)

    lines = (
        spark.read.text(inputs)
        .select(F.input_file_name().alias("file"), F.col("value").alias("line"))
        .where(F.trim(F.col("line")) != "")
    )
    parsed = lines.select(
        "file",
        "line",
        F.from_json(
            "line",
            IDS,
            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
        ).alias("r"),
    )
    suspicious = F.lit(False)
    for key in ("company_id", "document_id", "chunk_id"):
        value = F.col("r." + key)
        suspicious = suspicious | value.rlike(r"^(true|false|\{.*\}|\[.*\])$")
    check = F.udf(bad_id_type, T.StringType())
    reason = (
        F.when(F.octet_length("line") > args.max_line_bytes,
               F.concat(F.lit("the line is "), F.octet_length("line").cast("string"),
                        F.lit(" bytes long, over --max-line-bytes (%d)" % args.max_line_bytes)))
        .when(~F.ltrim("line").startswith("{"), F.lit("not a JSON object"))
        .when(F.col("r").isNull() | F.col("r._corrupt").isNotNull(), F.lit("not valid JSON"))
        .when(suspicious, check(F.when(suspicious, F.col("line"))))
    )
    classified = parsed.select(
        "file", "line", F.col("r.company_id").alias("company_id"),
        F.col("r.document_id").alias("document_id"), F.col("r.chunk_id").alias("chunk_id"),
        reason.alias("bad"),
    ).cache()

    bad = classified.where(F.col("bad").isNotNull())
    missing = classified.where(
        F.col("bad").isNull() & (F.col("company_id").isNull() | F.col("document_id").isNull())
    )
    # The first failing file in path order, as the default engine reports it.
    first_missing = missing.orderBy("file").select("file", "company_id", "document_id", "line").head(1)
    first_bad = bad.orderBy("file").select("file", "bad").head(QUOTED_BAD)
    if first_missing and (args.skip_bad_records or not first_bad or first_missing[0].file <= first_bad[0].file):
        m = first_missing[0]
        what = (
            "company_id and document_id" if m.company_id is None and m.document_id is None
            else "company_id" if m.company_id is None else "document_id"
        )
        try:
            found = ", ".join(sorted(json.loads(m.line).keys())) or "none"
        except ValueError:
            found = "none"
        fail(spark, staging, 4, "%s: record without %s; fields found: %s" % (m.file, what, found))
    if first_bad and not args.skip_bad_records:
        fail(spark, staging, 5, "%s: malformed record: %s (use --skip-bad-records to skip and count such lines)"
             % (first_bad[0].file, first_bad[0].bad))

    good = classified.where(F.col("bad").isNull())
    report = (
        good.groupBy("company_id", "document_id")
        .agg(F.count(F.lit(1)).alias("total_chunks"), F.countDistinct("chunk_id").alias("unique_chunks"))
        .orderBy("company_id", "document_id")
    )
    report.coalesce(1).write.mode("overwrite").parquet(staging + "/_spark")
    totals = report.agg(F.sum("total_chunks").alias("t"), F.sum("unique_chunks").alias("u"),
                        F.count(F.lit(1)).alias("rows"), F.countDistinct("company_id").alias("c")).head()
    without_chunk_id = good.where(F.col("chunk_id").isNull()).count()
    summary = {
        "rows": totals.rows,
        "records": totals.t or 0,
        "unique": totals.u or 0,
        "companies": totals.c,
        "without_chunk_id": without_chunk_id,
        "bad_skipped": bad.count() if args.skip_bad_records else 0,
        "first_bad": ["%s: %s" % (r.file, r.bad) for r in first_bad],
    }
    write_text(spark, staging + "/_summary.json", json.dumps(summary))
    spark.stop()


if __name__ == "__main__":
    main()
