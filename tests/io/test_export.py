"""MASSIVE-style JSON Lines export (mining.io.export) and checksums (merging into a
training set: tests/tools/test_merge.py). No Spark; Hugging Face ``datasets`` tests
run offline and are skipped (visibly) when it is not installed."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mining.io import export


from mining.io import schemas

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


def test_publish_never_moves_latest_back_to_an_earlier_night(tmp_path):
    import os

    def version(name, ends):
        folder = tmp_path / "versions" / name
        for sub in ("training_set", "massive", "rewrites"):
            (folder / sub).mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"dataset_version": name, "input_partitions": [ends]}))
        (folder / "report.html").write_text("<p></p>")
        return folder

    assert export.publish(tmp_path, version("v20261102-bbbb", "2026-11-02"))
    assert export.publish(tmp_path, version("v20261103-cccc", "2026-11-03"))       # a later night
    assert not export.publish(tmp_path, version("v20261101-aaaa", "2026-11-01"))   # a backfill
    assert os.readlink(tmp_path / "latest") == "versions/v20261103-cccc"
    assert export.publish(tmp_path, version("v20261103-dddd", "2026-11-03"))       # a rerun of it
    assert os.readlink(tmp_path / "latest") == "versions/v20261103-dddd"
    assert (tmp_path / "versions" / "v20261101-aaaa" / "manifest.json").is_file()  # still readable


def test_publish_keeps_latest_when_a_locale_restricted_version_would_drop_locales(tmp_path):
    import os

    def version(name, locales, held):
        folder = tmp_path / "versions" / name
        for sub in ("training_set", "massive", "rewrites"):
            (folder / sub).mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({
            "dataset_version": name, "input_partitions": ["2026-11-02"], "locales": locales,
            "rows_by_locale_intent": {f"{loc}/alarm_set": 3 for loc in held}}))
        (folder / "report.html").write_text("<p></p>")
        return folder

    assert export.publish(tmp_path, version("v20261102-aaaa", [], ["de-DE", "en-US"]))
    # an ad hoc `--locale de-DE` run into the same OUT: latest keeps en-US
    assert not export.publish(tmp_path, version("v20261102-bbbb", ["de-DE"], ["de-DE"]))
    assert os.readlink(tmp_path / "latest") == "versions/v20261102-aaaa"
    assert export.publish(tmp_path, version("v20261102-cccc", [], ["de-DE", "en-US"]))   # a full rerun
    assert export.publish(tmp_path, version("v20261102-dddd", ["de-DE", "en-US"], ["en-US"]))
    assert os.readlink(tmp_path / "latest") == "versions/v20261102-dddd"


def test_annot_utt_and_slot_values_are_spans_of_the_exported_utterance():
    # the utterance, annot_utt and each slot value were scrubbed apart: libphonenumber reads
    # "]" as phone punctuation, so "[date : 7 12] 2024" became the unparsable "[date : <phone>"
    import pandas as pd

    from mining.io.export import finalize_labels
    from mining.sim.corpora import parse_annot_utt

    base = {"locale": "en-US", "intent": "calendar_set", "confidence": 0.9, "support_users": 3,
            "support_events": 3, "evidence": "rephrase", "cluster_id": "c", "text_users": 3}
    labels = pd.DataFrame([{**base, "utterance": "remind me on 7 12 2024", "slots": [{"name": "date", "value": "7 12"}]},
                           {**base, "utterance": "call 1:234 567 890", "slots": [{"name": "n", "value": "234 567 890"}]}])
    for row in finalize_labels(labels, 1, "v1").itertuples():
        text, slots = parse_annot_utt(row.annot_utt)                 # parses, and says the same
        assert text == " ".join(row.utterance.split())
        assert slots == [dict(s) for s in row.slots]
        assert all(s["value"] in row.utterance for s in row.slots)


def test_the_exported_cluster_id_is_keyed_not_a_hash_of_the_medoid_text():
    """The internal cluster_id hashes the medoid's normalized text without a key; the medoid
    need not be k-anonymous, so anyone could test a guessed text against an exported id."""
    import pandas as pd

    from mining.core.text import text_hash
    from mining.io.export import finalize_labels
    from mining.privacy.pii import derive_key

    medoid = "play jazz for anna smith at 12 elm street"
    internal = f"en-US:{text_hash(medoid)[:12]}"
    base = {"locale": "en-US", "intent": "play_music", "confidence": 0.9, "support_users": 3, "support_events": 3,
            "evidence": "variant", "text_users": 3, "slots": []}
    labels = pd.DataFrame([{**base, "utterance": "play jazz music", "cluster_id": internal},
                           {**base, "utterance": "play some jazz", "cluster_id": internal},
                           {**base, "utterance": "play blues", "cluster_id": None}])
    key = derive_key(b"k" * 32, "cluster_id")
    out = finalize_labels(labels, 1, "v1", cluster_key=key)
    ids = out["cluster_id"].tolist()
    assert ids[0] == ids[1] and ids[0] != internal and ids[0].startswith("en-US:") and len(ids[0]) == 6 + 16
    assert text_hash(medoid)[:12] not in ids[0] and ids[2] is None
    assert finalize_labels(labels, 1, "v1", cluster_key=key)["cluster_id"].tolist() == ids       # stable
    assert finalize_labels(labels, 1, "v1", cluster_key=derive_key(b"j" * 32, "cluster_id"))["cluster_id"][0] != ids[0]
    assert derive_key(b"k" * 32, "cluster_id") != derive_key(b"k" * 32, "dp")


def test_publish_refuses_a_stable_name_that_is_no_link_as_a_configuration_error(tmp_path):
    """A file where a stable link belongs is fixed by the operator, not by a retry (exit 2)."""
    from mining.errors import ConfigError

    folder = tmp_path / "versions" / "v20261102-bbbb"
    for sub in ("training_set", "massive", "rewrites"):
        (folder / sub).mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"dataset_version": "v20261102-bbbb",
                                                      "input_partitions": ["2026-11-02"]}))
    (tmp_path / "training_set").mkdir()
    with pytest.raises(ConfigError, match="is not a link"):
        export.publish(tmp_path, folder)
