"""What a published dataset version holds, for ``mining inspect`` (pyarrow only, no Spark).

:func:`resolve_version` finds the version folder behind a path (a run's OUT root, a
``versions/<v>`` folder or a ``latest`` link, see :mod:`mining.io.export` for the layout);
:func:`summarize` reads its ``manifest.json`` and ``training_set/`` into a JSON-ready dict;
:func:`format_summary` renders that dict as aligned text.

Row, locale, intent, evidence and confidence figures come from the training set and follow
the ``locale``/``intent`` filters; drops, dropped slots, scrubbed PII and the JSON Lines
train/dev partitions come from the manifest and are whole-version figures (partitions per
locale follow the locale filter only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mining.errors import ConfigError, DatasetNotFound
from mining.io import export

#: Confidence quantiles reported, by name.
QUANTILES = {"min": 0.0, "p10": 0.1, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "max": 1.0}
#: Intents listed in the text output (the JSON has all).
TOP_INTENTS = 20
#: Sample order: most distinct users first, then utterance, then locale (deterministic).
SAMPLE_ORDER = [("support_users", "descending"), ("utterance", "ascending"), ("locale", "ascending")]
SAMPLE_COLUMNS = ("locale", "utterance", "annot_utt", "intent", "confidence", "support_users",
                  "support_events", "evidence")
_MAX_TEXT = 90   # characters of an utterance in the text output




def _published(p: Path) -> Path:
    """A run's OUT root → the target of its ``latest`` link; any other path unchanged."""
    latest = p / "latest"
    if latest.is_symlink() and not latest.exists():
        raise DatasetNotFound(f"{latest} is a broken link (to {latest.readlink()})")
    if latest.is_dir():
        return latest
    versions = p / "versions"
    if versions.is_dir() and not (p / "manifest.json").exists():
        names = sorted(v.name for v in versions.iterdir() if v.is_dir())
        raise DatasetNotFound(f"{p} has no published version (no latest link); "
                              f"pass one of {p}/versions/{{{','.join(names)}}}" if names else
                              f"{p} has no published version (versions/ is empty)")
    return p


def resolve_version(path: str | Path) -> Path:
    """The resolved version folder of ``path``: a run's OUT root (its ``latest``), a
    ``versions/<v>`` folder, or a ``latest`` link.

    Raises :class:`DatasetNotFound` when the path is missing, has no published version, or
    the version lacks ``manifest.json``/``training_set/``."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise DatasetNotFound(f"{path} is a broken link (to {p.readlink()})")
    if not p.exists():
        raise DatasetNotFound(f"{path} does not exist")
    if not p.is_dir():
        raise DatasetNotFound(f"{path} is not a folder: pass a run's OUT root, versions/<v> or latest")
    p = _published(p).resolve()
    missing = [n for n in ("manifest.json", "training_set") if not (p / n).exists()]
    versions = sorted(v.name for v in p.iterdir() if (v / "manifest.json").is_file()) if missing else []
    if versions:
        raise DatasetNotFound(f"{path} holds dataset versions, pass one: {', '.join(versions)}")
    if missing:
        hint = ("; not a run's OUT root, versions/<v> or latest (did export_dataset run?)"
                if len(missing) == 2 else "")
        raise DatasetNotFound(f"{path}: no dataset version, {' and '.join(missing)} missing{hint}")
    return p


def read_manifest(version_dir: Path) -> dict:
    """``manifest.json`` of a version; :class:`DatasetNotFound` when it does not parse or a
    data file it lists a checksum for is missing (an incomplete copy)."""
    try:
        manifest = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetNotFound(f"{version_dir}/manifest.json is unreadable: {e}") from None
    if not isinstance(manifest, dict):
        raise DatasetNotFound(f"{version_dir}/manifest.json is not a JSON object")
    missing = sorted(rel for rel in manifest.get("checksums", {}) if not (version_dir / rel).is_file())
    if missing:
        raise DatasetNotFound(f"{version_dir} is incomplete: {len(missing)} file(s) of the manifest "
                              f"missing, e.g. {missing[0]}")
    return manifest


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    """{value: rows}, most rows first, then by value."""
    if len(column) == 0:
        return {}
    counts = pc.value_counts(column).to_pylist()
    return {str(c["values"]): int(c["counts"])
            for c in sorted(counts, key=lambda c: (-c["counts"], str(c["values"])))}


def _quantiles(column: pa.ChunkedArray) -> dict[str, float | None]:
    if len(column) == 0:
        return {**{k: None for k in QUANTILES}, "mean": None}
    qs = pc.quantile(column, q=list(QUANTILES.values())).to_pylist()
    return {**{k: round(v, 4) for k, v in zip(QUANTILES, qs)},
            "mean": round(pc.mean(column).as_py(), 4)}


def _sorted_counts(d: dict | None) -> dict[str, int]:
    return {k: int(v) for k, v in sorted((d or {}).items(), key=lambda kv: (-kv[1], kv[0]))}


def summarize(path: str | Path, *, samples: int = 5, locale: str | None = None,
              intent: str | None = None) -> dict[str, Any]:
    """JSON-ready summary of the dataset version at ``path`` (see :func:`resolve_version`).

    Keys: ``path``, ``dataset_version``, ``code_version``, ``input_partitions``, ``models``,
    ``min_users``, ``filter``, ``rows``, ``manifest_rows``, ``by_locale``, ``by_intent``
    (every intent, most rows first), ``by_evidence``, ``confidence`` (quantiles + mean,
    None when no rows), ``partitions`` ({locale: {train, dev}}), ``drops``,
    ``slots_dropped``, ``pii_scrubbed`` (most first), ``samples`` (``samples`` rows in
    :data:`SAMPLE_ORDER`) and ``warnings``. Raises :class:`DatasetNotFound`."""
    if samples < 0:
        raise ConfigError(f"samples must be >= 0, got {samples}")
    version_dir = resolve_version(path)
    manifest = read_manifest(version_dir)
    table = export.read_training_set(version_dir, locale, intent, columns=SAMPLE_COLUMNS)
    warnings = []
    if locale is None and intent is None and manifest.get("rows") not in (None, table.num_rows):
        warnings.append(f"training_set has {table.num_rows} rows, the manifest says {manifest['rows']}")
    partitions = {loc: {"train": int(p.get("train", 0)), "dev": int(p.get("dev", 0))}
                  for loc, p in sorted(manifest.get("massive_jsonl", {}).items())
                  if locale is None or loc == locale}
    picked = table.sort_by(SAMPLE_ORDER).slice(0, samples).to_pylist() if samples else []
    return {
        "path": str(version_dir), "dataset_version": manifest.get("dataset_version", version_dir.name),
        "code_version": manifest.get("code_version"), "input_partitions": manifest.get("input_partitions", []),
        "models": manifest.get("models", {}),
        "min_users": manifest.get("config", {}).get("privacy", {}).get("min_users"),
        "filter": {"locale": locale, "intent": intent},
        "rows": table.num_rows, "manifest_rows": manifest.get("rows"),
        "by_locale": _value_counts(table.column("locale")),
        "by_intent": _value_counts(table.column("intent")),
        "by_evidence": _value_counts(table.column("evidence")),
        "confidence": _quantiles(table.column("confidence")),
        "partitions": partitions,
        "drops": _sorted_counts(manifest.get("drops")),
        "slots_dropped": _sorted_counts(manifest.get("slots_dropped")),
        "pii_scrubbed": _sorted_counts(manifest.get("pii_scrubbed")),
        "samples": picked, "warnings": warnings,
    }


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "-" if v is None else str(v)


def _rows(rows: list[tuple], indent: int = 2, right: tuple[int, ...] = ()) -> list[str]:
    """Aligned lines of ``rows`` (tuples of str); columns in ``right`` right-aligned."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" " * indent + "  ".join((c.rjust(w) if i in right else c.ljust(w))
                                     for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def _counts_block(title: str, counts: dict[str, int], top: int | None = None, *,
                  zero_note: str = "none") -> list[str]:
    shown = {k: v for k, v in counts.items() if v}
    if not shown:
        return [f"{title}: {zero_note}"]
    items = list(shown.items())
    rest = items[top:] if top else []
    items = items[:top] if top else items
    head = f"{title} (top {len(items)} of {len(shown)})" if rest else title
    rows = [(k, _n(v)) for k, v in items]
    if rest:
        rows.append((f"… {len(rest)} more", _n(sum(v for _, v in rest))))
    return [head, *_rows(rows, right=(1,))]


def _clip(text: str, n: int = _MAX_TEXT) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def format_summary(s: dict[str, Any]) -> str:
    """The :func:`summarize` dict as aligned text for a terminal."""
    parts = s["input_partitions"]
    span = "-" if not parts else f"{parts[0]} ({len(parts)})" if len(parts) == 1 else \
        f"{parts[0]} … {parts[-1]} ({len(parts)})"
    filt = ", ".join(f"{k}={v}" for k, v in s["filter"].items() if v is not None)
    head = [("dataset version", s["dataset_version"]), ("path", s["path"]),
            ("input partitions", span), ("code", s["code_version"] or "-"),
            ("models", ", ".join(f"{k} {v}" for k, v in sorted(s["models"].items())) or "-"),
            ("rows", _n(s["rows"]) + (f" (filter {filt}; {_n(s['manifest_rows'])} in the version)" if filt else "")
             + (f"   k-anonymity: min_users {s['min_users']}" if s["min_users"] is not None else ""))]
    out = _rows(head, indent=0)
    out += [f"warning: {w}" for w in s["warnings"]]
    loc_rows = [("locale", "rows", "train", "dev")]
    for loc in sorted(set(s["by_locale"]) | set(s["partitions"])):
        p = s["partitions"].get(loc, {})
        loc_rows.append((loc, _n(s["by_locale"].get(loc, 0)), _n(p.get("train")), _n(p.get("dev"))))
    out += ["", "by locale (train/dev: JSON Lines partitions of the whole locale)"
            if s["filter"]["intent"] else "by locale (train/dev: JSON Lines partitions)",
            *_rows(loc_rows, right=(1, 2, 3))]
    out += ["", *_counts_block("by intent", s["by_intent"], TOP_INTENTS, zero_note="no rows")]
    out += ["", *_counts_block("by evidence", s["by_evidence"], zero_note="no rows")]
    conf = s["confidence"]
    out += ["", "confidence" + ("" if conf["mean"] is not None else ": no rows")]
    if conf["mean"] is not None:
        out += _rows([tuple(conf), tuple(f"{v:.3f}" for v in conf.values())], right=tuple(range(len(conf))))
    scope = " (whole version)" if filt else ""
    out += ["", *_counts_block(f"drops by reason{scope}", s["drops"])]
    out += _counts_block(f"slots dropped{scope}", s["slots_dropped"])
    out += _counts_block(f"pii scrubbed{scope}", s["pii_scrubbed"])
    if s["samples"]:
        out += ["", f"samples ({len(s['samples'])} of {_n(s['rows'])}; most users first)"]
        rows = [("users", "events", "conf", "evidence", "intent", "utterance [annotation]")]
        for r in s["samples"]:
            text = r["utterance"] if r["annot_utt"] in (None, r["utterance"]) else \
                f"{r['utterance']}  [{r['annot_utt']}]"
            loc = f"{r['locale']}: " if len(s["by_locale"]) > 1 else ""
            rows.append((_n(r["support_users"]), _n(r["support_events"]), f"{r['confidence']:.3f}",
                         r["evidence"], r["intent"], _clip(loc + text)))
        out += _rows(rows, right=(0, 1, 2))
    return "\n".join(out) + "\n"


def to_json(s: dict[str, Any]) -> str:
    """The summary as indented JSON (UTF-8 text, non-ASCII unescaped)."""
    return json.dumps(s, indent=2, ensure_ascii=False, default=str)
