"""The evaluation report: the run report of :mod:`mining.report.run_report` plus a
``#gold`` section after ``#confidence`` and two summary cards (label precision, ECE).

``#gold`` holds the headline figures of :func:`mining.eval.evaluation.evaluate` (label
precision, ECE, retraining lift…, per evidence kind and, for a multi-locale run, per
locale with the locale parity gaps) and, when the gold folder is given, a reliability
diagram: 10 confidence bins, the bins of :func:`mining.eval.evaluation.ece`, against the
share of right labels per bin.

Written by ``mining evaluate`` (``OUT/evaluation/report.html`` by default); the production
path only ever writes the plain run report. The page is deterministic as the run report
is; only the reliability diagram holds more than counts: the gold join of
:func:`mining.eval.evaluation.gold_intents_for_run` (O(turns) rows, as ``mining evaluate``
does), while the training set is still streamed in batches.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mining.eval.evaluation import evaluate, gold_intents_for_run, label_correct
from mining.report.data import BATCH_ROWS, iter_batches, read_manifest, resolve_version_dir
from mining.report.markup import e, figure, section, table, td
from mining.report.plots import COLORS, plot
from mining.report.run_report import build_report

RELIABILITY_BINS = 10       # the bins of mining.eval.evaluation.ece

#: (key, label) of the figures of evaluate() shown in the gold table, when present.
GOLD_FIGURES = (("label_precision", "label precision"),
                ("label_precision_conf90", "label precision @ confidence ≥ 0.9"),
                ("labels_conf90", "labels @ confidence ≥ 0.9"), ("ece", "confidence ECE (10 bins)"),
                ("pair_precision", "pair precision"), ("pair_recall", "pair recall"),
                ("coverage", "coverage of the oracle texts"),
                ("coverage_private", "coverage of the k-anonymous oracle texts"),
                ("acc_seed", "NLU accuracy: seed"), ("acc_seed_mined", "NLU accuracy: seed + mined"),
                ("acc_seed_oracle", "NLU accuracy: seed + oracle"),
                ("lift_recovered", "oracle lift recovered"),
                ("lift_recovered_private", "k-anonymous oracle lift recovered"))


# ---------------------------------------------------------------------------- figures

def reliability(version_dir: str | Path, gold: dict[str, set], bins: int = RELIABILITY_BINS,
                batch_rows: int = BATCH_ROWS) -> pd.DataFrame:
    """Per confidence bin (``bin`` b covers [b/bins, (b+1)/bins), the last one closed, as
    in :func:`mining.eval.evaluation.ece`): ``rows``, ``mean_confidence``, ``accuracy`` (share
    of exported rows whose label is right, :func:`label_correct`); empty bins are omitted.
    Streams the training set: O(batch_rows + bins)."""
    n, conf, right = np.zeros(bins), np.zeros(bins), np.zeros(bins)
    cols = ["utterance", "intent", "confidence"]
    for batch in iter_batches(Path(version_dir) / "training_set", cols, None, batch_rows):
        df = batch.to_pandas()
        c = df["confidence"].to_numpy(dtype=float)
        idx = np.minimum((c * bins).astype(int), bins - 1)
        n += np.bincount(idx, minlength=bins)
        conf += np.bincount(idx, weights=c, minlength=bins)
        right += np.bincount(idx, weights=label_correct(df, gold).astype(float), minlength=bins)
    keep = n > 0
    return pd.DataFrame({"bin": np.arange(bins)[keep], "rows": n[keep].astype(np.int64),
                         "mean_confidence": conf[keep] / n[keep], "accuracy": right[keep] / n[keep]})


def ece_from_bins(rel: pd.DataFrame) -> float:
    """Expected calibration error Σ_b |B|/n · |acc(B) − conf(B)| from :func:`reliability`."""
    total = rel["rows"].sum()
    return float((rel["rows"] / total * (rel["accuracy"] - rel["mean_confidence"]).abs()).sum()) if total else 0.0


def draw_reliability(fig, rel: pd.DataFrame) -> None:
    """Accuracy per confidence bin (bars) and (mean confidence, accuracy) points against
    the diagonal of perfect calibration."""
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=1, label="perfect calibration")
    width = 1 / RELIABILITY_BINS
    ax.bar(rel["bin"] * width, rel["accuracy"], width=width, align="edge", color=COLORS[0], alpha=0.35,
           edgecolor=COLORS[0], label="share of right labels per bin")
    ax.plot(rel["mean_confidence"], rel["accuracy"], "o-", color=COLORS[1], ms=4, label="(mean confidence, accuracy)")
    for _, r in rel.iterrows():
        ax.text(r["bin"] * width + width / 2, min(r["accuracy"], 0.93) + 0.03, f"n={int(r['rows'])}",
                ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy against gold")
    ax.legend(frameon=False, loc="upper left")


# ---------------------------------------------------------------------------- HTML

def gold_cards(evaluation: dict | None) -> list[tuple[str, float, str]]:
    """The summary cards of the evaluation: label precision and ECE (none without one)."""
    if not evaluation:
        return []
    return [("label precision", evaluation["label_precision"], "label_precision"),
            ("ECE", evaluation["ece"], "ece")]


def gold_section(evaluation: dict, rel: pd.DataFrame | None) -> str:
    """The ``#gold`` section: :data:`GOLD_FIGURES` of ``evaluation``, by evidence kind, per
    locale and parity (when evaluated per locale), and the reliability diagram of ``rel``
    (:func:`reliability`; a note instead when ``None``)."""
    rows = []
    for key, label in GOLD_FIGURES:
        if key in evaluation:
            v = evaluation[key]
            text = f"{v:.1%}" if key.startswith("lift") else None
            rows.append(f'<tr data-gold="{e(key)}"><th>{e(label)}</th>{td(v, "gold." + key, text)}</tr>')
    for ev, v in sorted(evaluation.get("by_evidence", {}).items()):
        rows.append(f'<tr data-gold="by_evidence.{e(ev)}"><th>{e(ev)} labels / precision</th>'
                    f'{td(v["labels"], f"gold.by_evidence.{ev}.labels")}'
                    f'{td(v["precision"], f"gold.by_evidence.{ev}.precision")}</tr>')
    body = table(["figure", "value", ""], rows, "gold-table")
    if evaluation.get("by_locale"):
        keys = ("turns", "accepted_pairs", "pair_precision", "labels", "label_precision", "coverage", "lift_recovered",
                "accuracy_delta")

        def shown(x: dict, k: str) -> str | None:
            if k.startswith("lift"):
                return f"{x[k]:.1%}"
            return f"{100 * x[k]:+.1f} pts" if k == "accuracy_delta" else None

        loc_rows = [f'<tr data-locale="{e(loc)}"><th>{e(loc)}</th>'
                    + "".join(td(x.get(k, float("nan")), f"gold.by_locale.{loc}.{k}",
                                 shown(x, k) if k in x else None) for k in keys)
                    + "</tr>" for loc, x in evaluation["by_locale"].items()]
        gaps = []
        for m, p in evaluation["locale_parity"].items():
            gap = f"{p['gap_points']:.1f} pts"
            gaps.append(f'<tr data-parity="{e(m)}"><th>{e(m.replace("_", " "))}</th>'
                        f'<td>{e(p["best_locale"])}</td>{td(p["best"], f"gold.parity.{m}.best")}'
                        f'<td>{e(p["worst_locale"])}</td>{td(p["worst"], f"gold.parity.{m}.worst")}'
                        f'{td(p["gap_points"], f"gold.parity.{m}.gap_points", gap)}</tr>')
        body += "<h3>Per locale</h3>" + table(["locale", *[k.replace("_", " ") for k in keys]], loc_rows,
                                              "locale-gold-table")
        body += table(["figure", "best locale", "best", "worst locale", "worst", "gap"], gaps, "parity-table")
    if rel is None:
        body += "<p class='note'>Reliability diagram: pass the gold folder to draw it.</p>"
    else:
        close = lambda b: "]" if b == RELIABILITY_BINS - 1 else ")"  # the last bin holds 1.0
        bins = [f'<tr data-bin="{int(r.bin)}"><th>[{r.bin / RELIABILITY_BINS:.1f}, '
                f'{(r.bin + 1) / RELIABILITY_BINS:.1f}{close(r.bin)}</th>'
                f'{td(int(r.rows), f"reliability.{int(r.bin)}.rows")}'
                f'{td(r.mean_confidence, f"reliability.{int(r.bin)}.mean_confidence")}'
                f'{td(r.accuracy, f"reliability.{int(r.bin)}.accuracy")}</tr>' for r in rel.itertuples()]
        foot = f'<tr class="total"><th>ECE</th><td></td><td></td>{td(ece_from_bins(rel), "reliability.ece")}</tr>'
        body += figure("reliability", plot("reliability", draw_reliability, rel),
                       "Reliability diagram: share of exported labels that are a gold intent of their text, "
                       "per confidence bin (bars), against the bin's mean confidence (points).")
        body += table(["confidence bin", "rows", "mean confidence", "accuracy"], bins, "reliability-table", foot)
    return section("gold", "Against gold", body)


# ---------------------------------------------------------------------------- the page

def evaluation_extras(out: str | Path, gold_dir: str | Path | None = None, *, evaluation: dict | None = None,
                      version_dir: str | Path | None = None, batch_rows: int = BATCH_ROWS) -> dict:
    """The keyword arguments ``cards`` and ``sections`` that turn
    :func:`mining.report.run_report.build_report` into the evaluation report.

    ``gold_dir``: the simulator's gold; with it the page gets the reliability diagram and,
    when ``evaluation`` (the dict of :func:`mining.eval.evaluation.evaluate` for this run)
    is not given, computes it (about 20 s for the demo's 20k turns: it retrains the weak
    NLU). ``evaluation`` alone gives the headline figures without the diagram; neither
    gives no extras (the plain run report). Raises ``FileNotFoundError`` without a
    manifest, ``ValueError`` when ``evaluation`` is of another dataset version."""
    vdir = resolve_version_dir(out, version_dir)
    manifest = read_manifest(vdir)
    if gold_dir is not None and evaluation is None:
        evaluation = evaluate(str(gold_dir), str(out))
    if evaluation is None:
        return {"cards": [], "sections": []}
    if evaluation.get("dataset_version") != manifest.get("dataset_version"):
        raise ValueError(f"evaluation is of {evaluation.get('dataset_version')}, "
                         f"the report of {manifest.get('dataset_version')}")
    rel = (reliability(vdir, gold_intents_for_run(gold_dir, out), batch_rows=batch_rows)
           if gold_dir is not None else None)
    return {"cards": gold_cards(evaluation), "sections": [("confidence", gold_section(evaluation, rel))]}


def build_evaluation_report(out: str | Path, gold_dir: str | Path | None = None, *,
                            evaluation: dict | None = None, version_dir: str | Path | None = None,
                            batch_rows: int = BATCH_ROWS, **kwargs) -> str:
    """The run report of ``out`` with the gold figures (:func:`evaluation_extras`); other
    keyword arguments (``top_intents``, ``top_k``) as
    :func:`mining.report.run_report.build_report`. Byte-identical for identical inputs."""
    vdir = resolve_version_dir(out, version_dir)   # once: a publish in between cannot mix two versions
    extras = evaluation_extras(out, gold_dir, evaluation=evaluation, version_dir=vdir, batch_rows=batch_rows)
    return build_report(out, version_dir=vdir, batch_rows=batch_rows, **extras, **kwargs)


def write_evaluation_report(out: str | Path, path: str | Path, gold_dir: str | Path | None = None, *,
                            evaluation: dict | None = None, **kwargs) -> Path:
    """:func:`build_evaluation_report` (same arguments) written to ``path`` atomically (temp
    file in the same folder + ``os.replace``), UTF-8. Returns ``path``."""
    from mining.io.storage import write_text

    return write_text(path, build_evaluation_report(out, gold_dir, evaluation=evaluation, **kwargs))
