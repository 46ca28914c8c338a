"""Calibrated label confidence: isotonic maps from a raw aggregation score to P(label right).

The raw score of a weak label is the lower credible bound of its top intent's share
(:mod:`mining.core.aggregation`). It orders labels well but is not a probability of being right:
a label passed on from a silently wrong interpretation can have a high bound. Isotonic
regression (Zadrozny & Elkan, KDD 2002; ``sklearn.isotonic.IsotonicRegression``) fits the
monotone map raw score → empirical precision on simulator gold, one map per evidence kind
(``rephrase``, ``variant``), because the two kinds err differently at the same score.

A fitted map is a versioned TOML file (default: the packaged
``mining/models/calibration.toml``), written by ``mining fit-calibration`` with the exact
command in ``[fit].command``. Each map is the breakpoints ``x`` (raw scores, increasing) and
``y`` (calibrated confidence, non-decreasing) of sklearn's piecewise-linear isotonic
prediction; :meth:`Calibration.apply` evaluates it with ``numpy.interp`` (constant beyond
the ends, as ``out_of_bounds="clip"``), so applying needs neither sklearn nor the fit data.
``identity`` (config ``aggregation.calibration = "none"``) returns the raw score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mining.errors import ConfigError

PACKAGED_CALIBRATION = Path(__file__).resolve().parents[1] / "models" / "calibration.toml"
EVIDENCE_KINDS = ("rephrase", "variant")


@dataclass(frozen=True)
class Calibration:
    """Per evidence kind, the isotonic breakpoints ``(x, y)`` (float64 arrays, same length).

    ``maps`` empty = identity. An evidence kind without a map of its own uses ``pooled``."""
    version: str
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    fit: dict = field(default_factory=dict)

    def apply(self, raw: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        """Calibrated confidence (float64, in [0, 1]) of raw scores ``raw`` (n,) whose labels
        have evidence ``evidence`` (n,, str). NaN raw scores stay NaN."""
        raw = np.asarray(raw, dtype=np.float64)
        if not self.maps:
            return raw.copy()
        out = np.full(len(raw), np.nan)
        evidence = np.asarray(evidence, dtype=object)
        for kind in set(evidence[~np.isnan(raw)]):
            x, y = self.maps.get(kind) or self.maps["pooled"]
            sel = (evidence == kind) & ~np.isnan(raw)
            out[sel] = np.interp(raw[sel], x, y)
        return out

    def to_dict(self) -> dict:
        # full precision: breakpoints rounded to 6 decimals collapsed sklearn's distinct
        # thresholds into repeated x (0.05, 0.05, 0.05), where numpy.interp's value is undefined
        return {"version": self.version,
                **{k: {"x": [float(v) for v in x], "y": [float(v) for v in y]}
                   for k, (x, y) in sorted(self.maps.items())},
                "fit": self.fit}


IDENTITY = Calibration(version="none")


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Read a calibration TOML (``None``/"" → :data:`PACKAGED_CALIBRATION`; "none" →
    :data:`IDENTITY`). :class:`mining.errors.ConfigError` (exit 2) if it is missing or no
    TOML, lacks ``version`` or a map's ``x``/``y``, a map's ``x`` decreases, its ``y``
    decreases or leaves [0, 1], or no ``pooled`` map exists. Breakpoints sharing an ``x``
    (rounded on saving, as maps written before full precision were) become a step
    (:func:`_split_repeats`)."""
    if str(path) == "none":
        return IDENTITY
    path = Path(path) if path else PACKAGED_CALIBRATION
    from mining.io.storage import read_toml

    raw = read_toml(path, "calibration file (aggregation.calibration)")
    maps = {}
    for kind in (*EVIDENCE_KINDS, "pooled"):
        if kind not in raw:
            continue
        try:
            x, y = np.asarray(raw[kind]["x"], float), np.asarray(raw[kind]["y"], float)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: [{kind}] needs arrays of numbers x and y "
                              f"({type(e).__name__}: {e})") from None
        if x.ndim != 1 or y.ndim != 1 or len(x) != len(y) or len(x) == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()) \
                or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0) or y.min() < 0 or y.max() > 1:
            raise ConfigError(f"{path}: [{kind}] must have finite x non-decreasing and y non-decreasing in [0, 1]")
        maps[kind] = _split_repeats(x, y)
    if "pooled" not in maps:
        raise ConfigError(f"{path}: needs a [pooled] map")
    if not isinstance(raw.get("version"), str):
        raise ConfigError(f"{path}: needs a version string")
    return Calibration(version=raw["version"], maps=maps, fit=raw.get("fit", {}))


def _split_repeats(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints with each run of a repeated ``x`` (thresholds a save rounded together)
    turned into a step: ``(x, first y)`` then ``(next float above x, last y)``. At ``x`` the
    map gives the lowest rounded threshold's value and just above it the highest's, as the
    full-precision map did within the rounding; numpy.interp's value at a repeated x is undefined."""
    keep_first = np.concatenate([[True], np.diff(x) > 0])
    keep_last = np.concatenate([np.diff(x) > 0, [True]])
    xs, ys = [], []
    for i in range(len(x)):
        if keep_first[i]:
            xs.append(x[i]), ys.append(y[i])
        step = np.nextafter(x[i], np.inf)
        if keep_last[i] and not keep_first[i] and (i + 1 == len(x) or step < x[i + 1]):
            xs.append(step), ys.append(y[i])         # the end of a run: step just above x
    return np.asarray(xs), np.asarray(ys)


def save_calibration(cal: Calibration, path: str | Path) -> None:
    """Write ``cal`` as TOML with a header saying how it was made (atomic replace)."""
    from mining.io.storage import write_toml

    write_toml(path, cal.to_dict(), header=(
        "# Label-confidence calibration: isotonic maps raw score -> P(label right), per evidence.\n"
        "# Generated by `mining fit-calibration` (see [fit].command); do not edit by hand:\n"
        "# refit instead. Method: mining/core/calibration.py.\n"))


#: Fewest labels of an evidence kind for a map of its own (else it uses the pooled map).
MIN_PER_KIND = 200


def fit_isotonic(raw: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of the isotonic fit of ``correct`` (n,, bool) on ``raw`` (n,, float).

    ``ValueError`` on fewer than 2 distinct scores (nothing to fit)."""
    from sklearn.isotonic import IsotonicRegression

    raw, correct = np.asarray(raw, float), np.asarray(correct, float)
    if len(np.unique(raw)) < 2:
        raise ValueError("isotonic calibration needs at least 2 distinct raw scores")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(raw, correct)
    return iso.X_thresholds_.astype(float), iso.y_thresholds_.astype(float)


def fit_calibration(raw: np.ndarray, correct: np.ndarray, evidence: np.ndarray, *, version: str,
                    min_per_kind: int = MIN_PER_KIND, fit_info: dict | None = None) -> Calibration:
    """One isotonic map per evidence kind with at least ``min_per_kind`` labels and two
    distinct raw scores, and a ``pooled`` map over all labels (the fallback for the others).

    ``raw`` (n,) float raw scores, ``correct`` (n,) bool gold, ``evidence`` (n,) str.
    ``ValueError`` when all labels share one raw score (:func:`fit_isotonic`)."""
    raw, correct, evidence = np.asarray(raw, float), np.asarray(correct, bool), np.asarray(evidence, object)
    maps = {"pooled": fit_isotonic(raw, correct)}
    counts = {}
    for kind in EVIDENCE_KINDS:
        sel = evidence == kind
        counts[kind] = int(sel.sum())
        if sel.sum() >= min_per_kind and len(np.unique(raw[sel])) >= 2:
            maps[kind] = fit_isotonic(raw[sel], correct[sel])
    info = {**(fit_info or {}), "labels_by_evidence": counts, "min_per_kind": min_per_kind}
    return Calibration(version=version, maps=maps, fit=info)
