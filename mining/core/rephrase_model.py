"""The rephrase scoring model: features, the fitted logistic regression, the operating point.

A candidate pair (a friction turn, a later turn of the same session) is scored

    score = sigmoid(intercept + Σ_f weight_f · x_f)        (0..1)

over the raw features of :data:`FEATURES` (no hidden scaling: every weight reads as "log-odds
per unit of that feature"). The three embedding features are scale-free: cosines expressed
relative to the locale's own background of random-pair cosines in the same run,
(cos − μ)/(1 − μ) (:mod:`mining.core.background`, :func:`scale_free`), so one weight and one threshold
mean the same under MiniLM and the multilingual encoder, in every language. The weights are fitted by ``mining fit-rephrase``: a
scikit-learn ``LogisticRegression`` (L2, on standardized features, converted back to raw
units) on simulator gold from the development corpora, where a candidate is positive when
its two turns pursue the same gold goal with different words and the target's successful
interpretation is the right one (a usable label source). The fitted model ships as a
versioned TOML file, :data:`PACKAGED_MODEL`, with the command that produced it and the fit
figures.

The operating point: per source turn, the best-scoring *eligible* candidate (not a verbatim
repeat, target succeeded; ties → the nearer turn) is accepted when its score ≥ threshold.
The fit chooses the lowest threshold whose precision on the fit data reaches
``target_precision`` (:func:`choose_threshold`); a config may override it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mining.core.friction import SIGNALS
from mining.errors import ConfigError

PACKAGED_MODEL = Path(__file__).resolve().parents[1] / "models" / "rephrase_lr.toml"

#: Model features, all float64, computed by :func:`model_features` from candidate columns.
FEATURES: tuple[str, ...] = (
    "char_sim",                # character n-gram cosine of the normalized texts, 0..1
    "token_sim",               # token edit similarity (script-aware tokens), 0..1
    "embedding_rel",           # embedding cosine relative to the locale's background, ≤ 1
    "length_ratio",            # shorter / longer normalized text length (characters), 0..1
    "log_gap_s",               # ln(1 + seconds between the turns' starts)
    "turn_distance",           # 1 = next turn
    "interpretation_changed",  # target intent differs from the source's (null ≠ anything), 0/1
    "target_succeeded",        # target turn: SUCCESS, an intent, no failure signal (low confidence allowed), 0/1
    "source_nlu_confidence",   # 0..1, null → 0
    "target_nlu_confidence",   # 0..1, null → 0
    "intent_fit_rel",          # cosine of source embedding and target intent's centroid, relative
    "intent_fit_margin_rel",   # (that cosine − best other intent's cosine) / (1 − background mean)
    "intent_fit_log_rank",     # ln(1 + intents closer to the source than the target's)
    *(f"signal_{s}" for s in SIGNALS),  # friction signal fired on the source turn, 0/1
)


#: Relative cosines are clipped to ±REL_CLIP (a missing vector scored 0 under an encoder whose
#: random pairs sit at 0.85 would give -5.7; bounded so it cannot dominate a score).
REL_CLIP = 20.0


def scale_free(cos, mean, *, offset: bool = True) -> np.ndarray:
    """float64 relative cosines ``(cos − mean) / (1 − mean)`` (``offset=False``:
    ``cos / (1 − mean)``, for a difference of two cosines, whose offset cancels), clipped to
    ±:data:`REL_CLIP`. Aligned arrays; ``mean`` is the locale's background mean cosine
    (:class:`mining.core.background.Background`, < 1; ``ValueError`` otherwise). Source:
    the random-pair baseline of Ethayarajh, EMNLP 2019 (module docstring of
    :mod:`mining.core.background`)."""
    cos, mean = np.asarray(cos, dtype=np.float64), np.asarray(mean, dtype=np.float64)
    if (mean >= 1).any():
        raise ValueError("scale_free: background mean cosine must be < 1")
    return np.clip(((cos - mean) if offset else cos) / (1.0 - mean), -REL_CLIP, REL_CLIP)


def model_features(pdf: pd.DataFrame) -> pd.DataFrame:
    """float64 DataFrame (n, len(FEATURES)) from candidate columns.

    Needs ``background_mean`` (the locale's background mean cosine,
    :mod:`mining.core.background`), ``char_sim``, ``token_sim``, ``embedding_cos``, ``source_text_norm``,
    ``target_text_norm``, ``gap_s`` (seconds ≥ 0), ``turn_distance``,
    ``interpretation_changed``, ``target_succeeded``, ``source_nlu_confidence``,
    ``target_nlu_confidence``, ``intent_fit``, ``intent_fit_margin``,
    ``intent_fit_log_rank`` and ``friction_signals`` (sequence of signal names)."""
    ls = pdf["source_text_norm"].str.len().to_numpy(dtype=np.float64)
    lt = pdf["target_text_norm"].str.len().to_numpy(dtype=np.float64)
    longer = np.maximum(np.maximum(ls, lt), 1.0)
    missing = [c for c in ("background_mean",) if c not in pdf.columns]
    if missing:
        raise ValueError(f"model_features: missing columns {missing} (the locale's background, "
                         "mining.core.background; rephrase_pairs/_stats.json has it per run)")
    mu = pdf["background_mean"].to_numpy(np.float64)
    out = {
        "char_sim": pdf["char_sim"].astype(np.float64),
        "token_sim": pdf["token_sim"].astype(np.float64),
        "embedding_rel": pd.Series(scale_free(pdf["embedding_cos"], mu), index=pdf.index),
        "length_ratio": pd.Series(np.minimum(ls, lt) / longer, index=pdf.index),
        "log_gap_s": np.log1p(pdf["gap_s"].astype(np.float64).clip(lower=0.0)),
        "turn_distance": pdf["turn_distance"].astype(np.float64),
        "interpretation_changed": pdf["interpretation_changed"].astype(np.float64),
        "target_succeeded": pdf["target_succeeded"].astype(np.float64),
        "source_nlu_confidence": pdf["source_nlu_confidence"].astype(np.float64).fillna(0.0),
        "target_nlu_confidence": pdf["target_nlu_confidence"].astype(np.float64).fillna(0.0),
        "intent_fit_rel": pd.Series(scale_free(pdf["intent_fit"], mu), index=pdf.index),
        "intent_fit_margin_rel": pd.Series(scale_free(pdf["intent_fit_margin"], mu, offset=False),
                                         index=pdf.index),
        "intent_fit_log_rank": pdf["intent_fit_log_rank"].astype(np.float64),
    }
    fired = [set(s) if s is not None else set() for s in pdf["friction_signals"]]
    for s in SIGNALS:
        out[f"signal_{s}"] = pd.Series([float(s in f) for f in fired], index=pdf.index, dtype=np.float64)
    return pd.DataFrame(out, index=pdf.index)[list(FEATURES)]


@dataclass(frozen=True)
class RephraseModel:
    """A fitted rephrase scorer. ``weights``: feature → log-odds per unit (features missing
    from it weigh 0); ``threshold`` in [0, 1]; ``fit``: provenance and fit figures."""
    version: str
    intercept: float
    weights: dict[str, float]
    threshold: float
    fit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ConfigError(f"rephrase model {self.version}: unknown features {sorted(unknown)}; "
                             f"known: {list(FEATURES)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"rephrase model {self.version}: threshold {self.threshold} not in [0, 1]")

    def score(self, features: pd.DataFrame) -> np.ndarray:
        """float64 (n,) scores in (0, 1) for a :func:`model_features` frame."""
        z = np.full(len(features), self.intercept, dtype=np.float64)
        for name, weight in self.weights.items():
            z += weight * features[name].to_numpy(dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "intercept": self.intercept, "threshold": self.threshold,
                "weights": dict(self.weights), "fit": dict(self.fit)}


def load_model(path: str | Path | None = None) -> RephraseModel:
    """Read a model TOML (``None`` → :data:`PACKAGED_MODEL`). :class:`mining.errors.ConfigError`
    (exit 2) when it is missing or no TOML, lacks a key or a number, on
    unknown features or a threshold outside [0, 1]."""
    path = Path(path) if path else PACKAGED_MODEL
    from mining.io.storage import read_toml

    raw = read_toml(path, "rephrase model file (rephrase.model)")
    try:
        return RephraseModel(version=raw["version"], intercept=float(raw["intercept"]),
                             weights={k: float(v) for k, v in raw["weights"].items()},
                             threshold=float(raw["threshold"]), fit=raw.get("fit", {}))
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:   # a key missing or not a number
        raise ConfigError(f"{path}: not a rephrase model TOML ({type(e).__name__}: {e})") from None


def save_model(model: RephraseModel, path: str | Path) -> None:
    """Write ``model`` as TOML with a header saying how it was made (atomic replace)."""
    from mining.io.storage import write_toml

    write_toml(path, model.to_dict(), header=(
        "# Rephrase scoring model: score = sigmoid(intercept + sum(weights[f] * f)).\n"
        "# Generated by `mining fit-rephrase` (see [fit].command); do not edit by hand:\n"
        "# refit instead. Features are documented in mining/core/rephrase_model.py.\n"))


def best_candidates(cands: pd.DataFrame) -> pd.DataFrame:
    """Per ``source_turn_id``, the eligible candidate (not ``is_repeat``, ``target_succeeded``:
    the rule of :func:`mining.spark.rephrase.score_pairs`) with the highest ``score`` (ties →
    smaller ``turn_distance``, then ``target_turn_id``): what the pipeline accepts when its
    score ≥ threshold. Returns those rows."""
    elig = cands[~cands["is_repeat"].astype(bool) & cands["target_succeeded"].astype(bool)]
    order = elig.sort_values(["source_turn_id", "score", "turn_distance", "target_turn_id"],
                             ascending=[True, False, True, True], kind="stable")
    return order.drop_duplicates("source_turn_id")


def pr_curve(best: pd.DataFrame, n_gold_sources: int, thresholds) -> pd.DataFrame:
    """Precision and recall of accepting ``best`` rows (``score``, bool ``positive``) with
    score ≥ t, for each t. Recall = true accepted sources / ``n_gold_sources``.
    Columns: threshold, accepted, true_pairs, precision (1.0 when none accepted), recall."""
    score = best["score"].to_numpy()
    pos = best["positive"].to_numpy(dtype=bool)
    rows = []
    for t in thresholds:
        acc = score >= t
        n, tp = int(acc.sum()), int((acc & pos).sum())
        rows.append({"threshold": float(t), "accepted": n, "true_pairs": tp,
                     "precision": tp / n if n else 1.0,
                     "recall": tp / n_gold_sources if n_gold_sources else 0.0})
    return pd.DataFrame(rows)


def choose_threshold(best: pd.DataFrame, n_gold_sources: int, target_precision: float) -> float:
    """Lowest threshold on a 0.01 grid whose precision ≥ ``target_precision`` and stays there
    for every higher threshold with accepted pairs (so the choice is not a lucky dip)."""
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    curve = pr_curve(best, n_gold_sources, grid)
    ok = (curve["precision"] >= target_precision).to_numpy()
    # suffix-all: ok at t and at every higher t
    stable = np.flip(np.logical_and.accumulate(np.flip(ok)))
    if not stable.any():
        return 0.99
    return float(grid[np.argmax(stable)])


def fit_model(cands: pd.DataFrame, *, c: float = 1.0, target_precision: float = 0.97,
              seed: int = 0, version: str | None = None, fit_info: dict | None = None) -> RephraseModel:
    """Fit the scorer on labeled candidates.

    ``cands``: one row per non-repeat candidate with the :func:`model_features` inputs plus
    ``positive`` (bool gold), ``is_repeat``, ``source_turn_id``, ``target_turn_id``.
    ``c``: inverse L2 strength of ``sklearn.linear_model.LogisticRegression`` (lbfgs) on
    features standardized with ``StandardScaler``; coefficients are mapped back to raw
    units (w_raw = w / σ, b_raw = b − Σ w·μ/σ). Raises ``ValueError`` with only one class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y = cands["positive"].to_numpy(dtype=bool)
    if y.all() or not y.any():
        raise ValueError("fit_model needs positive and negative candidates")
    x = model_features(cands).to_numpy()
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    lr = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    lr.fit((x - scaler.mean_) / scale, y)
    w = lr.coef_[0] / scale
    b = float(lr.intercept_[0] - np.sum(lr.coef_[0] * scaler.mean_ / scale))
    weights = {f: round(float(v), 6) for f, v in zip(FEATURES, w) if v != 0.0}
    model = RephraseModel(version=version or f"rephrase-lr-{dt.date.today():%Y%m%d}",
                          intercept=round(b, 6), weights=weights, threshold=0.5)
    scored = cands.assign(score=model.score(model_features(cands)))
    best = best_candidates(scored)
    n_gold = int(scored.loc[scored["positive"], "source_turn_id"].nunique())
    threshold = choose_threshold(best, n_gold, target_precision)
    op = pr_curve(best, n_gold, [threshold]).iloc[0]
    info = dict(fit_info or {})
    info.update({"candidates": int(len(cands)), "positives": int(y.sum()), "c": c,
                 "target_precision": target_precision, "fit_precision": round(float(op["precision"]), 4),
                 "fit_recall": round(float(op["recall"]), 4),
                 "sklearn": __import__("sklearn").__version__})
    return RephraseModel(version=model.version, intercept=model.intercept, weights=weights,
                         threshold=threshold, fit=info)

