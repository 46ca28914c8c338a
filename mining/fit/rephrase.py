"""Fit the rephrase scorer on simulator gold, and the dev-set runs the benchmark shares.

``mining fit-rephrase`` simulates logs from each development corpus (fixed seed), runs the
real ``detect_rephrases`` stage on them, labels every scored candidate with the gold case
(:func:`mining.eval.evaluation.candidate_cases`) and fits :func:`mining.core.rephrase_model.fit_model`
on the union. The default pools English corpora embedded by MiniLM (HWU64, SLURP) and
generated locales of four scripts embedded by the multilingual encoder, so the one scorer
and its one threshold are fitted across both encoders' scales (its embedding features are
cosines relative to each run's own background, (c − μ)/(1 − μ), :mod:`mining.core.background`). The fit
also tabulates, per locale, each feature's mean for true rephrases and for goal switches
(:func:`direction_table`) and lists the features whose direction flips in some locale. The fitted model is written as TOML (default: the packaged
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
from mining.errors import ConfigError
from mining.fit.calibration import with_content_version

log = logging.getLogger(__name__)

#: Seeds of the logs the packaged model was fitted on; the benchmark uses other seeds.
FIT_SEED = 101
#: Corpora a fit may use: development only (the corpora of mining.sim.locales.DEFAULT_LOCALES
#: and SLURP); held-out locales, seeds and HINT3 are never fitted on.
DEV_CORPORA = ("hwu64", "slurp", *(f"hassil-{loc}" for loc in
                                   ("de-DE", "fr-FR", "es-ES", "ru-RU", "zh-CN", "th-TH", "ar-SA", "el-GR")))
#: The packaged model's corpora: both encoders, four scripts (Latin, Cyrillic, Han, Arabic).
DEFAULT_CORPORA = ("hwu64", "slurp", "hassil-de-DE", "hassil-ru-RU", "hassil-zh-CN", "hassil-ar-SA")


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
    background: dict      # {locale: derived background entry} (mining.core.background.read_derived)


def simulate_and_detect(spark, corpus: str, n_turns: int, seed: int, work: Path,
                        overrides: dict | None = None, days: int = 3, reuse: bool = False) -> DevRun:
    """Simulate ``n_turns`` of ``corpus`` logs (seed ``seed``) under ``work`` (reused when
    already there) and run ``detect_rephrases`` on them with ``overrides`` on the defaults.

    ``reuse``: keep a ``detect_rephrases`` output already under ``work`` (a refit of the
    same code's candidates; features are recomputed from its columns and background).
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
    # one embedding cache for every run under ``work``: a refit encodes each text once
    overrides = {"embedding": {"cache_dir": str(work / "embedding_cache")}, **(overrides or {})}
    cfg = load_config(str(logs), str(out), overrides=overrides)
    t0 = time.perf_counter()
    if not (reuse and (out / "rephrase_pairs" / "_SUCCESS").exists()):
        with env.scoped(**{env.DEMO_ENV: "1"}):
            stage_fn("detect_rephrases")(spark, cfg)
    detect_s = time.perf_counter() - t0
    turns = _read(out / "turns", ["turn_id", "session_pseudonym", "ts", "is_friction", "succeeded"])
    from mining.core.background import read_derived

    return DevRun(corpus=corpus, seed=seed, turns_in=n_turns, pairs=_read(out / "rephrase_pairs"),
                  turns=turns, gold=_read(gold_dir / "turns"), detect_s=detect_s, background=read_derived(out))


def with_background(pairs: pd.DataFrame, derived: dict) -> pd.DataFrame:
    """``pairs`` (with ``locale``) plus ``background_mean`` / ``background_std`` of each row's
    locale from ``derived`` (:func:`mining.core.background.read_derived`), the inputs of the
    scale-free features. ``ValueError`` naming a locale without a background."""
    missing = sorted(set(pairs["locale"]) - set(derived))
    if missing:
        raise ValueError(f"no background for locales {missing}: rerun detect_rephrases")
    return pairs.assign(background_mean=pairs["locale"].map({k: v["mean"] for k, v in derived.items()}),
                        background_std=pairs["locale"].map({k: v["std"] for k, v in derived.items()}))


def training_frame(runs: list[DevRun]) -> pd.DataFrame:
    """Non-repeat candidates of all runs with gold ``positive``; source/target turn ids are
    prefixed with the run so they stay unique."""
    from mining.eval.evaluation import candidate_cases

    frames = []
    for r in runs:
        c = candidate_cases(with_background(r.pairs, r.background), r.gold)
        c = c[~c["is_repeat"]].copy()
        for col in ("source_turn_id", "target_turn_id"):
            c[col] = f"{r.corpus}:{r.seed}:" + c[col]
        frames.append(c)
    return pd.concat(frames, ignore_index=True)


def direction_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per locale and feature of :data:`mining.core.rephrase_model.FEATURES`: the mean for
    true rephrases (gold case ``true_rephrase``) and for goal switches (``goal_switch``) and
    the sign of their difference; plus the features whose sign differs between two locales
    (a direction flip: the feature would mean the opposite there). ``frame``: the output of
    :func:`training_frame` (needs ``case`` and ``locale``). Locales without both cases are
    left out; a difference below 1e-9 counts as no direction."""
    from mining.core.rephrase_model import FEATURES, model_features

    feats = model_features(frame)
    rows = []
    for locale, idx in frame.groupby("locale").groups.items():
        case = frame.loc[idx, "case"]
        pos, neg = feats.loc[idx][case == "true_rephrase"], feats.loc[idx][case == "goal_switch"]
        if pos.empty or neg.empty:
            continue
        for f in FEATURES:
            d = float(pos[f].mean() - neg[f].mean())
            rows.append({"locale": locale, "feature": f, "rephrase_mean": float(pos[f].mean()),
                         "switch_mean": float(neg[f].mean()), "n_rephrase": len(pos), "n_switch": len(neg),
                         "direction": 0 if abs(d) < 1e-9 else (1 if d > 0 else -1)})
    table = pd.DataFrame(rows, columns=["locale", "feature", "rephrase_mean", "switch_mean", "n_rephrase",
                                        "n_switch", "direction"])
    flips = sorted(f for f, g in table.groupby("feature") if {1, -1} <= set(g["direction"])) if len(table) else []
    return table, flips


def format_direction_table(table: pd.DataFrame, features=None) -> str:
    """Markdown: one row per feature, per locale "rephrase mean / switch mean" (a note when
    no locale has both cases)."""
    if table.empty:
        return "(no locale with both true rephrases and goal switches)"
    locales = sorted(table["locale"].unique())
    features = features or list(dict.fromkeys(table["feature"]))
    lines = ["| feature | " + " | ".join(locales) + " |", "|---" * (len(locales) + 1) + "|"]
    for f in features:
        g = table[table["feature"] == f].set_index("locale")
        lines.append(f"| {f} | " + " | ".join(f"{g.at[l, 'rephrase_mean']:.2f} / {g.at[l, 'switch_mean']:.2f}"
                                              for l in locales) + " |")
    return "\n".join(lines)


def fit(corpora: list[str], n_turns: int, seed: int, work: Path, *, c: float,
        target_precision: float, out: Path | None, argv: list[str], reuse: bool = False) -> RephraseModel:
    """Simulate + detect per corpus, fit, write the model TOML to ``out`` (None: packaged)."""
    from mining.spark.session import get_spark

    unknown = sorted(set(corpora) - set(DEV_CORPORA))
    if unknown:
        raise ConfigError(f"fit-rephrase: {unknown} are not development corpora; valid: {', '.join(DEV_CORPORA)}")
    spark = get_spark("fit-rephrase")
    runs = [simulate_and_detect(spark, corpus, n_turns, seed, work, reuse=reuse) for corpus in corpora]
    frame = training_frame(runs)
    info = {"command": "mining " + shlex.join(argv), "corpora": list(corpora),
            "seed": seed, "turns_per_corpus": n_turns,
            "python": sys.version.split()[0]}
    model = fit_model(frame, c=c, target_precision=target_precision, seed=seed,
                      version=f"rephrase-lr-{'+'.join(corpora)}-s{seed}", fit_info=info)
    model = with_content_version(model)
    table, flips = direction_table(frame)
    model.fit["direction_flips"] = flips
    model.fit["feature_means"] = {loc: {r.feature: [round(r.rephrase_mean, 4), round(r.switch_mean, 4)]
                                        for r in g.itertuples()} for loc, g in table.groupby("locale")}
    log.info("feature means, true rephrase / goal switch, per locale:\n%s\ndirection flips: %s",
             format_direction_table(table), flips or "none")
    save_model(model, out or PACKAGED_MODEL)
    log.info("rephrase model %s: threshold %.2f, fit precision %.3f recall %.3f → %s", model.version,
             model.threshold, model.fit["fit_precision"], model.fit["fit_recall"], out or PACKAGED_MODEL)
    return model

