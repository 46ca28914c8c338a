"""The curves of a simulated self-learning loop (:mod:`mining.eval.loop`): ``loop.html`` and ``loop.png``.

Three panels over the nights: NLU accuracy (the NLU that served the night, the NLU retrained
on the night's training set, the oracle), defect and friction rates, and the label changes
(added, changed, retired, retained) with the label precision of the published training set.
Drawn with matplotlib on fresh ``Figure`` objects (no pyplot) under the run report's style
(:mod:`mining.report.plots`); the same records give the same bytes.
"""
from __future__ import annotations

import html
from pathlib import Path

from mining.report.plots import COLORS, plot, rc


def draw_curves(fig, records: list[dict]) -> None:
    """Three side-by-side axes on ``fig`` from the loop's per-night ``records``."""
    nights = [r["night"] for r in records]
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for key, label, color in (("serving_accuracy", "serving NLU", COLORS[0]),
                              ("nlu_accuracy", "retrained on mined", COLORS[2]),
                              ("oracle_accuracy", "oracle (gold failures)", COLORS[3])):
        ax1.plot(nights, [r[key] for r in records], marker="o", ms=3, color=color, label=label)
    ax1.set(title="NLU accuracy (test split)", xlabel="night")
    ax1.legend(fontsize=7, frameon=False)
    ax2.plot(nights, [r["defect_rate"] for r in records], marker="o", ms=3, color=COLORS[3], label="defect rate (gold)")
    ax2.plot(nights, [r["friction_rate"] for r in records], marker="o", ms=3, color=COLORS[1], label="friction rate")
    ax2.set(title="Defects per turn", xlabel="night", ylim=(0, None))
    ax2.legend(fontsize=7, frameon=False)
    width = 0.2
    for i, (key, color) in enumerate((("added", COLORS[2]), ("changed", COLORS[1]), ("retired", COLORS[3]),
                                      ("retained", COLORS[0]))):
        ax3.bar([n + (i - 1.5) * width for n in nights], [r[key] for r in records], width, color=color, label=key)
    ax3.set(title="Labels per night", xlabel="night")
    ax3.legend(fontsize=7, frameon=False, loc="upper left")
    prec = ax3.twinx()
    # a night without labels has no precision: a gap in the line, not 0
    prec.plot(nights, [float("nan") if r["label_precision"] is None else r["label_precision"] for r in records],
              color="black", marker="s", ms=3, lw=1)
    # down to the lowest night's precision: the nights that miss the target stay on the chart
    lowest = min((r["label_precision"] for r in records if r["label_precision"] is not None), default=1.0)
    prec.set_ylim(min(0.8, lowest - 0.02), 1.0)
    prec.set_ylabel("label precision", fontsize=8)
    prec.grid(False)
    fig.set_size_inches(11, 3.2)


def build_loop_report(doc: dict) -> str:
    """``loop.json``'s content (``config``, ``records``, ``targets``) as one HTML page."""
    from mining.eval.loop import format_table

    cfg, records, targets = doc["config"], doc["records"], doc["targets"]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(t['value']))}</td>"
                   f"<td>{html.escape(str(t.get('target', '')))}</td><td>{'met' if t['met'] else 'MISSED'}</td></tr>"
                   for k, t in targets.items())
    return ("<!doctype html><html><head><meta charset='utf-8'><title>self-learning loop</title>"
            "<style>body{font:14px sans-serif;margin:2em;max-width:75em}td,th{padding:2px 8px;text-align:left}"
            "pre{background:#f6f6f6;padding:8px}</style></head><body>"
            f"<h1>Self-learning loop: {len(records)} nights</h1>"
            f"<p>{html.escape(', '.join(f'{k}={v}' for k, v in cfg.items()))}</p>"
            f"<section id='curves'>{plot('loop', draw_curves, records)}</section>"
            f"<section id='targets'><h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>goal</th>"
            f"<th></th></tr>{rows}</table></section>"
            f"<section id='nights'><h2>Per night</h2><pre>{html.escape(format_table(records))}</pre></section>"
            "</body></html>\n")


def write_loop_report(doc: dict, html_path: str | Path, png_path: str | Path | None = None) -> None:
    """Write :func:`build_loop_report` to ``html_path`` and the curves as a PNG (100 dpi), each
    atomically (:func:`mining.io.storage.write_bytes`)."""
    import io

    import matplotlib
    from matplotlib.figure import Figure

    from mining.io import storage

    storage.write_text(html_path, build_loop_report(doc))
    if png_path is not None:
        with matplotlib.rc_context(rc("loop")):
            fig = Figure()
            draw_curves(fig, doc["records"])
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        storage.write_bytes(png_path, buf.getvalue())
