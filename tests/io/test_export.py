"""MASSIVE-style JSON Lines export (mining.io.export), checksums, and merging mined labels
into an existing training set (mining.tools.merge). No Spark; Hugging Face ``datasets`` tests
run offline and are skipped (visibly) when it is not installed."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mining.io import export

from mining.tools import merge

from mining.io import schemas

from mining.io import storage
MASSIVE_KEYS = ["id", "locale", "partition", "utt", "annot_utt", "intent", "label_source", "confidence",
                "support_users", "support_events", "evidence", "dataset_version"]


def ts_row(utt, locale="en-US", intent="alarm_set", annot=None, confidence=0.9, users=4):
    """One training_set contract row; annot defaults to the plain text (no slots)."""
    return {"utterance": utt, "locale": locale, "intent": intent, "slots": [],
            "annot_utt": annot if annot is not None else utt, "confidence": confidence,
            "support_users": users, "support_events": users + 1, "evidence": "rephrase",
            "cluster_id": "c1", "dataset_version": "v20261101-abc"}


def ts_table(rows) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schemas.arrow_schema("training_set"))


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def m_row(utt, intent, locale="en-US", partition="train", source=None, confidence=None, annot=None, **extra):
    """One MASSIVE-shaped row for merge tests; keys absent when None."""
    row = {"locale": locale, "partition": partition, "utt": utt,
           "annot_utt": annot if annot is not None else utt, "intent": intent, **extra}
    if source is not None:
        row["label_source"] = source
    if confidence is not None:
        row["confidence"] = confidence
    return row


# --- write_massive_jsonl -------------------------------------------------------------

def test_write_massive_jsonl_fields_values_and_order(tmp_path):
    rows = [ts_row("wake me up at five am", annot="wake me up at [time : five am]"),
            ts_row("weck mich um fünf", locale="de-DE", confidence=0.75, users=7),
            ts_row("play jazz", intent="play_music", annot="play [music_genre : jazz]")]
    counts = export.write_massive_jsonl(ts_table(rows), tmp_path, dev_share=0.0, seed=1)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["de-DE.jsonl", "en-US.jsonl"]
    assert counts == {"de-DE": {"train": 1, "dev": 0}, "en-US": {"train": 2, "dev": 0}}
    en = read_lines(tmp_path / "en-US.jsonl")
    assert [r["utt"] for r in en] == ["wake me up at five am", "play jazz"]      # input order
    assert all(list(r) == MASSIVE_KEYS for r in en)                               # fixed key order
    assert en[0] == {
        "id": hashlib.sha256(b"en-US\twake me up at five am").hexdigest()[:16], "locale": "en-US",
        "partition": "train", "utt": "wake me up at five am", "annot_utt": "wake me up at [time : five am]",
        "intent": "alarm_set", "label_source": "mined", "confidence": 0.9, "support_users": 4,
        "support_events": 5, "evidence": "rephrase", "dataset_version": "v20261101-abc"}
    de = read_lines(tmp_path / "de-DE.jsonl")
    assert (de[0]["locale"], de[0]["confidence"], de[0]["support_users"]) == ("de-DE", 0.75, 7)
    assert (tmp_path / "en-US.jsonl").read_bytes().endswith(b"}\n")


def test_write_massive_jsonl_same_input_same_bytes(tmp_path):
    rows = [ts_row(f"set an alarm number {i}", locale=("en-US", "fr-FR")[i % 2]) for i in range(50)]
    export.write_massive_jsonl(ts_table(rows), tmp_path / "a", dev_share=0.3, seed=7)
    export.write_massive_jsonl(ts_table(rows), tmp_path / "b", dev_share=0.3, seed=7)
    export.write_massive_jsonl(pd.DataFrame(rows), tmp_path / "c", dev_share=0.3, seed=7)   # pandas input
    a = export.checksums(tmp_path / "a")
    assert list(a) == ["en-US.jsonl", "fr-FR.jsonl"]
    assert a == export.checksums(tmp_path / "b") == export.checksums(tmp_path / "c")


def test_split_partition_follows_the_documented_hash():
    for utt in ("wake me up", "明天早上七点叫醒我", ""):
        value = int(hashlib.sha256(f"3:en-US:{utt}".encode()).hexdigest()[:8], 16) / 2**32
        assert export.split_partition("en-US", utt, value + 1e-9, 3) == "dev"
        assert export.split_partition("en-US", utt, value, 3) == "train"


def test_write_massive_jsonl_dev_share_and_stability_on_2000_rows(tmp_path):
    rows = [ts_row(f"turn on the light number {i}") for i in range(2000)]
    counts = export.write_massive_jsonl(ts_table(rows), tmp_path / "a", dev_share=0.2, seed=5)
    # binomial(2000, 0.2): sd ≈ 17.9 rows, so ±60 rows is beyond 3 sd
    assert 340 <= counts["en-US"]["dev"] <= 460
    assert counts["en-US"]["dev"] + counts["en-US"]["train"] == 2000
    first = [r["partition"] for r in read_lines(tmp_path / "a" / "en-US.jsonl")]
    assert export.write_massive_jsonl(ts_table(rows), tmp_path / "b", dev_share=0.2, seed=5) == counts
    assert [r["partition"] for r in read_lines(tmp_path / "b" / "en-US.jsonl")] == first
    export.write_massive_jsonl(ts_table(rows), tmp_path / "c", dev_share=0.2, seed=6)
    assert [r["partition"] for r in read_lines(tmp_path / "c" / "en-US.jsonl")] != first   # seed matters
    # a text keeps its partition whatever else is in the export
    export.write_massive_jsonl(ts_table(rows[:100]), tmp_path / "d", dev_share=0.2, seed=5)
    assert [r["partition"] for r in read_lines(tmp_path / "d" / "en-US.jsonl")] == first[:100]


@pytest.mark.parametrize("share, expected", [(0.0, "train"), (1.0, "dev")])
def test_write_massive_jsonl_extreme_dev_share(tmp_path, share, expected):
    rows = [ts_row(f"text {i}") for i in range(200)]
    export.write_massive_jsonl(ts_table(rows), tmp_path, dev_share=share, seed=0)
    assert {r["partition"] for r in read_lines(tmp_path / "en-US.jsonl")} == {expected}


def test_write_massive_jsonl_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="dev_share"):
        export.write_massive_jsonl(ts_table([ts_row("a")]), tmp_path, dev_share=1.5, seed=0)
    with pytest.raises(ValueError, match="annot_utt"):
        export.write_massive_jsonl(pd.DataFrame([ts_row("a")]).drop(columns="annot_utt"), tmp_path, 0.1, 0)


def test_write_massive_jsonl_keeps_non_ascii_unescaped(tmp_path):
    zh, ar = "明天早上七点叫醒我", "أيقظني في السابعة صباحا"
    rows = [ts_row(zh, locale="zh-CN", annot="[date : 明天] [time : 早上七点] 叫醒我"),
            ts_row(ar, locale="ar-SA")]
    export.write_massive_jsonl(ts_table(rows), tmp_path, dev_share=0.1, seed=0)
    raw_zh = (tmp_path / "zh-CN.jsonl").read_bytes()
    raw_ar = (tmp_path / "ar-SA.jsonl").read_bytes()
    assert zh.encode("utf-8") in raw_zh and "[date : 明天]".encode("utf-8") in raw_zh
    assert ar.encode("utf-8") in raw_ar
    assert b"\\u" not in raw_zh + raw_ar
    assert read_lines(tmp_path / "zh-CN.jsonl")[0]["utt"] == zh


def test_checksums_cover_parquet_and_jsonl_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.jsonl").write_bytes(b'{"a": 1}\n')
    (tmp_path / "sub" / "a.parquet").write_bytes(b"PAR1")
    (tmp_path / "a.jsonl").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"ignored")
    got = export.checksums(tmp_path)
    assert list(got) == ["a.jsonl", "b.jsonl", "sub/a.parquet"]
    assert got["b.jsonl"] == hashlib.sha256(b'{"a": 1}\n').hexdigest()


# --- Hugging Face datasets (offline) -------------------------------------------------

@pytest.fixture
def hf_datasets(tmp_path, monkeypatch):
    """``datasets`` in offline mode with a throwaway cache; skips when not installed."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    datasets = pytest.importorskip("datasets", reason="Hugging Face `datasets` not installed (dev extra)")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    return datasets


def test_massive_jsonl_loads_with_hf_datasets(tmp_path, hf_datasets):
    rows = [ts_row("wake me up at five am", annot="wake me up at [time : five am]"),
            ts_row("明天早上七点叫醒我", locale="zh-CN"), ts_row("play jazz", intent="play_music")]
    export.write_massive_jsonl(ts_table(rows), tmp_path / "export", dev_share=0.5, seed=0)
    files = sorted(str(p) for p in (tmp_path / "export").glob("*.jsonl"))
    ds = hf_datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 3
    assert sorted(ds.column_names) == sorted(MASSIVE_KEYS)
    by_utt = {r["utt"]: r for r in ds}
    assert by_utt["wake me up at five am"]["annot_utt"] == "wake me up at [time : five am]"
    assert by_utt["明天早上七点叫醒我"]["locale"] == "zh-CN"
    assert by_utt["play jazz"]["intent"] == "play_music"
    assert by_utt["play jazz"]["id"] == export.massive_id("en-US", "play jazz")
    assert by_utt["play jazz"]["partition"] == export.split_partition("en-US", "play jazz", 0.5, 0)


def test_training_set_parquet_loads_with_hf_datasets(tmp_path, hf_datasets):
    rows = [ts_row("wake me up"), ts_row("weck mich", locale="de-DE"), ts_row("play jazz", intent="play_music")]
    export.write_training_set(ts_table(rows), tmp_path / "training_set")
    files = sorted(str(p) for p in (tmp_path / "training_set").rglob("*.parquet"))
    assert len(files) == 2
    ds = hf_datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 3
    contract = [f.name for f in schemas.arrow_schema("training_set") if f.name != "locale"]
    assert set(contract) <= set(ds.column_names)      # locale lives in the hive folder name
    row = next(r for r in ds if r["utterance"] == "play jazz")
    assert (row["intent"], row["support_users"], row["slots"]) == ("play_music", 4, [])


# --- merge_training_sets ---------------------------------------------------------------

def test_merge_never_overrides_human_with_same_intent():
    base = pd.DataFrame([m_row("wake me up", "alarm_set", partition="dev", annot="wake me up", id="h1")])
    mined = pd.DataFrame([m_row("wake me up", "alarm_set", source="mined", confidence=0.99,
                                annot="[x : wake] me up")])
    out, stats = merge.merge_training_sets(base, mined)
    assert stats["duplicate_of_human"] == 1 and stats["added"] == 0 and stats["output_rows"] == 1
    assert out.loc[0, ["id", "partition", "annot_utt", "label_source"]].tolist() == \
        ["h1", "dev", "wake me up", "human"]


def test_merge_never_overrides_human_with_conflicting_intent():
    base = pd.DataFrame([m_row("play jazz", "play_music", id="h1")])
    mined = pd.DataFrame([m_row("play jazz", "play_radio", source="mined", confidence=0.95)])
    out, stats = merge.merge_training_sets(base, mined)
    assert stats["conflicts_with_human"] == 1 and stats["duplicate_of_human"] == 0
    assert out[["intent", "label_source"]].values.tolist() == [["play_music", "human"]]
    review = merge.human_conflicts(base, mined)
    assert review[["utt", "intent", "confidence", "human_id", "human_intent"]].values.tolist() == \
        [["play jazz", "play_radio", 0.95, "h1", "play_music"]]


def test_merge_label_source_defaults_to_human():
    base = pd.DataFrame([m_row("wake me up", "alarm_set"), m_row("old", "x", source=None)])
    base.loc[1, "label_source"] = None                    # a null value defaults too
    mined = pd.DataFrame([m_row("old", "y", confidence=0.9)])
    out, stats = merge.merge_training_sets(base, mined)
    assert set(out["label_source"]) == {"human"} and stats["conflicts_with_human"] == 1


def test_merge_replaces_older_mined_and_keeps_its_partition():
    base = pd.DataFrame([m_row("set a timer", "timer_set", partition="dev", source="mined", confidence=0.6)])
    mined = pd.DataFrame([m_row("Set a timer!", "alarm_set", partition="train", confidence=0.8)])
    out, stats = merge.merge_training_sets(base, mined)
    assert stats["replaced_mined"] == 1 and stats["added"] == 0 and stats["output_rows"] == 1
    assert out.loc[0, ["utt", "intent", "confidence", "partition", "label_source"]].tolist() == \
        ["Set a timer!", "alarm_set", 0.8, "dev", "mined"]


def test_merge_new_mined_rows_keep_their_partition():
    base = pd.DataFrame([m_row("wake me up", "alarm_set", partition="train")])
    mined = pd.DataFrame([m_row("play jazz", "play_music", partition="dev", confidence=0.7)])
    out, stats = merge.merge_training_sets(base, mined)
    assert stats["added"] == 1
    assert out.set_index("utt")["partition"].to_dict() == {"wake me up": "train", "play jazz": "dev"}


def test_merge_collapses_mined_duplicates_by_confidence_then_text():
    mined = pd.DataFrame([
        m_row("turn on the light", "iot_on", confidence=0.7),
        m_row("Turn on the light.", "iot_on", confidence=0.9),        # highest confidence wins
        m_row("turn on the lights", "iot_on", confidence=0.5),        # another key
        m_row("wake me up", "alarm_set", confidence=0.8),
        m_row("Wake me up", "alarm_set", confidence=0.8),             # tie → "Wake…" < "wake…"
    ])
    out, stats = merge.merge_training_sets(pd.DataFrame(), mined)
    assert stats["duplicate_in_mined"] == 2 and stats["added"] == 3
    assert sorted(out["utt"]) == ["Turn on the light.", "Wake me up", "turn on the lights"]


def test_merge_dedups_on_normalized_text():
    base = pd.DataFrame([m_row("Wake me up!", "alarm_set")])
    mined = pd.DataFrame([m_row("wake me up", "alarm_set", confidence=0.9),
                          m_row("WAKE  ME  UP", "alarm_query", confidence=0.8)])
    out, stats = merge.merge_training_sets(base, mined)
    assert (stats["duplicate_of_human"], stats["duplicate_in_mined"], stats["output_rows"]) == (1, 1, 1)
    assert out["utt"].tolist() == ["Wake me up!"]


def test_merge_keys_are_per_locale():
    base = pd.DataFrame([m_row("wake me up", "alarm_set", locale="en-US")])
    mined = pd.DataFrame([m_row("wake me up", "alarm_set", locale="en-GB", confidence=0.9),
                          m_row("wake me up", "alarm_set", locale="en-US", confidence=0.9)])
    out, stats = merge.merge_training_sets(base, mined)
    assert (stats["added"], stats["duplicate_of_human"]) == (1, 1)
    assert out[["locale", "label_source"]].values.tolist() == [["en-GB", "mined"], ["en-US", "human"]]


def test_merge_collapses_base_duplicates_preferring_human():
    base = pd.DataFrame([m_row("wake me up", "alarm_query", source="mined"),
                         m_row("Wake me up.", "alarm_set"), m_row("wake me up", "alarm_other")])
    out, stats = merge.merge_training_sets(base, pd.DataFrame())
    assert (stats["duplicate_in_base"], stats["output_rows"]) == (2, 1)
    assert out[["utt", "intent", "label_source"]].values.tolist() == [["Wake me up.", "alarm_set", "human"]]


def test_merge_output_unique_sorted_and_accounted():
    # 40 human + 30 old mined base rows; 200 mined rows over 60 keys, many colliding with base
    base = pd.DataFrame([m_row(f"text {i}", f"intent_{i % 3}", locale=("en-US", "de-DE")[i % 2],
                               source="human" if i < 40 else "mined", confidence=None if i < 40 else 0.5)
                         for i in range(70)])
    mined = pd.DataFrame([m_row(f"Text {i % 60}!" if i % 2 else f"text {i % 60}", f"intent_{i % 4}",
                                locale=("en-US", "de-DE")[(i % 60) % 2], confidence=(i % 7) / 10)
                          for i in range(200)])
    out, stats = merge.merge_training_sets(base, mined)
    keys = list(zip(out["locale"], out["utt"].str.lower().str.rstrip("!")))
    assert len(keys) == len(set(keys)) == stats["output_rows"] == 70
    assert out.equals(out.sort_values(merge.SORT_COLUMNS, kind="mergesort").reset_index(drop=True))
    assert stats["mined_rows"] == 200 and stats["duplicate_in_mined"] == 140
    assert stats["duplicate_of_human"] + stats["conflicts_with_human"] == 40
    assert stats["replaced_mined"] == 20 and stats["added"] == 0
    again, stats_again = merge.merge_training_sets(base.sample(frac=1, random_state=1), mined)
    assert stats_again == stats and again[merge.SORT_COLUMNS].equals(out[merge.SORT_COLUMNS])


def test_merge_rejects_human_rows_in_mined_and_missing_columns():
    with pytest.raises(ValueError, match="label_source 'mined'"):
        merge.merge_training_sets(pd.DataFrame(), pd.DataFrame([m_row("a", "x", source="human")]))
    with pytest.raises(ValueError, match="partition"):
        merge.merge_training_sets(pd.DataFrame([m_row("a", "x")]).drop(columns="partition"), pd.DataFrame())


# --- read_training_set / write_merged ------------------------------------------------

def merged_example():
    base = pd.DataFrame([m_row("wake me up", "alarm_set", id="h1", scenario="alarm"),
                         m_row("明天早上七点叫醒我", "alarm_set", locale="zh-CN", id="h2"),
                         m_row("old text", "x", source="mined", confidence=0.5, support_users=3)])
    mined = pd.DataFrame([m_row("Old text", "y", confidence=0.8, support_users=9),
                          m_row("أيقظني", "alarm_set", locale="ar-SA", partition="dev", confidence=0.7,
                                support_users=4)])
    return merge.merge_training_sets(base, mined)


def test_write_merged_round_trips_through_read_training_set(tmp_path):
    out, stats = merged_example()
    manifest = merge.write_merged(out, tmp_path / "merged", stats)
    folder = tmp_path / "merged"
    assert sorted(p.name for p in folder.iterdir()) == ["ar-SA.jsonl", "en-US.jsonl", "merge_manifest.json",
                                                       "zh-CN.jsonl"]
    on_disk = json.loads((folder / merge.MANIFEST_NAME).read_text())
    assert on_disk == manifest and on_disk["stats"] == stats
    assert on_disk["checksums"] == export.checksums(folder)
    assert on_disk["rows_by_locale_source"] == {"ar-SA/mined": 1, "en-US/human": 1, "en-US/mined": 1,
                                                "zh-CN/human": 1}
    back = merge.read_training_set(folder)
    pd.testing.assert_frame_equal(back, out)
    assert back["support_users"].dtype == "Int64"                      # nulls did not make it float
    merge.write_merged(back, tmp_path / "again", stats)                # same rows → same bytes
    assert export.checksums(tmp_path / "again") == on_disk["checksums"]
    one = merge.read_training_set(folder / "zh-CN.jsonl")
    assert one["utt"].tolist() == ["明天早上七点叫醒我"]


def test_read_training_set_from_parquet_and_export_feeds_merge(tmp_path):
    rows = [ts_row("wake me up"), ts_row("play jazz", intent="play_music"), ts_row("weck mich", locale="de-DE")]
    export.write_training_set(ts_table(rows), tmp_path / "training_set")
    export.write_massive_jsonl(ts_table(rows), tmp_path / "jsonl", dev_share=0.5, seed=3)
    from_parquet = merge.read_training_set(tmp_path / "training_set", dev_share=0.5, seed=3)
    from_jsonl = merge.read_training_set(tmp_path / "jsonl")
    assert "utterance" not in from_parquet and set(from_parquet["label_source"]) == {"mined"}
    cols = ["id", "locale", "partition", "utt", "intent", "label_source"]
    key = ["locale", "utt"]
    assert from_parquet[cols].sort_values(key).values.tolist() == from_jsonl[cols].sort_values(key).values.tolist()
    base = pd.DataFrame([m_row("wake me up", "alarm_set")])
    for mined in (from_parquet, from_jsonl):
        _, stats = merge.merge_training_sets(base, mined)
        assert (stats["duplicate_of_human"], stats["added"]) == (1, 2)
    with pytest.raises(FileNotFoundError):
        merge.read_training_set(tmp_path / "nothing-here")


def test_write_merged_failure_mid_write_leaves_no_output(tmp_path, monkeypatch):
    out, stats = merged_example()
    real, calls = export.write_jsonl, []

    def fail_on_second_file(path, records):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, records)

    monkeypatch.setattr(export, "write_jsonl", fail_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        merge.write_merged(out, tmp_path / "merged", stats)
    assert len(calls) == 2 and calls[0].exists() is False           # the first file was staged, then removed
    assert list(tmp_path.iterdir()) == []                             # no output, no staging leftovers


def test_write_merged_failure_keeps_previous_output(tmp_path, monkeypatch):
    out, stats = merged_example()
    merge.write_merged(out, tmp_path / "merged", stats)
    before = export.checksums(tmp_path / "merged")

    def fail(*args, **kwargs):
        raise RuntimeError("crash before the manifest")

    monkeypatch.setattr(storage, "write_json", fail)
    with pytest.raises(RuntimeError, match="manifest"):
        merge.write_merged(out.iloc[:1], tmp_path / "merged", stats)
    assert export.checksums(tmp_path / "merged") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]


def test_write_merged_rejects_duplicate_keys(tmp_path):
    out, _ = merged_example()
    dup = pd.concat([out, out.iloc[[0]].assign(utt=lambda d: d["utt"].str.upper())], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate"):
        merge.write_merged(dup, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
