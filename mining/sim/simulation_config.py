"""Log simulator settings: :class:`SimulationConfig` and the codes every simulator part shares.

Holds the configuration dataclass of :func:`mining.sim.simulation.simulate` (validated on
construction), the integer codes of behaviours, response statuses and NLU outcomes that the
users, world and table modules exchange, the correction cues per language, and the tags of
the independent random streams. The behaviour model itself is described in the module
docstring of :mod:`mining.sim.simulation`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from mining.sim.corpora import corpus_names
from mining.errors import ConfigError

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
SPLIT_STREAM, USER_STREAM, POPULARITY_STREAM, HARD_STREAM, GROWTH_STREAM, QUITTER_STREAM = 0, 1, 2, 3, 4, 5

#: Behaviour models of the simulated users (``SimulationConfig.behaviour_model``):
#: ``default`` as described in :mod:`mining.sim.simulation`; ``hard`` adds the habits that
#: make mining harder (:data:`HARD_MODEL`), so that nothing is tuned to one simulator.
BEHAVIOUR_MODELS = ("default", "hard")
#: The ``hard`` model's habits. Hand-set assumptions, not measured on real logs (issue 19):
#: - ``p_quitter``: share of users who never retry: after friction they give up (a trait:
#:   the same users every night of a series);
#: - ``p_wrong_target``: share of rephrases picked among the goal's traffic utterances the
#:   NLU misreads (when it misreads any other than the one just said);
#: - ``p_silent_retry``: share of misread rephrase / repeat turns that fail *silently* and
#:   unnoticed (``SUCCESS``, no barge-in, the user takes the wrong action as done): the
#:   target of a rephrase pair carries a wrong label and no friction signal fires;
#: - ``p_retry_later``: share of given-up goals the user asks for again as the first goal
#:   of their next session, which starts after that one in time (a new utterance drawn by
#:   popularity; another session, so not a rephrase pair in gold);
#: - ``switch_gap``: (median s, sigma) of the gap before a goal switch, the rephrase's.
HARD_MODEL = {"p_quitter": 0.2, "p_wrong_target": 0.3, "p_silent_retry": 0.7, "p_retry_later": 0.5,
              "switch_gap": (4.0, 0.5)}
#: Seed utterances per intent when ``SimulationConfig.seed_per_intent`` is None: 8, and 3
#: for the HINT3 corpora (median 10 utterances per powerplay11 intent: with 8 most of its
#: intents would have no traffic).
DEFAULT_SEED_PER_INTENT, HINT3_SEED_PER_INTENT = 8, 3


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Probabilities are in 0..1; ``ConfigError`` on an invalid value.

    ``seed_per_intent`` utterances per intent train the weak NLU; ``test_share`` of each
    intent's utterances is held out; the rest is traffic. ``p_rephrase + p_repeat +
    p_switch + p_give_up`` must be 1 (the user's reaction to friction). ``p_barge_in`` is the
    share of friction on a wrong intent that shows as a barge-in rather than an ``ERROR``.
    ``p_notice_silent``: share of silent failures the user notices and reacts to as to
    friction; ``p_correction_cue``: share of rephrase / repeat turns logged with a cue from
    :data:`CORRECTION_CUES` in front (module docstring of :mod:`mining.sim.simulation`).
    ``utterance_zipf_s`` / ``intent_zipf_s`` are Zipf exponents of popularity (0 = uniform).
    ``users_per_chunk`` bounds memory and sets the file size; it does not change the logs.
    ``start_date`` also accepts an ISO string (``"2026-11-01"``). ``night`` (≥ 0): 0 is a
    one-off simulation; ``night`` ≥ 1 is night n of a series with the same users
    (:mod:`mining.eval.loop`): each user keeps its id and session rate across nights and
    draws the rest from a stream of that night (``mining.sim.simulation_users``).
    ``seed_per_intent`` None (the default) means :data:`DEFAULT_SEED_PER_INTENT`, or
    :data:`HINT3_SEED_PER_INTENT` for a ``hint3-*`` corpus; it is resolved on construction.
    ``behaviour_model``: one of :data:`BEHAVIOUR_MODELS` (``"hard"``: :data:`HARD_MODEL`);
    with ``"default"`` the logs and gold are those of the simulator before it existed.
    ``traffic_utterances`` (None: the corpus as it is): grow the traffic split to this many
    distinct utterances with :func:`mining.sim.growth.grow_utterances` (slot swaps,
    carrier phrases, ASR-like noise; gold intent and annotation kept), for scale
    benchmarks whose logs must carry as many distinct texts as real traffic does (issue
    21). Seed and test splits stay the corpus's own. Must be at least the traffic split's
    number of distinct texts (``ConfigError`` from :func:`mining.sim.simulation.simulate`
    otherwise)."""

    corpus: str = "hwu64"
    n_turns: int = 20_000
    days: int = 3
    start_date: dt.date = dt.date(2026, 11, 1)
    seed: int = 7
    seed_per_intent: int | None = None
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
    night: int = 0
    behaviour_model: str = "default"
    traffic_utterances: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.start_date, str):
            object.__setattr__(self, "start_date", dt.date.fromisoformat(self.start_date))
        if self.corpus not in corpus_names():
            raise ConfigError(f"corpus must be one of {corpus_names()}, got {self.corpus!r}")
        if self.out_format not in ("parquet", "jsonl"):
            raise ConfigError(f"out_format must be 'parquet' or 'jsonl', got {self.out_format!r}")
        if self.behaviour_model not in BEHAVIOUR_MODELS:
            raise ConfigError(f"behaviour_model must be one of {BEHAVIOUR_MODELS}, got {self.behaviour_model!r}")
        if self.seed_per_intent is None:
            object.__setattr__(self, "seed_per_intent", HINT3_SEED_PER_INTENT if self.corpus.startswith("hint3-")
                               else DEFAULT_SEED_PER_INTENT)
        for name in ("n_turns", "days", "seed_per_intent", "max_attempts", "users_per_chunk"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), int)
                   and getattr(self, name) >= 1, "an int >= 1")
        if self.traffic_utterances is not None:
            _check("traffic_utterances", self.traffic_utterances,
                   isinstance(self.traffic_utterances, int) and not isinstance(self.traffic_utterances, bool)
                   and self.traffic_utterances >= 1, "None or an int >= 1")
        for name in ("seed", "night"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), int)
                   and getattr(self, name) >= 0, "an int >= 0")
        _check("test_share", self.test_share, 0.0 <= self.test_share < 1.0, "in [0, 1)")
        for name in ("reject_threshold", "p_silent", "p_notice_silent", "p_rephrase",
                     "p_repeat", "p_switch", "p_give_up", "p_correction_cue", "p_next_goal",
                     "p_backend_error", "p_barge_in"):
            _check(name, getattr(self, name), 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
        for name in ("utterance_zipf_s", "intent_zipf_s"):
            _check(name, getattr(self, name), getattr(self, name) >= 0.0, ">= 0")
        total = self.p_rephrase + self.p_repeat + self.p_switch + self.p_give_up
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ConfigError(f"p_rephrase + p_repeat + p_switch + p_give_up must be 1, got {total}")
        if self.p_next_goal >= 1.0:
            raise ConfigError("p_next_goal must be < 1 (sessions must end)")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (``start_date`` as an ISO string)."""
        values = dataclasses.asdict(self)
        values["start_date"] = self.start_date.isoformat()
        return values


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")
