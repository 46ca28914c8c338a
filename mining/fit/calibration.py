"""Fit the label-confidence calibration on simulator gold (``mining fit-calibration``).

Simulates logs from each development corpus (fixed seed, :data:`FIT_SEED`), runs the real
pipeline up to ``aggregate_labels`` with calibration off (``aggregation.calibration =
"none"``, so ``confidence`` would be the raw score), and takes every candidate label that
reached the confidence gate and passes the default k-anonymity gate (the population that
gets exported). A label is right when its intent is a gold intent of the text
(:func:`mining.eval.evaluation.gold_intents_by_text`, as ``mining evaluate`` scores it). The
isotonic maps of :func:`mining.core.calibration.fit_calibration` are written as TOML (default:
the packaged ``mining/models/calibration.toml``) with the exact command in ``[fit]``; the
version ends with the first 8 hex digits of the sha256 of the maps, so manifests tell
two fits apart.

A new domain refits from its own reviewed labels instead (``mining audit sample``, then
``mining fit-calibration --audit``: :mod:`mining.fit.audit`).

The packaged map is fitted on HWU64 only, so SLURP stays a corpus the calibration never
saw; ``bench/labels.py`` measures the calibration error on both, on other seeds. Its seed is
not the rephrase scorer's (:data:`FIT_SEED`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shlex
import sys
from pathlib import Path

import pandas as pd

from mining.core.calibration import PACKAGED_CALIBRATION, Calibration, fit_calibration, save_calibration

log = logging.getLogger(__name__)

#: not the rephrase scorer's fit seed (mining/fit/rephrase.py, 101): the simulator writes users in
#: order, one stream each, so the same corpus and seed would put the scorer's training logs
#: inside the calibration's (a map fitted on pairs the scorer was trained on is optimistic)
FIT_SEED = 211
STAGES_AFTER_DETECT = ("embed_utterances", "cluster_variants", "aggregate_labels")


def candidate_labels(spark, corpus: str, n_turns: int, seed: int, work: Path) -> pd.DataFrame:
    """Simulate + run the pipeline to ``aggregate_labels`` uncalibrated; return the candidate
    labels that reached the confidence gate (``labels/`` rows with a ``candidate_intent`` and
    decision ``labeled`` or ``low_confidence``) with ``correct`` (bool) and
    ``corpus``. The runs live under ``work`` and are reused when already there."""
    from mining import env
    from mining.config import load_config
    from mining.eval.evaluation import _read, gold_intents_for_run, label_correct
    from mining.fit.rephrase import simulate_and_detect
    from mining.stages import runner

    overrides = {"aggregation": {"calibration": "none"}}
    simulate_and_detect(spark, corpus, n_turns, seed, work, overrides=overrides)
    base = work / f"{corpus}-{n_turns}-s{seed}"
    cfg = load_config(str(base / "logs"), str(base / "run"), overrides=overrides)
    with env.scoped(**{env.DEMO_ENV: "1"}):         # simulated users: the public demo key
        runner.run_all(spark, cfg, STAGES_AFTER_DETECT)
    labels = _read(base / "run" / "labels")
    labels = labels[labels["candidate_intent"].notna()
                    & labels["decision"].isin(("labeled", "low_confidence"))].copy()   # reached the gate
    gold = gold_intents_for_run(base / "gold", base / "run")
    labels["correct"] = label_correct(labels, gold, "text_norm", "candidate_intent")
    labels["corpus"] = corpus
    return labels


def with_content_version(fitted):
    """``fitted`` (a :class:`Calibration` or a :class:`mining.core.rephrase_model.RephraseModel`:
    a frozen dataclass with ``version`` and ``to_dict()``) with ``-<8 hex>`` appended to its
    version: the first 8 hex digits of the sha256 of what it computes with (``to_dict()``
    less ``version`` and ``fit``: the maps as the TOML stores them; the weights, intercept
    and threshold), so manifests tell two fits apart."""
    body = json.dumps({k: v for k, v in fitted.to_dict().items() if k not in ("version", "fit")}, sort_keys=True)
    return dataclasses.replace(fitted, version=f"{fitted.version}-{hashlib.sha256(body.encode()).hexdigest()[:8]}")


def fit(corpora: list[str], n_turns: int, seed: int, work: Path, *, min_users: int,
        out: Path | None, argv: list[str]) -> Calibration:
    """Run :func:`candidate_labels` per corpus, fit, write the TOML to ``out`` (None: packaged).

    :raises ConfigError: ``seed`` is the packaged rephrase scorer's fit seed and a corpus is
        one it was fitted on: its training logs would be inside the calibration's (exit 2)."""
    from mining.core.rephrase_model import load_model
    from mining.errors import ConfigError
    from mining.eval.evaluation import ece
    from mining.spark.session import get_spark

    scorer = load_model(None).fit
    shared = sorted(set(corpora) & set(scorer.get("corpora", [])))
    if seed == scorer.get("seed") and shared:
        raise ConfigError(f"fit-calibration --seed {seed}: the rephrase scorer was fitted on {', '.join(shared)} "
                          f"at this seed; its training logs would be inside the calibration's: pick another seed")

    spark = get_spark("fit-calibration")
    frames = [candidate_labels(spark, c, n_turns, seed, work) for c in corpora]
    data = pd.concat(frames, ignore_index=True)
    data = data[data["text_users"] >= min_users]
    info = {"command": "mining " + shlex.join(argv), "corpora": list(corpora), "seed": seed,
            "turns_per_corpus": n_turns, "min_users": min_users, "labels": int(len(data)),
            "precision": round(float(data["correct"].mean()), 4), "python": sys.version.split()[0]}
    cal = with_content_version(fit_calibration(
        data["raw_score"].to_numpy(), data["correct"].to_numpy(), data["candidate_evidence"].to_numpy(),
        version=f"calibration-isotonic-{'+'.join(corpora)}-s{seed}", fit_info=info))
    conf = cal.apply(data["raw_score"].to_numpy(), data["candidate_evidence"].to_numpy())
    cal.fit["ece_fit"] = round(ece(conf, data["correct"].to_numpy(float)), 4)
    cal.fit["ece_uncalibrated"] = round(ece(data["raw_score"].to_numpy(), data["correct"].to_numpy(float)), 4)
    save_calibration(cal, out or PACKAGED_CALIBRATION)
    log.info("calibration %s: %d labels, ECE raw %.3f → fit %.3f → %s", cal.version, len(data),
             cal.fit["ece_uncalibrated"], cal.fit["ece_fit"], out or PACKAGED_CALIBRATION)
    return cal
