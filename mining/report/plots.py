"""The run report's plots: matplotlib figures saved as inline SVG text.

No pyplot and no global backend switch: each plot is drawn on a fresh ``Figure`` under
the report's rcParams (:func:`plot`). **Determinism**: SVGs are saved with
``metadata={"Date": None}`` and a fixed ``svg.hashsalt`` per plot name (matplotlib's
clip-path ids are salted hashes), so the same data gives the same bytes.

A caller adding its own figure to the report draws it with :func:`plot` and a ``draw(fig,
*args)`` function of its own, in the palette :data:`COLORS`.
"""
from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np

from mining.report.data import CONFIDENCE_BINS, FUNNEL

COLORS = ("#3b6ea8", "#e07b39", "#5a9e4b", "#b0413e", "#7d5ba6", "#8c6d31")


def rc(name: str) -> dict:
    """The report's rcParams for the plot ``name`` (its ``svg.hashsalt`` is per name)."""
    return {"svg.hashsalt": f"mining-report-{name}", "svg.fonttype": "none", "font.size": 9,
            "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False,
            "axes.grid": True, "grid.color": "#e4e4e4", "grid.linewidth": 0.6, "axes.axisbelow": True}


def svg(fig, name: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no date), its element ids
    and their references prefixed with ``name-`` so several plots share one page's ids."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):].strip()
    return re.sub(r'(\bid="|url\(#|href="#)', rf"\g<1>{name}-", text)


def plot(name: str, draw, *args) -> str:
    """Draw ``draw(fig, *args)`` on a fresh matplotlib Figure (no pyplot, no global backend
    switch: ``Figure`` renders with matplotlib's own Agg/SVG canvases) under the report's
    rcParams; returns the SVG text."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(rc(name)):
        fig = Figure(figsize=(7.2, 3.0))
        draw(fig, *args)
        return svg(fig, name)


def draw_funnel(fig, counts: dict[str, int]) -> None:
    """Horizontal bars: rows at each step of :data:`~mining.report.data.FUNNEL`."""
    ax = fig.add_subplot()
    labels = [label for _, label in FUNNEL]
    values = [counts[key] for key, _ in FUNNEL]
    y = np.arange(len(values))
    ax.barh(y, values, color=COLORS[0])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    top = max(values) or 1
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, f"{v:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("rows")


def draw_confidence(fig, hist: dict[str, np.ndarray]) -> None:
    """Exported rows per confidence bin, stacked by evidence kind."""
    ax = fig.add_subplot()
    width = 1 / CONFIDENCE_BINS
    left = np.arange(CONFIDENCE_BINS) * width
    bottom = np.zeros(CONFIDENCE_BINS)
    for i, (ev, counts) in enumerate(hist.items()):
        ax.bar(left, counts, width=width, bottom=bottom, align="edge", color=COLORS[i % len(COLORS)],
               edgecolor="white", linewidth=0.4, label=f"{ev} ({int(counts.sum()):,})")
        bottom = bottom + counts
    nonzero = np.flatnonzero(bottom)
    lo = np.floor(nonzero[0] * width * 10) / 10 if len(nonzero) else 0.0
    ax.set_xlim(lo, 1.0)
    ax.set_xlabel("confidence (calibrated)")
    ax.set_ylabel("exported rows")
    if hist:
        ax.legend(frameon=False, title="evidence")


def draw_clusters(fig, sizes: Counter) -> None:
    """Clusters by number of texts, log-log, bins [2^i, 2^(i+1))."""
    ax = fig.add_subplot()
    largest = max(sizes) if sizes else 1
    edges = 2.0 ** np.arange(0, int(np.ceil(np.log2(largest + 1))) + 1)   # [1, 2), [2, 4), …
    values = np.array(sorted(sizes), dtype=float)
    weights = np.array([sizes[int(v)] for v in values], dtype=float)
    ax.hist(values, bins=edges, weights=weights, color=COLORS[2], edgecolor="white")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("texts per cluster (bins [2^i, 2^(i+1)))")
    ax.set_ylabel("clusters")
