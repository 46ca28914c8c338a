"""Bad input, nothing lost: every kind of corruption of mining.sim.corruption, written beside a
small clean simulated log, is read by ingest without an error; every input row is accepted
or rejected with the reason this file expects for the kind (written here independently of
the generator's own "expected"), and the counts add up per kind, per partition and overall.
Over validation.max_reject_share, the CLI exits 3 with one line naming reason and partition.

One read + validate of all kinds together (one Spark session); each kind's rows are told
apart by their files (corrupt-<kind>.*) and fresh turn ids (x-<kind>-<n>)."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from mining.sim import corruption

from mining.spark import ingest, validate
from mining.config import load_config

REQUIRED = ("turn_id", "user_id", "locale", "ts", "utterance", "response_status")


def _cycle(n: int, labels) -> Counter:
    """Row i gets labels[i % len(labels)]: the generator's documented round robin."""
    return Counter(labels[i % len(labels)] for i in range(n))


def _split(n: int, first: str, second: str) -> Counter:
    return Counter({first: n // 2, second: n - n // 2})


def expected_outcome(kind: str, info: dict, n: int) -> Counter:
    """What ingest must do with kind's rows ({reason or "accepted": rows}); ``n`` is
    rows_per_kind, ``info`` the generator's summary of the kind (for row totals only)."""
    rows = info["rows"]
    per_kind = {
        "missing_field": lambda: _cycle(n, [f"missing_{f}" for f in REQUIRED]),
        "null_field": lambda: _cycle(n, [f"missing_{f}" for f in REQUIRED]),
        "wrong_type": lambda: _cycle(n, ["wrong_type_asr_confidence", "wrong_type_nlu_confidence",
                                         "wrong_type_nlu_slots", "wrong_type_barge_in", "bad_timestamp",
                                         "wrong_type_nlu_confidence"]),
        "wrong_type_parquet": lambda: Counter({"wrong_type_asr_confidence": n}),
        "unparsable_record": lambda: Counter({"unparsable_record": n}),
        "non_json_line": lambda: Counter({"unparsable_record": n}),
        "future_timestamp": lambda: Counter({"future_timestamp": n}),
        "epoch_zero_timestamp": lambda: Counter({"epoch_zero_timestamp": n}),
        "duplicate_turn_id": lambda: Counter({"accepted": n, "duplicate_turn_id": n}),
        "out_of_order": lambda: Counter({"accepted": rows}),
        "huge_utterance": lambda: Counter({"utterance_too_long": n}),
        "invalid_utf8": lambda: Counter({"invalid_utf8": n}),
        "invalid_utf8_parquet": lambda: Counter({"invalid_utf8": n}),
        # 4 of 5 utterances keep words once the control characters are gone; 1 is only controls
        "control_characters": lambda: _cycle(n, ["accepted"] * 4 + ["empty_utterance"]),
        "empty_gzip": lambda: Counter(),
        # the complete lines before the cut are recovered; the unreadable rest is one row
        "truncated_gzip": lambda: Counter({"accepted": rows - 1, "truncated_gzip": 1}),
        "corrupt_gzip": lambda: Counter({"corrupt_gzip": 1}),
        "corrupt_parquet": lambda: Counter({"unreadable_file": 1}),
        "unknown_locale": lambda: _cycle(n, ["unknown_locale"] * 3 + ["bad_locale"] * 3),
        "nan_confidence": lambda: _cycle(n, ["bad_asr_confidence", "bad_nlu_confidence"]),
        "out_of_range_confidence": lambda: _cycle(n, ["bad_asr_confidence", "bad_nlu_confidence"]),
        "unknown_response_status": lambda: Counter({"unknown_response_status": n}),
        "extra_columns": lambda: Counter({"accepted": n}),
        "partition_date_mismatch": lambda: Counter({"partition_date_mismatch": n}),
        "empty_utterance": lambda: Counter({"empty_utterance": n}),
        "bom_crlf": lambda: Counter({"accepted": n}),
        "unsupported_file": lambda: Counter({"unsupported_file": 1}),
        "missing_optional_columns": lambda: Counter({"accepted": n}),
    }
    return +per_kind[kind]()


ROWS_PER_KIND = 12


@pytest.fixture(scope="module")
def bad(small_sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "logs"
    summary = corruption.corrupt_logs(small_sim["logs"], out, "all", seed=0, rows_per_kind=ROWS_PER_KIND)
    return {"logs": out, "summary": summary}


@pytest.fixture(scope="module")
def validated(spark, bad):
    cfg = load_config(str(bad["logs"]), "unused")
    logs = ingest.read_logs(spark, cfg.logs, None, None)
    partitions = logs.partitions
    accepted, rejects, counts = validate.validate(logs.df, cfg.validation, cfg.sessions, file_stats=logs.file_stats)
    rej = [(r["reason"], r["dt"], Path(r["source_file"]).name) for r in rejects.collect()]
    acc = [r["turn_id"] for r in accepted.select("turn_id").collect()]
    return {"accepted": accepted, "rejects": rej, "accepted_ids": acc, "counts": counts, "partitions": partitions}


def _outcome(validated, kind: str) -> Counter:
    own = (f"corrupt-{kind}.", f"corrupt-{kind}-")
    got = Counter(reason for reason, _, name in validated["rejects"] if name.startswith(own))
    got["accepted"] = sum(1 for t in validated["accepted_ids"] if t.startswith(f"x-{kind}-"))
    return +got


def test_there_are_at_least_20_kinds_and_the_brief_ones():
    assert len(corruption.KINDS) >= 20
    for k in ("missing_field", "null_field", "wrong_type", "unparsable_record", "future_timestamp",
              "epoch_zero_timestamp", "duplicate_turn_id", "out_of_order", "huge_utterance", "invalid_utf8",
              "control_characters", "non_json_line", "empty_gzip", "truncated_gzip", "unknown_locale",
              "nan_confidence", "out_of_range_confidence", "unknown_response_status", "extra_columns",
              "partition_date_mismatch"):
        assert k in corruption.KINDS


@pytest.mark.parametrize("kind", list(corruption.KINDS))
def test_every_row_of_a_kind_is_accepted_or_rejected_with_its_reason(validated, bad, kind):
    info = bad["summary"]["kinds"][kind]
    got = _outcome(validated, kind)
    assert got == expected_outcome(kind, info, ROWS_PER_KIND)
    assert sum(got.values()) == info["rows"]          # accepted + rejected = rows written


def test_counts_add_up_overall_and_per_partition(validated, bad):
    c, s = validated["counts"], bad["summary"]
    assert c["input"] == s["total_rows"]
    assert c["accepted"] + c["rejected"] == c["input"]
    assert sum(c["by_reason"].values()) == c["rejected"]
    assert len(validated["accepted_ids"]) == c["accepted"] and len(validated["rejects"]) == c["rejected"]
    for day, p in c["by_partition"].items():
        assert p["accepted"] + p["rejected"] == p["input"] == p["accepted"] + sum(p["by_reason"].values())
        assert Counter(r for r, d, _ in validated["rejects"] if d == day) == Counter(p["by_reason"])
    assert sum(p["input"] for p in c["by_partition"].values()) == c["input"]
    # the clean rows are all accepted: the corruption never leaks into them
    clean = sum(1 for t in validated["accepted_ids"] if not t.startswith("x-"))
    assert clean == sum(s["clean_rows"].values())


def test_what_is_not_a_row_is_counted_too(validated, bad):
    c, kinds = validated["counts"], bad["summary"]["kinds"]
    assert c["skipped"] == {"blank_line": kinds["non_json_line"]["detail"]["blank_lines"]} == {"blank_line": 3}
    assert c["repaired"] == {"control_characters": kinds["control_characters"]["detail"]["repaired"],
                             "blank_nlu_intent": 0}
    assert c["extra_columns"] == {"app_version": 6, "debug": 6, "device_type": 6}
    files = c["files"]
    assert sorted(Path(p).name for p in files["empty"]) == [
        "corrupt-empty_gzip-0-bytes.jsonl.gz", "corrupt-empty_gzip-no-lines.jsonl.gz"]
    assert {Path(d["path"]).name: d["status"] for d in files["damaged"]} == {
        "corrupt-truncated_gzip.jsonl.gz": "truncated", "corrupt-corrupt_gzip.jsonl.gz": "corrupt"}
    assert [Path(p).name for p in files["unreadable"]] == ["corrupt-corrupt_parquet.parquet"]
    assert [Path(p).name for p in files["unsupported"]] == ["corrupt-unsupported_file.csv"]


def test_repaired_and_rejected_texts_are_clean(validated):
    rows = {r["turn_id"]: r["utterance"] for r in validated["accepted"]
            .where("turn_id like 'x-control_characters-%'").collect()}
    assert rows and all(not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in u) for u in rows.values())
    assert "play music" in rows.values() and "what is the weather" in rows.values()


def test_out_of_order_turns_are_ordered_by_time_in_their_sessions(validated, bad):
    from pyspark.sql import functions as F

    from mining.spark import sessions
    from mining.privacy.pii import resolve_key

    cfg = load_config(str(bad["logs"]), "unused")
    mine = validated["accepted"].where(F.col("turn_id").startswith("x-out_of_order-"))
    turns = sessions.prepare_turns(mine, cfg.friction, cfg.rephrase, resolve_key()).select(
        "session_pseudonym", "turn_index", "ts", "turn_id").collect()
    by_session: dict = {}
    for t in turns:
        by_session.setdefault(t["session_pseudonym"], []).append(t)
    assert len(by_session) == bad["summary"]["kinds"]["out_of_order"]["detail"]["sessions"]
    for ts in by_session.values():
        ts.sort(key=lambda t: t["turn_index"])
        assert [t["turn_index"] for t in ts] == list(range(len(ts)))
        assert [t["ts"] for t in ts] == sorted(t["ts"] for t in ts)
        # the generator numbers a session's turns in time order before shuffling the file
        assert [t["turn_id"] for t in ts] == sorted(t["turn_id"] for t in ts)


def test_generator_is_deterministic_for_a_seed(small_sim, tmp_path):
    kinds = "truncated_gzip,invalid_utf8,duplicate_turn_id,corrupt_gzip"

    def digest(out, seed):
        corruption.corrupt_logs(small_sim["logs"], out, kinds, seed=seed, include_clean=False)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("corrupt-*"))}

    a, b, c = digest(tmp_path / "a", 0), digest(tmp_path / "b", 0), digest(tmp_path / "c", 1)
    assert a == b and len(a) == 4
    assert a != c
    with pytest.raises(ValueError, match="unknown corruption kind"):
        corruption.parse_kinds("truncated_gzip,nope")
    with pytest.raises(ValueError, match="not empty"):
        corruption.corrupt_logs(small_sim["logs"], tmp_path / "a", kinds)


def test_over_the_reject_share_the_message_names_reason_and_its_partitions(validated):
    c = validated["counts"]
    top = max(sorted(c["by_reason"]), key=c["by_reason"].get)
    where = sorted(d for d, p in c["by_partition"].items() if top in p["by_reason"])
    elsewhere = sorted(set(c["by_partition"]) - set(where))
    assert where and elsewhere            # the check below can tell the partitions apart
    with pytest.raises(validate.RejectShareExceeded) as e:
        validate.check_reject_share(c, validated["partitions"], 0.01)
    line = str(e.value)
    assert "\n" not in line and f"top reason {top} ({c['by_reason'][top]})" in line
    for d in where:
        assert f"{d} ({c['by_partition'][d]['by_reason'][top]})" in line
    for d in elsewhere:
        assert d not in line
    validate.check_reject_share(c, validated["partitions"], 1.0)     # under the limit: no error


def test_over_the_reject_share_the_cli_exits_3_with_one_line(spark, small_sim, tmp_path, capfd):
    """`mining detect-rephrases` (in this process, on this Spark session) on logs whose
    rejects are mostly invalid UTF-8 in 2026-11-01 and a date mismatch in 2026-11-02: no
    Python traceback, exit 3, one stderr line naming the top reason and only its
    partition; the rejects written before failing hold every rejected row."""
    from mining import cli
    logs = tmp_path / "logs"
    summary = corruption.corrupt_logs(small_sim["logs"], logs, "invalid_utf8,invalid_utf8_parquet,partition_date_mismatch,"
                            "truncated_gzip,bom_crlf", seed=0, rows_per_kind=6, include_clean=False)
    code = cli.main(["detect-rephrases", "--logs", str(logs), "--out", str(tmp_path / "run"),
                     "--set", "validation.max_reject_share=0.2"])
    err = capfd.readouterr().err
    assert code == cli.EXIT_INPUT == 3, err[-2000:]
    assert "Traceback" not in err
    mine = [ln for ln in err.splitlines() if ln.startswith("mining:")]
    assert mine == [mine[0]] and mine[0].startswith("mining: input error: rejected ")
    assert mine[0].endswith("top reason invalid_utf8 (12) in partitions 2026-11-01 (12)")
    stats = json.loads((tmp_path / "run" / "rejects" / "_stats.json").read_text())
    assert stats["by_reason"] == {"invalid_utf8": 12, "partition_date_mismatch": 6, "truncated_gzip": 1}
    assert stats["accepted"] + stats["rejected"] == stats["input"] == summary["total_rows"]
