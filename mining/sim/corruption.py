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

Accounting (what :func:`mining.spark.ingest.validate` must report) is written beside the
partitions in ``OUT/_corruption.json`` (the leading underscore keeps ingest from reading
it) and returned: per kind ``rows`` (input rows ingest counts for the kind's files: parsed
rows and non-blank lines, plus one row per damaged or unsupported file), ``expected``
({reason or ``"accepted"``: rows}), ``files`` and ``detail`` (e.g. blank lines, which are
not rows, or the rows lost in a damaged file, which ingest cannot count).
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import random
import shutil
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mining.io import schemas
CONTRACT = "interaction_turn"
REQUIRED = ("turn_id", "user_id", "locale", "ts", "utterance", "response_status")
SUMMARY_FILE = "_corruption.json"
_PARQUET_OPTIONS = {"compression": "snappy", "write_statistics": True}


def _nullable_schema() -> pa.Schema:
    """The contract's Arrow schema with every field nullable (so a file can hold nulls)."""
    s = schemas.arrow_schema(CONTRACT)
    return pa.schema([f.with_nullable(True) for f in s])


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_line(row: dict) -> str:
    """One JSON object, ``ts`` as ISO-8601 UTC (the JSON Lines form of the contract).
    ``json.dumps`` writes NaN/Infinity tokens for non-finite floats (Python docs, ``json``:
    "allow_nan"), which is what a sloppy producer sends."""
    out = {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _write_jsonl(path: Path, lines: list[str | bytes], *, newline: bytes = b"\n", bom: bool = False) -> None:
    data = newline.join(x if isinstance(x, bytes) else x.encode("utf-8") for x in lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or _nullable_schema()), path, **_PARQUET_OPTIONS)


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as fh:
        fh.write(data)
    return buf.getvalue()


def _complete_lines(truncated_gzip: bytes) -> int:
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


@dataclass
class _Ctx:
    """What a kind's writer gets: the partition it writes to and clean rows to copy."""

    kind: str
    dt: str
    folder: Path
    pool: list[dict]
    n: int
    rng: random.Random
    root: Path
    files: list[str] = field(default_factory=list)

    def rows(self, n: int | None = None) -> list[dict]:
        """``n`` (default ``rows_per_kind``) fresh copies of random clean rows."""
        picked = self.rng.sample(self.pool, min(n or self.n, len(self.pool)))
        return [self.fresh(r, i) for i, r in enumerate(picked)]

    def fresh(self, row: dict, i: int) -> dict:
        r = dict(row)
        r["turn_id"] = f"x-{self.kind}-{i:04d}"
        r["session_id"] = f"x-{self.kind}-{row.get('session_id')}"
        return r

    def path(self, suffix: str, folder: Path | None = None) -> Path:
        p = (folder or self.folder) / f"corrupt-{self.kind}{suffix}"
        self.files.append(str(p.relative_to(self.root)))
        return p


def _result(rows: int, expected: dict, **detail) -> dict:
    return {"rows": rows, "expected": {k: v for k, v in sorted(expected.items()) if v}, "detail": detail}


# ----------------------------------------------------------------------------- the kinds
# Each writer adds its files to ctx.folder and returns _result(...).

def _missing_field(c: _Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    lines = []
    for i, r in enumerate(rows):
        f = REQUIRED[i % len(REQUIRED)]
        r.pop(f)
        exp[f"missing_{f}"] += 1
        lines.append(_json_line(r))
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), exp, fields=sorted({REQUIRED[i % len(REQUIRED)] for i in range(len(rows))}))


def _null_field(c: _Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f = REQUIRED[i % len(REQUIRED)]
        r[f] = None
        exp[f"missing_{f}"] += 1
    _write_parquet(c.path(".parquet"), rows)
    return _result(len(rows), exp)


_WRONG_TYPES = (("asr_confidence", "high"), ("nlu_confidence", {"v": 1}), ("nlu_slots", "music"),
                ("barge_in", "sometimes"), ("ts", True), ("nlu_confidence", [0.5]))


def _wrong_type(c: _Ctx) -> dict:
    rows, exp, lines = c.rows(), Counter(), []
    for i, r in enumerate(rows):
        f, v = _WRONG_TYPES[i % len(_WRONG_TYPES)]
        line = json.loads(_json_line(r))
        line[f] = v
        lines.append(json.dumps(line, ensure_ascii=False))
        exp["bad_timestamp" if f == "ts" else f"wrong_type_{f}"] += 1
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), exp)


def _wrong_type_parquet(c: _Ctx) -> dict:
    rows = c.rows()
    schema = _nullable_schema()
    schema = schema.set(schema.get_field_index("asr_confidence"), pa.field("asr_confidence", pa.string()))
    schema = schema.set(schema.get_field_index("barge_in"), pa.field("barge_in", pa.int8()))
    for i, r in enumerate(rows):
        r["asr_confidence"] = ("high", "low", "n/a")[i % 3]      # no double: rejected
        r["barge_in"] = None if r.get("barge_in") is None else int(r["barge_in"])  # 0/1: converts
    _write_parquet(c.path(".parquet"), rows, schema)
    return _result(len(rows), {"wrong_type_asr_confidence": len(rows)})


def _unparsable_record(c: _Ctx) -> dict:
    rows = c.rows()
    lines = [(s := _json_line(r))[: len(s) // 2] for r in rows]
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), {"unparsable_record": len(rows)})


_NON_JSON = ("ERROR 2026-11-01 12:00:01 logger restarted", "[1, 2, 3]", "42", "null", '"just a string"',
             "<html><body>502 Bad Gateway</body></html>", "turn_id=t1 utterance=hello", "true", "{'single': 'quotes'}")
_BLANK = ("", "   ", "\t ")


def _non_json_line(c: _Ctx) -> dict:
    lines = [_NON_JSON[i % len(_NON_JSON)] for i in range(c.n)]
    for j, b in enumerate(_BLANK):              # blank lines between the others: not rows
        lines.insert(1 + 2 * j, b)
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(c.n, {"unparsable_record": c.n}, blank_lines=len(_BLANK))


def _future_timestamp(c: _Ctx) -> dict:
    rows = c.rows()
    shifts = (dt.timedelta(days=2), dt.timedelta(days=400), dt.timedelta(days=3650 * 7))
    for i, r in enumerate(rows):
        r["ts"] = r["ts"] + shifts[i % len(shifts)]
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"future_timestamp": len(rows)})


def _epoch_zero_timestamp(c: _Ctx) -> dict:
    rows = c.rows()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for r in rows:
        r["ts"] = epoch
    half = len(rows) // 2
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows[:half]])
    _write_parquet(c.path(".parquet"), rows[half:])
    return _result(len(rows), {"epoch_zero_timestamp": len(rows)})


def _duplicate_turn_id(c: _Ctx) -> dict:
    originals = c.rows()
    dups = []
    for i, r in enumerate(originals):
        d = dict(r)
        if i % 2:                                  # conflicting copy: later, other text
            d["ts"] = r["ts"] + dt.timedelta(seconds=1)
            d["utterance"] = r["utterance"] + " again"
        dups.append(d)                             # even: an exact re-delivery
    lines = [_json_line(r) for pair in zip(dups, originals) for r in pair]
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(2 * len(originals), {"accepted": len(originals), "duplicate_turn_id": len(originals)})


def _out_of_order(c: _Ctx) -> dict:
    by_session: dict = {}
    for r in c.pool:
        by_session.setdefault((r["user_id"], r["session_id"]), []).append(r)
    multi = sorted((k for k, v in by_session.items() if len(v) >= 3), key=str)
    picked = c.rng.sample(multi, min(len(multi), max(1, c.n // 3)))
    rows, i = [], 0
    for key in picked:
        for r in sorted(by_session[key], key=lambda x: (x["ts"], x["turn_id"])):
            rows.append(c.fresh(r, i))
            i += 1
    c.rng.shuffle(rows)                            # valid data in file order != time order
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"accepted": len(rows)}, sessions=len(picked))


def _huge_utterance(c: _Ctx) -> dict:
    rows = c.rows()
    for r in rows:
        base = (r["utterance"] + " ") or "x "
        r["utterance"] = (base * (100_000 // len(base) + 1))[:100_000]
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"utterance_too_long": len(rows)})


#: invalid UTF-8 sequences (Unicode 15, §3.9 Table 3-7): a stray byte, a lone continuation
#: byte, a truncated 2-byte sequence, an overlong "/", an encoded surrogate
_BAD_BYTES = (b"\xff", b"\x80", b"\xc3(", b"\xc0\xaf", b"\xed\xa0\x80")


def _invalid_utf8(c: _Ctx) -> dict:
    rows, lines = c.rows(), []
    for i, r in enumerate(rows):
        r["utterance"] = "@@BAD@@ " + r["utterance"]
        lines.append(_json_line(r).encode("utf-8").replace(b"@@BAD@@", _BAD_BYTES[i % len(_BAD_BYTES)]))
    _write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), {"invalid_utf8": len(rows)})


def _invalid_utf8_parquet(c: _Ctx) -> dict:
    rows = c.rows()
    utt = [_BAD_BYTES[i % len(_BAD_BYTES)] + b" " + r["utterance"].encode("utf-8") for i, r in enumerate(rows)]
    for r in rows:
        r["utterance"] = "placeholder"
    table = pa.Table.from_pylist(rows, schema=_nullable_schema())
    # Arrow validates strings it builds from Python; a binary array viewed as string is not
    # validated, which is how a buggy producer's bytes reach a Parquet file
    bad = pa.array(utt, pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("utterance"), pa.field("utterance", pa.string()), bad)
    pq.write_table(table, c.path(".parquet"), **_PARQUET_OPTIONS)
    return _result(len(rows), {"invalid_utf8": len(rows)})


_CONTROL = ("play\x00music", "set an alarm\x07", "\x1bturn off the lights", "what is\tthe\nweather",
            "\x00\x01\x02\x7f")


def _control_characters(c: _Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["utterance"] = _CONTROL[i % len(_CONTROL)]
    only = sum(1 for i in range(len(rows)) if i % len(_CONTROL) == len(_CONTROL) - 1)
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"accepted": len(rows) - only, "empty_utterance": only},
                   repaired=len(rows) - only)


def _empty_gzip(c: _Ctx) -> dict:
    c.path("-0-bytes.jsonl.gz").write_bytes(b"")
    c.path("-no-lines.jsonl.gz").write_bytes(_gzip_bytes(b""))
    return _result(0, {}, empty_files=2)


def _truncated_gzip(c: _Ctx) -> dict:
    rows = c.rows(max(c.n, 60))
    data = _gzip_bytes(("\n".join(_json_line(r) for r in rows) + "\n").encode("utf-8"))
    cut = data[: int(len(data) * 0.6)]
    kept = _complete_lines(cut)
    c.path(".jsonl.gz").write_bytes(cut)
    return _result(kept + 1, {"accepted": kept, "truncated_gzip": 1}, rows_written=len(rows),
                   rows_lost=len(rows) - kept)


def _corrupt_gzip(c: _Ctx) -> dict:
    c.path(".jsonl.gz").write_bytes(bytes(c.rng.getrandbits(8) for _ in range(4096)))
    return _result(1, {"corrupt_gzip": 1})


def _corrupt_parquet(c: _Ctx) -> dict:
    rows = c.rows()
    p = c.path(".parquet")
    _write_parquet(p, rows)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return _result(1, {"unreadable_file": 1}, rows_lost=len(rows))


_LOCALES = (("zz-ZZ", "unknown_locale"), ("en-QQ", "unknown_locale"), ("xx", "unknown_locale"),
            ("english", "bad_locale"), ("en_US", "bad_locale"), ("EN-us", "bad_locale"))


def _unknown_locale(c: _Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        r["locale"], reason = _LOCALES[i % len(_LOCALES)]
        exp[reason] += 1
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), exp)


def _nan_confidence(c: _Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f = ("asr_confidence", "nlu_confidence")[i % 2]
        r[f] = math.nan
        exp[f"bad_{f}"] += 1
    half = len(rows) // 2
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows[:half]])   # NaN token
    _write_parquet(c.path(".parquet"), rows[half:])                          # IEEE NaN
    return _result(len(rows), exp)


_OUT_OF_RANGE = (("asr_confidence", 1.7), ("nlu_confidence", -0.2), ("asr_confidence", math.inf),
                 ("nlu_confidence", 1e9))


def _out_of_range_confidence(c: _Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f, v = _OUT_OF_RANGE[i % len(_OUT_OF_RANGE)]
        r[f] = v
        exp[f"bad_{f}"] += 1
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), exp)


def _unknown_response_status(c: _Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["response_status"] = ("MAYBE", "success", "", "OK")[i % 4]
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"unknown_response_status": len(rows)})


def _extra_columns(c: _Ctx) -> dict:
    rows = c.rows()
    half = len(rows) // 2
    js = [{**r, "device_type": "speaker", "debug": {"trace": i}} for i, r in enumerate(rows[:half])]
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in js])
    pq_rows = [{**r, "app_version": "9.1"} for r in rows[half:]]
    schema = _nullable_schema().append(pa.field("app_version", pa.string()))
    _write_parquet(c.path(".parquet"), pq_rows, schema)
    return _result(len(rows), {"accepted": len(rows)},
                   extra_columns={"device_type": half, "debug": half, "app_version": len(rows) - half})


def _partition_date_mismatch(c: _Ctx) -> dict:
    rows = c.rows()
    other = (dt.date.fromisoformat(c.dt) + dt.timedelta(days=1)).isoformat()
    folder = c.root / f"dt={other}"
    folder.mkdir(exist_ok=True)
    _write_parquet(c.path(".parquet", folder), rows)
    return _result(len(rows), {"partition_date_mismatch": len(rows)}, partition=other, rows_dated=c.dt)


def _empty_utterance(c: _Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["utterance"] = ("", "   ", "\u3000", "\u00a0 ")[i % 4]
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows])
    return _result(len(rows), {"empty_utterance": len(rows)})


def _bom_crlf(c: _Ctx) -> dict:
    rows = c.rows()
    _write_jsonl(c.path(".jsonl"), [_json_line(r) for r in rows], newline=b"\r\n", bom=True)
    return _result(len(rows), {"accepted": len(rows)})


def _unsupported_file(c: _Ctx) -> dict:
    rows = c.rows()
    text = "turn_id,utterance\n" + "".join(f"{r['turn_id']},{r['utterance']}\n" for r in rows)
    c.path(".csv").write_text(text, encoding="utf-8")
    return _result(1, {"unsupported_file": 1}, rows_lost=len(rows))


def _missing_optional_columns(c: _Ctx) -> dict:
    rows = c.rows()
    req = schemas.required_fields(CONTRACT)
    schema = pa.schema([f for f in _nullable_schema() if f.name in req])
    _write_parquet(c.path(".parquet"), [{k: r[k] for k in req} for r in rows], schema)
    return _result(len(rows), {"accepted": len(rows)})


#: kind → (writer, one-line description); order is the order of ``--kinds all``
KINDS: dict[str, tuple[Callable[[_Ctx], dict], str]] = {
    "missing_field": (_missing_field, "a required field absent from the JSON object"),
    "null_field": (_null_field, "a required field null (Parquet)"),
    "wrong_type": (_wrong_type, "a value of the wrong JSON type (string for a double, object, array, ...)"),
    "wrong_type_parquet": (_wrong_type_parquet, "a Parquet file whose column types differ from the contract"),
    "unparsable_record": (_unparsable_record, "a JSON object cut in the middle"),
    "non_json_line": (_non_json_line, "lines that are not JSON objects (log text, arrays, scalars) and blank lines"),
    "future_timestamp": (_future_timestamp, "ts days to years after its partition"),
    "epoch_zero_timestamp": (_epoch_zero_timestamp, "ts = 1970-01-01T00:00:00Z (JSON and Parquet)"),
    "duplicate_turn_id": (_duplicate_turn_id, "re-delivered and conflicting rows with the same turn_id"),
    "out_of_order": (_out_of_order, "whole sessions with their turns shuffled in the file (valid)"),
    "huge_utterance": (_huge_utterance, "100 kB utterances"),
    "invalid_utf8": (_invalid_utf8, "invalid UTF-8 byte sequences in a JSON line"),
    "invalid_utf8_parquet": (_invalid_utf8_parquet, "invalid UTF-8 bytes in a Parquet string column"),
    "control_characters": (_control_characters, "NUL, BEL, ESC, tab, newline in utterances; one of only controls"),
    "empty_gzip": (_empty_gzip, "a 0-byte .jsonl.gz and a gzip file with no lines"),
    "truncated_gzip": (_truncated_gzip, "a .jsonl.gz cut at 60% of its bytes"),
    "corrupt_gzip": (_corrupt_gzip, "random bytes named .jsonl.gz"),
    "corrupt_parquet": (_corrupt_parquet, "a Parquet file cut in half (no footer)"),
    "unknown_locale": (_unknown_locale, "unknown (zz-ZZ, en-QQ, xx) and malformed (english, en_US) locales"),
    "nan_confidence": (_nan_confidence, "NaN confidences (JSON NaN token, Parquet NaN)"),
    "out_of_range_confidence": (_out_of_range_confidence, "confidences 1.7, -0.2, Infinity, 1e9"),
    "unknown_response_status": (_unknown_response_status, "response_status MAYBE, success, empty, OK"),
    "extra_columns": (_extra_columns, "columns outside the contract (valid: ignored, counted)"),
    "partition_date_mismatch": (_partition_date_mismatch, "a partition holding rows of the day before"),
    "empty_utterance": (_empty_utterance, "utterances that are empty or only (Unicode) whitespace"),
    "bom_crlf": (_bom_crlf, "a JSON Lines file with a UTF-8 BOM and CRLF line ends (valid)"),
    "unsupported_file": (_unsupported_file, "a CSV file in a dt= folder"),
    "missing_optional_columns": (_missing_optional_columns, "a Parquet file with only the required columns (valid)"),
}


def parse_kinds(spec: str | list[str] | None) -> list[str]:
    """``"all"``/None → every kind; ``"a,b"`` or a list → those, in :data:`KINDS` order.
    Raises ``ValueError`` naming an unknown kind."""
    if spec is None or spec == "all" or spec == ["all"]:
        return list(KINDS)
    names = [k.strip() for part in ([spec] if isinstance(spec, str) else spec) for k in part.split(",") if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown corruption kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
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

    Raises ``ValueError`` (unknown kind, rows_per_kind < 1, ``out`` not empty) and
    ``FileNotFoundError`` (no clean rows)."""
    names = parse_kinds(kinds)
    if rows_per_kind < 1:
        raise ValueError(f"rows_per_kind must be >= 1, got {rows_per_kind}")
    src, dst = Path(logs), Path(out)
    if dst.exists() and any(dst.iterdir()):
        raise ValueError(f"output folder {dst} exists and is not empty")
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
        ctx = _Ctx(kind=kind, dt=day, folder=dst / f"dt={day}", pool=clean[day], n=rows_per_kind,
                   rng=random.Random(f"{seed}:{kind}"), root=dst)
        res = writer(ctx)
        result[kind] = {"description": description, "files": ctx.files, **res}
    summary = {"seed": seed, "rows_per_kind": rows_per_kind, "source": str(src), "clean_rows": clean_rows,
               "kinds": result, "total_rows": sum(clean_rows.values()) + sum(r["rows"] for r in result.values())}
    (dst / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
