"""Integrity check of gzip log files before Spark reads them (:func:`inspect_gzip`).

Spark reads a ``.gz`` file in one task and fails the whole job on a damaged one unless
``ignoreCorruptFiles`` is set, which then drops the rest silently. :func:`inspect_gzip`
decompresses each file as a stream once, so :func:`mining.spark.ingest.read_logs` knows
which files are intact, empty, truncated or corrupt and how many complete lines a damaged
one still holds; it then reads the damaged ones with ``ignoreCorruptFiles`` and counts
their unreadable rest as one reject.
"""
from __future__ import annotations

import zlib

GZIP_SLICE = 1 << 16       # inspect_gzip: bytes of decompressed output per zlib call


def _lines_before_error(d, data: bytes) -> int:
    """Newlines that decompressor ``d`` outputs from ``data`` before it raises, one output
    byte per call (run once per damaged file, on one slice)."""
    n = 0
    try:
        while True:
            out = d.decompress(data, 1)
            n += out.count(b"\n")
            if not out and (not d.unconsumed_tail or d.unconsumed_tail == data):
                return n
            data = d.unconsumed_tail
    except zlib.error:
        return n


def inspect_gzip(path: str, chunk_bytes: int = 1 << 20) -> dict:
    """Check one gzip file by decompressing it as a stream (nothing is kept in memory).

    Returns ``{"path", "status", "lines", "bytes", "error"}``: ``status`` is ``ok``,
    ``empty`` (0 bytes, or members holding no data), ``truncated`` (the stream ends inside
    a member: an interrupted copy) or ``corrupt`` (not gzip, bad deflate data or a CRC
    mismatch); ``lines`` counts the complete (newline-terminated, or final unterminated in
    an intact file) lines that decompress before the end or the damage. Concatenated
    members (RFC 1952 §2.2, as Hadoop's ``GzipCodec`` reads them) are followed.

    Uses :mod:`zlib` with ``wbits=31`` (gzip container; Python docs, "zlib — Compression
    compatible with gzip"). Never raises for bad data; ``OSError`` for an unreadable path."""
    lines = total = 0
    last = b"\n"
    status, error = "ok", None
    d = zlib.decompressobj(31)
    started = False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            if not chunk:
                break
            total += len(chunk)
            data = chunk
            started = True
            try:
                # output in bounded slices; a call that raises returns none of its output, so
                # the slice that met the damage is replayed from a copy (_lines_before_error)
                while True:
                    snap, pending = d.copy(), data
                    out = d.decompress(data, GZIP_SLICE)
                    if out:
                        lines += out.count(b"\n")
                        last = out[-1:]
                    if d.eof:
                        data = d.unused_data
                        d = zlib.decompressobj(31)
                        started = bool(data.strip(b"\0"))   # zero padding after the last member
                        if not started:
                            break
                        continue
                    data = d.unconsumed_tail
                    if not data and len(out) < GZIP_SLICE:
                        break                     # this chunk is used up (a full slice: more may wait)
            except zlib.error as e:
                status, error = "corrupt", str(e)
                lines += _lines_before_error(snap, pending)
                break
    if status == "ok":
        if total == 0:
            status = "empty"
        elif started and not d.eof:
            status, error = "truncated", "the gzip stream ends inside a member"
        elif last != b"\n":
            lines += 1                            # an intact file's final line without newline
        if status == "ok" and lines == 0:
            status = "empty"
    return {"path": path, "status": status, "lines": lines, "bytes": total, "error": error}


def inspect_gzips(spark, paths: list[str]) -> list[dict]:
    """:func:`inspect_gzip` of every path, one Spark task per file (executors read the same
    file system Spark reads the logs from)."""
    if not paths:
        return []
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect has no RDDs: check in the driver
        return [inspect_gzip(p) for p in paths]
    return sc.parallelize(paths, min(len(paths), max(1, sc.defaultParallelism * 4))).map(inspect_gzip).collect()
