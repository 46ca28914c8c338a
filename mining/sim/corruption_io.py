"""Corrupted-log file helpers: reading clean log roots, writing JSON Lines, Parquet and gzip.

The byte-level side of :mod:`mining.sim.corruption`: the contract's Arrow schema with every
field nullable, rows as JSON Lines (``ts`` as ISO-8601 UTC; NaN / Infinity tokens as a sloppy
producer sends them), Parquet written from row dicts, reproducible gzip (mtime 0), the count
of lines recoverable from a truncated gzip stream, and :func:`read_clean_rows`, which loads
the clean rows the corruption kinds copy.
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mining.io import schemas

CONTRACT = "interaction_turn"
PARQUET_OPTIONS = {"compression": "snappy", "write_statistics": True}


def nullable_schema() -> pa.Schema:
    """The contract's Arrow schema with every field nullable (so a file can hold nulls)."""
    s = schemas.arrow_schema(CONTRACT)
    return pa.schema([f.with_nullable(True) for f in s])


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_line(row: dict) -> str:
    """One JSON object, ``ts`` as ISO-8601 UTC (the JSON Lines form of the contract).
    ``json.dumps`` writes NaN/Infinity tokens for non-finite floats (Python docs, ``json``:
    "allow_nan"), which is what a sloppy producer sends."""
    out = {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, lines: list[str | bytes], *, newline: bytes = b"\n", bom: bool = False) -> None:
    data = newline.join(x if isinstance(x, bytes) else x.encode("utf-8") for x in lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def write_parquet_rows(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or nullable_schema()), path, **PARQUET_OPTIONS)


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as fh:
        fh.write(data)
    return buf.getvalue()


def complete_lines(truncated_gzip: bytes) -> int:
    """Complete lines that decompress from the start of a truncated gzip stream (zlib,
    ``wbits=31``): what a reader can recover before the data ends."""
    out = zlib.decompressobj(31).decompress(truncated_gzip)
    return out.count(b"\n")


def read_clean_rows(logs: Path) -> dict[str, list[dict]]:
    """``{dt: [row dict]}`` of a clean log root (Parquet or JSON Lines, gzip or not); ``ts``
    as an aware UTC ``datetime``. Raises ``FileNotFoundError`` when no ``dt=`` partition
    holds rows."""
    out: dict[str, list[dict]] = {}
    for part in sorted(Path(logs).glob("dt=*")):
        rows: list[dict] = []
        for f in sorted(part.iterdir()):
            if f.name.startswith(("_", ".")):
                continue
            if f.name.endswith(".parquet"):
                rows += pq.read_table(f).to_pylist()
            elif f.name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
                opener = gzip.open if f.name.endswith(".gz") else open
                with opener(f, "rt", encoding="utf-8") as fh:
                    for line in fh:
                        if line.strip():
                            r = json.loads(line)
                            r["ts"] = dt.datetime.fromisoformat(r["ts"])
                            rows.append(r)
        for r in rows:
            if isinstance(r.get("ts"), dt.datetime) and r["ts"].tzinfo is None:
                r["ts"] = r["ts"].replace(tzinfo=dt.UTC)
        if rows:
            out[part.name[3:]] = rows
    if not out:
        raise FileNotFoundError(f"no dt= partition with rows under {logs}")
    return out
