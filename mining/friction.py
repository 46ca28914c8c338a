"""Friction (defect) signals on turns, as Spark expressions.

Signals (names are what ``friction_signals`` records):

- ``status_error`` / ``status_unhandled``: the response failed or no handler took it.
- ``barge_in``: the user interrupted the response (a strong implicit defect signal;
  Ponnusamy et al., AAAI 2020; Falke et al., COLING 2020 "MARUPA").
- ``low_nlu_confidence`` / ``low_asr_confidence``: below ``friction.low_*_confidence``.
- ``no_intent``: the NLU returned no hypothesis.
- ``followed_by_repeat``: the next turn of the session, within ``rephrase.max_gap_s``,
  has the same normalized text (the user had to say it again).
"""
from __future__ import annotations


def signals_expr(cfg):
    """array<string> Column of the signals that fire on a turn (needs ``next_text_norm``
    and ``next_gap_s`` columns for the repetition signal)."""
    from pyspark.sql import functions as F

    fc = cfg.friction
    candidates = [
        (F.col("response_status") == "ERROR", "status_error") if "ERROR" in fc.statuses else None,
        (F.col("response_status") == "UNHANDLED", "status_unhandled") if "UNHANDLED" in fc.statuses else None,
        (F.coalesce(F.col("barge_in"), F.lit(False)), "barge_in") if fc.barge_in else None,
        (F.col("nlu_confidence") < fc.low_nlu_confidence, "low_nlu_confidence"),
        (F.col("asr_confidence") < fc.low_asr_confidence, "low_asr_confidence"),
        (F.col("nlu_intent").isNull(), "no_intent"),
        ((F.col("next_text_norm") == F.col("text_norm"))
         & (F.col("next_gap_s") <= cfg.rephrase.max_gap_s), "followed_by_repeat"),
    ]
    arr = F.array(*[F.when(F.coalesce(cond, F.lit(False)), F.lit(name)) for cond, name in filter(None, candidates)])
    return F.filter(arr, lambda x: x.isNotNull())
