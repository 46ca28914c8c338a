"""``mining diff A B``: the changelog between two published dataset versions (pyarrow, no Spark).

A and B are resolved like ``mining inspect`` resolves its path
(:func:`mining.tools.inspect_dataset.resolve_version`: a run's OUT root, ``versions/<v>`` or
a ``latest`` link); :func:`diff_versions` compares their training sets with
:func:`mining.io.changelog.diff_training_sets` (A the old version, B the new one). A retired
text carries the reason B's run gives it (:func:`mining.io.changelog.retire_reasons`) when B
sits in a run's OUT root (``OUT/versions/<v>``) whose ``labels/`` came from B's own run: its
``_stats.json`` ``lineage`` equals the ``stages.labels.lineage`` of B's manifest, both
present. Otherwise (no ``labels/``, a later rerun's or an unstamped one) every retired text
gets ``no_evidence_in_window``, as if ``labels/`` were absent. As the export's own changelog
(:func:`mining.io.changelog.release_diff`, the one policy of both): when B was exported
under ``privacy.dp`` every retired text gets ``dp_not_selected``, and when B's run was
restricted to some locales (its manifest's ``locales``) only those locales of A are compared.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from mining.core.text import normalize
from mining.io import changelog, export, storage
from mining.tools.inspect_dataset import _clip, _n, _rows, read_manifest, resolve_version

#: Changes listed in the text output (the JSON has all).
MAX_ROWS = 50


def _labels_reasons(version_dir: Path, manifest: dict, keys: pd.DataFrame) -> pd.DataFrame | None:
    """Reasons of B's run for the retired ``keys`` (locale, utterance; found by ``text_norm``),
    from the ``labels/`` of the OUT root holding ``versions/<v>``; None when there is none or
    it is not B's run's (its ``_stats.json`` lineage missing or unlike ``manifest["stages"]["labels"]["lineage"]``)."""
    labels = version_dir.parent.parent / "labels"
    if version_dir.parent.name != "versions" or not (labels / "_SUCCESS").exists() or keys.empty:
        return None
    lineage = storage.read_stats(labels.parent, "labels").get("lineage")
    if not lineage or lineage != ((manifest.get("stages") or {}).get("labels") or {}).get("lineage"):
        return None
    filt = ds.field("text_norm").isin(sorted(set(keys["utterance"].map(normalize))))
    table = ds.dataset(str(labels), format="parquet", partitioning="hive").to_table(
        columns=["locale", "utterance", "decision", "text_users"], filter=filt)
    privacy = manifest.get("config", {}).get("privacy", {})
    return changelog.retire_reasons(table.to_pandas(), int(privacy.get("min_users", 1) or 1))


def _dp(manifest: dict) -> bool:
    """Whether the version of ``manifest`` was exported under ``privacy.dp``."""
    return bool(((manifest.get("config") or {}).get("privacy") or {}).get("dp", {}).get("enabled", False))


def diff_versions(old: str | Path, new: str | Path) -> dict[str, Any]:
    """The changelog from version ``old`` to version ``new``, JSON-ready.

    Keys: ``old`` and ``new`` (``{"path", "dataset_version"}``), ``summary``
    (:func:`mining.io.changelog.summarize`) and ``changes`` (the rows of
    :func:`mining.io.changelog.diff_training_sets`, in its order). Raises
    :class:`mining.errors.DatasetNotFound` when a path holds no complete version."""
    dirs = [resolve_version(p) for p in (old, new)]
    manifests = [read_manifest(d) for d in dirs]
    tables = [export.read_training_set(d, columns=changelog.READ_COLUMNS) for d in dirs]
    diff = changelog.release_diff(*tables, locales=manifests[1].get("locales") or (), dp=_dp(manifests[1]),
                                  reasons_for=lambda retired: _labels_reasons(dirs[1], manifests[1], retired))
    side = [{"path": str(d), "dataset_version": m.get("dataset_version", d.name)} for d, m in zip(dirs, manifests)]
    return {"old": side[0], "new": side[1], "summary": changelog.summarize(diff),
            "changes": diff.to_dict("records")}


def _label(intent, annot) -> str:
    if intent is None:
        return "-"
    return f"{intent}  [{annot}]" if annot and "[" in annot else str(intent)


def format_diff(d: dict[str, Any], max_rows: int = MAX_ROWS) -> str:
    """The :func:`diff_versions` dict as aligned text: versions, counts by change and by
    reason, then up to ``max_rows`` changes as a table."""
    s = d["summary"]
    out = _rows([("old", f"{d['old']['dataset_version']}  ({d['old']['path']})"),
                 ("new", f"{d['new']['dataset_version']}  ({d['new']['path']})")], indent=0)
    out += ["", "changes", *_rows([(c, _n(s[c])) for c in changelog.CHANGES], right=(1,))]
    if s["by_reason"]:
        out += ["", "by reason", *_rows([(r, _n(n)) for r, n in s["by_reason"].items()], right=(1,))]
    changes = d["changes"]
    if not changes:
        return "\n".join(out + ["", "no label changed"]) + "\n"
    shown = changes[:max_rows]
    out += ["", f"changes ({len(shown)} of {_n(len(changes))}; by locale, change, utterance)"
            + ("; --json lists all" if len(shown) < len(changes) else "")]
    rows = [("change", "reason", "locale", "utterance", "old", "new")]
    rows += [(c["change"], c["reason"], c["locale"], _clip(c["utterance"], 60),
              _label(c["old_intent"], c["old_annot_utt"]), _label(c["new_intent"], c["new_annot_utt"]))
             for c in shown]
    return "\n".join(out + _rows(rows)) + "\n"


def to_json(d: dict[str, Any]) -> str:
    """The diff as indented JSON (UTF-8 text, non-ASCII unescaped)."""
    return json.dumps(d, indent=2, ensure_ascii=False, default=str)
