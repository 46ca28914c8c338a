"""Log simulator tables: one chunk of simulated users' turns as Arrow logs and gold.

Turns the parallel lists of a :class:`mining.sim.simulation_users.Chunk` into timestamps
(lognormal gaps within a session, session starts by hour of day, sessions of one user never
overlapping), random hex ids, correction cues in front of logged utterances, the
``interaction_turn`` logs table and the gold table (:data:`GOLD_TURNS_SCHEMA`), and the
summary counts of the chunk.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mining.io.schemas import arrow_schema
from mining.sim.simulation_config import (BEHAVIOURS, CORRECTION_CUES, CORRECTION_CUES_BY_LANGUAGE,
                                          HARD_MODEL, REPEAT, REPHRASE, STATUSES, SUCCESS, SWITCH,
                                          SimulationConfig)
from mining.sim.simulation_users import Chunk
from mining.sim.simulation_world import World

# --- Time model. Hand-set assumptions, not measured on real logs. ---
# Start-to-start gap before a turn, lognormal, indexed by behaviour code
# (new_goal after a success, rephrase, repeat, switch); clipped to [1 s, 20 x median].
_GAP_MEDIAN_S = np.array([25.0, 4.0, 4.0, 10.0])
_GAP_SIGMA = np.array([0.7, 0.5, 0.5, 0.6])
_MIN_GAP_S = 1.0
_MIN_SESSION_GAP_S = 60.0  # sessions of one user never overlap: 60 s at least between them
# Relative session starts per UTC hour 0..23: quiet nights, morning and evening peaks.
_HOURLY_WEIGHTS = np.array([0.8, 0.5, 0.3, 0.2, 0.2, 0.4, 1.5, 3.5, 4.0, 3.0, 2.5, 2.5,
                            3.0, 2.5, 2.5, 2.5, 3.0, 4.0, 5.0, 5.0, 4.5, 3.5, 2.5, 1.5])

GOLD_TURNS_SCHEMA = pa.schema([
    pa.field("turn_id", pa.string(), nullable=False),
    pa.field("goal_id", pa.string(), nullable=False),
    pa.field("utt_id", pa.string(), nullable=False),
    pa.field("gold_intent", pa.string(), nullable=False),
    pa.field("gold_annot_utt", pa.string(), nullable=False),
    pa.field("behaviour", pa.string(), nullable=False),
    pa.field("attempt", pa.int32(), nullable=False),
    pa.field("nlu_correct", pa.bool_(), nullable=False),
    pa.field("friction", pa.bool_(), nullable=False),
    pa.field("silent_failure", pa.bool_(), nullable=False),
    pa.field("noticed", pa.bool_(), nullable=False),  # a silent failure the user reacted to
    pa.field("correction_cue", pa.bool_(), nullable=False),  # utterance logged with a cue
])


def _gap_params(behaviour_model: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """(median s, sigma) of the gap per behaviour code: ``_GAP_MEDIAN_S`` / ``_GAP_SIGMA``,
    with a goal switch as quick as a rephrase under the ``hard`` model (``HARD_MODEL``)."""
    median, sigma = _GAP_MEDIAN_S.copy(), _GAP_SIGMA.copy()
    if behaviour_model == "hard":
        median[SWITCH], sigma[SWITCH] = HARD_MODEL["switch_gap"]
    return median, sigma


def _turn_offsets_us(behaviour: np.ndarray, session: np.ndarray,
                     gap_z: np.ndarray, behaviour_model: str = "default") -> np.ndarray:
    """Microseconds from its session's first turn to each turn, int64 (n,). Turns of a
    session are contiguous. Gaps are lognormal by behaviour (``_GAP_MEDIAN_S``,
    ``_GAP_SIGMA``, ``gap_z`` ~ N(0, 1); :func:`_gap_params` of ``behaviour_model``), rounded
    to µs before summing, so a turn's offset does not depend on the other sessions of the chunk."""
    medians, sigmas = _gap_params(behaviour_model)
    median = medians[behaviour]
    gap_s = np.clip(median * np.exp(sigmas[behaviour] * gap_z), _MIN_GAP_S, 20 * median)
    gap_us = np.rint(gap_s * 1e6).astype(np.int64)
    first = np.ones(len(session), dtype=bool)
    first[1:] = session[1:] != session[:-1]
    gap_us[first] = 0
    total = np.cumsum(gap_us)
    return total - total[first][session]


def _session_starts_us(session_user: np.ndarray, session_u: np.ndarray,
                       duration_us: np.ndarray, days: int, in_order: bool = False) -> np.ndarray:
    """Start of each session in µs after the window start, int64 (n_sessions,).

    A session is drawn at a uniform day, an hour by ``_HOURLY_WEIGHTS`` and a uniform second
    in that hour (``session_u``: U[0,1) of shape (n_sessions, 3)). A user's sessions are then
    pushed later so they never overlap (``_MIN_SESSION_GAP_S`` apart), and shifted back as a
    whole when the last one would end after the window (``days`` x 24 h).

    ``in_order`` (the ``hard`` model, whose sessions carry state: a goal given up in one is
    asked again in the next): each user's drawn starts are handed to their sessions in
    simulation order, so the next simulated session is the next one in time. Needs
    ``session_user`` non-decreasing (a user's sessions consecutive), else ``ValueError``.
    Off, a session keeps its own draw (the ``default`` model's bytes as before)."""
    hour_cdf = np.cumsum(_HOURLY_WEIGHTS) / _HOURLY_WEIGHTS.sum()
    hour = np.minimum(np.searchsorted(hour_cdf, session_u[:, 1], side="right"), 23)
    start_s = np.floor(session_u[:, 0] * days) * 86400 + hour * 3600 + session_u[:, 2] * 3600
    start = np.rint(start_s * 1e6).astype(np.int64)
    if in_order:
        if np.any(np.diff(session_user) < 0):
            raise ValueError("in_order needs each user's sessions consecutive (session_user non-decreasing)")
        start = start[np.lexsort((start, session_user))]
    order = np.lexsort((start, session_user))
    user = pd.Series(session_user[order])
    span = pd.Series(duration_us[order] + int(_MIN_SESSION_GAP_S * 1e6))
    before = span.groupby(user).cumsum() - span  # spans of the user's earlier sessions
    pushed = before + (pd.Series(start[order]) - before).groupby(user).cummax()
    last_end = (pushed + duration_us[order]).groupby(user).transform("max")
    overflow = (last_end - (days * 86_400_000_000 - 1)).clip(lower=0)
    result = np.empty(len(start), dtype=np.int64)
    result[order] = (pushed - overflow).clip(lower=0).to_numpy(dtype=np.int64)
    return result



def _hex_ids(words: list[np.ndarray], words_per_id: int) -> list[str]:
    """Lower-case hex ids of ``16 * words_per_id`` characters from random uint64 words
    (big-endian, so an id reads as its words in order)."""
    text = np.concatenate(words).astype(">u8").tobytes().hex()
    step = 16 * words_per_id
    return [text[i:i + step] for i in range(0, len(text), step)]


def epoch_us(day: dt.date) -> int:
    """Microseconds since 1970-01-01 UTC at 00:00 UTC of ``day``."""
    return int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000


def _chunk_ts_us(chunk: Chunk, cfg: SimulationConfig) -> np.ndarray:
    """Timestamp of every turn of ``chunk`` in µs since the epoch, int64 (n,)."""
    session = np.asarray(chunk.session, dtype=np.int64)
    offsets = _turn_offsets_us(np.asarray(chunk.behaviour, dtype=np.int64), session,
                               np.concatenate(chunk.gap_z), cfg.behaviour_model)
    is_last = np.ones(len(session), dtype=bool)
    is_last[:-1] = session[1:] != session[:-1]
    starts = _session_starts_us(np.asarray(chunk.session_user, dtype=np.int64),
                                np.concatenate(chunk.session_u), offsets[is_last], cfg.days,
                                in_order=cfg.behaviour_model == "hard")
    return epoch_us(cfg.start_date) + starts[session] + offsets


def chunk_tables(world: World, chunk: Chunk,
                 cfg: SimulationConfig) -> tuple[pa.Table, pa.Table]:
    """(logs, gold) of one chunk, one row per turn, sorted by ``ts`` (stable). ``logs`` has
    exactly the ``interaction_turn`` Arrow schema, ``gold`` :data:`GOLD_TURNS_SCHEMA`."""
    session = pa.array(chunk.session, pa.int64())
    said = world.traffic.take(pa.array(chunk.row, pa.int64()))
    session_ids = pa.array(_hex_ids(chunk.session_id_words, 2), pa.string()).take(session)
    turn_ids = pa.array(_hex_ids(chunk.turn_id_words, 2), pa.string())
    ts_us = _chunk_ts_us(chunk, cfg)
    cues = corpus_cues(cfg.corpus)
    cue, which = _chunk_cues(chunk, cfg, len(cues))
    utterance = pc.if_else(pa.array(cue, pa.bool_()), pc.binary_join_element_wise(
        pa.array(cues, pa.string()).take(pa.array(which)), said["utterance"], " "),
        said["utterance"])
    logs = _logs_table(chunk, said, utterance, turn_ids, session_ids, ts_us)
    gold = _gold_table(chunk, said, cue, turn_ids, session_ids)
    order = pa.array(np.argsort(ts_us, kind="stable"))
    return logs.take(order), gold.take(order)


def corpus_cues(corpus: str) -> tuple[str, ...]:
    """The correction cues simulated users of ``corpus`` say: English for HWU64, SLURP and
    HINT3, the locale's language for ``hassil-<locale>`` (:data:`CORRECTION_CUES_BY_LANGUAGE`,
    held-out languages :data:`mining.sim.hassil_locales.HELD_OUT_CUES`)."""
    from mining.sim.corpora import HASSIL_PREFIX
    from mining.core.text import cue_language

    from mining.sim.hassil_locales import HELD_OUT_CUES

    if not corpus.startswith(HASSIL_PREFIX):
        return CORRECTION_CUES
    return {**CORRECTION_CUES_BY_LANGUAGE, **HELD_OUT_CUES}[cue_language(corpus[len(HASSIL_PREFIX):])]


def _chunk_cues(chunk: Chunk, cfg: SimulationConfig, n_cues: int = len(CORRECTION_CUES)
                ) -> tuple[np.ndarray, np.ndarray]:
    """(cue, which) per turn of ``chunk``: whether the utterance is logged with a correction
    cue (a rephrase or repeat turn, with ``p_correction_cue``) and the index of the cue in
    the corpus's cue list of ``n_cues`` (:func:`corpus_cues`; uniform; meaningful where
    ``cue``). Bool and int64 (n,)."""
    u = np.concatenate(chunk.cue_u)
    behaviour = np.asarray(chunk.behaviour, dtype=np.int64)
    cue = ((behaviour == REPHRASE) | (behaviour == REPEAT)) & (u[:, 0] < cfg.p_correction_cue)
    which = np.minimum((u[:, 1] * n_cues).astype(np.int64), n_cues - 1)
    return cue, which


def _logs_table(chunk: Chunk, said: pa.Table, utterance: pa.ChunkedArray, turn_ids: pa.Array,
                session_ids: pa.Array, ts_us: np.ndarray) -> pa.Table:
    """The ``interaction_turn`` rows of a chunk in simulation order; ``said``: the traffic
    rows said, one per turn; ``utterance``: the text logged (with any correction cue)."""
    user_ids = pa.array(["acct-" + h for h in _hex_ids(chunk.user_id_words, 1)], pa.string())
    turn_user = pa.array(chunk.session_user, pa.int64()).take(pa.array(chunk.session))
    return pa.Table.from_arrays([
        turn_ids, session_ids, user_ids.take(turn_user), said["locale"],
        pa.array(ts_us, pa.timestamp("us", tz="UTC")), utterance,
        pa.array(np.concatenate(chunk.asr), pa.float64()), said["nlu_intent"],
        said["nlu_slots"], said["nlu_confidence"],
        pa.array(STATUSES, pa.string()).take(pa.array(chunk.status, pa.int8())),
        pa.array(chunk.barge, pa.bool_()),
    ], schema=arrow_schema("interaction_turn"))


def _gold_table(chunk: Chunk, said: pa.Table, cue: np.ndarray, turn_ids: pa.Array,
                session_ids: pa.Array) -> pa.Table:
    """The gold rows of a chunk in simulation order. goal_id = ``<session_id>-<goal number
    in the session>``; friction = not SUCCESS or barge-in; silent failure = a wrong intent
    without friction; noticed = a silent failure the user reacted to; correction_cue =
    the logged utterance has a cue in front (``cue``)."""
    friction = (np.asarray(chunk.status) != SUCCESS) | np.asarray(chunk.barge, dtype=bool)
    wrong = said["wrong"].to_numpy(zero_copy_only=False)
    return pa.Table.from_arrays([
        turn_ids,
        pc.binary_join_element_wise(session_ids, pa.array(chunk.goal).cast(pa.string()), "-"),
        said["utt_id"], said["gold_intent"], said["gold_annot_utt"],
        pa.array(BEHAVIOURS, pa.string()).take(pa.array(chunk.behaviour, pa.int8())),
        pa.array(chunk.attempt, pa.int32()), said["nlu_correct"],
        pa.array(friction, pa.bool_()), pa.array(wrong & ~friction, pa.bool_()),
        pa.array(chunk.noticed, pa.bool_()), pa.array(cue, pa.bool_()),
    ], schema=GOLD_TURNS_SCHEMA)


def chunk_counts(chunk: Chunk, gold: pa.Table) -> Counter:
    """Summary counts of one chunk; they add up over chunks. A goal is unresolved when its
    last turn has friction or is a noticed silent failure (the user gave up, switched away
    or ran out of attempts)."""
    session, goal = np.asarray(chunk.session), np.asarray(chunk.goal)
    status, barge = np.asarray(chunk.status), np.asarray(chunk.barge, dtype=bool)
    friction = (status != SUCCESS) | barge
    noticed = np.asarray(chunk.noticed, dtype=bool)
    last_of_goal = np.ones(len(chunk), dtype=bool)
    last_of_goal[:-1] = (session[1:] != session[:-1]) | (goal[1:] != goal[:-1])
    counts = Counter({
        "turns": len(chunk), "users": len(chunk.user_turns),
        "sessions": len(chunk.session_user), "goals": int(last_of_goal.sum()),
        "unresolved_goals": int(((friction | noticed) & last_of_goal).sum()),
        "friction_turns": int(friction.sum()),
        "silent_failures": int(pc.sum(gold["silent_failure"]).as_py() or 0),
        "noticed_silent_failures": int(noticed.sum()),
        "correction_cue_turns": int(pc.sum(gold["correction_cue"]).as_py() or 0),
        "nlu_correct_turns": int(pc.sum(gold["nlu_correct"]).as_py() or 0),
        "barge_in_turns": int(barge.sum()),
    })
    counts.update({f"status:{STATUSES[k]}": int(n)
                   for k, n in enumerate(np.bincount(status, minlength=3)) if n})
    counts.update({f"behaviour:{BEHAVIOURS[k]}": int(n)
                   for k, n in enumerate(np.bincount(chunk.behaviour, minlength=4)) if n})
    counts.update({f"hard:{k}": int(n) for k, n in chunk.hard_counts.items() if n})
    return counts
