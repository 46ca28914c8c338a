"""Turns in session order: pseudonymized ids, normalized text, friction flags.

Sessions are (user_pseudonym, session_pseudonym); turns are ordered by (ts, turn_id) so
same-timestamp turns have a deterministic order.
"""
from __future__ import annotations

import pandas as pd

from mining.core import friction

from mining.core import text
from mining.core.unique import map_unique

SESSION_KEYS = ["user_pseudonym", "session_pseudonym"]
ORDER_KEYS = ["ts", "turn_id"]


def normalize_udf():
    """Vectorized pandas UDF around :func:`mining.core.text.normalize`."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def _normalize(s: pd.Series) -> pd.Series:
        return map_unique(text.normalize, s)

    return _normalize


def cue_udf(cues: dict[str, tuple[str, ...]]):
    """Vectorized pandas UDF (locale, text_norm) → the correction cue the text starts with
    (:func:`mining.core.text.leading_cue` with the locale language's cues) or null."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def _cue(locale: pd.Series, text_norm: pd.Series) -> pd.Series:
        return map_unique(lambda loc, t: text.leading_cue(t, cues.get(text.cue_language(loc), ())),
                          locale, text_norm)

    return _cue


def session_window():
    from pyspark.sql import Window

    return Window.partitionBy(*SESSION_KEYS).orderBy(*ORDER_KEYS)


def prepare_turns(accepted, cfg, key: bytes):
    """Accepted contract rows → turns: raw ``user_id``/``session_id`` replaced by keyed
    pseudonyms, PII in ``utterance`` and slot values replaced by placeholders
    (:func:`mining.privacy.pii.scrub_pii`, so no later stage stores it), ``text_norm``, ``turn_index`` (0-based in session), ``friction_signals``
    (:mod:`mining.core.friction`), ``is_friction`` (any signal) and ``succeeded`` (SUCCESS, an
    intent, none of :data:`mining.core.friction.FAILURE_SIGNALS`)."""
    from pyspark.sql import functions as F

    from mining.privacy.pii import scrub_udfs, spark_pseudonymize

    w = session_window()
    scrub_text, scrub_slots = scrub_udfs()
    turns = (accepted
             .withColumn("user_pseudonym", spark_pseudonymize(F.col("user_id"), key))
             .withColumn("session_pseudonym", spark_pseudonymize(F.col("session_id"), key))
             .drop("user_id", "session_id")
             .withColumn("utterance", scrub_text(F.col("utterance"), F.col("locale")))
             .withColumn("nlu_slots", scrub_slots(F.col("nlu_slots"), F.col("locale")))
             .withColumn("text_norm", normalize_udf()(F.col("utterance"))))
    gap = F.col("next_ts").cast("double") - F.col("ts").cast("double")
    turns = (turns.withColumn("turn_index", F.row_number().over(w) - 1)
             .withColumn("next_text_norm", F.lead("text_norm", 1).over(w))
             .withColumn("next_ts", F.lead("ts", 1).over(w))
             .withColumn("next_gap_s", gap))
    if cfg.friction.correction_cues:
        turns = (turns.withColumn("_cue", cue_udf(cfg.friction.cues)(F.col("locale"), F.col("text_norm")))
                 .withColumn("next_cue", F.lead("_cue", 1).over(w)).drop("_cue"))
    else:
        turns = turns.withColumn("next_cue", F.lit(None).cast("string"))
    turns = (turns.withColumn("friction_signals", friction.signals_expr(cfg))
             .withColumn("is_friction", F.size("friction_signals") > 0)
             .withColumn("succeeded", (F.col("response_status") == "SUCCESS")
                         & F.col("nlu_intent").isNotNull()
                         & ~F.arrays_overlap("friction_signals",
                                             F.array(*[F.lit(x) for x in friction.FAILURE_SIGNALS])))
             .drop("next_text_norm", "next_ts", "next_gap_s", "next_cue"))
    return turns
