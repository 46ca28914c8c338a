"""Turns in session order: pseudonymized ids, normalized text, friction flags.

Sessions are (user_pseudonym, session_pseudonym); turns are ordered by (ts, turn_id) so
same-timestamp turns have a deterministic order.
"""
from __future__ import annotations


import pandas as pd

from mining.core import text
from mining.core.friction import FAILURE_SIGNALS
from mining.core.unique import map_unique

SESSION_KEYS = ["user_pseudonym", "session_pseudonym"]
ORDER_KEYS = ["ts", "turn_id"]


def turn_text_udf(cues: dict[str, tuple[str, ...]] | None):
    """Vectorized pandas UDF (utterance, locale, nlu_slots) → struct<utterance, text_norm,
    cue, nlu_slots>; the first three once per distinct (utterance, locale) of a batch
    (:func:`mining.core.unique.map_unique`):

    - ``utterance``: PII replaced by placeholders (:func:`mining.privacy.pii.scrub_pii`;
      null stays null);
    - ``text_norm``: :func:`mining.core.text.normalize` of the scrubbed utterance;
    - ``cue``: the correction cue ``text_norm`` starts with (:func:`mining.core.text.leading_cue`
      with the locale language's ``cues``), null without one or when ``cues`` is None;
    - ``nlu_slots``: the slots with PII in their values replaced
      (:func:`mining.privacy.pii.scrub_slot_lists`).

    One Python round trip for the four: chained UDFs each send the rows through Arrow
    to Python and back."""
    from pyspark.sql.functions import pandas_udf

    from mining.privacy.pii import scrub_pii, scrub_slot_lists

    def one(utterance, locale):
        scrubbed = None if utterance is None else scrub_pii(utterance, locale)[0]
        norm = text.normalize(scrubbed)
        cue = None if cues is None else text.leading_cue(norm, cues.get(text.cue_language(locale), ()))
        return scrubbed, norm, cue

    @pandas_udf("utterance string, text_norm string, cue string, nlu_slots array<struct<name:string,value:string>>")
    def _turn_text(utterance: pd.Series, locale: pd.Series, slots: pd.Series) -> pd.DataFrame:
        rows = map_unique(one, utterance, locale)
        out = pd.DataFrame(rows.tolist(), columns=["utterance", "text_norm", "cue"], index=utterance.index)
        out["nlu_slots"] = scrub_slot_lists(slots, locale).to_numpy()
        return out

    return _turn_text


def session_window():
    from pyspark.sql import Window

    return Window.partitionBy(*SESSION_KEYS).orderBy(*ORDER_KEYS)


def prepare_turns(accepted, friction, rephrase, key: bytes):
    """Accepted contract rows → turns: raw ``user_id``/``session_id`` replaced by keyed
    pseudonyms, PII in ``utterance`` and slot values replaced by placeholders
    (:func:`mining.privacy.pii.scrub_pii`, so no later stage stores it), ``text_norm``,
    ``turn_index`` (0-based in session), ``friction_signals`` (:mod:`mining.core.friction`),
    ``is_friction`` (any signal) and ``succeeded`` (SUCCESS, an intent, none of
    :data:`mining.core.friction.FAILURE_SIGNALS`).

    :param accepted: accepted rows of :func:`mining.spark.validate.validate`
    :param friction: the ``[friction]`` section (:class:`mining.config.FrictionConfig`)
    :param rephrase: the ``[rephrase]`` section (:class:`mining.config.RephraseConfig`):
        ``max_gap_s`` bounds the next-turn signals
    :param key: pseudonymization key"""
    from pyspark.sql import functions as F

    from mining.privacy.pii import HMAC_KEY_COLUMNS, spark_pseudonymize, with_hmac_key

    w = session_window()
    text_of = turn_text_udf(friction.cues if friction.correction_cues else None)
    # every Python UDF runs before the session window: a UDF between two windows would
    # hide the window's partitioning from the planner and shuffle and sort all turns a
    # second time (bench/RESULTS.md, hot spots)
    turns = (with_hmac_key(accepted, key)
             .withColumn("user_pseudonym", spark_pseudonymize(F.col("user_id")))
             .withColumn("session_pseudonym", spark_pseudonymize(F.col("session_id")))
             .drop("user_id", "session_id", *HMAC_KEY_COLUMNS)
             .withColumn("_text", text_of(F.col("utterance"), F.col("locale"), F.col("nlu_slots")))
             .withColumn("nlu_slots", F.col("_text.nlu_slots"))
             .withColumn("utterance", F.col("_text.utterance"))
             .withColumn("text_norm", F.col("_text.text_norm"))
             .withColumn("_cue", F.col("_text.cue"))
             .drop("_text"))
    gap = F.col("next_ts").cast("double") - F.col("ts").cast("double")
    turns = (turns
             .withColumn("turn_index", F.row_number().over(w) - 1)
             .withColumn("next_text_norm", F.lead("text_norm", 1).over(w))
             .withColumn("next_ts", F.lead("ts", 1).over(w))
             .withColumn("next_cue", F.lead("_cue", 1).over(w))
             .withColumn("next_gap_s", gap)
             .drop("_cue"))
    signals = signals_expr(friction, rephrase.max_gap_s)
    turns = (turns.withColumn("friction_signals", signals)
             .withColumn("is_friction", F.size("friction_signals") > 0)
             .withColumn("succeeded", (F.col("response_status") == "SUCCESS")
                         & F.col("nlu_intent").isNotNull()
                         & ~F.arrays_overlap("friction_signals",
                                             F.array(*[F.lit(x) for x in FAILURE_SIGNALS])))
             .drop("next_text_norm", "next_ts", "next_gap_s", "next_cue"))
    return turns


def signals_expr(fc, max_gap_s: float):
    """array<string> Column of the friction signals (:data:`mining.core.friction.SIGNALS`)
    that fire on a turn, in that order.

    :param fc: the ``[friction]`` section (:class:`mining.config.FrictionConfig`).
    :param max_gap_s: ``rephrase.max_gap_s``, seconds: the next-turn signals fire only when
        the next turn starts within it.

    Needs columns ``next_text_norm`` (string), ``next_gap_s`` (double seconds, null on a
    session's last turn) and ``next_cue`` (string, the correction cue the next turn starts
    with, or null)."""
    from pyspark.sql import functions as F

    next_close = F.col("next_gap_s") <= max_gap_s
    conditions = {
        "status_error": (F.col("response_status") == "ERROR") if "ERROR" in fc.statuses else None,
        "status_unhandled": (F.col("response_status") == "UNHANDLED") if "UNHANDLED" in fc.statuses else None,
        "barge_in": F.col("barge_in") if fc.barge_in else None,
        "low_nlu_confidence": F.col("nlu_confidence") < fc.low_nlu_confidence,
        "low_asr_confidence": F.col("asr_confidence") < fc.low_asr_confidence,
        "no_intent": F.col("nlu_intent").isNull(),
        "short_dwell": (F.col("next_gap_s") < fc.short_dwell_s) if fc.short_dwell_s > 0 else None,
        "followed_by_repeat": ((F.col("next_text_norm") == F.col("text_norm")) & next_close
                               if fc.repetition else None),
        "correction_cue": (F.col("next_cue").isNotNull() & next_close) if fc.correction_cues else None,
    }
    arr = F.array(*[F.when(F.coalesce(cond, F.lit(False)), F.lit(name))
                    for name, cond in conditions.items() if cond is not None])
    return F.filter(arr, lambda x: x.isNotNull())
