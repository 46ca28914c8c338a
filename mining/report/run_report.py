"""Run report: one static, self-contained HTML page per run (``report.html``).

The page opens offline from ``file://``: inline CSS, plots as inline SVG drawn by
matplotlib (no JavaScript, no fonts, images or requests; a Content-Security-Policy meta
tag forbids them anyway). Sections, by element id (:data:`SECTIONS`):

- ``#meta``: dataset version, code version, models, input partitions, locales, logs,
  created-at (the manifest's ``created_at`` when it has one: never the wall clock), and
  the config in a collapsed ``<details>``;
- ``#funnel``: turns (validated input) → friction turns → candidate pairs → accepted
  pairs → labeled texts → exported rows, with % of the previous step, table + bar plot;
  counts from the manifest's frozen copy of each stage's ``_stats.json``;
- ``#locales``: the same counts per locale, computed from the stage outputs (``turns/``,
  ``rephrase_pairs/``, ``labels/``) and the manifest's ``rows_by_locale_intent``;
- ``#confidence``: histogram of exported rows' confidence per evidence kind;
- ``#clusters``: texts per variant cluster (``clusters/``), log-log histogram;
- ``#variants``: for the top intents by exported rows, their top exported utterances by
  support_users, then confidence, with their evidence;
- ``#drops``: validation rejects, rephrase-candidate decisions, label abstentions and
  export drops, dropped slots and scrubbed PII, each by reason;
- ``#changelog``: labels added, changed and retired against the previous version, by
  reason, with sample rows (:mod:`mining.report.changelog`).

A caller may add summary cards and whole sections (:func:`build_report`'s ``cards`` and
``sections``); the evaluation report adds its gold figures and reliability diagram that
way, after ``#confidence``. This module reads nothing but the run's files.

Numbers come from :mod:`mining.report.data` (streamed, O(batch_rows + groups) memory),
plots from :mod:`mining.report.plots`, HTML pieces from :mod:`mining.report.markup`
(every figure a test reads carries ``data-metric`` / ``data-value``; user text is
escaped).

**Determinism**: the page is a function of the run's files (and the caller's extra
sections) only: no clock, no random ids, sorted keys everywhere, SVGs without dates and
with a fixed hash salt per plot, so the same run gives the same bytes (tested).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mining.report.changelog import changelog_section
from mining.report.data import (BATCH_ROWS, CONFIDENCE_BINS, FUNNEL, LOCALE_COLUMNS, check_live_outputs,
                                cluster_sizes, confidence_histogram, funnel_counts, locale_counts, read_manifest,
                                resolve_version_dir, stage_stats, top_variants)
from mining.report.markup import (cards as _cards, e as _e, figure as _figure, page as _page,
                                  reason_table as _reason_table, section as _section, table as _table, td as _td)
from mining.report.plots import draw_clusters, draw_confidence, draw_funnel, plot

#: Ids of the built-in sections, in page order (the ``after`` anchors of extra sections).
SECTIONS = ("meta", "funnel", "locales", "confidence", "clusters", "variants", "drops", "changelog")

__all__ = ["FUNNEL", "LOCALE_COLUMNS", "SECTIONS", "build_report", "top_variants", "write_report"]


def _meta_section(manifest: dict, locales: list[str]) -> str:
    cfg = manifest.get("config", {})
    emb = cfg.get("embedding", {})
    # the models that embedded this run as detect_rephrases resolved them (a custom
    # model_path's own cache id; the id names the runtime), with the locales each embedded and
    # the precision its executors ran in; the configured names for an older manifest
    used = manifest.get("stages", {}).get("rephrase_pairs", {}).get("embedding", {}).get("by_model", {})
    embedded = "; ".join(
        f"{mid} ({', '.join(m.get('locales', []))}{'; ' + '/'.join(m['precision']) if m.get('precision') else ''})"
        for mid, m in sorted(used.items())
    ) or (f"{emb.get('model_id', '?')} ({', '.join(emb.get('languages', []))}); "
          f"other locales: {emb.get('multilingual', '?')}")
    models = {**{f"{k} model": v for k, v in sorted(manifest.get("models", {}).items())},
              "embedding model": embedded}
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


def _summary_cards(counts: dict[str, int]) -> list[tuple[str, int, str]]:
    retained = [("retained rows", counts["retained_rows"], "retained_rows")] if counts["retained_rows"] else []
    return [("exported rows", counts["exported_rows"] + counts["retained_rows"], "exported_rows"), *retained,
            ("labeled texts", counts["labeled_texts"], "labeled_texts"),
            ("accepted pairs", counts["accepted_pairs"], "accepted_pairs"),
            ("turns", counts["turns"], "turns")]


def _funnel_section(counts: dict[str, int]) -> str:
    rows, prev = [], None
    for key, label in FUNNEL:   # this run's own steps: retained rows are no step of it
        n = counts[key]
        pct = n / prev if prev else None
        pct_cell = (f'<td class="num" data-pct="{_e(key)}" data-value="{pct!r}">{pct:.1%}</td>'
                    if pct is not None else '<td class="num">—</td>')
        rows.append(f'<tr data-step="{_e(key)}"><th>{_e(label)}</th>{_td(n, "funnel." + key)}{pct_cell}</tr>')
        prev = n
    table = _table(["step", "count", "% of previous"], rows, "funnel-table")
    note = ("<p class='note'>Candidate pairs can outnumber friction turns: a friction turn has up "
            "to <code>rephrase.max_turn_distance</code> candidate targets. Labeled texts are distinct "
            "failed texts; exported rows are those said by at least <code>privacy.min_users</code> users."
            + (f" The version also holds {counts['retained_rows']:,} rows retained from the previous version "
               "(<code>export.label_retention</code>), counted in the summary's exported rows and the "
               "per-locale table, not in this funnel." if counts["retained_rows"] else "") + "</p>")
    return _section("funnel", "Funnel", table + note + _figure("funnel", plot("funnel", draw_funnel, counts),
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


def _confidence_section(hist: dict[str, np.ndarray], failure: dict | None = None) -> str:
    rows = [f'<tr data-evidence="{_e(ev)}"><th>{_e(ev)}</th>{_td(int(h.sum()), "evidence." + ev)}</tr>'
            for ev, h in hist.items()]
    table = _table(["evidence", "exported rows"], rows, "evidence-table")
    fig = _figure("confidence", plot("confidence", draw_confidence, hist),
                  f"Exported rows per confidence bin of width {1 / CONFIDENCE_BINS:g}, stacked by evidence kind.")
    return _section("confidence", "Confidence of exported rows", table + fig + _target_failure_table(failure or {}))


def _target_failure_table(failure: dict) -> str:
    """Per locale, the misread-target mixture the run fitted on its own targets
    (mining/core/target_failure.py): share of misread targets, the two failure rates, the
    targets fitted on, and why a locale kept the plain defect rate."""
    if not failure:
        return ""
    rows = [f'<tr data-locale="{_e(loc)}"><th>{_e(loc)}</th>'
            + _td(int(m.get("informative", 0)), f"target_failure.{loc}.informative")
            + "".join(_td(round(float(m.get(k, 0.0)), 3), f"target_failure.{loc}.{k}")
                      for k in ("share", "rate_ok", "rate_failed"))
            + f'<td>{_e("fitted" if m.get("fitted") else "defect rate")}{_e(": " + m["reason"] if m.get("reason") else "")}'
              "</td></tr>"
            for loc, m in sorted(failure.items())]
    return ("<p class='note'>Misread rephrase targets per locale, fitted on this run's own targets (a two-rate "
            "mixture over the friction of their other turns): each event votes with its score times the "
            "probability that its target was read right.</p>"
            + _table(["locale", "targets with other turns", "misread share", "failure rate (read right)",
                      "failure rate (misread)", "used"], rows, "target-failure-table"))


def _scale_table(derived: dict, used: dict | None = None) -> str:
    """Per locale, what the run derived from its own background (mining/core/background.py):
    texts sampled, where the background came from, its mean/std cosine, and the edge and
    variant cosines used. ``used``: {"cluster_min_sim" | "variant_min_sim": {locale: cosine}}
    as ``cluster_variants`` and ``aggregate_labels`` applied them (a per-locale override, or a
    stage rerun with its own ``*_min_sim_rel``); a locale missing there shows the derived value
    (a run from before those stats were recorded)."""
    if not derived:
        return ""
    used = used or {}

    def cosine(loc: str, d: dict, k: str) -> float:
        return float(used.get(k, {}).get(loc, d.get(k, 0.0)))

    rows = [f'<tr data-locale="{_e(loc)}"><th>{_e(loc)}</th><td>{_e(d.get("source", ""))}</td>'
            f'{_td(int(d.get("n_texts", 0)), f"scale.{loc}.n_texts")}'
            + "".join(_td(round(float(d.get(k, 0.0)), 3), f"scale.{loc}.{k}") for k in ("mean", "std"))
            + "".join(_td(round(cosine(loc, d, k), 3), f"scale.{loc}.{k}")
                      for k in ("cluster_min_sim", "variant_min_sim")) + "</tr>"
            for loc, d in sorted(derived.items())]
    return ("<p class='note'>Similarity scale per locale, derived from this run's own texts "
            "(random same-locale pairs); the edge and variant cosines are those the stages used "
            "(a per-locale override or a stage rerun replaces the derived value).</p>"
            + _table(["locale", "background", "texts", "mean cosine", "std", "edge cosine", "variant cosine"],
                     rows, "scale-table"))


def _clusters_section(sizes: Counter, stats: dict, derived: dict | None = None, labels: dict | None = None) -> str:
    figures = {"texts": sum(s * n for s, n in sizes.items()), "clusters": sum(sizes.values()),
               "multi_member_clusters": sum(n for s, n in sizes.items() if s > 1),
               "largest_cluster": max(sizes) if sizes else 0}
    rows = [f'<tr><th>{_e(k.replace("_", " "))}</th>{_td(v, "clusters." + k)}</tr>' for k, v in figures.items()]
    body = f'<table class="kv" id="cluster-table">{"".join(rows)}</table>'
    if sizes:
        body += _figure("clusters", plot("clusters", draw_clusters, sizes),
                        "Variant clusters by number of texts (log-log).")
    else:
        body += "<p class='note'>No clusters/ output.</p>"
    if stats.get("coarse_parts"):
        parts = json.dumps(stats["coarse_parts"], sort_keys=True)
        body += f"<p class='note'>Locales split by coarse k-means (parts): {_e(parts)}</p>"
    body += _scale_table(derived or {}, {"cluster_min_sim": stats.get("min_sim_by_locale", {}),
                                         "variant_min_sim": (labels or {}).get("variant_min_sim_by_locale", {})})
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


def build_report(out: str | Path, *, version_dir: str | Path | None = None, cards=(), sections=(),
                 top_intents: int = 10, top_k: int = 5, batch_rows: int = BATCH_ROWS) -> str:
    """The HTML report of the run under ``out`` (the OUT root holding the stage folders).

    ``version_dir``: the dataset version to report (manifest.json + training_set/);
    default ``OUT/latest``. ``cards``: extra summary cards, ``(label, value, metric)``,
    after the run's four. ``sections``: extra sections, ``(after, html)`` pairs, each
    placed after the built-in section of id ``after`` (one of :data:`SECTIONS`; several
    after the same one keep their order); build their HTML with
    :mod:`mining.report.markup` and :func:`mining.report.plots.plot`.
    ``top_intents`` × ``top_k``: size of the variants section; ``batch_rows``: rows per
    streamed Arrow batch. Raises :class:`mining.errors.StageOutputMismatch` when the stage
    folders come from another run than the version
    (:func:`~mining.report.data.check_live_outputs`).

    Returns the page as ``str``, byte-identical for identical inputs. Raises
    ``FileNotFoundError`` without a manifest, ``ValueError`` for an unknown ``after``."""
    extra: dict[str, list[str]] = {sid: [] for sid in SECTIONS}
    for after, html in sections:
        if after not in extra:
            raise ValueError(f"extra section after {after!r}: not one of {', '.join(SECTIONS)}")
        extra[after].append(html)
    out = Path(out)
    vdir = resolve_version_dir(out, version_dir)
    manifest = read_manifest(vdir)
    check_live_outputs(out, manifest)
    counts = funnel_counts(out, manifest)
    per_locale = locale_counts(out, manifest, batch_rows)
    built = {
        "meta": _meta_section(manifest, list(per_locale.index)),
        "funnel": _funnel_section(counts), "locales": _locales_section(per_locale),
        "confidence": _confidence_section(confidence_histogram(vdir, batch_rows),
                                          stage_stats(out, manifest, "labels").get("target_failure")),
        "clusters": _clusters_section(cluster_sizes(out, batch_rows), stage_stats(out, manifest, "clusters"),
                                      stage_stats(out, manifest, "rephrase_pairs").get("background"),
                                      stage_stats(out, manifest, "labels")),
        "variants": _variants_section(top_variants(vdir, manifest, top_intents, top_k, batch_rows), top_k),
        "drops": _drops_section(manifest, stage_stats(out, manifest, "rejects"),
                                stage_stats(out, manifest, "rephrase_pairs")),
        "changelog": changelog_section(manifest, vdir),
    }
    body = [html for sid in SECTIONS for html in (built[sid], *extra[sid])]
    summary = _cards([*_summary_cards(counts), *cards])
    return _page(manifest.get("dataset_version", "?"), summary, body)


def write_report(out: str | Path, path: str | Path, **kwargs) -> Path:
    """Build the report (:func:`build_report`, same keyword arguments) and write it to
    ``path`` atomically (temp file in the same folder + ``os.replace``), UTF-8. Returns
    ``path``."""
    from mining.io.storage import write_text

    return write_text(path, build_report(out, **kwargs))
