"""Run report: one static, self-contained HTML page per run (``report.html``).

The page opens offline from ``file://``: inline CSS, plots as inline SVG drawn by
matplotlib (no JavaScript, no fonts, images or requests; a Content-Security-Policy meta
tag forbids them anyway). Sections, by element id:

- ``#meta``: dataset version, code version, models, input partitions, locales, logs,
  created-at (the manifest's ``created_at`` when it has one: never the wall clock), and
  the config in a collapsed ``<details>``;
- ``#funnel``: turns (validated input) → friction turns → candidate pairs → accepted
  pairs → labeled texts → exported rows, with % of the previous step, table + bar plot;
  counts from the manifest's frozen copy of each stage's ``_stats.json``;
- ``#locales``: the same counts per locale, computed from the stage outputs (``turns/``,
  ``rephrase_pairs/``, ``labels/``) and the manifest's ``rows_by_locale_intent``;
- ``#confidence``: histogram of exported rows' confidence per evidence kind;
- ``#gold`` (only with gold): headline figures of :func:`mining.eval.evaluation.evaluate`
  (label precision, ECE, retraining lift…) and a reliability diagram (10 confidence bins,
  the bins of :func:`mining.eval.evaluation.ece`, vs the share of right labels per bin);
- ``#clusters``: texts per variant cluster (``clusters/``), log-log histogram;
- ``#variants``: for the top intents by exported rows, their top exported utterances by
  support_users, then confidence, with their evidence;
- ``#drops``: validation rejects, rephrase-candidate decisions, label abstentions and
  export drops, dropped slots and scrubbed PII, each by reason.

Every number a test reads sits in an element with a ``data-metric`` attribute (dotted
name, e.g. ``funnel.accepted_pairs``, ``locale.en-US.turns``) and its raw value in
``data-value``; the text shows it formatted (``20,031``).

**Determinism**: the page is a function of the run's files (and the gold) only: no clock,
no random ids, sorted keys everywhere; SVGs are saved with ``metadata={"Date": None}`` and
a fixed ``svg.hashsalt`` per plot (matplotlib's clip-path ids are salted hashes), so the
same run gives the same bytes (tested).

**Memory**: stage outputs are streamed in Arrow record batches of ``batch_rows`` rows,
reading only the columns a section needs, and reduced to counts as they stream:
O(batch_rows + groups), independent of the run's size. Only the gold section holds
O(turns) rows (the gold join of :func:`mining.eval.evaluation.gold_intents_for_run`, as ``mining evaluate`` does).

User text (utterances, intents, reasons, config values) is escaped with
:func:`html.escape`.
"""
from __future__ import annotations

import heapq
import html
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from mining.eval.evaluation import gold_intents_for_run, label_correct

#: (key, label) of the funnel steps, in order.
FUNNEL = (("turns", "Turns (validated input)"), ("friction_turns", "Friction turns"),
          ("candidate_pairs", "Candidate pairs"), ("accepted_pairs", "Accepted pairs"),
          ("labeled_texts", "Labeled texts"), ("exported_rows", "Exported rows"))
LOCALE_COLUMNS = (("turns", "Turns"), ("friction_turns", "Friction turns"),
                  ("accepted_pairs", "Accepted pairs"), ("labeled_texts", "Labeled texts"),
                  ("exported_rows", "Exported rows"))
CONFIDENCE_BINS = 40        # histogram of exported confidence: bins of 0.025 on [0, 1]
RELIABILITY_BINS = 10       # the bins of mining.eval.evaluation.ece
BATCH_ROWS = 65_536
_EXPORT_COLUMNS = ["locale", "intent", "utterance", "confidence", "support_users", "support_events",
                   "evidence"]
_COLORS = ("#3b6ea8", "#e07b39", "#5a9e4b", "#b0413e", "#7d5ba6", "#8c6d31")


# ---------------------------------------------------------------------------- reading

def iter_batches(path: str | Path, columns: list[str], filter=None, batch_rows: int = BATCH_ROWS):
    """Record batches of a Parquet stage folder (hive partitions, ``_*`` files skipped),
    only ``columns``, rows matching the pyarrow ``filter``; nothing when the folder is
    missing. Memory O(batch_rows · len(columns))."""
    if not Path(path).is_dir():
        return
    for batch in ds.dataset(str(path), format="parquet", partitioning="hive").to_batches(columns=columns, filter=filter, batch_size=batch_rows):
        if batch.num_rows:
            yield batch


def count_by(path: str | Path, keys: list[str], filter=None, batch_rows: int = BATCH_ROWS) -> Counter:
    """Rows per distinct tuple of ``keys`` in a Parquet stage folder, streamed.

    Returns ``Counter({(k1, k2, …): rows})`` (empty when the folder is missing); memory
    O(batch_rows + distinct tuples)."""
    counts: Counter = Counter()
    for batch in iter_batches(path, keys, filter, batch_rows):
        grouped = pa.Table.from_batches([batch]).group_by(keys).aggregate([([], "count_all")])
        for row in grouped.to_pylist():
            counts[tuple(row[k] for k in keys)] += row["count_all"]
    return counts


def _version_dir(out: Path, version_dir: str | Path | None) -> Path:
    if version_dir is not None:
        return Path(version_dir)
    return out / "latest" if (out / "latest" / "manifest.json").exists() else out


def _stage_stats(out: Path, manifest: dict, name: str) -> dict:
    """A stage's counts: the manifest's frozen copy, else ``OUT/<name>/_stats.json``."""
    stats = manifest.get("stages", {}).get(name)
    if stats is None:
        path = out / name / "_stats.json"
        stats = json.loads(path.read_text()) if path.exists() else {}
    return stats


# ---------------------------------------------------------------------------- figures

def funnel_counts(out: str | Path, manifest: dict) -> dict[str, int]:
    """The six funnel counts (keys of :data:`FUNNEL`) from the manifest's stage stats."""
    out = Path(out)
    turns = _stage_stats(out, manifest, "turns")
    pairs = _stage_stats(out, manifest, "rephrase_pairs")
    labels = _stage_stats(out, manifest, "labels")
    return {"turns": int(turns.get("turns", 0)), "friction_turns": int(turns.get("friction_turns", 0)),
            "candidate_pairs": int(pairs.get("candidates", 0)),
            "accepted_pairs": int(pairs.get("accepted_pairs", 0)),
            "labeled_texts": int(labels.get("by_decision", {}).get("labeled", 0)),
            "exported_rows": int(manifest.get("rows", 0))}


def locale_counts(out: str | Path, manifest: dict, batch_rows: int = BATCH_ROWS) -> pd.DataFrame:
    """Per locale (index, sorted): the columns of :data:`LOCALE_COLUMNS`, int64.

    Streams ``turns/`` (locale, is_friction), ``rephrase_pairs/`` (locale where accepted)
    and ``labels/`` (locale where decision = 'labeled'); exported rows come from the
    manifest's ``rows_by_locale_intent``. A locale missing from a stage counts 0."""
    out = Path(out)
    turns = count_by(out / "turns", ["locale", "is_friction"], batch_rows=batch_rows)
    pairs = count_by(out / "rephrase_pairs", ["locale"], pc.field("accepted"), batch_rows)
    labels = count_by(out / "labels", ["locale"], pc.field("decision") == "labeled", batch_rows)
    exported: Counter = Counter()
    for key, n in manifest.get("rows_by_locale_intent", {}).items():
        exported[key.split("/", 1)[0]] += int(n)
    table: dict[str, Counter] = {}
    for (loc, friction), n in turns.items():
        table.setdefault(str(loc), Counter())["turns"] += n
        table[str(loc)]["friction_turns"] += n if friction else 0
    for name, counts in (("accepted_pairs", pairs), ("labeled_texts", labels)):
        for (loc,), n in counts.items():
            table.setdefault(str(loc), Counter())[name] += n
    for loc, n in exported.items():
        table.setdefault(loc, Counter())["exported_rows"] += n
    cols = [c for c, _ in LOCALE_COLUMNS]
    df = pd.DataFrame([[table[loc][c] for c in cols] for loc in sorted(table)],
                      index=pd.Index(sorted(table), name="locale"), columns=cols)
    return df.astype("int64")


def confidence_histogram(version_dir: str | Path, batch_rows: int = BATCH_ROWS) -> dict[str, np.ndarray]:
    """Exported rows per confidence bin, per evidence kind (sorted): int64
    (:data:`CONFIDENCE_BINS`,), bins of equal width on [0, 1], the last one closed."""
    hist: dict[str, np.ndarray] = {}
    for batch in iter_batches(Path(version_dir) / "training_set", ["confidence", "evidence"], None, batch_rows):
        df = batch.to_pandas()
        idx = np.clip((df["confidence"].to_numpy() * CONFIDENCE_BINS).astype(int), 0, CONFIDENCE_BINS - 1)
        for ev, sel in df.groupby("evidence").indices.items():
            hist.setdefault(str(ev), np.zeros(CONFIDENCE_BINS, np.int64))
            hist[str(ev)] += np.bincount(idx[sel], minlength=CONFIDENCE_BINS)
    return dict(sorted(hist.items()))


def cluster_sizes(out: str | Path, batch_rows: int = BATCH_ROWS) -> Counter:
    """``Counter({texts in a cluster: clusters})`` from ``clusters/`` (one medoid row per
    cluster carries its ``cluster_size``)."""
    counts = count_by(Path(out) / "clusters", ["cluster_size"], pc.field("is_medoid"), batch_rows)
    return Counter({int(k[0]): n for k, n in counts.items()})


def top_variants(version_dir: str | Path, manifest: dict, n_intents: int = 10, k: int = 5,
                 batch_rows: int = BATCH_ROWS) -> list[tuple[str, int, pd.DataFrame]]:
    """For the ``n_intents`` (locale, intent) with the most exported rows (ties by name),
    their ``k`` exported rows with the most ``support_users``, then confidence, then
    ``support_events`` (ties by utterance). Returns ``[("locale/intent", rows, frame)]``,
    frame columns :data:`_EXPORT_COLUMNS`. Streams the training set keeping O(n·k) rows."""
    counts = manifest.get("rows_by_locale_intent", {})
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_intents]
    wanted = {key for key, _ in top}
    heaps: dict[str, list] = {key: [] for key in wanted}
    intents = sorted({key.split("/", 1)[1] for key in wanted})
    flt = pc.field("intent").isin(intents) if intents else None
    seq = 0   # last tie-break (file order), so rows never get compared
    for batch in iter_batches(Path(version_dir) / "training_set", _EXPORT_COLUMNS, flt, batch_rows):
        for row in batch.to_pylist():
            key = f"{row['locale']}/{row['intent']}"
            if key in wanted:
                seq -= 1
                rank = (row["support_users"], row["confidence"], row["support_events"], _Desc(row["utterance"]), seq)
                item = (rank, row)
                (heapq.heappush if len(heaps[key]) < k else heapq.heappushpop)(heaps[key], item)
    result = []
    for key, n in top:
        rows = [r for _, r in sorted(heaps[key], key=lambda it: it[0], reverse=True)]
        result.append((key, int(n), pd.DataFrame(rows, columns=_EXPORT_COLUMNS)))
    return result


class _Desc(str):
    """A string that sorts in reverse, so ties rank by utterance ascending in a max-order."""

    def __lt__(self, other):
        return str.__gt__(self, other)

    def __gt__(self, other):
        return str.__lt__(self, other)


# ---------------------------------------------------------------------------- gold

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


# ---------------------------------------------------------------------------- plots

def _rc(name: str) -> dict:
    return {"svg.hashsalt": f"mining-report-{name}", "svg.fonttype": "none", "font.size": 9,
            "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False,
            "axes.grid": True, "grid.color": "#e4e4e4", "grid.linewidth": 0.6, "axes.axisbelow": True}


def _svg(fig, name: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no date), its element ids
    and their references prefixed with ``name-`` so several plots share one page's ids."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):].strip()
    return re.sub(r'(\bid="|url\(#|href="#)', rf"\g<1>{name}-", text)


def _plot(name: str, draw, *args) -> str:
    """Draw ``draw(fig, *args)`` on a fresh matplotlib Figure (no pyplot, no global backend
    switch: ``Figure`` renders with matplotlib's own Agg/SVG canvases) under the report's
    rcParams; returns the SVG text."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_rc(name)):
        fig = Figure(figsize=(7.2, 3.0))
        draw(fig, *args)
        return _svg(fig, name)


def _draw_funnel(fig, counts: dict[str, int]) -> None:
    ax = fig.add_subplot()
    labels = [label for _, label in FUNNEL]
    values = [counts[key] for key, _ in FUNNEL]
    y = np.arange(len(values))
    ax.barh(y, values, color=_COLORS[0])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    top = max(values) or 1
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, f"{v:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("rows")


def _draw_confidence(fig, hist: dict[str, np.ndarray]) -> None:
    ax = fig.add_subplot()
    width = 1 / CONFIDENCE_BINS
    left = np.arange(CONFIDENCE_BINS) * width
    bottom = np.zeros(CONFIDENCE_BINS)
    for i, (ev, counts) in enumerate(hist.items()):
        ax.bar(left, counts, width=width, bottom=bottom, align="edge", color=_COLORS[i % len(_COLORS)],
               edgecolor="white", linewidth=0.4, label=f"{ev} ({int(counts.sum()):,})")
        bottom = bottom + counts
    nonzero = np.flatnonzero(bottom)
    lo = np.floor(nonzero[0] * width * 10) / 10 if len(nonzero) else 0.0
    ax.set_xlim(lo, 1.0)
    ax.set_xlabel("confidence (calibrated)")
    ax.set_ylabel("exported rows")
    if hist:
        ax.legend(frameon=False, title="evidence")


def _draw_reliability(fig, rel: pd.DataFrame) -> None:
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=1, label="perfect calibration")
    width = 1 / RELIABILITY_BINS
    ax.bar(rel["bin"] * width, rel["accuracy"], width=width, align="edge", color=_COLORS[0], alpha=0.35,
           edgecolor=_COLORS[0], label="share of right labels per bin")
    ax.plot(rel["mean_confidence"], rel["accuracy"], "o-", color=_COLORS[1], ms=4, label="(mean confidence, accuracy)")
    for _, r in rel.iterrows():
        ax.text(r["bin"] * width + width / 2, min(r["accuracy"], 0.93) + 0.03, f"n={int(r['rows'])}",
                ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy against gold")
    ax.legend(frameon=False, loc="upper left")


def _draw_clusters(fig, sizes: Counter) -> None:
    ax = fig.add_subplot()
    largest = max(sizes) if sizes else 1
    edges = 2.0 ** np.arange(0, int(np.ceil(np.log2(largest + 1))) + 1)   # [1, 2), [2, 4), …
    values = np.array(sorted(sizes), dtype=float)
    weights = np.array([sizes[int(v)] for v in values], dtype=float)
    ax.hist(values, bins=edges, weights=weights, color=_COLORS[2], edgecolor="white")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("texts per cluster (bins [2^i, 2^(i+1)))")
    ax.set_ylabel("clusters")


# ---------------------------------------------------------------------------- HTML

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _raw(value) -> str:
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def _td(value, metric: str | None = None, text: str | None = None) -> str:
    """A numeric cell: formatted text; ``data-metric`` + raw ``data-value`` when named."""
    attrs = f' data-metric="{_e(metric)}" data-value="{_e(_raw(value))}"' if metric else ""
    return f'<td class="num"{attrs}>{_e(text if text is not None else _fmt(value))}</td>'


def _table(head: list[str], rows: list[str], tid: str | None = None, foot: str = "") -> str:
    ths = "".join(f"<th>{_e(h)}</th>" for h in head)
    idattr = f' id="{_e(tid)}"' if tid else ""
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return f"<table{idattr}><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody>{tfoot}</table>"


def _figure(name: str, svg: str, caption: str) -> str:
    return (f'<figure data-plot="{_e(name)}">{svg}<figcaption>{_e(caption)}</figcaption></figure>')


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>{body}</section>'


def _meta_section(manifest: dict, locales: list[str]) -> str:
    cfg = manifest.get("config", {})
    emb = cfg.get("embedding", {})
    models = {**{f"{k} model": v for k, v in sorted(manifest.get("models", {}).items())},
              "embedding model": f"{emb.get('model_id', '?')} ({', '.join(emb.get('languages', []))}); "
                                 f"other locales: {emb.get('multilingual', '?')}"}
    rows = [("dataset version", manifest.get("dataset_version", "?"), "dataset_version"),
            ("code version", manifest.get("code_version", "?"), "code_version"),
            ("created at", manifest.get("created_at") or "not recorded in the manifest", "created_at"),
            ("input partitions", ", ".join(manifest.get("input_partitions", [])) or "none", "input_partitions"),
            ("locales selected", ", ".join(manifest.get("locales", [])) or "all", "locales_selected"),
            ("locales in the run", ", ".join(locales) or "none", "locales"),
            ("logs", manifest.get("logs", "?"), "logs"),
            *[(k, v, "model." + k.split()[0]) for k, v in models.items()]]
    body = "".join(f'<tr><th>{_e(k)}</th><td data-meta="{_e(m)}">{_e(v)}</td></tr>' for k, v, m in rows)
    config = json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False)
    return _section("meta", "Run", f'<table class="kv">{body}</table>'
                    f'<details id="config"><summary>Config</summary><pre>{_e(config)}</pre></details>')


def _summary(counts: dict[str, int], evaluation: dict | None) -> str:
    cards = [("exported rows", counts["exported_rows"], "exported_rows"),
             ("labeled texts", counts["labeled_texts"], "labeled_texts"),
             ("accepted pairs", counts["accepted_pairs"], "accepted_pairs"),
             ("turns", counts["turns"], "turns")]
    if evaluation:
        cards += [("label precision", evaluation["label_precision"], "label_precision"),
                  ("ECE", evaluation["ece"], "ece")]
    items = "".join(f'<div class="card"><div class="v" data-metric="{_e(m)}" data-value="{_e(_raw(v))}">'
                    f'{_e(_fmt(v))}</div><div class="k">{_e(k)}</div></div>' for k, v, m in cards)
    return f'<div id="summary" class="cards">{items}</div>'


def _funnel_section(counts: dict[str, int]) -> str:
    rows, prev = [], None
    for key, label in FUNNEL:
        n = counts[key]
        pct = n / prev if prev else None
        pct_cell = (f'<td class="num" data-pct="{_e(key)}" data-value="{pct!r}">{pct:.1%}</td>'
                    if pct is not None else '<td class="num">—</td>')
        rows.append(f'<tr data-step="{_e(key)}"><th>{_e(label)}</th>{_td(n, "funnel." + key)}{pct_cell}</tr>')
        prev = n
    table = _table(["step", "count", "% of previous"], rows, "funnel-table")
    note = ("<p class='note'>Candidate pairs can outnumber friction turns: a friction turn has up "
            "to <code>rephrase.max_turn_distance</code> candidate targets. Labeled texts are distinct "
            "failed texts; exported rows are those said by at least <code>privacy.min_users</code> users.</p>")
    return _section("funnel", "Funnel", table + note + _figure("funnel", _plot("funnel", _draw_funnel, counts),
                                                              "Rows at each step of the run."))


def _locales_section(df: pd.DataFrame) -> str:
    rows = []
    for loc, r in df.iterrows():
        cells = "".join(_td(int(r[c]), f"locale.{loc}.{c}") for c, _ in LOCALE_COLUMNS)
        rows.append(f'<tr data-locale="{_e(loc)}"><th>{_e(loc)}</th>{cells}</tr>')
    total = "".join(_td(int(df[c].sum()), f"locale_total.{c}") for c, _ in LOCALE_COLUMNS)
    foot = f'<tr class="total"><th>total</th>{total}</tr>'
    head = ["locale"] + [label for _, label in LOCALE_COLUMNS]
    return _section("locales", "Per locale", _table(head, rows, "locale-table", foot))


def _confidence_section(hist: dict[str, np.ndarray]) -> str:
    rows = [f'<tr data-evidence="{_e(ev)}"><th>{_e(ev)}</th>{_td(int(h.sum()), "evidence." + ev)}</tr>'
            for ev, h in hist.items()]
    table = _table(["evidence", "exported rows"], rows, "evidence-table")
    fig = _figure("confidence", _plot("confidence", _draw_confidence, hist),
                  f"Exported rows per confidence bin of width {1 / CONFIDENCE_BINS:g}, stacked by evidence kind.")
    return _section("confidence", "Confidence of exported rows", table + fig)


_GOLD_FIGURES = (("label_precision", "label precision"),
                 ("label_precision_conf90", "label precision @ confidence ≥ 0.9"),
                 ("labels_conf90", "labels @ confidence ≥ 0.9"), ("ece", "confidence ECE (10 bins)"),
                 ("pair_precision", "pair precision"), ("pair_recall", "pair recall"),
                 ("coverage", "coverage of the oracle texts"),
                 ("coverage_private", "coverage of the k-anonymous oracle texts"),
                 ("acc_seed", "NLU accuracy: seed"), ("acc_seed_mined", "NLU accuracy: seed + mined"),
                 ("acc_seed_oracle", "NLU accuracy: seed + oracle"),
                 ("lift_recovered", "oracle lift recovered"),
                 ("lift_recovered_private", "k-anonymous oracle lift recovered"))


def _gold_section(evaluation: dict, rel: pd.DataFrame | None) -> str:
    rows = []
    for key, label in _GOLD_FIGURES:
        if key in evaluation:
            v = evaluation[key]
            text = f"{v:.1%}" if key.startswith("lift") else None
            rows.append(f'<tr data-gold="{_e(key)}"><th>{_e(label)}</th>{_td(v, "gold." + key, text)}</tr>')
    for ev, v in sorted(evaluation.get("by_evidence", {}).items()):
        rows.append(f'<tr data-gold="by_evidence.{_e(ev)}"><th>{_e(ev)} labels / precision</th>'
                    f'{_td(v["labels"], f"gold.by_evidence.{ev}.labels")}'
                    f'{_td(v["precision"], f"gold.by_evidence.{ev}.precision")}</tr>')
    body = _table(["figure", "value", ""], rows, "gold-table")
    if evaluation.get("by_locale"):
        keys = ("turns", "accepted_pairs", "pair_precision", "labels", "label_precision", "coverage", "lift_recovered")
        loc_rows = [f'<tr data-locale="{_e(loc)}"><th>{_e(loc)}</th>'
                    + "".join(_td(x[k], f"gold.by_locale.{loc}.{k}", f"{x[k]:.1%}" if k.startswith("lift") else None)
                              for k in keys) + "</tr>" for loc, x in evaluation["by_locale"].items()]
        gaps = []
        for m, p in evaluation["locale_parity"].items():
            gap = f"{p['gap_points']:.1f} pts"
            gaps.append(f'<tr data-parity="{_e(m)}"><th>{_e(m.replace("_", " "))}</th>'
                        f'<td>{_e(p["best_locale"])}</td>{_td(p["best"], f"gold.parity.{m}.best")}'
                        f'<td>{_e(p["worst_locale"])}</td>{_td(p["worst"], f"gold.parity.{m}.worst")}'
                        f'{_td(p["gap_points"], f"gold.parity.{m}.gap_points", gap)}</tr>')
        body += "<h3>Per locale</h3>" + _table(["locale", *[k.replace("_", " ") for k in keys]], loc_rows,
                                               "locale-gold-table")
        body += _table(["figure", "best locale", "best", "worst locale", "worst", "gap"], gaps, "parity-table")
    if rel is None:
        body += "<p class='note'>Reliability diagram: pass the gold folder to draw it.</p>"
    else:
        close = lambda b: "]" if b == RELIABILITY_BINS - 1 else ")"  # the last bin holds 1.0
        bins = [f'<tr data-bin="{int(r.bin)}"><th>[{r.bin / RELIABILITY_BINS:.1f}, '
                f'{(r.bin + 1) / RELIABILITY_BINS:.1f}{close(r.bin)}</th>'
                f'{_td(int(r.rows), f"reliability.{int(r.bin)}.rows")}'
                f'{_td(r.mean_confidence, f"reliability.{int(r.bin)}.mean_confidence")}'
                f'{_td(r.accuracy, f"reliability.{int(r.bin)}.accuracy")}</tr>' for r in rel.itertuples()]
        foot = f'<tr class="total"><th>ECE</th><td></td><td></td>{_td(ece_from_bins(rel), "reliability.ece")}</tr>'
        body += _figure("reliability", _plot("reliability", _draw_reliability, rel),
                        "Reliability diagram: share of exported labels that are a gold intent of their text, "
                        "per confidence bin (bars), against the bin's mean confidence (points).")
        body += _table(["confidence bin", "rows", "mean confidence", "accuracy"], bins, "reliability-table", foot)
    return _section("gold", "Against gold", body)


def _clusters_section(sizes: Counter, stats: dict) -> str:
    figures = {"texts": sum(s * n for s, n in sizes.items()), "clusters": sum(sizes.values()),
               "multi_member_clusters": sum(n for s, n in sizes.items() if s > 1),
               "largest_cluster": max(sizes) if sizes else 0}
    rows = [f'<tr><th>{_e(k.replace("_", " "))}</th>{_td(v, "clusters." + k)}</tr>' for k, v in figures.items()]
    body = f'<table class="kv" id="cluster-table">{"".join(rows)}</table>'
    if sizes:
        body += _figure("clusters", _plot("clusters", _draw_clusters, sizes),
                        "Variant clusters by number of texts (log-log).")
    else:
        body += "<p class='note'>No clusters/ output.</p>"
    if stats.get("coarse_parts"):
        parts = json.dumps(stats["coarse_parts"], sort_keys=True)
        body += f"<p class='note'>Locales split by coarse k-means (parts): {_e(parts)}</p>"
    return _section("clusters", "Variant clusters", body)


def _variants_section(top: list[tuple[str, int, pd.DataFrame]], k: int) -> str:
    parts = []
    for key, n, df in top:
        rows = [f'<tr><td class="utt">{_e(r.utterance)}</td>{_td(r.confidence)}{_td(int(r.support_users))}'
                f'{_td(int(r.support_events))}<td>{_e(r.evidence)}</td></tr>' for r in df.itertuples()]
        parts.append(f'<div class="intent" data-intent="{_e(key)}"><h3>{_e(key)} '
                     f'<span class="muted">(<span data-metric="intent_rows.{_e(key)}" data-value="{n}">{n:,}</span>'
                     f' exported rows)</span></h3>'
                     + _table(["utterance", "confidence", "support users", "support events", "evidence"], rows)
                     + "</div>")
    intro = (f"<p class='note'>The intents with the most exported rows; for each, its {k} exported "
             "utterances with the most supporting users, then the highest confidence.</p>")
    return _section("variants", "Top new variants per intent", intro + ("".join(parts) or "<p>No rows.</p>"))


def _reason_table(title: str, prefix: str, counts: dict, sort: bool = True) -> str:
    items = sorted(counts.items()) if sort else counts.items()
    rows = [f'<tr data-reason="{_e(k)}"><th>{_e(k)}</th>{_td(int(v), f"{prefix}.{k}")}</tr>' for k, v in items]
    rows = rows or ['<tr><th class="muted">none</th><td class="num">0</td></tr>']
    table = _table(["reason", "count"], rows)
    return f'<div class="reasons" data-reasons="{_e(prefix)}"><h3>{_e(title)}</h3>{table}</div>'


def _drops_section(manifest: dict, rejects: dict, pairs: dict) -> str:
    validation = {k: rejects[k] for k in ("input", "accepted", "rejected", "sessions_inferred") if k in rejects}
    body = "".join([
        _reason_table("Input validation", "validation", validation, sort=False),
        _reason_table("Rejected input rows (rejects/)", "rejects", rejects.get("by_reason", {})),
        _reason_table("Rephrase candidates by decision", "pair_decisions", pairs.get("by_decision", {})),
        _reason_table("Label abstentions and export drops", "drops", manifest.get("drops", {})),
        _reason_table("Slots dropped at projection", "slots_dropped", manifest.get("slots_dropped", {})),
        _reason_table("PII scrubbed from exported rows", "pii_scrubbed", manifest.get("pii_scrubbed", {})),
    ])
    return _section("drops", "Drop and reject reasons", f'<div class="grid">{body}</div>')


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;
max-width:1120px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#777;font-weight:normal}.note{color:#555;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}thead th{background:#f5f6f8;font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}tfoot tr.total th,tfoot tr.total td{font-weight:600;
border-top:2px solid #ccc}table.kv th{font-weight:500;color:#555;width:180px}
td.utt{max-width:560px;word-break:break-word}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{border:1px solid #e2e2e2;border-radius:6px;
padding:8px 14px;min-width:120px}.card .v{font-size:20px;font-weight:600}.card .k{color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:4px 24px}
figure{margin:8px 0}figure svg{max-width:100%;height:auto}figcaption{font-size:12px;color:#666}
details pre{background:#f7f7f7;padding:8px;font-size:12px;max-height:480px;overflow:auto}
code{background:#f3f3f3;padding:0 3px}
"""
# no script, no network, inline styles only; data: images in case a future plot is a PNG
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def build_report(out: str | Path, gold_dir: str | Path | None = None, *, evaluation: dict | None = None,
                 version_dir: str | Path | None = None, top_intents: int = 10, top_k: int = 5,
                 batch_rows: int = BATCH_ROWS) -> str:
    """The HTML report of the run under ``out`` (the OUT root holding the stage folders).

    ``version_dir``: the dataset version to report (manifest.json + training_set/);
    default ``OUT/latest``. ``gold_dir``: the simulator's gold; with it the page gets the
    reliability diagram and, when ``evaluation`` (the dict of
    :func:`mining.eval.evaluation.evaluate` for this run) is not given, computes it (about 20 s
    for the demo's 20k turns: it retrains the weak NLU). ``evaluation`` alone gives the
    headline figures without the diagram. ``top_intents`` × ``top_k``: size of the
    variants section; ``batch_rows``: rows per streamed Arrow batch.

    Returns the page as ``str``, byte-identical for identical inputs. Raises
    ``FileNotFoundError`` without a manifest, ``ValueError`` when ``evaluation`` is of
    another dataset version."""
    out = Path(out)
    vdir = _version_dir(out, version_dir)
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    if gold_dir is not None and evaluation is None:
        from mining.eval.evaluation import evaluate

        evaluation = evaluate(str(gold_dir), str(out))
    if evaluation is not None and evaluation.get("dataset_version") != manifest.get("dataset_version"):
        raise ValueError(f"evaluation is of {evaluation.get('dataset_version')}, "
                         f"the report of {manifest.get('dataset_version')}")
    counts = funnel_counts(out, manifest)
    per_locale = locale_counts(out, manifest, batch_rows)
    rel = reliability(vdir, gold_intents_for_run(gold_dir, out), batch_rows=batch_rows) if gold_dir is not None else None
    sections = [
        _meta_section(manifest, list(per_locale.index)),
        _funnel_section(counts), _locales_section(per_locale),
        _confidence_section(confidence_histogram(vdir, batch_rows)),
        _gold_section(evaluation, rel) if evaluation is not None else "",
        _clusters_section(cluster_sizes(out, batch_rows), _stage_stats(out, manifest, "clusters")),
        _variants_section(top_variants(vdir, manifest, top_intents, top_k, batch_rows), top_k),
        _drops_section(manifest, _stage_stats(out, manifest, "rejects"), _stage_stats(out, manifest, "rephrase_pairs")),
    ]
    version = manifest.get("dataset_version", "?")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Mining run report {_e(version)}</title><style>{_CSS}</style></head>\n<body>'
            f'<h1>Mining run report <span class="muted">{_e(version)}</span></h1>'
            f'{_summary(counts, evaluation)}{"".join(sections)}</body></html>\n')


def write_report(out: str | Path, path: str | Path, gold_dir: str | Path | None = None, **kwargs) -> Path:
    """Build the report (:func:`build_report`, same keyword arguments) and write it to
    ``path`` atomically (temp file in the same folder + ``os.replace``), UTF-8. Returns
    ``path``."""
    from mining.io.storage import write_text

    return write_text(path, build_report(out, gold_dir, **kwargs))
