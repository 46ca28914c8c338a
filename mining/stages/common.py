"""Helpers every stage uses: value counts for stats, the code version for manifests, the
settings that decide a run's bytes."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def counts_by(df, col: str) -> dict:
    """``{str(value): rows}`` of Spark DataFrame ``df`` grouped by ``col``, ordered by value."""
    return {str(r[col]): r["count"] for r in df.groupBy(col).count().orderBy(col).collect()}


def code_version() -> str:
    """``<package version>+<12-hex git sha>`` of the source tree, or the package version
    alone outside a git checkout (an installed wheel)."""
    from mining import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


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
