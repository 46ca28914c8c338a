"""Read interaction logs (contract ``interaction_turn`` v1), validate, quarantine.

Every input row ends up either accepted or in ``rejects/`` with one snake_case reason
(the first rule it breaks, in the order of :func:`reject_reason`); ``input = accepted +
rejected`` per reason is recorded in the stage stats. Past ``validation.max_reject_share``
the run fails with :class:`RejectShareExceeded`, naming the top reason and partitions.

A ``session_id`` that is null, empty or only whitespace is not a reason to reject: such
accepted rows get a derived session id (:func:`infer_sessions`), so every accepted row
has a non-null ``session_id`` as the contract requires.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from mining import schemas

CONTRACT = "interaction_turn"
DT_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
BCP47_RE = r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?$"
CONF_FIELDS = ("asr_confidence", "nlu_confidence")
# Required by the contract, but an unusable value is repaired after validation instead of
# rejected: see infer_sessions.
INFERRED_FIELDS = ("session_id",)
INFERRED_PREFIX = "inferred:"


class RejectShareExceeded(RuntimeError):
    """More rows were rejected than ``validation.max_reject_share`` allows."""


class NoInputPartitions(FileNotFoundError):
    """No ``dt=`` partition with files in the requested date range."""


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


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    return sorted(str(p) for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(("_", ".")) and p.name.endswith(suffixes))


def _json_schema():
    """Contract schema as read from JSON: ts as ISO-8601 string, plus the corrupt-record column."""
    from pyspark.sql import types as T

    fields = [T.StructField(f.name, T.StringType() if f.name == "ts" else f.dataType, True)
              for f in schemas.spark_schema(CONTRACT, all_nullable=True)]
    return T.StructType(fields + [T.StructField("_corrupt_record", T.StringType(), True)])


def _conform(df, dt_value: str):
    """Select the contract columns (missing ones as null) cast to contract types."""
    from pyspark.sql import functions as F

    cols = []
    for field in schemas.spark_schema(CONTRACT, all_nullable=True):
        if field.name in df.columns:
            c = F.col(field.name)
            if field.name == "ts" and dict(df.dtypes)["ts"] == "string":
                c = F.try_to_timestamp(c)
            # try_cast: a value of the wrong type becomes null (→ rejected), never an exception
            cols.append(c.try_cast(field.dataType).alias(field.name))
        else:
            cols.append(F.lit(None).cast(field.dataType).alias(field.name))
    corrupt = F.col("_corrupt_record") if "_corrupt_record" in df.columns else F.lit(None).cast("string")
    raw_ts = F.col("ts").cast("string") if "ts" in df.columns else F.lit(None).cast("string")
    return df.select(*cols, corrupt.alias("_corrupt_record"), raw_ts.alias("_raw_ts"),
                     F.lit(dt_value).alias("dt"), F.input_file_name().alias("_source_file"))


def read_logs(spark, logs: str, start: dt.date | None, end: dt.date | None):
    """All rows of the selected partitions as one DataFrame: contract columns + ``dt``,
    ``_source_file``, ``_corrupt_record`` (raw unparsable JSON line) and ``_raw_ts``.

    Parquet (``*.parquet``) and JSON Lines (``*.jsonl``, ``*.jsonl.gz``) may be mixed."""
    frames = []
    partitions = list_partitions(logs, start, end)
    for dt_value, folder in partitions:
        pq = _files(folder, (".parquet",))
        js = _files(folder, (".jsonl", ".jsonl.gz", ".json"))
        if pq:
            frames.append(_conform(spark.read.option("mergeSchema", "true").parquet(*pq), dt_value))
        if js:
            reader = (spark.read.schema(_json_schema()).option("mode", "PERMISSIVE")
                      .option("columnNameOfCorruptRecord", "_corrupt_record"))
            frames.append(_conform(reader.json(js), dt_value))
    if not frames:
        raise NoInputPartitions(f"partitions under {logs} hold no .parquet/.jsonl files")
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    return df, [p for p, _ in partitions]


def reject_reason(cfg):
    """Column: the first broken rule's reason code, or null for a valid row."""
    from pyspark.sql import functions as F

    statuses = schemas.enum_symbols(CONTRACT, "response_status")
    rules = [(F.col("_corrupt_record").isNotNull(), "unparsable_record")]
    for name in schemas.required_fields(CONTRACT):
        if name in INFERRED_FIELDS:
            continue
        if name == "ts":
            rules.append((F.col("_raw_ts").isNotNull() & F.col("ts").isNull(), "bad_timestamp"))
        rules.append((F.col(name).isNull(), f"missing_{name}"))
    rules += [
        (F.trim(F.col("utterance")) == "", "empty_utterance"),
        (F.length("utterance") > cfg.validation.max_utterance_chars, "utterance_too_long"),
        (~F.col("locale").rlike(BCP47_RE), "bad_locale"),
        (~F.col("response_status").isin(statuses), "unknown_response_status"),
    ]
    for name in CONF_FIELDS:
        c = F.col(name)
        rules.append((c.isNotNull() & (F.isnan(c) | (c < 0) | (c > 1)), f"bad_{name}"))
    rules.append((F.to_date("ts").cast("string") != F.col("dt"), "partition_date_mismatch"))
    expr = F.lit(None).cast("string")
    for cond, reason in reversed(rules):
        expr = F.when(cond, F.lit(reason)).otherwise(expr)
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


def validate(df, cfg):
    """Split rows into (accepted, rejects, counts).

    accepted: contract columns + ``dt``, ``session_id`` never null (unusable ones replaced
    by :func:`infer_sessions` with ``cfg.sessions.inactivity_gap_s``); rejects: ``reason``,
    ``dt``, ``source_file`` and ``record`` (the row as JSON, or the raw line when
    unparsable; an unusable session id is kept as it came). Duplicate ``turn_id``s keep the
    earliest row (ts, source file, utterance, session id, then the whole row as JSON, so
    the choice never depends on partitioning); the others are rejected as
    ``duplicate_turn_id``. counts: {"input", "accepted", "rejected", "by_reason",
    "sessions_inferred_turns" (accepted turns whose session id was derived),
    "sessions_inferred" (derived sessions)}."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    contract_cols = [f.name for f in schemas.spark_schema(CONTRACT)]
    row_json = F.to_json(F.struct(*contract_cols))
    df = df.withColumn("_reason", reject_reason(cfg))
    w = Window.partitionBy("turn_id").orderBy("ts", "_source_file", "utterance", "session_id", row_json)
    df = df.withColumn("_dup_rank", F.when(F.col("_reason").isNull(), F.row_number().over(w)))
    df = df.withColumn("_reason", F.when(F.col("_dup_rank") > 1, F.lit("duplicate_turn_id"))
                       .otherwise(F.col("_reason"))).cache()
    valid = df.where(F.col("_reason").isNull()).select(*contract_cols, "dt")
    sessionized = infer_sessions(valid, cfg.sessions.inactivity_gap_s)
    accepted = sessionized.drop("_session_start")
    record = F.coalesce(F.col("_corrupt_record"), row_json)
    rejects = df.where(F.col("_reason").isNotNull()).select(
        F.col("_reason").alias("reason"), "dt", F.col("_source_file").alias("source_file"),
        record.alias("record"))
    by = {r["_reason"] or "accepted": r["count"] for r in df.groupBy("_reason").count().collect()}
    n_acc = by.pop("accepted", 0)
    inferred = (sessionized.where(F.col("_session_start").isNotNull())
                .agg(F.count("*").alias("turns"),
                     F.count(F.when(F.col("_session_start"), 1)).alias("sessions")).first())
    counts = {"input": n_acc + sum(by.values()), "accepted": n_acc,
              "rejected": sum(by.values()), "by_reason": dict(sorted(by.items())),
              "sessions_inferred_turns": inferred["turns"], "sessions_inferred": inferred["sessions"]}
    return accepted, rejects, counts


def check_reject_share(counts: dict, partitions: list[str], max_share: float) -> None:
    """Raise :class:`RejectShareExceeded` when rejected/input > ``max_share``."""
    if counts["input"] == 0:
        raise NoInputPartitions(f"partitions {partitions} hold no rows")
    share = counts["rejected"] / counts["input"]
    if share > max_share:
        top = max(counts["by_reason"], key=counts["by_reason"].get)
        raise RejectShareExceeded(
            f"rejected {share:.1%} of {counts['input']} rows (limit {max_share:.1%}); top reason "
            f"{top} ({counts['by_reason'][top]}) in partitions {','.join(partitions)}")
