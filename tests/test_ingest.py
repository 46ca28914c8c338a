"""Ingest: Parquet and JSON Lines are read together; bad rows are quarantined with a
reason and counted (accepted + rejected = input); the reject-share limit fails the run."""
import datetime as dt
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining import ingest, schemas
from mining.config import load_config

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)


def _row(i, **over):
    row = dict(turn_id=f"t{i}", session_id="s1", user_id="acct-1", locale="en-US",
               ts=T0 + dt.timedelta(seconds=i), utterance=f"turn number {i}", asr_confidence=0.9,
               nlu_intent="general_quirky", nlu_slots=[], nlu_confidence=0.8,
               response_status="SUCCESS", barge_in=False)
    row.update(over)
    return row


@pytest.fixture
def mixed_logs(tmp_path):
    part = tmp_path / "logs" / "dt=2026-11-02"
    part.mkdir(parents=True)
    good = [_row(i) for i in range(6)]
    pq.write_table(pa.Table.from_pylist(good, schema=schemas.arrow_schema("interaction_turn")),
                   part / "a.parquet")
    lines = [
        json.dumps({**_row(10), "ts": "2026-11-02T09:00:10Z"}),                 # good
        json.dumps({**_row(11), "ts": "2026-11-02T09:00:11Z", "locale": None}),  # missing_locale
        json.dumps({**_row(12), "ts": "2026-11-02T09:00:12Z", "response_status": "MAYBE"}),
        json.dumps({**_row(13), "ts": "2026-11-02T09:00:13Z", "nlu_confidence": 1.7}),
        json.dumps({**_row(14), "ts": "2026-11-05T09:00:00Z"}),                  # wrong partition
        json.dumps({**_row(15), "ts": "not a time"}),                            # bad_timestamp
        json.dumps({**_row(0), "ts": "2026-11-02T09:00:30Z"}),                   # duplicate turn_id
        "{this is not json",                                                     # unparsable
    ]
    with gzip.open(part / "b.jsonl.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    (tmp_path / "logs" / "dt=2026-11-09").mkdir()  # outside the date range: not read
    return tmp_path / "logs"


def test_validate_quarantines_every_bad_row_with_its_reason(spark, mixed_logs):
    cfg = load_config(str(mixed_logs), "unused", start_date=dt.date(2026, 11, 1), end_date=dt.date(2026, 11, 3))
    raw, parts = ingest.read_logs(spark, cfg.logs, cfg.start_date, cfg.end_date)
    accepted, rejects, counts = ingest.validate(raw, cfg)
    assert parts == ["2026-11-02"]
    assert counts["input"] == 14 and counts["accepted"] == 7
    assert counts["accepted"] + counts["rejected"] == counts["input"]
    assert counts["by_reason"] == {
        "bad_nlu_confidence": 1, "bad_timestamp": 1, "duplicate_turn_id": 1, "missing_locale": 1,
        "partition_date_mismatch": 1, "unknown_response_status": 1, "unparsable_record": 1}
    assert accepted.count() == 7 and rejects.count() == 7
    raw_line = rejects.where("reason = 'unparsable_record'").first()["record"]
    assert raw_line == "{this is not json"
    kept = accepted.where("turn_id = 't0'").first()
    assert kept["utterance"] == "turn number 0"          # the earliest duplicate wins


def test_reject_share_over_the_limit_names_reason_and_partition():
    counts = {"input": 100, "accepted": 80, "rejected": 20, "by_reason": {"missing_ts": 15, "bad_locale": 5}}
    with pytest.raises(ingest.RejectShareExceeded, match="top reason missing_ts .* 2026-11-02"):
        ingest.check_reject_share(counts, ["2026-11-02"], 0.05)
    ingest.check_reject_share(counts, ["2026-11-02"], 0.25)


def test_missing_partitions_raise_a_clear_error(tmp_path):
    with pytest.raises(ingest.NoInputPartitions, match="no dt= partitions"):
        ingest.list_partitions(str(tmp_path), None, None)
