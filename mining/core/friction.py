"""Friction (defect) signals on turns: their names and what makes each fire.

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

The Spark expression is :func:`mining.spark.sessions.signals_expr`; the last three signals
look at the next turn, so it needs the ``next_*`` columns that
:func:`mining.spark.sessions.prepare_turns` adds.
"""
from __future__ import annotations

SIGNALS: tuple[str, ...] = (
    "status_error", "status_unhandled", "barge_in", "low_nlu_confidence", "low_asr_confidence",
    "no_intent", "short_dwell", "followed_by_repeat", "correction_cue")


#: Signals that say the user did not get what they asked for (all but the confidence ones).
FAILURE_SIGNALS: tuple[str, ...] = tuple(s for s in SIGNALS if s not in ("low_nlu_confidence", "low_asr_confidence"))
