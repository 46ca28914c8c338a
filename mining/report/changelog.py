"""The run report's ``#changelog`` section: what this version changed against the previous one.

Counts by change (``added``, ``changed``, ``retired``) and by reason come from the manifest's
``changelog`` entry; a few sample rows of each change from the version's ``changelog.jsonl``
(:mod:`mining.io.changelog`), read line by line and kept only up to ``samples`` per change,
so memory does not grow with the file. A version exported before changelogs existed says so.
"""
from __future__ import annotations

import json
from pathlib import Path

from mining.io.changelog import CHANGES
from mining.report.markup import e as _e, reason_table, section as _section, table as _table, td as _td


def sample_changes(version_dir: str | Path, samples: int = 3) -> dict[str, list[dict]]:
    """The first ``samples`` rows of each change in ``version_dir/changelog.jsonl`` (file
    order: locale, change, utterance); {} when the file is missing."""
    path = Path(version_dir) / "changelog.jsonl"
    picked: dict[str, list[dict]] = {c: [] for c in CHANGES}
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            rows = picked.setdefault(str(rec.get("change")), [])
            if len(rows) < samples:
                rows.append(rec)
    return picked


def _label(intent, annot) -> str:
    if intent is None:
        return "—"
    return f"{intent}: {annot}" if annot else str(intent)


def changelog_section(manifest: dict, version_dir: str | Path, samples: int = 3) -> str:
    """The ``#changelog`` section's HTML (:mod:`mining.report.markup`; every count a
    ``data-metric``: ``changelog.<change>``, ``changelog_reason.<reason>``)."""
    entry = manifest.get("changelog")
    if not isinstance(entry, dict):
        return _section("changelog", "Changelog",
                        "<p class='note'>No changelog recorded in this version's manifest.</p>")
    previous = entry.get("previous")
    intro = (f"<p class='note'>Against the previous version <code>{_e(previous)}</code>: labels "
             "added, changed and retired, keyed by (locale, utterance).</p>" if previous else
             "<p class='note'>No previous version: every label is added.</p>")
    counts = [f'<tr data-change="{c}"><th>{c}</th>{_td(int(entry.get(c, 0)), "changelog." + c)}</tr>'
              for c in CHANGES]
    body = intro + '<div class="grid">' + _table(["change", "labels"], counts, "changelog-table") \
        + reason_table("By reason", "changelog_reason", entry.get("by_reason", {})) + "</div>"
    rows = []
    for change, recs in sample_changes(version_dir, samples).items():
        for r in recs:
            rows.append(f'<tr data-sample="{_e(change)}"><td>{_e(change)}</td><td>{_e(r.get("reason"))}</td>'
                        f'<td>{_e(r.get("locale"))}</td><td class="utt">{_e(r.get("utterance"))}</td>'
                        f'<td>{_e(_label(r.get("old_intent"), r.get("old_annot_utt")))}</td>'
                        f'<td>{_e(_label(r.get("new_intent"), r.get("new_annot_utt")))}</td></tr>')
    if rows:
        body += (f"<h3>Samples (up to {samples} per change)</h3>"
                 + _table(["change", "reason", "locale", "utterance", "before", "after"], rows,
                          "changelog-samples"))
    return _section("changelog", "Changelog", body)
