"""Friction (defect) signals on turns, as Spark expressions.

Each signal is configurable in ``[friction]`` (``mining/defaults.toml``) and recorded by name
in ``friction_signals`` on every turn and every candidate pair:

- ``status_error`` / ``status_unhandled``: the response failed or no handler took it
  (``friction.statuses``).
- ``barge_in``: the user interrupted the response, a strong implicit defect signal
  (Ponnusamy et al., AAAI 2020; Falke et al., COLING 2020 "MARUPA").
- ``low_nlu_confidence`` / ``low_asr_confidence``: below ``friction.low_*_confidence``
  (MARUPA's friction detector uses both).
- ``no_intent``: the NLU returned no hypothesis.
- ``short_dwell``: the next turn of the session starts within ``friction.short_dwell_s``: the
  user did not let the response stand (a quick re-ask; implicit-feedback signal of
  Sarikaya, IEEE Signal Processing Magazine 2017). The only signal that can catch a silent
  failure, a wrong action reported as SUCCESS.
- ``followed_by_repeat``: the next turn, within ``rephrase.max_gap_s``, has the same
  normalized text (``friction.repetition``).
- ``correction_cue``: the next turn, within ``rephrase.max_gap_s``, starts with a correction
  cue of the locale's language ("no", "I said", "nein", "違う"; ``[friction.cues]``,
  ``friction.correction_cues``).

A turn with any signal is *friction* (a candidate source). A turn *succeeded* (a usable
target) when it is a SUCCESS with an intent and no :data:`FAILURE_SIGNALS`: low confidence
alone makes a turn suspect, not failed, since the user accepted the response.

The last three look at the next turn, so :func:`signals_expr` needs the ``next_*`` columns
that :func:`mining.spark.sessions.prepare_turns` adds.
"""
from __future__ import annotations

SIGNALS: tuple[str, ...] = (
    "status_error", "status_unhandled", "barge_in", "low_nlu_confidence", "low_asr_confidence",
    "no_intent", "short_dwell", "followed_by_repeat", "correction_cue")


#: Signals that say the user did not get what they asked for (all but the confidence ones).
FAILURE_SIGNALS: tuple[str, ...] = tuple(s for s in SIGNALS if s not in ("low_nlu_confidence", "low_asr_confidence"))


def signals_expr(cfg):
    """array<string> Column of the :data:`SIGNALS` that fire on a turn, in that order.

    Needs columns ``next_text_norm`` (string), ``next_gap_s`` (double seconds, null on a
    session's last turn) and ``next_cue`` (string, the correction cue the next turn starts
    with, or null)."""
    from pyspark.sql import functions as F

    fc = cfg.friction
    next_close = F.col("next_gap_s") <= cfg.rephrase.max_gap_s
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
