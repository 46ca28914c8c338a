"""Malformed interaction logs for testing ingest: ``mining corrupt-logs``.

:func:`corrupt_logs` copies a clean log root (``dt=YYYY-MM-DD/`` partitions of Parquet or
JSON Lines, as :mod:`mining.sim.simulation` writes them) and adds, for each requested kind of
corruption (:data:`KINDS`), one or a few files ``corrupt-<kind>.*`` built from copies of
clean rows. The clean files are copied unchanged, so the output is a complete log root
that ``mining run`` reads; every added row gets a fresh ``turn_id`` ``x-<kind>-<n>`` and
session id ``x-<kind>-<original session id>``, so no kind collides with the clean rows or
with another kind (except where the kind is the collision: ``duplicate_turn_id``).

Deterministic: the same clean logs, kinds, ``rows_per_kind`` and ``seed`` give the same
bytes (gzip mtime 0; Parquet without creation timestamps in the metadata).

Accounting (what :func:`mining.spark.validate.validate` must report) is written beside the
partitions in ``OUT/_corruption.json`` (the leading underscore keeps ingest from reading
it) and returned: per kind ``rows`` (input rows ingest counts for the kind's files: parsed
rows and non-blank lines, plus one row per damaged or unsupported file), ``expected``
({reason or ``"accepted"``: rows}), ``files`` and ``detail`` (e.g. blank lines, which are
not rows, or the rows lost in a damaged file, which ingest cannot count).

The parts: :mod:`~mining.sim.corruption_kinds` (:data:`KINDS` and the writer of each kind)
and :mod:`~mining.sim.corruption_io` (reading clean rows, writing JSON Lines / Parquet /
gzip). This module copies the clean partitions, runs the requested kinds and writes the
accounting (:func:`corrupt_logs`).
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from mining.sim.corruption_io import CONTRACT, read_clean_rows
from mining.sim.corruption_kinds import KINDS, REQUIRED, Ctx
from mining.errors import ConfigError

__all__ = ["CONTRACT", "KINDS", "REQUIRED", "SUMMARY_FILE", "corrupt_logs", "parse_kinds",
           "read_clean_rows"]

SUMMARY_FILE = "_corruption.json"


def parse_kinds(spec: str | list[str] | None) -> list[str]:
    """``"all"``/None → every kind; ``"a,b"`` or a list → those, in :data:`KINDS` order.
    Raises ``ConfigError`` naming an unknown kind."""
    if spec is None or spec == "all" or spec == ["all"]:
        return list(KINDS)
    names = [k.strip() for part in ([spec] if isinstance(spec, str) else spec) for k in part.split(",") if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown corruption kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return [k for k in KINDS if k in names]


def corrupt_logs(logs: str | Path, out: str | Path, kinds: str | list[str] | None = "all", *,
                 seed: int = 0, rows_per_kind: int = 12, include_clean: bool = True) -> dict:
    """Write a corrupted copy of the clean log root ``logs`` to ``out``.

    Parameters: ``logs`` a log root with ``dt=YYYY-MM-DD/`` partitions (Parquet and/or
    JSON Lines, contract ``interaction_turn`` v1); ``out`` a folder that must not exist
    or be empty; ``kinds`` as :func:`parse_kinds`; ``seed`` drives which clean rows each
    kind copies (each kind its own ``random.Random(f"{seed}:{kind}")``, so adding a kind
    never changes another's rows); ``rows_per_kind`` (>= 1) rows per kind (the
    ``truncated_gzip`` kind writes at least 60, so that part of its file is recoverable;
    ``out_of_order`` copies whole sessions); ``include_clean`` copies the clean files too.

    Kinds write into the earliest clean partition (``partition_date_mismatch`` into the
    day after it). Returns (and writes to ``out/_corruption.json``)::

        {"seed", "rows_per_kind", "source", "clean_rows": {dt: rows} (0s without clean),
         "kinds": {kind: {"description", "files": [paths relative to out], "rows",
                          "expected": {reason | "accepted": rows}, "detail": {...}}},
         "total_rows": clean rows + sum of kinds' rows}

    Raises ``ConfigError`` (unknown kind, rows_per_kind < 1, ``out`` not empty) and
    ``FileNotFoundError`` (no clean rows)."""
    names = parse_kinds(kinds)
    if rows_per_kind < 1:
        raise ConfigError(f"rows_per_kind must be >= 1, got {rows_per_kind}")
    src, dst = Path(logs), Path(out)
    if dst.exists() and any(dst.iterdir()):
        raise ConfigError(f"output folder {dst} exists and is not empty")
    clean = read_clean_rows(src)
    dst.mkdir(parents=True, exist_ok=True)
    clean_rows = {}
    for part in sorted(src.glob("dt=*")):
        target = dst / part.name
        if include_clean:
            shutil.copytree(part, target, dirs_exist_ok=True)
        else:
            target.mkdir(exist_ok=True)
        clean_rows[part.name[3:]] = len(clean.get(part.name[3:], [])) if include_clean else 0
    day = min(clean)
    result = {}
    for kind in names:
        writer, description = KINDS[kind]
        ctx = Ctx(kind=kind, dt=day, folder=dst / f"dt={day}", pool=clean[day], n=rows_per_kind,
                   rng=random.Random(f"{seed}:{kind}"), root=dst)
        res = writer(ctx)
        result[kind] = {"description": description, "files": ctx.files, **res}
    summary = {"seed": seed, "rows_per_kind": rows_per_kind, "source": str(src), "clean_rows": clean_rows,
               "kinds": result, "total_rows": sum(clean_rows.values()) + sum(r["rows"] for r in result.values())}
    (dst / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
