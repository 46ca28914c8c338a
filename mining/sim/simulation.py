"""Log simulator: real utterances, simulated user behaviour, a weak production NLU.

No public log of assistant sessions with failures and rephrases exists, so the evaluation
builds one (DESIGN.md, "Evaluation"). A real labeled corpus (:mod:`mining.sim.corpora`) is split
per intent into a small *seed* split that trains a deliberately weak production NLU
(:class:`mining.sim.weak_nlu.WeakNLU`), a held-out *test* split for the retraining lift, and the
*traffic* split whose utterances simulated users say. The NLU's real mistakes on the traffic
utterances cause the friction:

* confidence below ``reject_threshold`` → no intent, ``UNHANDLED``;
* a wrong intent → with ``p_silent`` a ``SUCCESS`` without friction (a silent failure, label
  noise for the miner), otherwise friction: a ``SUCCESS`` the user interrupts (barge-in,
  share ``p_barge_in``) or an ``ERROR``;
* the right intent → ``SUCCESS``, or with ``p_backend_error`` an ``ERROR`` anyway.

After friction the user rephrases with another real traffic utterance of the same goal,
repeats verbatim, switches to an unrelated goal (not a rephrase: the miner must not pair
it) or gives up; retries go through the NLU again, up to ``max_attempts`` per goal. After a
success the session continues with another goal with ``p_next_goal``.

Two behaviours make the rephrase detector's job realistic (both hand-set assumptions, not
measured on real logs):

* **Noticed silent failures** (``p_notice_silent``, default 0.5): after a silent failure the
  user notices the wrong action with this probability and reacts exactly as to friction
  (the same draw: rephrase, repeat, switch or give up; attempts counted the same way);
  otherwise they take it as a success. The logs show a ``SUCCESS`` without barge-in
  followed by a retry: a rephrase with no friction signal on its source. Gold ``noticed``
  marks such turns (also when the reaction is to switch or give up).
* **Correction cues** (``p_correction_cue``, default 0.15): a rephrase or repeat turn (a
  retry after friction or after a noticed silent failure) is logged with this probability
  as ``"<cue> <utterance>"``, the cue drawn uniformly from :data:`CORRECTION_CUES`
  (``"no i said wake me up at seven"``). Only the logged ``utterance`` changes: the gold
  utterance, intent and annotation and the NLU outcome stay those of the corpus utterance
  (a simplification: the weak NLU is not re-run on the prefixed text). Gold
  ``correction_cue`` marks such turns.

Users have heavy-tailed activity (a lognormal session rate per user), utterances and intents
have Zipf popularity, so the same words recur across users. Every user draws from its own
random stream ``default_rng([seed, 1, user_index])``: the output does not depend on
``users_per_chunk``, which only sets memory (O(users_per_chunk) turns in memory) and the
number of files. Same config → byte-identical files. The notice draw is taken from that
stream on each silent failure (skipped when ``p_notice_silent`` is 0); the cue draws, two
uniforms per turn, are the user's last draws. So with both probabilities 0 the logs are
exactly those of a simulator without the two behaviours.

Output: logs under ``logs_dir/dt=YYYY-MM-DD/part-<chunk:05d>.parquet`` in the
``interaction_turn`` contract (or ``.jsonl.gz``), and the gold beside them in ``gold_dir``
(``turns/``, ``splits.parquet``, ``simulation.json``), which the miner never reads.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import math
import shutil
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mining.sim.corpora import attribution, corpus_names, load_corpus
from mining.sim.weak_nlu import WeakNLU
from mining.io.schemas import arrow_schema

BEHAVIOURS = ("new_goal", "rephrase", "repeat", "switch")
NEW_GOAL, REPHRASE, REPEAT, SWITCH = range(4)
STATUSES = ("SUCCESS", "ERROR", "UNHANDLED")
SUCCESS, ERROR, UNHANDLED = range(3)
SPLITS = ("seed", "traffic", "test")
# NLU outcome of one traffic utterance (fixed: the NLU is deterministic).
REJECTED, WRONG, RIGHT = range(3)
# Words a user may put before a retry ("no i said <utterance>"), per language (BCP-47
# primary subtag; zh-CN → "zh"); hand-written, fewer than the detector's lists
# (mining/defaults.toml [friction.cues]) as real users say more than any list holds.
CORRECTION_CUES = ("no", "no i said", "i meant", "not that")
CORRECTION_CUES_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "en": CORRECTION_CUES,
    "de": ("nein", "nein ich sagte", "ich meinte"), "fr": ("non", "non j'ai dit", "je voulais dire"),
    "es": ("no", "no he dicho", "quise decir"), "ru": ("нет", "нет я сказал", "я имел в виду"),
    "zh": ("不是", "不对", "我是说"), "th": ("ไม่ใช่", "ฉันบอกว่า"), "ar": ("لا", "قلت", "أقصد"),
    "el": ("όχι", "όχι είπα"),
}

# Random-stream tags: default_rng([seed, tag, ...]) keeps the streams independent.
_SPLIT_STREAM, _USER_STREAM, _POPULARITY_STREAM = 0, 1, 2

# --- Behaviour and time model. Hand-set assumptions, not measured on real logs. ---
# Sessions per user and day ~ LogNormal(median 0.6, sigma 1.3); sessions per user over the
# window = 1 + Poisson(rate * days), capped at 48 a day.
_SESSION_RATE_MEDIAN, _SESSION_RATE_SIGMA, _MAX_SESSIONS_PER_DAY = 0.6, 1.3, 48
# Start-to-start gap before a turn, lognormal, indexed by behaviour code
# (new_goal after a success, rephrase, repeat, switch); clipped to [1 s, 20 x median].
_GAP_MEDIAN_S = np.array([25.0, 4.0, 4.0, 10.0])
_GAP_SIGMA = np.array([0.7, 0.5, 0.5, 0.6])
_MIN_GAP_S = 1.0
_MIN_SESSION_GAP_S = 60.0  # sessions of one user never overlap: 60 s at least between them
# Relative session starts per UTC hour 0..23: quiet nights, morning and evening peaks.
_HOURLY_WEIGHTS = np.array([0.8, 0.5, 0.3, 0.2, 0.2, 0.4, 1.5, 3.5, 4.0, 3.0, 2.5, 2.5,
                            3.0, 2.5, 2.5, 2.5, 3.0, 4.0, 5.0, 5.0, 4.5, 3.5, 2.5, 1.5])
# asr_confidence ~ Beta(20, 2): mean 0.91, most mass in 0.8..1.
_ASR_BETA = (20.0, 2.0)
_UNIFORM_BLOCK = 64  # uniforms drawn per refill of a user's stream

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
SPLITS_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=False)
                           for name in ("utt_id", "text", "intent", "annot_utt", "split")])
_PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                        write_statistics=True, version="2.6", data_page_version="1.0")


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Probabilities are in 0..1; ``ValueError`` on an invalid value.

    ``seed_per_intent`` utterances per intent train the weak NLU; ``test_share`` of each
    intent's utterances is held out; the rest is traffic. ``p_rephrase + p_repeat +
    p_switch + p_give_up`` must be 1 (the user's reaction to friction). ``p_barge_in`` is the
    share of friction on a wrong intent that shows as a barge-in rather than an ``ERROR``.
    ``p_notice_silent``: share of silent failures the user notices and reacts to as to
    friction; ``p_correction_cue``: share of rephrase / repeat turns logged with a cue from
    :data:`CORRECTION_CUES` in front (module docstring).
    ``utterance_zipf_s`` / ``intent_zipf_s`` are Zipf exponents of popularity (0 = uniform).
    ``users_per_chunk`` bounds memory and sets the file size; it does not change the logs.
    ``start_date`` also accepts an ISO string (``"2026-11-01"``)."""

    corpus: str = "hwu64"
    n_turns: int = 20_000
    days: int = 3
    start_date: dt.date = dt.date(2026, 11, 1)
    seed: int = 7
    seed_per_intent: int = 8
    test_share: float = 0.2
    reject_threshold: float = 0.2
    p_silent: float = 0.25
    p_notice_silent: float = 0.5
    p_rephrase: float = 0.6
    p_repeat: float = 0.15
    p_switch: float = 0.1
    p_give_up: float = 0.15
    p_correction_cue: float = 0.15
    max_attempts: int = 4
    p_next_goal: float = 0.35
    p_backend_error: float = 0.02
    p_barge_in: float = 0.5
    utterance_zipf_s: float = 1.1
    intent_zipf_s: float = 0.8
    users_per_chunk: int = 2000
    out_format: str = "parquet"

    def __post_init__(self) -> None:
        if isinstance(self.start_date, str):
            object.__setattr__(self, "start_date", dt.date.fromisoformat(self.start_date))
        if self.corpus not in corpus_names():
            raise ValueError(f"corpus must be one of {corpus_names()}, got {self.corpus!r}")
        if self.out_format not in ("parquet", "jsonl"):
            raise ValueError(f"out_format must be 'parquet' or 'jsonl', got {self.out_format!r}")
        for name in ("n_turns", "days", "seed_per_intent", "max_attempts", "users_per_chunk"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), int)
                   and getattr(self, name) >= 1, "an int >= 1")
        _check("seed", self.seed, isinstance(self.seed, int) and self.seed >= 0, "an int >= 0")
        _check("test_share", self.test_share, 0.0 <= self.test_share < 1.0, "in [0, 1)")
        for name in ("reject_threshold", "p_silent", "p_notice_silent", "p_rephrase",
                     "p_repeat", "p_switch", "p_give_up", "p_correction_cue", "p_next_goal",
                     "p_backend_error", "p_barge_in"):
            _check(name, getattr(self, name), 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
        for name in ("utterance_zipf_s", "intent_zipf_s"):
            _check(name, getattr(self, name), getattr(self, name) >= 0.0, ">= 0")
        total = self.p_rephrase + self.p_repeat + self.p_switch + self.p_give_up
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"p_rephrase + p_repeat + p_switch + p_give_up must be 1, got {total}")
        if self.p_next_goal >= 1.0:
            raise ValueError("p_next_goal must be < 1 (sessions must end)")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (``start_date`` as an ISO string)."""
        values = dataclasses.asdict(self)
        values["start_date"] = self.start_date.isoformat()
        return values


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


# ----------------------------------------------------------------------------- world


def split_corpus(corpus: pd.DataFrame, seed_per_intent: int, test_share: float,
                 seed: int) -> np.ndarray:
    """Split label (``"seed"``, ``"test"`` or ``"traffic"``) of each row of ``corpus``.

    Per intent, rows are shuffled with ``default_rng([seed, 0])``; the first
    ``min(seed_per_intent, n)`` go to seed, the next ``min(round(test_share * n), rest)`` to
    test, the others to traffic (an intent with few rows may have no test or traffic rows).
    Returns an object array of shape (len(corpus),), aligned with the rows."""
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    order = rng.permutation(len(corpus))
    intents = corpus["intent"].to_numpy()[order]
    rank = pd.Series(intents).groupby(intents, sort=False).cumcount().to_numpy()
    size = pd.Series(intents).map(pd.Series(intents).value_counts()).to_numpy()
    n_seed = np.minimum(seed_per_intent, size)
    n_test = np.minimum(np.rint(test_share * size).astype(int), size - n_seed)
    shuffled = np.where(rank < n_seed, "seed",
                        np.where(rank < n_seed + n_test, "test", "traffic")).astype(object)
    labels = np.empty(len(corpus), dtype=object)
    labels[order] = shuffled
    return labels


def _zipf_cdf(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights ``k**-s`` of ranks 1..n, normalized so the last is 1.0."""
    cdf = np.cumsum(np.arange(1, n + 1, dtype=np.float64) ** -s)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf.tolist()


@dataclass
class _World:
    """Everything users share, built once: the traffic utterances with their (fixed) NLU
    interpretation as Arrow columns, and the popularity samplers.

    ``intents``: intent numbers with traffic, most popular first, ``intent_cdf`` their Zipf
    CDF; ``utt_rows[i]``: traffic row numbers of intent ``i``, most popular first,
    ``utt_cdf[i]`` their Zipf CDF; ``outcome[row]``: REJECTED, WRONG or RIGHT."""

    traffic: pa.Table
    texts: list[str]
    outcome: list[int]
    intents: list[int]
    intent_cdf: list[float]
    utt_rows: dict[int, list[int]]
    utt_cdf: dict[int, list[float]]
    can_rephrase: dict[int, bool]
    stats: dict[str, Any] = field(default_factory=dict)

    def pick_intent(self, u: float) -> int:
        return self.intents[bisect_right(self.intent_cdf, u)]

    def pick_utterance(self, intent: int, u: float) -> int:
        return self.utt_rows[intent][bisect_right(self.utt_cdf[intent], u)]

    def other_intent(self, intent: int, draw: "_Uniforms") -> int:
        """A popularity-weighted intent other than ``intent`` (needs >= 2 intents)."""
        for _ in range(32):
            other = self.pick_intent(draw())
            if other != intent:
                return other
        return next(i for i in self.intents if i != intent)

    def other_utterance(self, intent: int, row: int, draw: "_Uniforms") -> int:
        """A popularity-weighted traffic row of ``intent`` whose text differs from ``row``'s
        (needs ``can_rephrase[intent]``)."""
        text = self.texts[row]
        for _ in range(32):
            other = self.pick_utterance(intent, draw())
            if self.texts[other] != text:
                return other
        return next(r for r in self.utt_rows[intent] if self.texts[r] != text)


def _build_world(cfg: SimulationConfig) -> tuple[_World, pd.DataFrame]:
    """Split the corpus, train the weak NLU on the seed split, interpret every distinct
    traffic text once. Returns the world and the corpus with a ``split`` column, both
    read-only. Cached per process on the config fields they depend on (training the NLU
    takes seconds). Raises ``ValueError`` when fewer than two intents have traffic."""
    return _build_world_cached(*(getattr(cfg, name) for name in _WORLD_FIELDS))


_WORLD_FIELDS = ("corpus", "seed", "seed_per_intent", "test_share", "reject_threshold",
                 "utterance_zipf_s", "intent_zipf_s")


@lru_cache(maxsize=4)
def _build_world_cached(*values: Any) -> tuple[_World, pd.DataFrame]:
    cfg = SimulationConfig(**dict(zip(_WORLD_FIELDS, values)))
    corpus = load_corpus(cfg.corpus)
    corpus["split"] = split_corpus(corpus, cfg.seed_per_intent, cfg.test_share, cfg.seed)
    seed_rows, test = corpus[corpus.split == "seed"], corpus[corpus.split == "test"]
    traffic = corpus[corpus.split == "traffic"].reset_index(drop=True)
    if traffic["intent"].nunique() < 2:
        raise ValueError("fewer than two intents have traffic utterances; lower "
                         "seed_per_intent or test_share")
    nlu = WeakNLU().fit(seed_rows["text"], seed_rows["intent"])
    unique_texts, inverse = np.unique(traffic["text"].to_numpy(dtype=str), return_inverse=True)
    predicted, confidence = (a[inverse] for a in nlu.predict(unique_texts))
    outcome = np.where(confidence < cfg.reject_threshold, REJECTED,
                       np.where(predicted == traffic["intent"].to_numpy(dtype=str), RIGHT, WRONG))
    world = _make_world(cfg, traffic, predicted, confidence, outcome)
    world.stats = _nlu_stats(nlu, traffic, test, predicted, outcome)
    return world, corpus


def _make_world(cfg: SimulationConfig, traffic: pd.DataFrame, predicted: np.ndarray,
                confidence: np.ndarray, outcome: np.ndarray) -> _World:
    rng = np.random.default_rng([cfg.seed, _POPULARITY_STREAM])
    intent_codes, intent_names = pd.factorize(traffic["intent"], sort=True)
    intents = rng.permutation(len(intent_names)).tolist()
    utt_rows = {i: rng.permutation(np.flatnonzero(intent_codes == i)).tolist() for i in intents}
    texts = traffic["text"].tolist()
    return _World(
        traffic=_traffic_table(traffic, predicted, confidence, outcome),
        texts=texts, outcome=outcome.tolist(), intents=intents,
        intent_cdf=_zipf_cdf(len(intents), cfg.intent_zipf_s),
        utt_rows=utt_rows,
        utt_cdf={i: _zipf_cdf(len(rows), cfg.utterance_zipf_s) for i, rows in utt_rows.items()},
        can_rephrase={i: len({texts[r] for r in rows}) > 1 for i, rows in utt_rows.items()})


def _traffic_table(traffic: pd.DataFrame, predicted: np.ndarray, confidence: np.ndarray,
                   outcome: np.ndarray) -> pa.Table:
    """Per traffic row: the logged NLU columns and the gold columns, in contract types.
    nlu_slots: the gold slots when RIGHT, [] when WRONG, null when REJECTED."""
    schema = arrow_schema("interaction_turn")
    slots = [s if o == RIGHT else ([] if o == WRONG else None)
             for s, o in zip(traffic["slots"], outcome)]
    return pa.table({
        "utterance": pa.array(traffic["text"].tolist(), pa.string()),
        "nlu_intent": pa.array(predicted.tolist(), pa.string(), mask=outcome == REJECTED),
        "nlu_slots": pa.array(slots, schema.field("nlu_slots").type),
        "nlu_confidence": pa.array(confidence, pa.float64()),
        "locale": pa.array(traffic["locale"].tolist(), pa.string()),
        "utt_id": pa.array(traffic["utt_id"].tolist(), pa.string()),
        "gold_intent": pa.array(traffic["intent"].tolist(), pa.string()),
        "gold_annot_utt": pa.array(traffic["annot_utt"].tolist(), pa.string()),
        "nlu_correct": pa.array(outcome == RIGHT, pa.bool_()),
        "wrong": pa.array(outcome == WRONG, pa.bool_()),
    })


def _nlu_stats(nlu: WeakNLU, traffic: pd.DataFrame, test: pd.DataFrame,
               predicted: np.ndarray, outcome: np.ndarray) -> dict[str, Any]:
    """NLU accuracy on distinct traffic utterances (a rejected one counts as wrong) and on
    the test split, and the shares of traffic utterances rejected / interpreted wrongly."""
    test_pred, _ = nlu.predict(test["text"])
    return {
        "traffic_accuracy": float(np.mean(outcome == RIGHT)),
        "traffic_top1_accuracy": float(np.mean(predicted == traffic["intent"].to_numpy(str))),
        "traffic_rejected_share": float(np.mean(outcome == REJECTED)),
        "traffic_wrong_share": float(np.mean(outcome == WRONG)),
        "test_accuracy": float(np.mean(test_pred == test["intent"].to_numpy(str)))
        if len(test) else None,
    }


# ----------------------------------------------------------------------------- users


class _Uniforms:
    """Uniform [0, 1) floats from a user's generator, drawn in blocks (no per-draw numpy)."""

    __slots__ = ("_rng", "_block", "_i")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng, self._block, self._i = rng, [], 0

    def __call__(self) -> float:
        if self._i == len(self._block):
            self._block, self._i = self._rng.random(_UNIFORM_BLOCK).tolist(), 0
        self._i += 1
        return self._block[self._i - 1]


@dataclass
class _Chunk:
    """Turns of one chunk of users, as parallel lists (one entry per turn, in the order
    simulated: users, then sessions, then turns), plus per-session / per-user randomness."""

    session: list[int] = field(default_factory=list)  # chunk-local session number
    goal: list[int] = field(default_factory=list)  # goal number within the session
    row: list[int] = field(default_factory=list)  # traffic row said
    behaviour: list[int] = field(default_factory=list)
    attempt: list[int] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    barge: list[bool] = field(default_factory=list)
    noticed: list[bool] = field(default_factory=list)  # silent failure the user reacted to
    session_user: list[int] = field(default_factory=list)  # chunk-local user number
    user_turns: list[int] = field(default_factory=list)
    gap_z: list[np.ndarray] = field(default_factory=list)  # N(0,1), one per turn
    asr: list[np.ndarray] = field(default_factory=list)  # one per turn
    session_u: list[np.ndarray] = field(default_factory=list)  # U[0,1) (n_sessions, 3)
    user_id_words: list[np.ndarray] = field(default_factory=list)  # 1 uint64 per user
    session_id_words: list[np.ndarray] = field(default_factory=list)  # 2 uint64 per session
    turn_id_words: list[np.ndarray] = field(default_factory=list)  # 2 uint64 per turn
    cue_u: list[np.ndarray] = field(default_factory=list)  # U[0,1) (n_turns, 2): cue?, which

    def __len__(self) -> int:
        return len(self.row)


def _simulate_user(world: _World, cfg: SimulationConfig, user_index: int, chunk: _Chunk) -> int:
    """Append all turns of user ``user_index`` to ``chunk``; returns the number of turns."""
    rng = np.random.default_rng([cfg.seed, _USER_STREAM, user_index])
    rate = _SESSION_RATE_MEDIAN * math.exp(_SESSION_RATE_SIGMA * rng.standard_normal())
    n_sessions = min(1 + int(rng.poisson(rate * cfg.days)), _MAX_SESSIONS_PER_DAY * cfg.days)
    draw, first, user = _Uniforms(rng), len(chunk), len(chunk.user_turns)
    for _ in range(n_sessions):
        chunk.session_user.append(user)
        _simulate_session(world, cfg, draw, chunk, len(chunk.session_user) - 1)
    n_turns = len(chunk) - first
    chunk.user_turns.append(n_turns)
    chunk.gap_z.append(rng.standard_normal(n_turns))
    chunk.asr.append(rng.beta(*_ASR_BETA, n_turns))
    chunk.session_u.append(rng.random((n_sessions, 3)))
    words = rng.bit_generator.random_raw(1 + 2 * (n_sessions + n_turns))  # ids, 64 bits each
    chunk.user_id_words.append(words[:1])
    chunk.session_id_words.append(words[1:1 + 2 * n_sessions])
    chunk.turn_id_words.append(words[1 + 2 * n_sessions:])
    chunk.cue_u.append(rng.random((n_turns, 2)))  # last: the draws above do not depend on it
    return n_turns


def _simulate_session(world: _World, cfg: SimulationConfig, draw: _Uniforms, chunk: _Chunk,
                      session: int) -> None:
    """One session: goals one after another, each tried until success, give-up, switch or
    ``max_attempts``. A silent failure the user notices (``p_notice_silent``; one draw per
    silent failure, none when it is 0) is reacted to as friction. Appends one entry per
    turn to ``chunk``."""
    intent = world.pick_intent(draw())
    row = world.pick_utterance(intent, draw())
    behaviour, attempt, goal = NEW_GOAL, 1, 0
    while True:
        status, barge = _respond(world.outcome[row], cfg, draw)
        chunk.session.append(session)
        chunk.goal.append(goal)
        chunk.row.append(row)
        chunk.behaviour.append(behaviour)
        chunk.attempt.append(attempt)
        chunk.status.append(status)
        chunk.barge.append(barge)
        noticed = (status == SUCCESS and not barge and world.outcome[row] == WRONG
                   and cfg.p_notice_silent > 0.0 and draw() < cfg.p_notice_silent)
        chunk.noticed.append(noticed)
        if status == SUCCESS and not barge and not noticed:
            if draw() >= cfg.p_next_goal:
                return
            behaviour, attempt, goal = NEW_GOAL, 1, goal + 1
            intent = world.pick_intent(draw())
            row = world.pick_utterance(intent, draw())
            continue
        behaviour = _react(draw(), attempt, cfg)
        if behaviour is None:
            return
        if behaviour == SWITCH:
            attempt, goal = 1, goal + 1
            intent = world.other_intent(intent, draw)
            row = world.pick_utterance(intent, draw())
            continue
        attempt += 1
        if behaviour == REPHRASE and world.can_rephrase[intent]:
            row = world.other_utterance(intent, row, draw)
        else:
            behaviour = REPEAT


def _respond(outcome: int, cfg: SimulationConfig, draw: _Uniforms) -> tuple[int, bool]:
    """(response status, barge_in) of one turn given the NLU outcome of its utterance."""
    if outcome == RIGHT:
        return (ERROR if draw() < cfg.p_backend_error else SUCCESS), False
    if outcome == REJECTED:
        return UNHANDLED, False
    if draw() < cfg.p_silent:
        return SUCCESS, False
    return (SUCCESS, True) if draw() < cfg.p_barge_in else (ERROR, False)


def _react(u: float, attempt: int, cfg: SimulationConfig) -> int | None:
    """The user's reaction to friction (or to a noticed silent failure) for a uniform ``u``:
    REPHRASE, REPEAT, SWITCH, or None to give up. Rephrase and repeat become giving up once
    ``attempt == max_attempts``."""
    retry_ok = attempt < cfg.max_attempts
    if u < cfg.p_rephrase:
        return REPHRASE if retry_ok else None
    if u < cfg.p_rephrase + cfg.p_repeat:
        return REPEAT if retry_ok else None
    if u < cfg.p_rephrase + cfg.p_repeat + cfg.p_switch:
        return SWITCH
    return None


# ----------------------------------------------------------------------------- time


def _turn_offsets_us(behaviour: np.ndarray, session: np.ndarray,
                     gap_z: np.ndarray) -> np.ndarray:
    """Microseconds from its session's first turn to each turn, int64 (n,). Turns of a
    session are contiguous. Gaps are lognormal by behaviour (``_GAP_MEDIAN_S``,
    ``_GAP_SIGMA``, ``gap_z`` ~ N(0, 1)), rounded to µs before summing, so a turn's offset
    does not depend on the other sessions of the chunk."""
    median = _GAP_MEDIAN_S[behaviour]
    gap_s = np.clip(median * np.exp(_GAP_SIGMA[behaviour] * gap_z), _MIN_GAP_S, 20 * median)
    gap_us = np.rint(gap_s * 1e6).astype(np.int64)
    first = np.ones(len(session), dtype=bool)
    first[1:] = session[1:] != session[:-1]
    gap_us[first] = 0
    total = np.cumsum(gap_us)
    return total - total[first][session]


def _session_starts_us(session_user: np.ndarray, session_u: np.ndarray,
                       duration_us: np.ndarray, days: int) -> np.ndarray:
    """Start of each session in µs after the window start, int64 (n_sessions,).

    A session is drawn at a uniform day, an hour by ``_HOURLY_WEIGHTS`` and a uniform second
    in that hour (``session_u``: U[0,1) of shape (n_sessions, 3)). A user's sessions are then
    pushed later so they never overlap (``_MIN_SESSION_GAP_S`` apart), and shifted back as a
    whole when the last one would end after the window (``days`` x 24 h)."""
    hour_cdf = np.cumsum(_HOURLY_WEIGHTS) / _HOURLY_WEIGHTS.sum()
    hour = np.minimum(np.searchsorted(hour_cdf, session_u[:, 1], side="right"), 23)
    start_s = np.floor(session_u[:, 0] * days) * 86400 + hour * 3600 + session_u[:, 2] * 3600
    start = np.rint(start_s * 1e6).astype(np.int64)
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


# ----------------------------------------------------------------------------- chunks


def _hex_ids(words: list[np.ndarray], words_per_id: int) -> list[str]:
    """Lower-case hex ids of ``16 * words_per_id`` characters from random uint64 words
    (big-endian, so an id reads as its words in order)."""
    text = np.concatenate(words).astype(">u8").tobytes().hex()
    step = 16 * words_per_id
    return [text[i:i + step] for i in range(0, len(text), step)]


def _epoch_us(day: dt.date) -> int:
    """Microseconds since 1970-01-01 UTC at 00:00 UTC of ``day``."""
    return int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000


def _chunk_ts_us(chunk: _Chunk, cfg: SimulationConfig) -> np.ndarray:
    """Timestamp of every turn of ``chunk`` in µs since the epoch, int64 (n,)."""
    session = np.asarray(chunk.session, dtype=np.int64)
    offsets = _turn_offsets_us(np.asarray(chunk.behaviour, dtype=np.int64), session,
                               np.concatenate(chunk.gap_z))
    is_last = np.ones(len(session), dtype=bool)
    is_last[:-1] = session[1:] != session[:-1]
    starts = _session_starts_us(np.asarray(chunk.session_user, dtype=np.int64),
                                np.concatenate(chunk.session_u), offsets[is_last], cfg.days)
    return _epoch_us(cfg.start_date) + starts[session] + offsets


def _chunk_tables(world: _World, chunk: _Chunk,
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
    """The correction cues simulated users of ``corpus`` say: English for HWU64 and SLURP,
    the locale's language for ``hassil-<locale>`` (:data:`CORRECTION_CUES_BY_LANGUAGE`)."""
    from mining.sim.corpora import HASSIL_PREFIX
    from mining.core.text import cue_language

    if not corpus.startswith(HASSIL_PREFIX):
        return CORRECTION_CUES
    return CORRECTION_CUES_BY_LANGUAGE[cue_language(corpus[len(HASSIL_PREFIX):])]


def _chunk_cues(chunk: _Chunk, cfg: SimulationConfig, n_cues: int = len(CORRECTION_CUES)
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


def _logs_table(chunk: _Chunk, said: pa.Table, utterance: pa.ChunkedArray, turn_ids: pa.Array,
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


def _gold_table(chunk: _Chunk, said: pa.Table, cue: np.ndarray, turn_ids: pa.Array,
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


def _chunk_counts(chunk: _Chunk, gold: pa.Table) -> Counter:
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
    return counts


# ----------------------------------------------------------------------------- output


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Parquet with fixed options; no timestamps in the metadata, so same table → same bytes."""
    pq.write_table(table, path, **_PARQUET_OPTIONS)


def _write_jsonl_gz(table: pa.Table, path: Path, batch_rows: int = 10_000) -> None:
    """JSON Lines, gzip level 6 with mtime 0 and no file name (reproducible bytes); ``ts`` as an
    ISO-8601 UTC string with microseconds, ``2026-11-01T08:30:00.250000Z``."""
    ts = pc.strftime(table["ts"], format="%Y-%m-%dT%H:%M:%SZ")
    table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 compresslevel=6, mtime=0) as out:
        for batch in table.to_batches(max_chunksize=batch_rows):
            lines = (json.dumps(r, ensure_ascii=False, separators=(",", ":"))
                     for r in batch.to_pylist())
            out.write(("\n".join(lines) + "\n").encode("utf-8"))


def _write_logs(logs: pa.Table, cfg: SimulationConfig, logs_dir: Path,
                chunk_index: int) -> Counter:
    """Write a ts-sorted chunk as one file per day, ``dt=YYYY-MM-DD/part-<chunk:05d>.*``.
    Returns turns per dt string."""
    day = (pc.cast(logs["ts"], pa.int64()).to_numpy() - _epoch_us(cfg.start_date)) \
        // 86_400_000_000
    per_dt = Counter()
    for k in np.unique(day):
        lo, hi = np.searchsorted(day, [k, k + 1])
        dt_str = (cfg.start_date + dt.timedelta(days=int(k))).isoformat()
        folder = logs_dir / f"dt={dt_str}"
        folder.mkdir(exist_ok=True)
        part = logs.slice(lo, hi - lo)
        if cfg.out_format == "parquet":
            _write_parquet(part, folder / f"part-{chunk_index:05d}.parquet")
        else:
            _write_jsonl_gz(part, folder / f"part-{chunk_index:05d}.jsonl.gz")
        per_dt[dt_str] += int(hi - lo)
    return per_dt


def _run_chunks(world: _World, cfg: SimulationConfig, logs_dir: Path,
                gold_dir: Path) -> tuple[Counter, Counter, int]:
    """Simulate users 0, 1, … in chunks of ``users_per_chunk`` until ``n_turns`` turns are
    reached (the last user is completed, so a few more may be written), writing each chunk
    at once. Memory: O(users_per_chunk) users' turns. Returns (counts, turns per dt, chunks)."""
    counts, per_dt, user_index, chunk_index = Counter(), Counter(), 0, 0
    (gold_dir / "turns").mkdir(parents=True, exist_ok=True)
    while counts["turns"] < cfg.n_turns:
        chunk = _Chunk()
        while len(chunk.user_turns) < cfg.users_per_chunk \
                and counts["turns"] + len(chunk) < cfg.n_turns:
            _simulate_user(world, cfg, user_index, chunk)
            user_index += 1
        logs, gold = _chunk_tables(world, chunk, cfg)
        per_dt += _write_logs(logs, cfg, logs_dir, chunk_index)
        _write_parquet(gold, gold_dir / "turns" / f"part-{chunk_index:05d}.parquet")
        counts += _chunk_counts(chunk, gold)
        chunk_index += 1
    return counts, per_dt, chunk_index


def _summary(counts: Counter, per_dt: Counter, chunks: int, world: _World,
             corpus: pd.DataFrame) -> dict[str, Any]:
    """The counts of a run as a JSON-ready dict (no timings: it goes into the gold)."""
    plain = {k: v for k, v in counts.items() if ":" not in k}
    return {
        **{k: plain.get(k, 0) for k in ("turns", "users", "sessions", "goals",
                                         "unresolved_goals", "friction_turns",
                                         "silent_failures", "noticed_silent_failures",
                                         "correction_cue_turns", "barge_in_turns",
                                         "nlu_correct_turns")},
        "by_status": {s: counts.get(f"status:{s}", 0) for s in STATUSES},
        "by_behaviour": {b: counts.get(f"behaviour:{b}", 0) for b in BEHAVIOURS},
        "turns_per_dt": dict(sorted(per_dt.items())),
        "chunks": chunks,
        "splits": {s: int((corpus["split"] == s).sum()) for s in SPLITS},
        "nlu": dict(world.stats),
    }


def _check_output_dirs(logs_dir: Path, gold_dir: Path, overwrite: bool) -> None:
    """``ValueError`` when one folder is inside the other (the miner must never see the
    gold); ``FileExistsError`` when one is a non-empty folder or a file and not
    ``overwrite``."""
    if logs_dir == gold_dir or logs_dir in gold_dir.parents or gold_dir in logs_dir.parents:
        raise ValueError(f"logs_dir {logs_dir} and gold_dir {gold_dir} must not contain "
                         "each other: the miner must never read the gold")
    for path in (logs_dir, gold_dir):
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder")
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace it")


def _staging(path: Path) -> Path:
    """An empty hidden staging folder beside ``path``; a leftover of a failed run is removed."""
    staging = path.with_name(f".{path.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _commit(staging: Path, path: Path) -> None:
    """Mark ``staging`` complete (``_SUCCESS``) and move it to ``path``, replacing it."""
    (staging / "_SUCCESS").write_bytes(b"")
    if path.exists():
        shutil.rmtree(path)
    staging.rename(path)


def simulate(config: SimulationConfig, logs_dir: str | Path, gold_dir: str | Path, *,
             overwrite: bool = False) -> dict[str, Any]:
    """Simulate ``config.n_turns`` (or a few more) turns; write logs and gold; return counts.

    ``logs_dir`` receives ``dt=YYYY-MM-DD/part-<chunk:05d>.parquet`` files in the
    ``interaction_turn`` contract (``.jsonl.gz`` when ``out_format="jsonl"``); ``gold_dir``
    receives ``turns/part-<chunk:05d>.parquet`` (:data:`GOLD_TURNS_SCHEMA`),
    ``splits.parquet`` (:data:`SPLITS_SCHEMA`) and ``simulation.json`` (config, counts,
    NLU accuracy, corpus attribution). Both are written to hidden staging folders and moved
    into place at the end, each with a ``_SUCCESS`` marker. Same config → same bytes.

    Returns the counts of ``simulation.json`` plus ``seconds`` (wall time of the whole
    call), ``simulation_seconds`` (users + writing, without corpus loading and NLU training)
    and ``turns_per_s`` (turns / simulation_seconds). Raises ``ValueError`` when the folders
    contain each other, ``FileExistsError`` when one is not empty and not ``overwrite``."""
    started = time.perf_counter()
    logs_dir, gold_dir = Path(logs_dir).resolve(), Path(gold_dir).resolve()
    _check_output_dirs(logs_dir, gold_dir, overwrite)
    world, corpus = _build_world(config)
    logs_tmp, gold_tmp = _staging(logs_dir), _staging(gold_dir)
    sim_started = time.perf_counter()
    counts, per_dt, chunks = _run_chunks(world, config, logs_tmp, gold_tmp)
    sim_seconds = time.perf_counter() - sim_started
    summary = _summary(counts, per_dt, chunks, world, corpus)
    _write_gold_files(config, corpus, summary, gold_tmp)
    _commit(logs_tmp, logs_dir)
    _commit(gold_tmp, gold_dir)
    return {**summary, "seconds": round(time.perf_counter() - started, 3),
            "simulation_seconds": round(sim_seconds, 3),
            "turns_per_s": round(summary["turns"] / max(sim_seconds, 1e-9), 1)}


def _write_gold_files(cfg: SimulationConfig, corpus: pd.DataFrame, summary: dict[str, Any],
                      gold_dir: Path) -> None:
    """``splits.parquet`` (corpus order) and ``simulation.json`` (sorted keys)."""
    splits = pa.Table.from_pandas(corpus[list(SPLITS_SCHEMA.names)], schema=SPLITS_SCHEMA,
                                  preserve_index=False)
    _write_parquet(splits.replace_schema_metadata(None), gold_dir / "splits.parquet")
    document = {"config": cfg.to_dict(), "counts": summary,
                "logs_schema": "interaction_turn.v1",
                "attribution": attribution(cfg.corpus)}
    (gold_dir / "simulation.json").write_text(json.dumps(document, indent=2, sort_keys=True)
                                              + "\n", encoding="utf-8")
