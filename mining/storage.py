"""Atomic stage outputs: write to a staging folder, then commit by rename.

A stage's output folder ``OUT/<name>/`` is either absent, the previous complete output,
or the new complete output; never a half-written one. Each committed folder carries
``_stats.json`` (the stage's counts, reasons included) and Spark's ``_SUCCESS``; Spark and
pyarrow readers skip files whose names start with ``_``.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path


def staging_path(out: str | Path, name: str) -> Path:
    """A fresh staging folder ``OUT/.staging/<name>-<random>`` (not yet created)."""
    return Path(out) / ".staging" / f"{name}-{uuid.uuid4().hex[:12]}"


def commit(staging: Path, final: Path) -> None:
    """Move ``staging`` to ``final``, replacing a previous output.

    The old folder is first renamed aside, so ``final`` is missing for an instant at most;
    it never holds a mix of old and new files."""
    final.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if final.exists() or final.is_symlink():
        trash = final.parent / ".staging" / f"old-{final.name}-{uuid.uuid4().hex[:8]}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final, trash)
    os.replace(staging, final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temp file beside it, then
    ``os.replace``; readers see the old file or the new one. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (:func:`write_text`), sorted keys, UTF-8."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_toml(path: str | Path, payload: dict, header: str = "") -> None:
    """Write ``header`` (comment lines) + ``payload`` as TOML atomically (:func:`write_text`)."""
    import tomli_w

    write_text(path, header + tomli_w.dumps(payload))


def write_parquet_stage(df, out: str | Path, name: str, stats, *, num_files: int | None = None) -> dict:
    """Write a Spark DataFrame as the stage output ``OUT/<name>/`` atomically.

    ``stats``: a dict, or a function of the staged DataFrame (read back from the staging
    folder, so counting does not recompute the plan) returning one; it is written as
    ``_stats.json`` inside the folder. ``num_files`` coalesces for small outputs.
    Returns the stats."""
    staging = staging_path(out, name)
    if num_files:
        df = df.coalesce(num_files)
    df.write.mode("error").parquet(str(staging))
    if callable(stats):
        stats = stats(df.sparkSession.read.parquet(str(staging)))
    write_json(staging / "_stats.json", stats)
    commit(staging, Path(out) / name)
    return stats


def read_stats(out: str | Path, name: str) -> dict:
    """``OUT/<name>/_stats.json`` as a dict ({} when the stage has not run)."""
    path = Path(out) / name / "_stats.json"
    return json.loads(path.read_text()) if path.exists() else {}


def require_stage(out: str | Path, name: str, produced_by: str) -> str:
    """Path of a committed stage output; ``FileNotFoundError`` naming the stage to run."""
    path = Path(out) / name
    if not (path / "_SUCCESS").exists():
        raise FileNotFoundError(f"{path} is missing: run {produced_by} first")
    return str(path)
