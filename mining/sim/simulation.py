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

A second behaviour model, ``behaviour_model="hard"`` (:data:`HARD_MODEL`), adds what makes
mining harder, so that nothing is tuned to one simulator (issue 19): users who never retry,
rephrases that pick an utterance the NLU misreads and then fail *silently and unnoticed*
(the pair's target carries a wrong label; gold marks it ``silent_failure`` and not
``noticed``, so the evaluation counts it as a pair whose label is not clean), goal switches
as quick as rephrases, and given-up goals asked for again in the user's next session (a new
goal in gold). ``"default"`` leaves every output byte as before (tests/sim).

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

The parts: :mod:`~mining.sim.simulation_config` (:class:`SimulationConfig`, shared codes and
cues), :mod:`~mining.sim.simulation_world` (corpus split, weak NLU, popularity),
:mod:`~mining.sim.simulation_users` (sessions, goals, reactions),
:mod:`~mining.sim.simulation_tables` (a chunk of turns as logs / gold Arrow tables, time,
ids) and :mod:`~mining.sim.simulation_output` (files, staging, commit). This module runs them
(:func:`simulate`) and re-exports the public names.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mining.sim.simulation_config import (BEHAVIOUR_MODELS, BEHAVIOURS, CORRECTION_CUES,
                                          CORRECTION_CUES_BY_LANGUAGE, ERROR, HARD_MODEL, NEW_GOAL, REJECTED, REPEAT, REPHRASE, RIGHT,
                                          SPLITS, STATUSES, SUCCESS, SWITCH, UNHANDLED, WRONG,
                                          SimulationConfig)
from mining.sim.simulation_output import (SPLITS_SCHEMA, check_output_dirs, commit_staging,
                                          staging_dir, write_gold_files, write_logs,
                                          write_parquet)
from mining.sim.simulation_tables import (GOLD_TURNS_SCHEMA, chunk_counts, chunk_tables,
                                          corpus_cues)
from mining.sim.simulation_users import Chunk, simulate_user
from mining.sim.simulation_world import World, build_world, split_corpus

__all__ = [
    "BEHAVIOUR_MODELS", "BEHAVIOURS", "CORRECTION_CUES", "HARD_MODEL", "CORRECTION_CUES_BY_LANGUAGE", "ERROR", "GOLD_TURNS_SCHEMA",
    "NEW_GOAL", "REJECTED", "REPEAT", "REPHRASE", "RIGHT", "SPLITS", "SPLITS_SCHEMA", "STATUSES",
    "SUCCESS", "SWITCH", "UNHANDLED", "WRONG", "SimulationConfig", "corpus_cues", "simulate",
    "split_corpus",
]


def _run_chunks(world: World, cfg: SimulationConfig, logs_dir: Path,
                gold_dir: Path) -> tuple[Counter, Counter, int]:
    """Simulate users 0, 1, … in chunks of ``users_per_chunk`` until ``n_turns`` turns are
    reached (the last user is completed, so a few more may be written), writing each chunk
    at once. Memory: O(users_per_chunk) users' turns. Returns (counts, turns per dt, chunks)."""
    counts, per_dt, user_index, chunk_index = Counter(), Counter(), 0, 0
    (gold_dir / "turns").mkdir(parents=True, exist_ok=True)
    while counts["turns"] < cfg.n_turns:
        chunk = Chunk()
        while len(chunk.user_turns) < cfg.users_per_chunk \
                and counts["turns"] + len(chunk) < cfg.n_turns:
            simulate_user(world, cfg, user_index, chunk)
            user_index += 1
        logs, gold = chunk_tables(world, chunk, cfg)
        per_dt += write_logs(logs, cfg, logs_dir, chunk_index)
        write_parquet(gold, gold_dir / "turns" / f"part-{chunk_index:05d}.parquet")
        counts += chunk_counts(chunk, gold)
        chunk_index += 1
    return counts, per_dt, chunk_index


def _summary(counts: Counter, per_dt: Counter, chunks: int, world: World,
             corpus: pd.DataFrame, behaviour_model: str = "default") -> dict[str, Any]:
    """The counts of a run as a JSON-ready dict (no timings: it goes into the gold). The
    ``hard`` behaviour model adds ``hard_model``: its events (users who never retry, goals
    asked again in a later session, misread rephrase targets picked, silent retries)."""
    plain = {k: v for k, v in counts.items() if ":" not in k}
    hard = ({"hard_model": {k: counts.get(f"hard:{k}", 0) for k in
                            ("quitter_users", "retried_later_goals", "wrong_rephrase_targets",
                             "silent_retry_turns")}} if behaviour_model == "hard" else {})
    return {
        **hard,
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


def simulate(config: SimulationConfig, logs_dir: str | Path, gold_dir: str | Path, *,
             overwrite: bool = False, nlu_training: pd.DataFrame | None = None) -> dict[str, Any]:
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
    contain each other, ``FileExistsError`` when one is not empty and not ``overwrite``.

    ``nlu_training``: extra (``text``, ``intent``) rows the production NLU is trained on
    besides the seed split (:func:`mining.sim.simulation_world.build_world`)."""
    started = time.perf_counter()
    logs_dir, gold_dir = Path(logs_dir).resolve(), Path(gold_dir).resolve()
    check_output_dirs(logs_dir, gold_dir, overwrite)
    world, corpus = build_world(config, nlu_training)
    logs_tmp, gold_tmp = staging_dir(logs_dir), staging_dir(gold_dir)
    sim_started = time.perf_counter()
    counts, per_dt, chunks = _run_chunks(world, config, logs_tmp, gold_tmp)
    sim_seconds = time.perf_counter() - sim_started
    summary = _summary(counts, per_dt, chunks, world, corpus, config.behaviour_model)
    write_gold_files(config, corpus, summary, gold_tmp)
    commit_staging(logs_tmp, logs_dir)
    commit_staging(gold_tmp, gold_dir)
    return {**summary, "seconds": round(time.perf_counter() - started, 3),
            "simulation_seconds": round(sim_seconds, 3),
            "turns_per_s": round(summary["turns"] / max(sim_seconds, 1e-9), 1)}
