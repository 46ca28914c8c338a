"""Read interaction logs (contract ``interaction_turn`` v1) into the contract's columns.

:func:`read_logs` lists the ``dt=`` partitions, reads their Parquet and JSON Lines (plain
or gzip) files and returns a :class:`LogRead`: one DataFrame of contract columns plus
bookkeeping columns, the partitions read and the file statistics. Which rows are accepted,
rejected (with which reason) or repaired is decided by :mod:`mining.spark.validate`.

What counts as an input row ("nothing silently disappears"):

* a Parquet row, or a non-blank line of a JSON Lines file (blank lines are not rows: they
  are counted in ``skipped.blank_line``);
* one row per file that cannot be read in full, with the reason ``truncated_gzip`` or
  ``corrupt_gzip`` (the complete lines before the damage are recovered and validated like
  any other; what follows is unreadable, so its rows cannot be counted one by one: the
  file's unreadable tail counts as one rejected row), ``unreadable_file`` (a Parquet file
  whose footer cannot be read) or ``unsupported_file`` (a file in a ``dt=`` folder whose
  name ends in none of the supported suffixes). Empty files (0 bytes, or a gzip file of no
  data) hold no rows; they are listed in ``files.empty``.

Repairs at read time, not rejects: a UTF-8 byte-order mark at the start of a JSON line is
dropped; columns outside the contract are ignored (counted per name in ``extra_columns``).
Values of the wrong type are never coerced to null silently: a value that does not convert
to the contract type is marked, and rejected by :func:`mining.spark.validate.reject_reason`
as ``wrong_type_<field>`` (``bad_timestamp`` for ``ts``; a JSON object or array given for a
string field too); a value that converts losslessly
("0.9" for a double, an integer for a double) is accepted.

Everything runs in Spark SQL expressions (no per-row Python): invalid UTF-8 is found with
``is_valid_utf8`` on the raw bytes (Spark 4.0+; Spark's own JSON reader would replace the
bytes by U+FFFD without notice), JSON lines are parsed by ``from_json`` with every
top-level field read as a string, so a value of the wrong type is seen instead of nulling
the whole record. The only per-file Python is :func:`mining.spark.gzip_files.inspect_gzip`, one Spark task per
``.gz`` file (gzip is not splittable, so Spark reads it in one task as well).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mining.errors import BadPartitionName, NoInputPartitions
from mining.spark.gzip_files import inspect_gzips
from mining.io import schemas

log = logging.getLogger(__name__)

CONTRACT = "interaction_turn"
DT_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
PARQUET_SUFFIXES = (".parquet",)
JSON_SUFFIXES = (".jsonl", ".json")
GZIP_SUFFIXES = (".jsonl.gz", ".json.gz")
#: reasons of rows that stand for (part of) a file rather than for one parsed line
FILE_REASONS = ("truncated_gzip", "corrupt_gzip", "unreadable_file", "unsupported_file")


@dataclass(frozen=True)
class LogRead:
    """What :func:`read_logs` read.

    ``df``: contract columns (converted to contract types) + ``dt``, ``_source_file`` and
    the bookkeeping columns of :func:`_conform`; ``partitions``: the ``dt`` values read,
    sorted; ``file_stats``: ``{"parquet", "jsonl", "gzip": file counts, "empty": [paths],
    "damaged": [{"path", "status", "lines", "error"}], "unreadable": [paths],
    "unsupported": [paths], "listing": sha256 hex}`` (for :func:`mining.spark.validate.validate`;
    ``listing``: :func:`listing_digest` of the files read)."""
    df: Any
    partitions: list[str]
    file_stats: dict


def list_partitions(logs: str, start: dt.date | None, end: dt.date | None) -> list[tuple[str, Path]]:
    """``[(dt, folder)]`` of ``LOGS/dt=YYYY-MM-DD`` folders in [start, end], sorted by date.

    Raises :class:`NoInputPartitions` when none exists, :class:`BadPartitionName` for a
    ``dt=`` folder in the range whose name is shaped like a date but is none
    (``dt=2026-02-30``): its rows would otherwise be left out unseen. Other ``dt=`` folder
    names (``dt=latest``) are logged as not read."""
    found = []
    for child in sorted(Path(logs).iterdir()) if Path(logs).is_dir() else []:
        m = DT_RE.match(child.name)
        if not m or not child.is_dir():
            if child.name.startswith("dt=") and child.is_dir():
                log.warning("%s: not a dt=YYYY-MM-DD partition, not read", child)
            continue
        name = m.group(1)      # YYYY-MM-DD compares as a string: a folder outside the range is not read
        if (start and name < start.isoformat()) or (end and name > end.isoformat()):
            continue
        try:
            dt.date.fromisoformat(name)
        except ValueError as e:
            raise BadPartitionName(f"{child}: the partition name is no date ({e})") from None
        found.append((m.group(1), child))
    if not found:
        raise NoInputPartitions(f"no dt= partitions under {logs} in [{start or '*'}, {end or '*'}]")
    return found


def listing_digest(partitions: list[tuple[str, Path]], files: dict[str, list[Path]] | None = None) -> str:
    """SHA-256 (hex, 64 chars) of the data files of ``partitions`` (:func:`list_partitions`):
    each file's name under its ``dt=`` folder and its size in bytes, sorted. It names what a
    run read without reading it: a file that arrives late, one rewritten to another size or
    another partition set changes it; the logs root, the copy's mtimes and the order of the
    listing do not, so the same logs give the same digest wherever they lie. A rewrite of a
    file to exactly its old size is not seen (hashing every byte would cost a second pass
    over the logs). ``files``: each partition's files as the read listed them ({dt: paths}),
    so the digest names the files read, not a second listing (default: listed here)."""
    h = hashlib.sha256()
    for dt_value, folder in sorted(partitions):
        for p in (files[dt_value] if files is not None else _files(folder)):
            h.update(f"dt={dt_value}/{p.name}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    """Data files of a partition folder: not hidden (``.``) and not markers (``_SUCCESS``)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))


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


def _convert(df, c, src, field, ts_nanos: bool = False):
    """Column ``c`` of Spark type ``src`` converted to the contract type of ``field``, or
    None when no conversion exists (the value is then of the wrong type). ``ts_nanos``: the
    file's ``ts`` is a Parquet TIMESTAMP(NANOS) (pandas' default), which Spark reads as
    nanoseconds since the epoch (``spark.sql.legacy.parquet.nanosAsLong``,
    :func:`mining.spark.session.session_conf`): truncated to microseconds."""
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
        if ts_nanos and isinstance(src, T.LongType):
            return F.timestamp_micros(F.expr(f"`{field.name}` div 1000"))
        return None                                     # numbers: unit unknown → bad_timestamp
    if isinstance(tgt, T.ArrayType) and isinstance(src, T.StringType):
        return F.from_json(c, tgt)                      # slots given as a JSON string
    if isinstance(tgt, T.ArrayType) and isinstance(tgt.elementType, T.StructType):
        # Spark casts struct to struct by position: {value, name} would swap them, {slot, val}
        # would pass as name/value. Fields are taken by name (others ignored), else wrong type
        want = tgt.elementType.fieldNames()
        have = {f.name: f.dataType for f in src.elementType.fields} \
            if isinstance(src, T.ArrayType) and isinstance(src.elementType, T.StructType) else {}
        if not all(isinstance(have.get(n), T.StringType) for n in want):
            return None
        return F.transform(c, lambda x: F.struct(*[x[n].alias(n) for n in want]))
    if isinstance(src, (T.StructType, T.MapType, T.ArrayType)) and not isinstance(tgt, T.ArrayType):
        return None
    if isinstance(tgt, T.StringType) and not isinstance(src, (T.StringType, T.NumericType, T.BooleanType)):
        return None
    if isinstance(tgt, T.BooleanType) and isinstance(src, T.NumericType):
        # lossless only: 0 and 1 (try_cast made 2 or 0.5 true and accepted them)
        return F.when(c.isin(0, 1), c == 1)
    if isinstance(src, T.StringType) and isinstance(tgt, (T.DoubleType, T.FloatType)):
        # Spark's JSON parser hands a NaN/Infinity token read as a string over quoted ("NaN")
        c = F.regexp_replace(c, r'^"(NaN|[+-]?Infinity)"$', "$1")
    expr = c.try_cast(tgt)
    try:
        _ = df.select(expr.alias("_probe")).schema    # classic Spark analyses eagerly
    except AnalysisException:
        return None
    return expr


def _valid_strings(struct, names: list[str]):
    """Boolean Column: every named string field of ``struct`` is valid UTF-8 (null counts as valid)."""
    from pyspark.sql import functions as F

    ok = F.lit(True)
    for n in names:
        ok = ok & F.coalesce(F.is_valid_utf8(struct[n]), F.lit(True))
    return ok


def _conform(df, dt_value: str, *, raw_line=None, valid_utf8=None, extra=None, blank=None, ts_nanos=False,
             structured=None):
    """Contract columns cast to contract types (missing ones null) plus the bookkeeping
    columns ``_type_error`` (first field whose non-null value did not convert),
    ``_invalid_utf8``, ``_corrupt_record``, ``_raw_line``, ``_file_error``, ``_blank``,
    ``_extra`` (names of non-contract columns present), ``dt``, ``_source_file``.
    ``ts_nanos``: see :func:`_convert`. ``structured``: {field: boolean Column}, true where
    the field's value was a JSON object or array (of the wrong type, :func:`_read_json`).
    Without ``valid_utf8`` (Parquet) the top-level strings and the slots' names and values
    are checked."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    types = {f.name: f.dataType for f in df.schema.fields}
    cols, errors, utf8 = [], [], []
    for field in _contract_fields():
        if field.name not in types:
            cols.append(F.lit(None).cast(field.dataType).alias(field.name))
            continue
        raw = F.col(field.name)
        conv = _convert(df, raw, types[field.name], field, ts_nanos)
        if conv is None:
            conv = F.lit(None).cast(field.dataType)
        if structured and field.name in structured:
            conv = F.when(structured[field.name], F.lit(None).cast(field.dataType)).otherwise(conv)
        cols.append(conv.alias(field.name))
        errors.append(F.when(raw.isNotNull() & conv.isNull(), F.lit(field.name)))
        src = types[field.name]
        if isinstance(src, T.StringType):
            utf8.append(F.coalesce(F.is_valid_utf8(raw), F.lit(True)))
        elif isinstance(src, T.ArrayType) and isinstance(src.elementType, T.StructType):
            # the slots' strings too: invalid bytes would fail the scrub UDF's Arrow conversion
            names = [f.name for f in src.elementType.fields if isinstance(f.dataType, T.StringType)]
            if names:
                utf8.append(F.coalesce(F.forall(raw, lambda x: _valid_strings(x, names)), F.lit(True)))
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


#: Hadoop glob metacharacters: Spark's readers expand a path holding one as a pattern.
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def _literal(path: str) -> str:
    """``path`` with Hadoop's glob metacharacters escaped, so a reader reads that file: Spark
    expands a path as a glob pattern, and ``a[1].jsonl`` read ``a1.jsonl`` instead (measured,
    Spark 4.2), a file counted twice and another never read."""
    return _GLOB_CHARS.sub(r"\\\1", path)


def _read_json(spark, paths: list[str], dt_value: str, ignore_corrupt: bool):
    """JSON Lines files (plain or gzip) as conformed rows: read as text (raw bytes kept),
    UTF-8 checked, a leading BOM dropped, parsed with :func:`_json_string_schema`; an object
    or array given for a string field is of the wrong type."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    reader = spark.read.option("ignoreCorruptFiles", "true") if ignore_corrupt else spark.read
    text = reader.text([_literal(p) for p in paths]).select(F.col("value"), F.input_file_name().alias("_source_file"))
    value = F.regexp_replace(F.col("value"), "^\uFEFF", "")
    contract = [f.name for f in _contract_fields()]
    parsed = (text
              .withColumn("_valid_utf8", F.is_valid_utf8("value"))
              .withColumn("_blank_line", value.rlike(r"(?U)^\s*$"))   # a BOM alone is blank too
              .withColumn("_j", F.from_json(value, _json_string_schema(),
                                            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record",
                                             "allowSingleQuotes": "false"}))
              .withColumn("_keys", F.when(F.col("_j._corrupt_record").isNull(), F.json_object_keys(value)))
              .select("*", "_j.*").drop("_j"))
    # from_json parses the first JSON value of a line and ignores what follows, so two records
    # on one line (a lost line break) kept the first and lost the second unseen: a line where
    # an object closes and another opens outside any string (string contents blanked first)
    # is unparsable as a whole. Inside a JSON object "}" is followed by "," or "]" or "}", never
    # "{"; the blanking runs only on the few lines past the cheap guard.
    strings = r'"(?:[^"\\]|\\.)*"'
    # (a BOM between them too: `cat` of a file without a final newline and one starting with a BOM)
    close_open = "\\}[\\s\uFEFF]*\\{"
    glued = F.col("value").rlike(close_open) & F.regexp_replace("value", strings, '""').rlike(close_open)
    parsed = parsed.withColumn("_corrupt_record", F.when(glued, F.col("value")).otherwise(F.col("_corrupt_record")))
    extra = F.coalesce(F.array_except(F.col("_keys"), F.array(*[F.lit(n) for n in contract])),
                       F.array().cast("array<string>"))
    # A JSON object or array given for a string field reaches us as its JSON text, which
    # passes as a string: its token type is looked up (a second parse, as a variant) only
    # where the text starts like one (the parse sits once, inside the branch, so neither
    # common-subexpression elimination nor a null field evaluates it for clean rows).
    structured = {}
    for f in _contract_fields():
        if isinstance(f.dataType, T.StringType):
            looks = F.coalesce(F.col(f.name).startswith("{") | F.col(f.name).startswith("["), F.lit(False))
            kind = F.schema_of_variant(F.try_variant_get(F.try_parse_json(value), f"$.{f.name}", "variant"))
            structured[f.name] = F.coalesce(F.when(looks, kind).rlike("^(OBJECT|ARRAY)"), F.lit(False))
    # the line as the text reader gave it (invalid bytes included): rejects' record_hmac
    return _conform(parsed, dt_value, raw_line=F.col("value"), valid_utf8=F.col("_valid_utf8"),
                    extra=extra, blank=F.col("_blank_line"), structured=structured)


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
    """(schema groups {(schema text, ts is INT64 nanoseconds): [paths]}, unreadable
    [(path, error)]) from the footers. The Arrow schema alone cannot tell a pandas
    TIMESTAMP(NANOS) ``ts``, which Spark reads as a long (:func:`_convert`), from a Spark/Hive
    INT96 one, which it reads as a timestamp: both are ``timestamp[ns]`` to Arrow."""
    import pyarrow.parquet as pq

    groups, bad = {}, []
    for p in files:
        try:
            meta = pq.read_metadata(p)
            schema = meta.schema.to_arrow_schema().remove_metadata()
        except Exception as e:  # noqa: BLE001 - any footer error makes the file unreadable
            bad.append((str(p), f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            continue
        cols = [meta.schema.column(i) for i in range(len(meta.schema))]
        ts = next((c for c in cols if c.path == "ts"), None)
        nanos = ts is not None and ts.physical_type == "INT64" and '"timeUnit":"nanoseconds"' in ts.logical_type.to_json()
        groups.setdefault((schema.to_string(), nanos), []).append(str(p))
    return groups, bad


def read_logs(spark, logs: str, start: dt.date | None, end: dt.date | None) -> LogRead:
    """All rows of the ``dt`` partitions of ``logs`` in [start, end] (None = open) as one
    DataFrame, with the partitions read and the file statistics (:class:`LogRead`).

    Parquet (``*.parquet``) and JSON Lines (``*.jsonl``, ``*.json``, ``*.jsonl.gz``,
    ``*.json.gz``) may be mixed in one partition. Parquet files are grouped by their footer
    schema and each group is read on its own, so a file with other column types never
    fails the read (Spark's ``mergeSchema`` would). Every ``.gz`` file is checked first
    (:func:`mining.spark.gzip_files.inspect_gzip`); a truncated or corrupt one is read with Spark's
    ``ignoreCorruptFiles`` (which keeps the lines read before the damage, Spark docs
    "Generic File Source Options") and adds one reject row for its unreadable rest."""
    from pyspark.sql import functions as F

    frames, file_rows = [], []
    stats = {"parquet": 0, "jsonl": 0, "gzip": 0, "empty": [], "damaged": [], "unreadable": [], "unsupported": []}
    partitions = list_partitions(logs, start, end)
    # listed once: a file landing during the gzip checks is neither read nor in the digest
    # (listed again it was read unchecked, a KeyError for a .gz, and missing from the digest)
    listed = {dt_value: _files(folder) for dt_value, folder in partitions}
    stats["listing"] = listing_digest(partitions, listed)
    gz_all = [str(p) for files in listed.values() for p in files if p.name.endswith(GZIP_SUFFIXES)]
    checks = {c["path"]: c for c in inspect_gzips(spark, gz_all)}
    any_damaged = False
    for dt_value, folder in partitions:
        files = listed[dt_value]
        # a 0-byte Parquet or JSON file holds no rows: listed; a Parquet one has no footer to
        # read, so it is not read (a JSON one reads as no lines); empty gzip: inspect_gzip below
        empty = [p for p in files if p.name.endswith(PARQUET_SUFFIXES + JSON_SUFFIXES) and p.stat().st_size == 0]
        stats["empty"] += [str(p) for p in empty]
        files = [p for p in files if not (p in empty and p.name.endswith(PARQUET_SUFFIXES))]
        pq_files = [p for p in files if p.name.endswith(PARQUET_SUFFIXES)]
        js_files = [str(p) for p in files if p.name.endswith(JSON_SUFFIXES)]
        gz_files = [str(p) for p in files if p.name.endswith(GZIP_SUFFIXES)]
        for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))):
            stats["unsupported"].append(str(sub))     # e.g. hour=01/: its rows would be lost unseen
            file_rows.append(("unsupported_file", dt_value, str(sub),
                              f"{sub.name}/: a folder inside the partition; only files directly under "
                              f"dt={dt_value}/ are read"))
        for p in files:
            if not p.name.endswith(PARQUET_SUFFIXES + JSON_SUFFIXES + GZIP_SUFFIXES):
                stats["unsupported"].append(str(p))
                file_rows.append(("unsupported_file", dt_value, str(p),
                                  f"{p.name}: not .parquet, .jsonl, .json, .jsonl.gz or .json.gz; not read"))
        groups, bad = _parquet_groups(pq_files)
        for path, err in bad:
            stats["unreadable"].append(path)
            file_rows.append(("unreadable_file", dt_value, path, f"unreadable Parquet file: {err}"))
        for (_, nanos), paths in groups.items():
            stats["parquet"] += len(paths)
            frames.append(_conform(spark.read.parquet(*map(_literal, paths)).withColumn("_source_file", F.input_file_name()),
                                   dt_value, ts_nanos=nanos))
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
        raise NoInputPartitions(f"partitions under {logs} hold no .parquet/.jsonl files"
                                + (f" but {len(stats['empty'])} empty ones" if stats["empty"] else ""))
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    return LogRead(df, [p for p, _ in partitions], stats)
