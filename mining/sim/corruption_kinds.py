"""Corruption kinds for ingest tests: the :data:`KINDS` table and the writer of each kind.

Each writer gets a :class:`Ctx` (the partition to write to, clean rows to copy, its own
random stream), writes one or a few ``corrupt-<kind>.*`` files built from fresh copies of
clean rows, and returns the accounting ingest must report (``rows``, ``expected``,
``detail``; see :mod:`mining.sim.corruption`). :data:`KINDS` maps each kind to its writer and
a one-line description, in the order of ``--kinds all``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mining.io import schemas
from mining.sim.corruption_io import (CONTRACT, PARQUET_OPTIONS, complete_lines, gzip_bytes, json_line,
                                      nullable_schema, write_jsonl, write_parquet_rows)

REQUIRED = ("turn_id", "user_id", "locale", "ts", "utterance", "response_status")


@dataclass
class Ctx:
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

def _missing_field(c: Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    lines = []
    for i, r in enumerate(rows):
        f = REQUIRED[i % len(REQUIRED)]
        r.pop(f)
        exp[f"missing_{f}"] += 1
        lines.append(json_line(r))
    write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), exp, fields=sorted({REQUIRED[i % len(REQUIRED)] for i in range(len(rows))}))


def _null_field(c: Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f = REQUIRED[i % len(REQUIRED)]
        r[f] = None
        exp[f"missing_{f}"] += 1
    write_parquet_rows(c.path(".parquet"), rows)
    return _result(len(rows), exp)


_WRONG_TYPES = (("asr_confidence", "high"), ("nlu_confidence", {"v": 1}), ("nlu_slots", "music"),
                ("barge_in", "sometimes"), ("ts", True), ("nlu_confidence", [0.5]))


def _wrong_type(c: Ctx) -> dict:
    rows, exp, lines = c.rows(), Counter(), []
    for i, r in enumerate(rows):
        f, v = _WRONG_TYPES[i % len(_WRONG_TYPES)]
        line = json.loads(json_line(r))
        line[f] = v
        lines.append(json.dumps(line, ensure_ascii=False))
        exp["bad_timestamp" if f == "ts" else f"wrong_type_{f}"] += 1
    write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), exp)


def _wrong_type_parquet(c: Ctx) -> dict:
    rows = c.rows()
    schema = nullable_schema()
    schema = schema.set(schema.get_field_index("asr_confidence"), pa.field("asr_confidence", pa.string()))
    schema = schema.set(schema.get_field_index("barge_in"), pa.field("barge_in", pa.int8()))
    for i, r in enumerate(rows):
        r["asr_confidence"] = ("high", "low", "n/a")[i % 3]      # no double: rejected
        r["barge_in"] = None if r.get("barge_in") is None else int(r["barge_in"])  # 0/1: converts
    write_parquet_rows(c.path(".parquet"), rows, schema)
    return _result(len(rows), {"wrong_type_asr_confidence": len(rows)})


def _unparsable_record(c: Ctx) -> dict:
    rows = c.rows()
    lines = [(s := json_line(r))[: len(s) // 2] for r in rows]
    write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), {"unparsable_record": len(rows)})


_NON_JSON = ("ERROR 2026-11-01 12:00:01 logger restarted", "[1, 2, 3]", "42", "null", '"just a string"',
             "<html><body>502 Bad Gateway</body></html>", "turn_id=t1 utterance=hello", "true", "{'single': 'quotes'}")
_BLANK = ("", "   ", "\t ")


def _non_json_line(c: Ctx) -> dict:
    lines = [_NON_JSON[i % len(_NON_JSON)] for i in range(c.n)]
    for j, b in enumerate(_BLANK):              # blank lines between the others: not rows
        lines.insert(1 + 2 * j, b)
    write_jsonl(c.path(".jsonl"), lines)
    return _result(c.n, {"unparsable_record": c.n}, blank_lines=len(_BLANK))


def _future_timestamp(c: Ctx) -> dict:
    rows = c.rows()
    shifts = (dt.timedelta(days=2), dt.timedelta(days=400), dt.timedelta(days=3650 * 7))
    for i, r in enumerate(rows):
        r["ts"] = r["ts"] + shifts[i % len(shifts)]
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"future_timestamp": len(rows)})


def _epoch_zero_timestamp(c: Ctx) -> dict:
    rows = c.rows()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for r in rows:
        r["ts"] = epoch
    half = len(rows) // 2
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows[:half]])
    write_parquet_rows(c.path(".parquet"), rows[half:])
    return _result(len(rows), {"epoch_zero_timestamp": len(rows)})


def _duplicate_turn_id(c: Ctx) -> dict:
    originals = c.rows()
    dups = []
    for i, r in enumerate(originals):
        d = dict(r)
        if i % 2:                                  # conflicting copy: later, other text
            d["ts"] = r["ts"] + dt.timedelta(seconds=1)
            d["utterance"] = r["utterance"] + " again"
        dups.append(d)                             # even: an exact re-delivery
    lines = [json_line(r) for pair in zip(dups, originals) for r in pair]
    write_jsonl(c.path(".jsonl"), lines)
    return _result(2 * len(originals), {"accepted": len(originals), "duplicate_turn_id": len(originals)})


def _out_of_order(c: Ctx) -> dict:
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
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"accepted": len(rows)}, sessions=len(picked))


def _huge_utterance(c: Ctx) -> dict:
    rows = c.rows()
    for r in rows:
        base = (r["utterance"] + " ") or "x "
        r["utterance"] = (base * (100_000 // len(base) + 1))[:100_000]
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"utterance_too_long": len(rows)})


#: invalid UTF-8 sequences (Unicode 15, §3.9 Table 3-7): a stray byte, a lone continuation
#: byte, a truncated 2-byte sequence, an overlong "/", an encoded surrogate
_BAD_BYTES = (b"\xff", b"\x80", b"\xc3(", b"\xc0\xaf", b"\xed\xa0\x80")


def _invalid_utf8(c: Ctx) -> dict:
    rows, lines = c.rows(), []
    for i, r in enumerate(rows):
        r["utterance"] = "@@BAD@@ " + r["utterance"]
        lines.append(json_line(r).encode("utf-8").replace(b"@@BAD@@", _BAD_BYTES[i % len(_BAD_BYTES)]))
    write_jsonl(c.path(".jsonl"), lines)
    return _result(len(rows), {"invalid_utf8": len(rows)})


def _invalid_utf8_parquet(c: Ctx) -> dict:
    rows = c.rows()
    utt = [_BAD_BYTES[i % len(_BAD_BYTES)] + b" " + r["utterance"].encode("utf-8") for i, r in enumerate(rows)]
    for r in rows:
        r["utterance"] = "placeholder"
    table = pa.Table.from_pylist(rows, schema=nullable_schema())
    # Arrow validates strings it builds from Python; a binary array viewed as string is not
    # validated, which is how a buggy producer's bytes reach a Parquet file
    bad = pa.array(utt, pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("utterance"), pa.field("utterance", pa.string()), bad)
    pq.write_table(table, c.path(".parquet"), **PARQUET_OPTIONS)
    return _result(len(rows), {"invalid_utf8": len(rows)})


_CONTROL = ("play\x00music", "set an alarm\x07", "\x1bturn off the lights", "what is\tthe\nweather",
            "\x00\x01\x02\x7f")


def _control_characters(c: Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["utterance"] = _CONTROL[i % len(_CONTROL)]
    only = sum(1 for i in range(len(rows)) if i % len(_CONTROL) == len(_CONTROL) - 1)
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"accepted": len(rows) - only, "empty_utterance": only},
                   repaired=len(rows) - only)


def _empty_gzip(c: Ctx) -> dict:
    c.path("-0-bytes.jsonl.gz").write_bytes(b"")
    c.path("-no-lines.jsonl.gz").write_bytes(gzip_bytes(b""))
    return _result(0, {}, empty_files=2)


def _truncated_gzip(c: Ctx) -> dict:
    rows = c.rows(max(c.n, 60))
    data = gzip_bytes(("\n".join(json_line(r) for r in rows) + "\n").encode("utf-8"))
    cut = data[: int(len(data) * 0.6)]
    kept = complete_lines(cut)
    c.path(".jsonl.gz").write_bytes(cut)
    return _result(kept + 1, {"accepted": kept, "truncated_gzip": 1}, rows_written=len(rows),
                   rows_lost=len(rows) - kept)


def _corrupt_gzip(c: Ctx) -> dict:
    c.path(".jsonl.gz").write_bytes(bytes(c.rng.getrandbits(8) for _ in range(4096)))
    return _result(1, {"corrupt_gzip": 1})


def _corrupt_parquet(c: Ctx) -> dict:
    rows = c.rows()
    p = c.path(".parquet")
    write_parquet_rows(p, rows)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return _result(1, {"unreadable_file": 1}, rows_lost=len(rows))


_LOCALES = (("zz-ZZ", "unknown_locale"), ("en-QQ", "unknown_locale"), ("xx", "unknown_locale"),
            ("english", "bad_locale"), ("en_US", "bad_locale"), ("EN-us", "bad_locale"))


def _unknown_locale(c: Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        r["locale"], reason = _LOCALES[i % len(_LOCALES)]
        exp[reason] += 1
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), exp)


def _nan_confidence(c: Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f = ("asr_confidence", "nlu_confidence")[i % 2]
        r[f] = math.nan
        exp[f"bad_{f}"] += 1
    half = len(rows) // 2
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows[:half]])  # NaN token
    write_parquet_rows(c.path(".parquet"), rows[half:])                 # IEEE NaN
    return _result(len(rows), exp)


_OUT_OF_RANGE = (("asr_confidence", 1.7), ("nlu_confidence", -0.2), ("asr_confidence", math.inf),
                 ("nlu_confidence", 1e9))


def _out_of_range_confidence(c: Ctx) -> dict:
    rows, exp = c.rows(), Counter()
    for i, r in enumerate(rows):
        f, v = _OUT_OF_RANGE[i % len(_OUT_OF_RANGE)]
        r[f] = v
        exp[f"bad_{f}"] += 1
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), exp)


def _unknown_response_status(c: Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["response_status"] = ("MAYBE", "success", "", "OK")[i % 4]
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"unknown_response_status": len(rows)})


def _extra_columns(c: Ctx) -> dict:
    rows = c.rows()
    half = len(rows) // 2
    js = [{**r, "device_type": "speaker", "debug": {"trace": i}} for i, r in enumerate(rows[:half])]
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in js])
    pq_rows = [{**r, "app_version": "9.1"} for r in rows[half:]]
    schema = nullable_schema().append(pa.field("app_version", pa.string()))
    write_parquet_rows(c.path(".parquet"), pq_rows, schema)
    return _result(len(rows), {"accepted": len(rows)},
                   extra_columns={"device_type": half, "debug": half, "app_version": len(rows) - half})


def _partition_date_mismatch(c: Ctx) -> dict:
    rows = c.rows()
    other = (dt.date.fromisoformat(c.dt) + dt.timedelta(days=1)).isoformat()
    folder = c.root / f"dt={other}"
    folder.mkdir(exist_ok=True)
    write_parquet_rows(c.path(".parquet", folder), rows)
    return _result(len(rows), {"partition_date_mismatch": len(rows)}, partition=other, rows_dated=c.dt)


def _empty_utterance(c: Ctx) -> dict:
    rows = c.rows()
    for i, r in enumerate(rows):
        r["utterance"] = ("", "   ", "\u3000", "\u00a0 ")[i % 4]
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows])
    return _result(len(rows), {"empty_utterance": len(rows)})


def _bom_crlf(c: Ctx) -> dict:
    rows = c.rows()
    write_jsonl(c.path(".jsonl"), [json_line(r) for r in rows], newline=b"\r\n", bom=True)
    return _result(len(rows), {"accepted": len(rows)})


def _unsupported_file(c: Ctx) -> dict:
    rows = c.rows()
    text = "turn_id,utterance\n" + "".join(f"{r['turn_id']},{r['utterance']}\n" for r in rows)
    c.path(".csv").write_text(text, encoding="utf-8")
    return _result(1, {"unsupported_file": 1}, rows_lost=len(rows))


def _missing_optional_columns(c: Ctx) -> dict:
    rows = c.rows()
    req = schemas.required_fields(CONTRACT)
    schema = pa.schema([f for f in nullable_schema() if f.name in req])
    write_parquet_rows(c.path(".parquet"), [{k: r[k] for k in req} for r in rows], schema)
    return _result(len(rows), {"accepted": len(rows)})


#: kind → (writer, one-line description); order is the order of ``--kinds all``
KINDS: dict[str, tuple[Callable[[Ctx], dict], str]] = {
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
