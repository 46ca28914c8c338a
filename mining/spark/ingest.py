"""Read interaction logs (contract ``interaction_turn`` v1), validate, quarantine.

Every input row ends up either accepted or in ``rejects/`` with one snake_case reason
(the first rule it breaks, in the order of :func:`reject_reason`); ``input = accepted +
rejected`` per reason and per ``dt`` partition is recorded in the stage stats. Past
``validation.max_reject_share`` the run fails with :class:`RejectShareExceeded`, naming
the top reason and the partitions where it occurs.

What counts as an input row ("nothing silently disappears"):

* a Parquet row, or a non-blank line of a JSON Lines file (blank lines are not rows: they
  are counted in ``skipped.blank_line``);
* one row per file that cannot be read in full, with the reason ``truncated_gzip`` or
  ``corrupt_gzip`` (the complete lines before the damage are recovered and validated like
  any other; what follows is unreadable, so its rows cannot be counted one by one: the
  file's unreadable tail counts as one rejected row), ``unreadable_file`` (a Parquet file
  whose footer cannot be read) or ``unsupported_file`` (a file in a ``dt=`` folder whose
  name ends in none of the supported suffixes). Empty files hold no rows; they are listed
  in ``files.empty``.

Repairs, not rejects: a ``session_id`` that is null, empty or only whitespace gets a
derived session id (:func:`infer_sessions`); C0/C1 control characters (Unicode ``Cc``,
which includes tab and newline) in ``utterance`` are replaced by one space per run and
the text trimmed (counted in ``repaired.control_characters``); a UTF-8 byte-order mark at
the start of a JSON line is dropped; columns outside the contract are ignored (counted per
name in ``extra_columns``). Values of the wrong type are never coerced to null silently:
a value that does not convert to the contract type is rejected as ``wrong_type_<field>``
(``bad_timestamp`` for ``ts``); a value that converts losslessly ("0.9" for a double, an
integer for a double) is accepted.

Everything runs in Spark SQL expressions (no per-row Python): invalid UTF-8 is found with
``is_valid_utf8`` on the raw bytes (Spark 4.0+; Spark's own JSON reader would replace the
bytes by U+FFFD without notice), JSON lines are parsed by ``from_json`` with every
top-level field read as a string, so a value of the wrong type is seen instead of nulling
the whole record. The only per-file Python is :func:`inspect_gzip`, one Spark task per
``.gz`` file (gzip is not splittable, so Spark reads it in one task as well).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import zlib
from pathlib import Path

from mining.privacy import pii as privacy
from mining.errors import NoInputPartitions, RejectShareExceeded

from mining.io import schemas
log = logging.getLogger(__name__)

CONTRACT = "interaction_turn"
DT_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
BCP47_RE = r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?$"
CONF_FIELDS = ("asr_confidence", "nlu_confidence")
# Required by the contract, but an unusable value is repaired after validation instead of
# rejected: see infer_sessions.
INFERRED_FIELDS = ("session_id",)
INFERRED_PREFIX = "inferred:"
PARQUET_SUFFIXES = (".parquet",)
JSON_SUFFIXES = (".jsonl", ".json")
GZIP_SUFFIXES = (".jsonl.gz", ".json.gz")
#: a ``ts`` before this instant is a zero/unset device clock (``epoch_zero_timestamp``)
EPOCH_LIMIT = "1970-01-02 00:00:00"
#: control characters repaired in ``utterance`` (Java regex, Unicode general category Cc)
CONTROL_RE = r"\p{Cc}+"
#: reasons of rows that stand for (part of) a file rather than for one parsed line
FILE_REASONS = ("truncated_gzip", "corrupt_gzip", "unreadable_file", "unsupported_file")




def list_partitions(logs: str, start: dt.date | None, end: dt.date | None) -> list[tuple[str, Path]]:
    """``[(dt, folder)]`` of ``LOGS/dt=YYYY-MM-DD`` folders in [start, end], sorted by date.

    Raises :class:`NoInputPartitions` when none exists."""
    found = []
    for child in sorted(Path(logs).iterdir()) if Path(logs).is_dir() else []:
        m = DT_RE.match(child.name)
        if not m or not child.is_dir():
            continue
        day = dt.date.fromisoformat(m.group(1))
        if (start and day < start) or (end and day > end):
            continue
        found.append((m.group(1), child))
    if not found:
        raise NoInputPartitions(f"no dt= partitions under {logs} in [{start or '*'}, {end or '*'}]")
    return found


def _files(folder: Path) -> list[Path]:
    """Data files of a partition folder: not hidden (``.``) and not markers (``_SUCCESS``)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))


# ----------------------------------------------------------------------------- gzip

def inspect_gzip(path: str, chunk_bytes: int = 1 << 20) -> dict:
    """Check one gzip file by decompressing it as a stream (nothing is kept in memory).

    Returns ``{"path", "status", "lines", "bytes", "error"}``: ``status`` is ``ok``,
    ``empty`` (0 bytes, or members holding no data), ``truncated`` (the stream ends inside
    a member: an interrupted copy) or ``corrupt`` (not gzip, bad deflate data or a CRC
    mismatch); ``lines`` counts the complete (newline-terminated, or final unterminated in
    an intact file) lines that decompress before the end or the damage. Concatenated
    members (RFC 1952 §2.2, as Hadoop's ``GzipCodec`` reads them) are followed.

    Uses :mod:`zlib` with ``wbits=31`` (gzip container; Python docs, "zlib — Compression
    compatible with gzip"). Never raises for bad data; ``OSError`` for an unreadable path."""
    lines = total = 0
    last = b"\n"
    status, error = "ok", None
    d = zlib.decompressobj(31)
    started = False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            if not chunk:
                break
            total += len(chunk)
            data = chunk
            try:
                while data:
                    started = True
                    out = d.decompress(data)
                    if out:
                        lines += out.count(b"\n")
                        last = out[-1:]
                    if d.eof:
                        data = d.unused_data
                        d = zlib.decompressobj(31)
                        started = False
                        if data.strip(b"\0") == b"" and data:
                            data = b""            # zero padding after the last member
                    else:
                        data = b""
            except zlib.error as e:
                status, error = "corrupt", str(e)
                break
    if status == "ok":
        if total == 0:
            status = "empty"
        elif started and not d.eof:
            status, error = "truncated", "the gzip stream ends inside a member"
        elif last != b"\n":
            lines += 1                            # an intact file's final line without newline
        if status == "ok" and lines == 0:
            status = "empty"
    return {"path": path, "status": status, "lines": lines, "bytes": total, "error": error}


def _inspect_gzips(spark, paths: list[str]) -> list[dict]:
    """:func:`inspect_gzip` of every path, one Spark task per file (executors read the same
    file system Spark reads the logs from)."""
    if not paths:
        return []
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect has no RDDs: check in the driver
        return [inspect_gzip(p) for p in paths]
    return sc.parallelize(paths, min(len(paths), max(1, sc.defaultParallelism * 4))).map(inspect_gzip).collect()


def _quiet_skipped_file_warnings(spark) -> None:
    """Spark logs a stack trace for each file it stops reading under ``ignoreCorruptFiles``;
    those files are already accounted for here (one reject row each, one log line), so
    only that logger is raised to ERROR (log4j2 ``Configurator.setLevel``)."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.execution.datasources.FileScanRDD", jvm.org.apache.logging.log4j.Level.ERROR)
    except Exception:  # pragma: no cover - a cluster without log4j2 core: only noisier logs
        log.debug("could not quiet FileScanRDD warnings", exc_info=True)


# ----------------------------------------------------------------------------- conform

def _contract_fields():
    return list(schemas.spark_schema(CONTRACT, all_nullable=True))


def _json_string_schema():
    """Every contract field as a string (Spark's JSON parser gives the raw JSON text of a
    number, boolean, object or array read as a string), plus the corrupt-record column."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, T.StringType(), True) for f in _contract_fields()]
                        + [T.StructField("_corrupt_record", T.StringType(), True)])


def _convert(df, c, src, field):
    """Column ``c`` of Spark type ``src`` converted to the contract type of ``field``, or
    None when no conversion exists (the value is then of the wrong type)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tgt = field.dataType
    if src == tgt:
        return c
    if isinstance(src, T.NullType):
        return F.lit(None).cast(tgt)
    if field.name == "ts":
        if isinstance(src, T.StringType):
            return F.try_to_timestamp(c)
        if isinstance(src, T.TimestampNTZType):
            return c.cast(T.TimestampType())           # wall-clock time read as UTC
        return None                                     # numbers: unit unknown → bad_timestamp
    if isinstance(tgt, T.ArrayType) and isinstance(src, T.StringType):
        return F.from_json(c, tgt)                      # slots given as a JSON string
    if isinstance(src, (T.StructType, T.MapType, T.ArrayType)) and not isinstance(tgt, T.ArrayType):
        return None
    if isinstance(tgt, T.StringType) and not isinstance(src, (T.StringType, T.NumericType, T.BooleanType)):
        return None
    if isinstance(src, T.StringType) and isinstance(tgt, (T.DoubleType, T.FloatType)):
        # Spark's JSON parser hands a NaN/Infinity token read as a string over quoted ("NaN")
        c = F.regexp_replace(c, r'^"(NaN|[+-]?Infinity)"$', "$1")
    expr = c.try_cast(tgt)
    try:
        _ = df.select(expr.alias("_probe")).schema    # classic Spark analyses eagerly
    except AnalysisException:
        return None
    return expr


def _conform(df, dt_value: str, *, raw_line=None, valid_utf8=None, extra=None, blank=None):
    """Contract columns cast to contract types (missing ones null) plus the bookkeeping
    columns ``_type_error`` (first field whose non-null value did not convert),
    ``_invalid_utf8``, ``_corrupt_record``, ``_raw_line``, ``_file_error``, ``_blank``,
    ``_extra`` (names of non-contract columns present), ``dt``, ``_source_file``."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    types = {f.name: f.dataType for f in df.schema.fields}
    cols, errors, utf8 = [], [], []
    for field in _contract_fields():
        if field.name not in types:
            cols.append(F.lit(None).cast(field.dataType).alias(field.name))
            continue
        raw = F.col(field.name)
        conv = _convert(df, raw, types[field.name], field)
        if conv is None:
            conv = F.lit(None).cast(field.dataType)
        cols.append(conv.alias(field.name))
        errors.append(F.when(raw.isNotNull() & conv.isNull(), F.lit(field.name)))
        if isinstance(types[field.name], T.StringType):
            utf8.append(F.coalesce(F.is_valid_utf8(raw), F.lit(True)))
    type_error = F.coalesce(*errors, F.lit(None).cast("string")) if errors else F.lit(None).cast("string")
    if valid_utf8 is None:
        valid_utf8 = F.lit(True)
        for v in utf8:
            valid_utf8 = valid_utf8 & v
    corrupt = F.col("_corrupt_record") if "_corrupt_record" in types else F.lit(None).cast("string")
    if extra is None:
        names = sorted(set(types) - {f.name for f in _contract_fields()} - {"_corrupt_record", "_source_file"})
        extra = F.array(*[F.lit(n) for n in names]) if names else F.array().cast("array<string>")
    return df.select(
        *cols, F.when(corrupt.isNull(), type_error).alias("_type_error"),
        (~valid_utf8).alias("_invalid_utf8"), corrupt.alias("_corrupt_record"),
        (raw_line if raw_line is not None else F.lit(None).cast("string")).alias("_raw_line"),
        F.lit(None).cast("string").alias("_file_error"),
        (blank if blank is not None else F.lit(False)).alias("_blank"), extra.alias("_extra"), F.lit(dt_value).alias("dt"), F.col("_source_file"))


def _read_json(spark, paths: list[str], dt_value: str, ignore_corrupt: bool):
    """JSON Lines files (plain or gzip) as conformed rows: read as text (raw bytes kept),
    UTF-8 checked, a leading BOM dropped, parsed with :func:`_json_string_schema`."""
    from pyspark.sql import functions as F

    reader = spark.read.option("ignoreCorruptFiles", "true") if ignore_corrupt else spark.read
    text = reader.text(paths).select(F.col("value"), F.input_file_name().alias("_source_file"))
    value = F.regexp_replace(F.col("value"), "^\uFEFF", "")
    contract = [f.name for f in _contract_fields()]
    parsed = (text
              .withColumn("_valid_utf8", F.is_valid_utf8("value"))
              .withColumn("_blank_line", F.col("value").rlike(r"(?U)^\s*$"))
              .withColumn("_j", F.from_json(value, _json_string_schema(),
                                            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record",
                                             "allowSingleQuotes": "false"}))
              .withColumn("_keys", F.when(F.col("_j._corrupt_record").isNull(), F.json_object_keys(value)))
              .select("*", "_j.*").drop("_j"))
    extra = F.coalesce(F.array_except(F.col("_keys"), F.array(*[F.lit(n) for n in contract])),
                       F.array().cast("array<string>"))
    return _conform(parsed, dt_value, raw_line=F.make_valid_utf8(value), valid_utf8=F.col("_valid_utf8"),
                    extra=extra, blank=F.col("_blank_line"))


def _file_rows(spark, rows: list[tuple[str, str, str, str]]):
    """One conformed row per damaged/unsupported file: (reason, dt, path, message)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("_file_error", T.StringType()), T.StructField("dt", T.StringType()),
                           T.StructField("_source_file", T.StringType()), T.StructField("_raw_line", T.StringType())])
    df = spark.createDataFrame(rows, schema)
    cols = [F.lit(None).cast(f.dataType).alias(f.name) for f in _contract_fields()]
    return df.select(*cols, F.lit(None).cast("string").alias("_type_error"), F.lit(False).alias("_invalid_utf8"),
                     F.lit(None).cast("string").alias("_corrupt_record"), "_raw_line", "_file_error",
                     F.lit(False).alias("_blank"), F.array().cast("array<string>").alias("_extra"), "dt",
                     F.concat(F.lit("file://"), F.col("_source_file")).alias("_source_file"))


def _parquet_groups(files: list[Path]):
    """(schema groups {schema text: [paths]}, unreadable [(path, error)]) from the footers."""
    import pyarrow.parquet as pq

    groups, bad = {}, []
    for p in files:
        try:
            schema = pq.read_schema(p).remove_metadata()
        except Exception as e:  # noqa: BLE001 - any footer error makes the file unreadable
            bad.append((str(p), f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            continue
        groups.setdefault(schema.to_string(), []).append(str(p))
    return groups, bad


def read_logs(spark, logs: str, start: dt.date | None, end: dt.date | None, *, file_stats: dict | None = None):
    """All rows of the selected partitions as one DataFrame: contract columns (converted to
    contract types) + ``dt``, ``_source_file`` and the bookkeeping columns of
    :func:`_conform`; and the list of partitions read.

    Parquet (``*.parquet``) and JSON Lines (``*.jsonl``, ``*.json``, ``*.jsonl.gz``,
    ``*.json.gz``) may be mixed in one partition. Parquet files are grouped by their footer
    schema and each group is read on its own, so a file with other column types never
    fails the read (Spark's ``mergeSchema`` would). Every ``.gz`` file is checked first
    (:func:`inspect_gzip`); a truncated or corrupt one is read with Spark's
    ``ignoreCorruptFiles`` (which keeps the lines read before the damage, Spark docs
    "Generic File Source Options") and adds one reject row for its unreadable rest.

    ``file_stats``, when given, receives ``{"parquet", "jsonl", "gzip": file counts,
    "empty": [paths], "damaged": [{"path", "status", "lines", "error"}], "unreadable":
    [paths], "unsupported": [paths]}``."""
    from pyspark.sql import functions as F

    frames, file_rows = [], []
    stats = {"parquet": 0, "jsonl": 0, "gzip": 0, "empty": [], "damaged": [], "unreadable": [], "unsupported": []}
    partitions = list_partitions(logs, start, end)
    gz_all = [str(p) for _, folder in partitions for p in _files(folder) if p.name.endswith(GZIP_SUFFIXES)]
    checks = {c["path"]: c for c in _inspect_gzips(spark, gz_all)}
    any_damaged = False
    for dt_value, folder in partitions:
        files = _files(folder)
        pq_files = [p for p in files if p.name.endswith(PARQUET_SUFFIXES)]
        js_files = [str(p) for p in files if p.name.endswith(JSON_SUFFIXES)]
        gz_files = [str(p) for p in files if p.name.endswith(GZIP_SUFFIXES)]
        for p in files:
            if not p.name.endswith(PARQUET_SUFFIXES + JSON_SUFFIXES + GZIP_SUFFIXES):
                stats["unsupported"].append(str(p))
                file_rows.append(("unsupported_file", dt_value, str(p),
                                  f"{p.name}: not .parquet, .jsonl, .json, .jsonl.gz or .json.gz; not read"))
        groups, bad = _parquet_groups(pq_files)
        for path, err in bad:
            stats["unreadable"].append(path)
            file_rows.append(("unreadable_file", dt_value, path, f"unreadable Parquet file: {err}"))
        for paths in groups.values():
            stats["parquet"] += len(paths)
            frames.append(_conform(spark.read.parquet(*paths).withColumn("_source_file", F.input_file_name()),
                                   dt_value))
        stats["jsonl"] += len(js_files)
        stats["gzip"] += len(gz_files)
        good = js_files + [p for p in gz_files if checks[p]["status"] in ("ok", "empty")]
        damaged = [p for p in gz_files if checks[p]["status"] in ("truncated", "corrupt")]
        stats["empty"] += [p for p in gz_files if checks[p]["status"] == "empty"]
        if good:
            frames.append(_read_json(spark, good, dt_value, ignore_corrupt=False))
        if damaged:
            any_damaged = True
            frames.append(_read_json(spark, damaged, dt_value, ignore_corrupt=True))
            for p in damaged:
                c = checks[p]
                stats["damaged"].append({k: c[k] for k in ("path", "status", "lines", "error")})
                log.warning("%s gzip file %s: %d complete lines recovered, the rest is unreadable (%s)",
                            c["status"], p, c["lines"], c["error"])
                file_rows.append((f"{c['status']}_gzip", dt_value, p,
                                  (f"{c['status']} gzip file: the rest after {c['lines']} complete lines "
                                   f"is unreadable ({c['error']})")))
    if any_damaged:
        _quiet_skipped_file_warnings(spark)
    if file_rows:
        frames.append(_file_rows(spark, file_rows))
    if not frames:
        raise NoInputPartitions(f"partitions under {logs} hold no .parquet/.jsonl files")
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    if file_stats is not None:
        file_stats.update(stats)
    df.mining_file_stats = stats      # picked up by validate() when no file_stats is passed
    return df, [p for p, _ in partitions]


# ----------------------------------------------------------------------------- validate

def iso_codes(spark) -> tuple[list[str], list[str]] | None:
    """(ISO 639-1 language codes, ISO 3166-1 alpha-2 region codes) as the JVM's
    ``java.util.Locale.getISOLanguages()`` / ``getISOCountries()`` list them, or None when
    the session has no JVM gateway (Spark Connect): then only the BCP-47 shape is checked."""
    try:
        loc = spark.sparkContext._jvm.java.util.Locale
        return sorted(loc.getISOLanguages()), sorted(loc.getISOCountries())
    except Exception:  # noqa: BLE001
        return None


def reject_reason(cfg, codes: tuple[list[str], list[str]] | None = None):
    """Column: the first broken rule's reason code, or null for a valid row.

    Order: ``<file reason>`` (:data:`FILE_REASONS`), ``blank_line`` (not counted as a row),
    ``invalid_utf8``, ``unparsable_record``, ``bad_timestamp`` / ``wrong_type_<field>``,
    ``missing_<field>``, ``empty_utterance``, ``utterance_too_long``, ``bad_locale`` (not
    BCP-47 shaped), ``unknown_locale`` (a 2-letter language not in ISO 639-1, or a 2-letter
    region not in ISO 3166-1; ``codes`` from :func:`iso_codes`), ``unknown_response_status``,
    ``bad_<confidence>`` (NaN or outside 0..1), ``epoch_zero_timestamp`` (before
    :data:`EPOCH_LIMIT`: an unset clock), ``future_timestamp`` (later than the partition's
    end plus ``validation.max_future_skew_s``), ``partition_date_mismatch`` (before the
    partition's day). A ``ts`` after the partition's end within the skew is accepted (a
    session that runs past midnight, a device clock slightly ahead)."""
    from pyspark.sql import functions as F

    statuses = schemas.enum_symbols(CONTRACT, "response_status")
    type_reason = F.when(F.col("_type_error") == "ts", F.lit("bad_timestamp")).otherwise(
        F.concat(F.lit("wrong_type_"), F.col("_type_error")))
    rules = [(F.col("_file_error").isNotNull(), F.col("_file_error")),
             (F.col("_blank"), "blank_line"),
             (F.col("_invalid_utf8"), "invalid_utf8"),
             (F.col("_corrupt_record").isNotNull(), "unparsable_record"),
             (F.col("_type_error").isNotNull(), type_reason)]
    for name in schemas.required_fields(CONTRACT):
        if name not in INFERRED_FIELDS:
            rules.append((F.col(name).isNull(), f"missing_{name}"))
    rules += [
        (F.col("utterance").rlike(r"(?U)^\s*$"), "empty_utterance"),
        (F.length("utterance") > cfg.validation.max_utterance_chars, "utterance_too_long"),
        (~F.col("locale").rlike(BCP47_RE), "bad_locale"),
    ]
    if codes:
        langs, regions = codes
        lang = F.regexp_extract("locale", r"^([a-z]{2,3})", 1)
        region = F.regexp_extract("locale", r"-([A-Z]{2})$", 1)
        rules.append((((F.length(lang) == 2) & ~lang.isin(langs)) | ((region != "") & ~region.isin(regions)),
                      "unknown_locale"))
    rules.append((~F.col("response_status").isin(statuses), "unknown_response_status"))
    for name in CONF_FIELDS:
        c = F.col(name)
        rules.append((c.isNotNull() & (F.isnan(c) | (c < 0) | (c > 1)), f"bad_{name}"))
    day_start_s = F.unix_seconds(F.to_timestamp(F.col("dt")))
    ts_s = F.unix_micros("ts") / 1_000_000
    rules += [(F.col("ts") < F.to_timestamp(F.lit(EPOCH_LIMIT)), "epoch_zero_timestamp"),
              (ts_s > day_start_s + 86_400 + cfg.validation.max_future_skew_s, "future_timestamp"),
              (ts_s < day_start_s, "partition_date_mismatch")]
    expr = F.lit(None).cast("string")
    for cond, reason in reversed(rules):
        expr = F.when(cond, reason if not isinstance(reason, str) else F.lit(reason)).otherwise(expr)
    return expr


def unusable_session_id(col="session_id"):
    """Column: true when the session id is null, empty or only whitespace (Unicode-aware)."""
    from pyspark.sql import functions as F

    c = F.col(col) if isinstance(col, str) else col
    return c.isNull() | c.rlike(r"(?U)^\s*$")


def infer_sessions(accepted, inactivity_gap_s: float):
    """Give rows with an unusable ``session_id`` a derived one; other rows are untouched.

    Per ``user_id``, among that user's rows with an unusable session id, ordered by
    (ts, turn_id): a new session starts at the user's first such row and whenever the gap
    to the previous such row exceeds ``inactivity_gap_s`` seconds. Its id is
    ``inferred:<user_id>:<ts of its first turn, µs since epoch>``: unique per user (starts
    strictly increase), and the user id in it keeps users apart. Deterministic: the order
    is total because accepted ``turn_id``s are unique.

    Returns all rows with the same columns plus ``_session_start`` for counting: true on
    the first turn of a derived session, false on its later turns, null on rows whose
    session id was usable. The rows with a usable id are not shuffled."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = accepted.columns
    gap_us = round(inactivity_gap_s * 1_000_000)
    bad = unusable_session_id()
    keep = accepted.where(~bad).withColumn("_session_start", F.lit(None).cast("boolean"))
    w = Window.partitionBy("user_id").orderBy("ts", "turn_id")
    running = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ts_us = F.unix_micros("ts")
    prev_us = F.lag(ts_us).over(w)
    fixed = (accepted.where(bad)
             .withColumn("_session_start", prev_us.isNull() | ((ts_us - prev_us) > gap_us))
             # ts is non-decreasing in window order, so the running max of the session
             # starts so far is the start of the current row's session
             .withColumn("_start_us", F.max(F.when(F.col("_session_start"), ts_us)).over(running))
             .withColumn("session_id", F.concat(F.lit(INFERRED_PREFIX), F.col("user_id"), F.lit(":"),
                                                F.col("_start_us").cast("string")))
             .drop("_start_us"))
    return keep.unionByName(fixed).select(*cols, "_session_start")


def validate(df, cfg, file_stats: dict | None = None, key: bytes | None = None):
    """Split rows of :func:`read_logs` into (accepted, rejects, counts).

    accepted: contract columns + ``dt``, ``session_id`` never null (unusable ones replaced
    by :func:`infer_sessions` with ``cfg.sessions.inactivity_gap_s``), control characters
    in ``utterance`` replaced (module doc). rejects: ``reason``, ``dt``, ``source_file``,
    ``record`` and ``record_hmac``. ``rejects/`` sits beside the exports, so it holds no raw
    customer data: ``record`` is the row's contract fields as JSON (a field that did not
    parse is absent; ``{}`` for an unparsable line) with ``user_id`` and ``session_id``
    pseudonymized and ``utterance`` and slot values PII-scrubbed (:mod:`mining.privacy.pii`);
    ``record_hmac`` is HMAC-SHA256 under ``key`` (default :func:`mining.privacy.pii.resolve_key`)
    of the row as it came (the raw JSON line; the row as JSON for Parquet; a message for a
    file reason), so whoever may read the raw logs finds the row in ``source_file`` by
    hashing its lines with the same key. Duplicate ``turn_id``s keep the earliest row (ts, source file, utterance,
    session id, then the whole row as JSON, so the choice never depends on partitioning);
    the others are rejected as ``duplicate_turn_id``.

    counts: ``input``, ``accepted``, ``rejected``, ``by_reason`` ({reason: rows}),
    ``by_partition`` ({dt: {"input", "accepted", "rejected", "by_reason"}}), ``skipped``
    ({"blank_line": lines}, not rows), ``repaired`` ({"control_characters": accepted rows}),
    ``extra_columns`` ({column: input rows carrying it}), ``sessions_inferred_turns``
    (accepted turns whose session id was derived), ``sessions_inferred`` (derived
    sessions) and, when ``file_stats`` (from :func:`read_logs`) is given, ``files``.
    Invariant: ``input == accepted + rejected == sum(by_reason) + accepted`` overall and
    per partition."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    raw = df
    contract_cols = [f.name for f in schemas.spark_schema(CONTRACT)]
    row_json = F.to_json(F.struct(*contract_cols))
    ctrl = F.coalesce(F.col("utterance").rlike(CONTROL_RE), F.lit(False))
    df = (df.withColumn("_ctrl", ctrl)
          .withColumn("utterance", F.when(F.col("_ctrl"), F.trim(F.regexp_replace("utterance", CONTROL_RE, " ")))
                      .otherwise(F.col("utterance"))))
    df = df.withColumn("_reason", reject_reason(cfg, iso_codes(df.sparkSession)))
    # Only turn ids that occur more than once need the ranking window (and its sort on the
    # whole row as JSON): find them with a narrow aggregation, rank just their rows. On
    # clean logs this removes a shuffle and sort of every row (bench/RESULTS.md, hot spots).
    repeated = (df.groupBy("turn_id").count().where((F.col("count") > 1) & F.col("turn_id").isNotNull())
                .select("turn_id", F.lit(True).alias("_repeated")))
    df = df.join(repeated, "turn_id", "left")
    w = Window.partitionBy("turn_id").orderBy("ts", "_source_file", "utterance", "session_id", row_json)
    once = df.where(F.col("_repeated").isNull()).withColumn("_dup_rank", F.lit(1))
    more = df.where(F.col("_repeated")).withColumn("_dup_rank", F.row_number().over(w))
    df = once.unionByName(more).drop("_repeated")
    df = df.withColumn("_reason", F.when(F.col("_reason").isNull() & (F.col("_dup_rank") > 1),
                                         F.lit("duplicate_turn_id"))
                       .otherwise(F.col("_reason"))).cache()
    valid = df.where(F.col("_reason").isNull()).select(*contract_cols, "dt")
    sessionized = infer_sessions(valid, cfg.sessions.inactivity_gap_s)
    accepted = sessionized.drop("_session_start")
    key = privacy.resolve_key() if key is None else key
    raw_record = F.coalesce(F.col("_raw_line"), F.col("_corrupt_record"), row_json)
    scrub_text, scrub_slots = privacy.scrub_udfs()
    # valid UTF-8 first (an invalid_utf8 row's bytes would not cross into the Python UDFs)
    fixed = {f.name: F.make_valid_utf8(f.name) for f in schemas.spark_schema(CONTRACT)
             if f.dataType.simpleString() == "string"}
    fixed["nlu_slots"] = F.transform("nlu_slots", lambda s: F.struct(
        F.make_valid_utf8(s["name"]).alias("name"), F.make_valid_utf8(s["value"]).alias("value")))
    safe = {**fixed,
            "user_id": privacy.spark_pseudonymize(fixed["user_id"], key),
            "session_id": privacy.spark_pseudonymize(fixed["session_id"], key),
            "utterance": scrub_text(fixed["utterance"], fixed["locale"]),
            "nlu_slots": scrub_slots(fixed["nlu_slots"], fixed["locale"])}
    record = F.to_json(F.struct(*[safe.get(c, F.col(c)).alias(c) for c in contract_cols]))
    rejects = df.where(F.col("_reason").isNotNull() & (F.col("_reason") != "blank_line")).select(
        F.col("_reason").alias("reason"), "dt", F.col("_source_file").alias("source_file"),
        record.alias("record"), privacy.spark_pseudonymize(raw_record, key).alias("record_hmac"))
    grouped = (df.groupBy("dt", "_reason")
               .agg(F.count("*").alias("n"), F.count(F.when(F.col("_ctrl"), 1)).alias("ctrl")).collect())
    by_partition, by_reason, skipped, repaired = {}, {}, {"blank_line": 0}, 0
    for r in grouped:
        reason, n = r["_reason"], r["n"]
        if reason == "blank_line":
            skipped["blank_line"] += n
            continue
        part = by_partition.setdefault(r["dt"], {"input": 0, "accepted": 0, "rejected": 0, "by_reason": {}})
        part["input"] += n
        if reason is None:
            part["accepted"] += n
            repaired += r["ctrl"]
        else:
            part["rejected"] += n
            part["by_reason"][reason] = n
            by_reason[reason] = by_reason.get(reason, 0) + n
    for part in by_partition.values():
        part["by_reason"] = dict(sorted(part["by_reason"].items()))
    extra = {r["name"]: r["count"] for r in df.select(F.explode("_extra").alias("name")).groupBy("name").count().collect()}
    inferred = (sessionized.where(F.col("_session_start").isNotNull())
                .agg(F.count("*").alias("turns"),
                     F.count(F.when(F.col("_session_start"), 1)).alias("sessions")).first())
    n_acc = sum(p["accepted"] for p in by_partition.values())
    n_rej = sum(by_reason.values())
    counts = {"input": n_acc + n_rej, "accepted": n_acc, "rejected": n_rej,
              "by_reason": dict(sorted(by_reason.items())),
              "by_partition": dict(sorted(by_partition.items())),
              "skipped": skipped, "repaired": {"control_characters": repaired},
              "extra_columns": dict(sorted(extra.items())),
              "sessions_inferred_turns": inferred["turns"], "sessions_inferred": inferred["sessions"]}
    file_stats = file_stats if file_stats is not None else getattr(raw, "mining_file_stats", None)
    if file_stats is not None:
        counts["files"] = file_stats
    return accepted, rejects, counts


def check_reject_share(counts: dict, partitions: list[str], max_share: float) -> None:
    """Raise :class:`RejectShareExceeded` when rejected/input > ``max_share``.

    The one-line message names the share, the top reason and the partitions where that
    reason occurs with their counts (from ``counts["by_partition"]``; all ``partitions``
    when the counts have no per-partition figures)."""
    if counts["input"] == 0:
        raise NoInputPartitions(f"partitions {partitions} hold no rows")
    share = counts["rejected"] / counts["input"]
    if share > max_share:
        top = max(sorted(counts["by_reason"]), key=counts["by_reason"].get)
        per_part = {d: p["by_reason"].get(top, 0) for d, p in counts.get("by_partition", {}).items()}
        where = (", ".join(f"{d} ({n})" for d, n in sorted(per_part.items(), key=lambda kv: (-kv[1], kv[0])) if n)
                 if per_part else ",".join(partitions))
        raise RejectShareExceeded(
            f"rejected {share:.1%} of {counts['input']} rows (limit {max_share:.1%}); top reason "
            f"{top} ({counts['by_reason'][top]}) in partitions {where}")
