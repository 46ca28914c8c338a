"""Helpers every stage uses: value counts for stats, the code version for manifests."""
from __future__ import annotations

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
