"""Validate conformed log rows (:func:`mining.spark.ingest.read_logs`), quarantine, account.

Every input row ends up either accepted or in ``rejects/`` with one snake_case reason
(the first rule it breaks, in the order of :func:`reject_reason`); ``input = accepted +
rejected`` per reason and per ``dt`` partition is recorded in the stage stats. Past
``validation.max_reject_share`` the run fails with :class:`RejectShareExceeded`
(:func:`check_reject_share`), naming the top reason and the partitions where it occurs.
What counts as an input row, and the rows that stand for a whole file, are described in
:mod:`mining.spark.ingest`.

Repairs, not rejects: a ``session_id`` that is null, empty or only whitespace gets a
derived session id (:func:`infer_sessions`); C0/C1 control characters (Unicode ``Cc``,
which includes tab and newline) in ``utterance`` are replaced by one space per run and
the text trimmed (counted in ``repaired.control_characters``). Duplicate ``turn_id``s
keep one row (:func:`validate`). Everything runs in Spark SQL expressions, except the
PII scrub of rejected records (:mod:`mining.privacy.pii`).
"""
from __future__ import annotations

from mining.errors import NoInputPartitions, RejectShareExceeded
from mining.io import schemas
from mining.privacy import pii as privacy
from mining.spark.ingest import CONTRACT

BCP47_RE = r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?\z"   # \z: Java's $ also matches before a final line break
CONF_FIELDS = ("asr_confidence", "nlu_confidence")
# Required by the contract, but an unusable value is repaired after validation instead of
# rejected: see infer_sessions.
INFERRED_FIELDS = ("session_id",)
#: Required ids: null or blank (whitespace only) is ``missing_<field>``.
ID_FIELDS = ("turn_id", "user_id")
INFERRED_PREFIX = "inferred:"
#: a ``ts`` before this instant is a zero/unset device clock (``epoch_zero_timestamp``)
EPOCH_LIMIT = "1970-01-02 00:00:00"
#: control characters repaired in ``utterance`` (Java regex, Unicode general category Cc)
CONTROL_RE = r"\p{Cc}+"


def iso_codes(spark) -> tuple[list[str], list[str]] | None:
    """(ISO 639-1 language codes, ISO 3166-1 alpha-2 region codes) as the JVM's
    ``java.util.Locale.getISOLanguages()`` / ``getISOCountries()`` list them, or None when
    the session has no JVM gateway (Spark Connect): then only the BCP-47 shape is checked."""
    try:
        loc = spark.sparkContext._jvm.java.util.Locale
        return sorted(loc.getISOLanguages()), sorted(loc.getISOCountries())
    except Exception:  # noqa: BLE001
        return None


def reject_reason(validation, codes: tuple[list[str], list[str]] | None = None):
    """Column: the first broken rule's reason code, or null for a valid row.

    :param validation: the ``[validation]`` section (:class:`mining.config.ValidationConfig`)
    :param codes: ISO codes from :func:`iso_codes`, or None to check the BCP-47 shape only

    Order: ``<file reason>`` (:data:`mining.spark.ingest.FILE_REASONS`), ``blank_line`` (not
    counted as a row), ``invalid_utf8``, ``unparsable_record``, ``bad_timestamp`` /
    ``wrong_type_<field>``, ``missing_<field>`` (for :data:`ID_FIELDS` also a blank string),
    ``bad_nlu_slots`` (a slot that is null or lacks its name or value: the contract's slot
    fields are required), ``empty_utterance``, ``utterance_too_long``, ``bad_locale`` (not
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
        if name in ID_FIELDS:     # a blank id names nobody: all blank users would pool as one
            # (?U)\s: any Unicode space (Spark's trim removes only ' ', SPARK-17299)
            rules.append((F.col(name).isNull() | F.col(name).rlike(r"(?U)^\s*$"), f"missing_{name}"))
        elif name not in INFERRED_FIELDS:
            rules.append((F.col(name).isNull(), f"missing_{name}"))
    slot_broken = lambda x: x.isNull() | x["name"].isNull() | x["value"].isNull()  # noqa: E731
    rules += [
        (F.exists("nlu_slots", slot_broken), "bad_nlu_slots"),   # a slot without name or value
        (F.col("utterance").rlike(r"(?U)^\s*$"), "empty_utterance"),
        (F.length("utterance") > validation.max_utterance_chars, "utterance_too_long"),
        (~F.col("locale").rlike(BCP47_RE), "bad_locale"),
    ]
    if codes:
        langs, regions = codes
        lang = F.regexp_extract("locale", r"^([a-z]{2,3})", 1)
        region = F.regexp_extract("locale", r"-([A-Z]{2})\z", 1)
        rules.append((((F.length(lang) == 2) & ~lang.isin(langs)) | ((region != "") & ~region.isin(regions)),
                      "unknown_locale"))
    rules.append((~F.col("response_status").isin(statuses), "unknown_response_status"))
    for name in CONF_FIELDS:
        c = F.col(name)
        rules.append((c.isNotNull() & (F.isnan(c) | (c < 0) | (c > 1)), f"bad_{name}"))
    day_start_s = F.unix_seconds(F.to_timestamp(F.col("dt")))
    ts_s = F.unix_micros("ts") / 1_000_000
    rules += [(F.col("ts") < F.to_timestamp(F.lit(EPOCH_LIMIT)), "epoch_zero_timestamp"),
              (ts_s > day_start_s + 86_400 + validation.max_future_skew_s, "future_timestamp"),
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


def validate(df, validation, sessions, *, file_stats: dict | None, key: bytes | None = None):
    """Split rows of :func:`mining.spark.ingest.read_logs` into (accepted, rejects, counts).

    :param df: ``LogRead.df`` of :func:`mining.spark.ingest.read_logs`
    :param validation: the ``[validation]`` section (:class:`mining.config.ValidationConfig`)
    :param sessions: the ``[sessions]`` section (:class:`mining.config.SessionsConfig`)
    :param file_stats: ``LogRead.file_stats`` of the same read, reported as ``counts["files"]``;
        None when the rows did not come from files (then ``counts`` has no ``files``)
    :param key: pseudonymization key (default :func:`mining.privacy.pii.resolve_key`)

    accepted: contract columns + ``dt``, ``session_id`` never null (unusable ones replaced
    by :func:`infer_sessions` with ``sessions.inactivity_gap_s``), control characters
    in ``utterance`` replaced (module doc). rejects: ``reason``, ``dt``, ``source_file``,
    ``record`` and ``record_hmac``. ``rejects/`` sits beside the exports, so it holds no raw
    customer data: ``record`` is the row's contract fields as JSON (a field that did not
    parse is absent; ``{}`` for an unparsable line) with ``user_id`` and ``session_id``
    pseudonymized and ``utterance`` and slot values PII-scrubbed (:mod:`mining.privacy.pii`);
    ``record_hmac`` is HMAC-SHA256 under ``key`` (default :func:`mining.privacy.pii.resolve_key`)
    of the row as it came (the raw JSON line's bytes, invalid UTF-8 included, without its
    line break and a file's leading byte-order mark, which Spark's text reader drops; for Parquet the row's contract fields as JSON, before the
    control-character repair; a message for a file reason), so whoever may read the raw logs finds the row in ``source_file`` by
    hashing its lines with the same key. Duplicate ``turn_id``s keep the earliest valid row (ts,
    source file, utterance, session id, the whole row as JSON, the repaired fields as they came
    (a copy that needed no repair first), then the raw line, so the choice
    never depends on partitioning); the other valid copies are rejected as
    ``duplicate_turn_id``, an invalid copy with its own reason.

    counts: ``input``, ``accepted``, ``rejected``, ``by_reason`` ({reason: rows}),
    ``by_partition`` ({dt: {"input", "accepted", "rejected", "by_reason"}}), ``skipped``
    ({"blank_line": lines}, not rows), ``repaired`` ({"control_characters", "blank_nlu_intent":
    accepted rows: control characters replaced in ``utterance``; an empty or whitespace-only
    ``nlu_intent`` set to null, which is how the contract says "no intent"}),
    ``extra_columns`` ({column: input rows carrying it}), ``sessions_inferred_turns``
    (accepted turns whose session id was derived), ``sessions_inferred`` (derived
    sessions) and, when ``file_stats`` is not None, ``files``.
    Invariant: ``input == accepted + rejected == sum(by_reason) + accepted`` overall and
    per partition."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    contract_cols = [f.name for f in schemas.spark_schema(CONTRACT)]
    row_json = F.to_json(F.struct(*contract_cols))
    # Repairs, not rejects: {counted as: (field, where, repaired value)}. Each flags its rows
    # (_rep_<name>, counted in ``repaired``) and keeps the value as it came (_in_<field>, for
    # record_hmac). control_characters: replaced by spaces, the text trimmed; blank_nlu_intent:
    # an intent is null (the NLU found none) or a name, and a blank one ("" from a producer that
    # writes no intent so) would count as a success and hand an empty label to the turns that
    # rephrase into it.
    repairs = {
        "control_characters": ("utterance", F.col("utterance").rlike(CONTROL_RE),
                               F.trim(F.regexp_replace("utterance", CONTROL_RE, " "))),
        "blank_nlu_intent": ("nlu_intent", F.col("nlu_intent").rlike(r"(?U)^\s*$"), F.lit(None).cast("string")),
    }
    for name, (field, where, fixed) in repairs.items():
        flag = F.col(f"_rep_{name}")
        df = (df.withColumn(f"_rep_{name}", F.coalesce(where, F.lit(False)))
              .withColumn(f"_in_{field}", F.when(flag, F.col(field)))
              .withColumn(field, F.when(flag, fixed).otherwise(F.col(field))))
    df = df.withColumn("_reason", reject_reason(validation, iso_codes(df.sparkSession)))
    # Only turn ids that occur more than once need the ranking window (and its sort on the
    # whole row as JSON): find them with a narrow aggregation, rank just their rows. On
    # clean logs this removes a shuffle and sort of every row (bench/RESULTS.md, hot spots).
    repeated = (df.groupBy("turn_id").count().where((F.col("count") > 1) & F.col("turn_id").isNotNull())
                .select("turn_id", F.lit(True).alias("_repeated")))
    # broadcast: the repeated ids are few (a pathological log with every row twice still
    # sends only the ids, ~50 bytes each), and a shuffle join would shuffle every whole row
    # by turn_id twice (once per branch below); validation at 10M turns 181 -> 98 s (bench/RESULTS.md)
    df = df.join(F.broadcast(repeated), "turn_id", "left")
    # a valid copy before any invalid one (an invalid earliest copy must not push the valid one
    # out as a duplicate: then no copy would be kept); the fields before their repair and the
    # raw line last, so two copies equal in every contract field once repaired ("play\tjazz",
    # "play jazz" in one Parquet file) still rank the same in every run (their record_hmac and
    # the repair counts differ)
    w = Window.partitionBy("turn_id").orderBy(F.col("_reason").isNotNull(), "ts", "_source_file", "utterance",
                                              "session_id", row_json, F.col("_in_utterance").asc_nulls_first(),
                                              F.col("_in_nlu_intent").asc_nulls_first(),
                                              F.coalesce("_raw_line", F.lit("")))
    once = df.where(F.col("_repeated").isNull()).withColumn("_dup_rank", F.lit(1))
    more = df.where(F.col("_repeated")).withColumn("_dup_rank", F.row_number().over(w))
    df = once.unionByName(more).drop("_repeated")
    df = df.withColumn("_reason", F.when(F.col("_reason").isNull() & (F.col("_dup_rank") > 1),
                                         F.lit("duplicate_turn_id"))
                       .otherwise(F.col("_reason"))).cache()
    valid = df.where(F.col("_reason").isNull()).select(*contract_cols, "dt")
    sessionized = infer_sessions(valid, sessions.inactivity_gap_s)
    accepted = sessionized.drop("_session_start")
    key = privacy.resolve_key() if key is None else key
    # the row as it came: the raw line (JSON), else the contract fields before the repair (Parquet)
    repaired_fields = {field for field, _, _ in repairs.values()}
    row_in = F.to_json(F.struct(*[(F.coalesce(f"_in_{c}", c) if c in repaired_fields else F.col(c)).alias(c)
                                  for c in contract_cols]))
    raw_record = F.coalesce(F.col("_raw_line"), F.col("_corrupt_record"), row_in)
    scrub_text, scrub_slots = privacy.scrub_udfs()
    # valid UTF-8 first (an invalid_utf8 row's bytes would not cross into the Python UDFs)
    fixed = {f.name: F.make_valid_utf8(f.name) for f in schemas.spark_schema(CONTRACT)
             if f.dataType.simpleString() == "string"}
    fixed["nlu_slots"] = F.transform("nlu_slots", lambda s: F.struct(
        F.make_valid_utf8(s["name"]).alias("name"), F.make_valid_utf8(s["value"]).alias("value")))
    safe = {**fixed,
            "user_id": privacy.spark_pseudonymize(fixed["user_id"]),
            "session_id": privacy.spark_pseudonymize(fixed["session_id"]),
            "utterance": scrub_text(fixed["utterance"], fixed["locale"]),
            "nlu_slots": scrub_slots(fixed["nlu_slots"], fixed["locale"])}
    record = F.to_json(F.struct(*[safe.get(c, F.col(c)).alias(c) for c in contract_cols]))
    rejected = df.where(F.col("_reason").isNotNull() & (F.col("_reason") != "blank_line"))
    rejects = privacy.with_hmac_key(rejected, key).select(
        F.col("_reason").alias("reason"), "dt", F.col("_source_file").alias("source_file"),
        record.alias("record"), privacy.spark_pseudonymize(raw_record).alias("record_hmac"))
    grouped = (df.groupBy("dt", "_reason")
               .agg(F.count("*").alias("n"), *[F.count(F.when(F.col(f"_rep_{name}"), 1)).alias(name)
                                                 for name in repairs]).collect())
    by_partition, by_reason, skipped, repaired = {}, {}, {"blank_line": 0}, dict.fromkeys(repairs, 0)
    for r in grouped:
        reason, n = r["_reason"], r["n"]
        if reason == "blank_line":
            skipped["blank_line"] += n
            continue
        part = by_partition.setdefault(r["dt"], {"input": 0, "accepted": 0, "rejected": 0, "by_reason": {}})
        part["input"] += n
        if reason is None:
            part["accepted"] += n
            for name in repairs:
                repaired[name] += r[name]
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
              "skipped": skipped, "repaired": repaired,
              "extra_columns": dict(sorted(extra.items())),
              "sessions_inferred_turns": inferred["turns"], "sessions_inferred": inferred["sessions"]}
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
