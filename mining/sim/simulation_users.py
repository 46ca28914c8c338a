"""Log simulator users: sessions, goals, NLU responses and the user's reactions.

Each user draws from its own random stream ``default_rng([seed, 1, user_index])``
(:func:`simulate_user`) and appends its turns to a :class:`Chunk` as parallel lists: the
sessions (a lognormal session rate per user), the goals tried in each session, the response
to each turn given the NLU outcome of its utterance (:func:`_respond`) and the reaction to
friction or a noticed silent failure (:func:`_react`). The order of the draws is part of the
output contract (same config → same bytes); see :mod:`mining.sim.simulation`.

The ``hard`` behaviour model (:data:`mining.sim.simulation_config.HARD_MODEL`) takes its
extra draws from a second stream per user, ``default_rng([seed, 3, user_index, night])``
(:class:`_HardHabits`), and whether the user is a quitter from a third, without the night,
``default_rng([seed, 5, user_index])`` (a trait); with the ``default`` model these streams
are never created and the
draws of the user's stream are exactly those of the simulator before the model existed.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mining.sim.simulation_config import (ERROR, HARD_MODEL, HARD_STREAM, NEW_GOAL, REJECTED, REPEAT,
                                          QUITTER_STREAM, REPHRASE, RIGHT, SUCCESS, SWITCH, UNHANDLED, USER_STREAM,
                                          WRONG, SimulationConfig)
from mining.sim.simulation_world import World

# --- Behaviour model. Hand-set assumptions, not measured on real logs. ---
# Sessions per user and day ~ LogNormal(median 0.6, sigma 1.3); sessions per user over the
# window = 1 + Poisson(rate * days), capped at 48 a day.
_SESSION_RATE_MEDIAN, _SESSION_RATE_SIGMA, _MAX_SESSIONS_PER_DAY = 0.6, 1.3, 48
# asr_confidence ~ Beta(20, 2): mean 0.91, most mass in 0.8..1.
_ASR_BETA = (20.0, 2.0)
_UNIFORM_BLOCK = 64  # uniforms drawn per refill of a user's stream


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
class Chunk:
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
    hard_counts: Counter = field(default_factory=Counter)  # the hard model's events (else empty)

    def __len__(self) -> int:
        return len(self.row)


class _HardHabits:
    """One user's habits under the ``hard`` behaviour model (:data:`HARD_MODEL`): whether
    they are a quitter, their own uniform stream, and the intent of a given-up goal they
    will ask for again at the start of their next session (``pending``)."""

    __slots__ = ("u", "quitter", "pending")

    def __init__(self, cfg: SimulationConfig, user_index: int) -> None:
        self.u = _Uniforms(np.random.default_rng([cfg.seed, HARD_STREAM, user_index, cfg.night]))
        # a trait, drawn without the night: a quitter stays one over a series of nights
        self.quitter = bool(np.random.default_rng([cfg.seed, QUITTER_STREAM, user_index]).random()
                            < HARD_MODEL["p_quitter"])
        self.pending: int | None = None


def simulate_user(world: World, cfg: SimulationConfig, user_index: int, chunk: Chunk) -> int:
    """Append all turns of user ``user_index`` to ``chunk``; returns the number of turns.

    ``cfg.night`` 0: one stream ``default_rng([seed, 1, user_index])`` for everything.
    ``cfg.night`` n ≥ 1: the user's traits (session rate, then the 64-bit user id) come from
    that stream, the night's behaviour from ``default_rng([seed, 1, user_index, n])``, so a
    series of nights has the same users, each acting anew every night."""
    rng = np.random.default_rng([cfg.seed, USER_STREAM, user_index])
    rate = _SESSION_RATE_MEDIAN * math.exp(_SESSION_RATE_SIGMA * rng.standard_normal())
    user_id = None
    if cfg.night:
        user_id = rng.bit_generator.random_raw(1)
        rng = np.random.default_rng([cfg.seed, USER_STREAM, user_index, cfg.night])
    n_sessions = min(1 + int(rng.poisson(rate * cfg.days)), _MAX_SESSIONS_PER_DAY * cfg.days)
    draw, first, user = _Uniforms(rng), len(chunk), len(chunk.user_turns)
    hard = _HardHabits(cfg, user_index) if cfg.behaviour_model == "hard" else None
    if hard is not None and hard.quitter:
        chunk.hard_counts["quitter_users"] += 1
    for _ in range(n_sessions):
        chunk.session_user.append(user)
        _simulate_session(world, cfg, draw, chunk, len(chunk.session_user) - 1, hard)
    n_turns = len(chunk) - first
    chunk.user_turns.append(n_turns)
    chunk.gap_z.append(rng.standard_normal(n_turns))
    chunk.asr.append(rng.beta(*_ASR_BETA, n_turns))
    chunk.session_u.append(rng.random((n_sessions, 3)))
    words = rng.bit_generator.random_raw(1 + 2 * (n_sessions + n_turns))  # ids, 64 bits each
    chunk.user_id_words.append(words[:1] if user_id is None else user_id)
    chunk.session_id_words.append(words[1:1 + 2 * n_sessions])
    chunk.turn_id_words.append(words[1 + 2 * n_sessions:])
    chunk.cue_u.append(rng.random((n_turns, 2)))  # last: the draws above do not depend on it
    return n_turns


def _simulate_session(world: World, cfg: SimulationConfig, draw: _Uniforms, chunk: Chunk,
                      session: int, hard: _HardHabits | None = None) -> None:
    """One session: goals one after another, each tried until success, give-up, switch or
    ``max_attempts``. A silent failure the user notices (``p_notice_silent``; one draw per
    silent failure, none when it is 0) is reacted to as friction. Appends one entry per
    turn to ``chunk``. ``hard``: the user's habits under the hard model (None: default)."""
    if hard is not None and hard.pending is not None:   # a goal given up in an earlier session
        intent, hard.pending = hard.pending, None
        chunk.hard_counts["retried_later_goals"] += 1
    else:
        intent = world.pick_intent(draw())
    row = world.pick_utterance(intent, draw())
    behaviour, attempt, goal = NEW_GOAL, 1, 0
    while True:
        silent_retry = (hard is not None and behaviour in (REPHRASE, REPEAT) and world.outcome[row] == WRONG
                        and hard.u() < HARD_MODEL["p_silent_retry"])
        if silent_retry:   # misread, and the user takes the wrong action as done
            status, barge = SUCCESS, False
            chunk.hard_counts["silent_retry_turns"] += 1
        else:
            status, barge = _respond(world.outcome[row], cfg, draw)
        chunk.session.append(session)
        chunk.goal.append(goal)
        chunk.row.append(row)
        chunk.behaviour.append(behaviour)
        chunk.attempt.append(attempt)
        chunk.status.append(status)
        chunk.barge.append(barge)
        noticed = (not silent_retry and status == SUCCESS and not barge and world.outcome[row] == WRONG
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
        if hard is not None and hard.quitter:
            behaviour = None
        if behaviour is None:
            if hard is not None and hard.u() < HARD_MODEL["p_retry_later"]:
                hard.pending = intent
            return
        if behaviour == SWITCH:
            attempt, goal = 1, goal + 1
            intent = world.other_intent(intent, draw)
            row = world.pick_utterance(intent, draw())
            continue
        attempt += 1
        if behaviour == REPHRASE and world.can_rephrase[intent]:
            wrong = ([r for r in world.wrong_rows[intent] if world.texts[r] != world.texts[row]]
                     if hard is not None else [])
            if wrong and hard.u() < HARD_MODEL["p_wrong_target"]:
                row = wrong[min(int(hard.u() * len(wrong)), len(wrong) - 1)]
                chunk.hard_counts["wrong_rephrase_targets"] += 1
            else:
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

