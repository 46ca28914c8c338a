"""Helpers every stage uses: value counts for stats, the code version for manifests, the
settings that decide a run's bytes."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def counts_by(df, col: str) -> dict:
    """``{str(value): rows}`` of Spark DataFrame ``df`` grouped by ``col``, ordered by value."""
    return {str(r[col]): r["count"] for r in df.groupBy(col).count().orderBy(col).collect()}


def source_digest(root: Path | None = None) -> str:
    """First 12 hex digits of the SHA-256 of the code and settings under ``root`` (default
    the ``mining`` package: every ``.py`` and ``.toml`` file, relative path and bytes, in
    path order; :func:`mining.core.encoders.files_digest`, cached by names, sizes and
    mtimes). It names the code where git cannot: an installed copy without ``.git`` (the
    Docker image) or a checkout with uncommitted edits."""
    from mining.core.encoders import files_digest

    root = root or Path(__file__).resolve().parents[1]
    paths = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml") and p.is_file())
    return files_digest(tuple((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns, str(p))
                              for p in paths))


def code_version() -> str:
    """``<package version>+<12-hex git sha>.<12-hex source digest>`` of the source tree, or
    ``<package version>+src.<digest>`` outside a git checkout (an installed copy): the
    digest (:func:`source_digest`) changes with any edit, committed or not, so outputs of
    other code never pass for this code's (lineage stamps, dataset version names)."""
    from mining import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha or 'src'}.{source_digest()}"


def stage_settings(cfg) -> dict:
    """:func:`run_settings` without the privacy and export sections, which no stage before
    the export reads: `mining run --min-users 5` and a run then `export-dataset --min-users 5`
    name the same version."""
    return {k: v for k, v in run_settings(cfg).items() if k not in ("privacy", "export")}


def stage_settings_digest(cfg) -> str:
    """:func:`stage_settings` hashed as a lineage stamp is (:func:`mining.io.storage.lineage_id`):
    stamped in the ``_stats.json`` of ``embeddings``, ``clusters`` and ``labels``, so a version
    built from a stage rerun with other settings (``mining aggregate-labels --set ...`` then
    ``mining export-dataset``) gets another name
    (:func:`mining.stages.export_dataset.version_fingerprint`)."""
    from mining.io.storage import lineage_id

    return lineage_id(stage_settings(cfg))


def run_settings(cfg) -> dict:
    """The settings of :class:`mining.config.RunConfig` ``cfg`` that decide a run's output
    bytes, as a JSON-ready dict: every section (and the fitted models' ids) except the
    quality gate's, which decides whether a version is published, never its bytes; without
    ``embedding.cache_dir`` (where the cache lives is storage: the same vectors wherever it
    is) and, when differential privacy is off, without ``privacy.dp`` (then no dp setting
    changes a byte, so versions stay as they were before dp existed)."""
    settings = {k: v for k, v in json.loads(cfg.to_json()).items() if k != "quality"}
    settings.get("embedding", {}).pop("cache_dir", None)
    if not cfg.privacy.dp.enabled:
        settings.get("privacy", {}).pop("dp", None)
    return settings
