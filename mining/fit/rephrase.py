"""Fit the rephrase scorer on simulator gold, and the dev-set runs the benchmark shares.

``mining fit-rephrase`` simulates logs from each development corpus (fixed seed), runs the
real ``detect_rephrases`` stage on them, labels every scored candidate with the gold case
(:func:`mining.eval.evaluation.candidate_cases`) and fits :func:`mining.core.rephrase_model.fit_model`
on the union. The fitted model is written as TOML (default: the packaged
``mining/models/rephrase_lr.toml``) with the exact command in ``[fit].command``.
The benchmark (``bench/rephrase.py``) evaluates on *other* seeds than the fit.
"""
from __future__ import annotations

import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mining.core.rephrase_model import PACKAGED_MODEL, RephraseModel, fit_model, save_model

log = logging.getLogger(__name__)

#: Seeds of the logs the packaged model was fitted on; the benchmark uses other seeds.
FIT_SEED = 101


@dataclass
class DevRun:
    """One simulated corpus run through ``detect_rephrases``: pandas frames of its output."""
    corpus: str
    seed: int
    turns_in: int
    pairs: pd.DataFrame   # rephrase_pairs/ (every scored candidate)
    turns: pd.DataFrame   # turns/ (turn_id, session_pseudonym, ts, is_friction, succeeded)
    gold: pd.DataFrame    # gold turns/
    detect_s: float       # wall seconds of the detect_rephrases stage


def simulate_and_detect(spark, corpus: str, n_turns: int, seed: int, work: Path,
                        overrides: dict | None = None, days: int = 3) -> DevRun:
    """Simulate ``n_turns`` of ``corpus`` logs (seed ``seed``) under ``work`` (reused when
    already there) and run ``detect_rephrases`` on them with ``overrides`` on the defaults.

    The pseudonym key is the built-in demo key (``MINING_DEMO_MODE=1`` while the stage
    runs, restored after): these are simulated users."""
    from mining import env
    from mining.config import load_config
    from mining.stages import stage_fn
    from mining.eval.evaluation import _read
    from mining.sim.simulation import SimulationConfig, simulate

    base = work / f"{corpus}-{n_turns}-s{seed}"
    logs, gold_dir, out = base / "logs", base / "gold", base / "run"
    if not (gold_dir / "simulation.json").exists():
        simulate(SimulationConfig(corpus=corpus, n_turns=n_turns, days=days, seed=seed), logs, gold_dir,
                 overwrite=True)
    cfg = load_config(str(logs), str(out), overrides=overrides)
    t0 = time.perf_counter()
    with env.scoped(**{env.DEMO_ENV: "1"}):
        stage_fn("detect_rephrases")(spark, cfg)
    detect_s = time.perf_counter() - t0
    turns = _read(out / "turns", ["turn_id", "session_pseudonym", "ts", "is_friction", "succeeded"])
    return DevRun(corpus=corpus, seed=seed, turns_in=n_turns, pairs=_read(out / "rephrase_pairs"),
                  turns=turns, gold=_read(gold_dir / "turns"), detect_s=detect_s)


def training_frame(runs: list[DevRun]) -> pd.DataFrame:
    """Non-repeat candidates of all runs with gold ``positive``; source/target turn ids are
    prefixed with the run so they stay unique."""
    from mining.eval.evaluation import candidate_cases

    frames = []
    for r in runs:
        c = candidate_cases(r.pairs, r.gold)
        c = c[~c["is_repeat"]].copy()
        for col in ("source_turn_id", "target_turn_id"):
            c[col] = f"{r.corpus}:{r.seed}:" + c[col]
        frames.append(c)
    return pd.concat(frames, ignore_index=True)


def fit(corpora: list[str], n_turns: int, seed: int, work: Path, *, c: float,
        target_precision: float, out: Path | None, argv: list[str]) -> RephraseModel:
    """Simulate + detect per corpus, fit, write the model TOML to ``out`` (None: packaged)."""
    from mining.spark.session import get_spark

    spark = get_spark("fit-rephrase")
    runs = [simulate_and_detect(spark, corpus, n_turns, seed, work) for corpus in corpora]
    frame = training_frame(runs)
    info = {"command": "mining " + shlex.join(argv), "corpora": list(corpora),
            "seed": seed, "turns_per_corpus": n_turns,
            "python": sys.version.split()[0]}
    model = fit_model(frame, c=c, target_precision=target_precision, seed=seed,
                      version=f"rephrase-lr-{'+'.join(corpora)}-s{seed}", fit_info=info)
    save_model(model, out or PACKAGED_MODEL)
    log.info("rephrase model %s: threshold %.2f, fit precision %.3f recall %.3f → %s", model.version,
             model.threshold, model.fit["fit_precision"], model.fit["fit_recall"], out or PACKAGED_MODEL)
    return model
