"""Merging mined weak labels into an existing training set (mining.tools.merge): human
labels win, duplicates collapse, every row accounted for. No Spark."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from mining import cli
from mining.errors import DatasetNotFound
from mining.io import export, storage
from mining.tools import merge
from tests.io.test_export import ts_row, ts_table


def m_row(utt, intent, locale="en-US", partition="train", source=None, confidence=None, annot=None, **extra):
    """One MASSIVE-shaped row for merge tests; keys absent when None."""
    row = {"locale": locale, "partition": partition, "utt": utt,
           "annot_utt": annot if annot is not None else utt, "intent": intent, **extra}
    if source is not None:
        row["label_source"] = source
    if confidence is not None:
        row["confidence"] = confidence
    return row


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


def test_merging_exports_in_any_order_keeps_the_newest_nights_label():
    """An older export merged after a newer one (or both at once) never brings back the label
    the newer night replaced: the same result in every order, and the stats say why."""
    base = pd.DataFrame([m_row("wake me up", "alarm_set")])
    v1 = pd.DataFrame([m_row("what time is my alarm", "alarm_query", confidence=0.95, dataset_version="v20261101-aaaa")])
    v2 = pd.DataFrame([m_row("What time is my alarm?", "alarm_set", confidence=0.80, dataset_version="v20261105-bbbb")])
    forward, _ = merge.merge_training_sets(merge.merge_training_sets(base, v1)[0], v2)
    backward, late = merge.merge_training_sets(merge.merge_training_sets(base, v2)[0], v1)
    together, both = merge.merge_training_sets(base, pd.concat([v1, v2], ignore_index=True))
    for out in (forward, backward, together):
        row = out[out["utt"].str.lower().str.startswith("what time")]
        assert row[["intent", "dataset_version"]].values.tolist() == [["alarm_set", "v20261105-bbbb"]]
    assert late["older_than_base"] == 1 and late["replaced_mined"] == 0
    assert both["duplicate_in_mined"] == 1 and both["added"] == 1
    # the partition: merged at once as night by night in date order (v1's, the first export);
    # an older export merged late never moves a text that is already in the base
    v1["partition"], v2["partition"] = "dev", "train"

    def part(out):
        return out[out["utt"].str.lower().str.startswith("what time")]["partition"].tolist()
    assert part(merge.merge_training_sets(merge.merge_training_sets(base, v1)[0], v2)[0]) == ["dev"]
    assert part(merge.merge_training_sets(base, pd.concat([v2, v1], ignore_index=True))[0]) == ["dev"]
    assert part(merge.merge_training_sets(merge.merge_training_sets(base, v2)[0], v1)[0]) == ["train"]


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
    with pytest.raises(DatasetNotFound, match="partition"):      # bad input data (exit 3)
        merge.merge_training_sets(pd.DataFrame([m_row("a", "x")]).drop(columns="partition"), pd.DataFrame())
    with pytest.raises(DatasetNotFound, match="unknown label_source"):
        merge.merge_training_sets(pd.DataFrame([m_row("a", "x", source="gold")]), pd.DataFrame())


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
    # the role fills label_source (as merge_training_sets does for its mined side)
    from_parquet = merge._prepare(merge.read_training_set(tmp_path / "training_set", dev_share=0.5, seed=3),
                                  "mined", "mined")
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


def test_readers_leave_label_source_to_the_role_in_the_merge(tmp_path):
    export.write_training_set(ts_table([ts_row("wake me up")]), tmp_path / "training_set")
    (tmp_path / "human.jsonl").write_text(json.dumps(m_row("play jazz", "play_music")) + "\n")
    for path in (tmp_path / "training_set", tmp_path / "human.jsonl"):
        assert "label_source" not in merge.read_training_set(path, dev_share=0.1)
        assert merge._prepare(merge.read_training_set(path, dev_share=0.1), "base", "human")["label_source"] \
            .tolist() == ["human"]
    # no label_source in a Parquet base: human, as in a JSON Lines one (module docstring)
    base = merge.read_training_set(tmp_path / "training_set", dev_share=0.1)
    out, stats = merge.merge_training_sets(base, pd.DataFrame([m_row("wake me up", "alarm_query", confidence=0.9)]))
    assert stats["conflicts_with_human"] == 1 and out[["intent", "label_source"]].values.tolist() == \
        [["alarm_set", "human"]]


# --- mining merge (the command) --------------------------------------------------------

def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _merge_cli(tmp_path, base, mined, *extra):
    return cli.main(["merge", "--base", str(base), "--mined", str(mined), "--out", str(tmp_path / "merged"),
                     *map(str, extra)])


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_cli_keeps_a_parquet_human_base(tmp_path, capsys):
    export.write_training_set(ts_table([ts_row("wake me up"), ts_row("play jazz", intent="play_music")]),
                              tmp_path / "human_parquet")
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("wake me up", "alarm_query", source="mined", confidence=0.99)])
    assert _merge_cli(tmp_path, tmp_path / "human_parquet", mined, "--conflicts", tmp_path / "c.jsonl") == 0
    merged = merge.read_training_set(tmp_path / "merged")
    assert merged.set_index("utt")[["intent", "label_source"]].to_dict("index") == {
        "play jazz": {"intent": "play_music", "label_source": "human"},
        "wake me up": {"intent": "alarm_set", "label_source": "human"}}        # not replaced by the mined row
    assert [json.loads(x)["human_intent"] for x in (tmp_path / "c.jsonl").read_text().splitlines()] == ["alarm_set"]


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_cli_conflicts_file_is_rewritten_even_when_empty(tmp_path, capsys):
    base = _jsonl(tmp_path / "base.jsonl", [m_row("wake me up", "alarm_set")])
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("play jazz", "play_music", confidence=0.9)])
    conflicts = tmp_path / "conflicts.jsonl"
    conflicts.write_text('{"stale": "from an earlier merge"}\n')
    assert _merge_cli(tmp_path, base, mined, "--conflicts", conflicts) == 0
    assert conflicts.read_text() == ""
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]        # no temp file left


@pytest.mark.usefixtures("clean_cli_state")
@pytest.mark.parametrize("where", ["missing/conflicts.jsonl", "merged/conflicts.jsonl", "merged"])
def test_merge_cli_bad_conflicts_path_exits_2_before_any_output(tmp_path, capsys, where):
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music")])
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("play jazz", "play_radio", confidence=0.9)])
    if where.startswith("merged/"):                       # inside an earlier output, which the merge replaces
        merge.write_merged(merge.merge_training_sets(merge.read_training_set(base), pd.DataFrame())[0],
                           tmp_path / "merged")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert _merge_cli(tmp_path, base, mined, "--conflicts", tmp_path / where) == cli.EXIT_CONFIG == 2
    assert "--conflicts" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before           # the merge wrote nothing


@pytest.mark.usefixtures("clean_cli_state")
@pytest.mark.parametrize("bad, match", [
    ('{"locale": "en-US", "utt": "x"\n', "base.jsonl:2: not a JSON object"),
    ("[1, 2]\n", "base.jsonl:2: not a JSON object"),
    (json.dumps(m_row("x", "y", source="gold")) + "\n", "unknown label_source"),
    (None, "lacks columns"),
])
def test_merge_cli_bad_input_data_exits_3(tmp_path, capsys, bad, match):
    base = tmp_path / "base.jsonl"
    good = m_row("wake me up", "alarm_set")
    if bad is None:                                       # no row has a partition
        good.pop("partition")
    base.write_text(json.dumps(good) + "\n" + (bad or ""), encoding="utf-8")
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("play jazz", "play_music", confidence=0.9)])
    assert _merge_cli(tmp_path, base, mined) == cli.EXIT_INPUT == 3
    err = capsys.readouterr().err
    assert err.startswith("mining: input error:") and match in err
    assert not (tmp_path / "merged").exists()


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_cli_run_root_without_a_published_version_exits_3(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = tmp_path / "run"
    for stage, table in (("turns", pa.table({"utt_id": [1], "locale": ["en-US"]})),
                         ("labels", pa.table({"locale": ["en-US"], "utterance": ["wake me up"],
                                              "intent": ["alarm_set"], "decision": ["labeled"]}))):
        (run / stage).mkdir(parents=True)
        pq.write_table(table, run / stage / "part-0.parquet")
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music")])
    assert _merge_cli(tmp_path, base, run) == 3
    err = capsys.readouterr().err
    assert "without a published dataset version" in err and "export_dataset" in err
    assert not (tmp_path / "merged").exists()
    with pytest.raises(DatasetNotFound, match="run's output root"):        # never globbed as a dataset
        merge.read_training_set(run, dev_share=0.1)
    # once a version is published (training_set/ without massive/), that is what is merged
    export.write_training_set(ts_table([ts_row("wake me up")]), run / "training_set")
    assert _merge_cli(tmp_path, base, run) == 0
    assert sorted(merge.read_training_set(tmp_path / "merged")["utt"]) == ["play jazz", "wake me up"]


@pytest.mark.usefixtures("clean_cli_state")
@pytest.mark.parametrize("share", ["2", "-0.1", "nan", "half"])
def test_merge_cli_dev_share_outside_0_1_exits_2(tmp_path, capsys, share):
    with pytest.raises(SystemExit) as exit_:
        _merge_cli(tmp_path, tmp_path / "base.jsonl", tmp_path / "mined.jsonl", "--dev-share", share)
    assert exit_.value.code == 2 and "--dev-share: expected a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_cli_accepts_an_empty_published_version(tmp_path, capsys):
    """Found in review: a night that published no rows (``quality.min_rows = 0`` allows it) left
    empty massive/ and training_set/ folders, and merging it failed (exit 3); the base is kept."""
    out, version = tmp_path / "out", tmp_path / "out" / "versions" / "v1"
    for name in ("massive", "training_set"):
        (version / name).mkdir(parents=True)
    (version / "manifest.json").write_text("{}")
    (out / "latest").symlink_to("versions/v1")
    (out / "massive").symlink_to("latest/massive")
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music")])
    assert _merge_cli(tmp_path, base, out) == 0
    assert list(merge.read_training_set(tmp_path / "merged")["utt"]) == ["play jazz"]
    assert len(merge.read_training_set(version / "training_set", dev_share=0.1)) == 0
    (version / "manifest.json").unlink()                           # not a published version: still refused
    with pytest.raises(FileNotFoundError):
        merge.read_training_set(version / "massive")


def test_a_run_root_is_read_through_latest_resolved_once(tmp_path):
    """OUT/massive → latest/massive: the folder is resolved to versions/<v>/massive before its
    files are listed, so a publish in between (latest flips) cannot mix two versions' files."""
    out = tmp_path / "out"
    for v in ("v1", "v2"):
        (out / "versions" / v / "massive").mkdir(parents=True)
        (out / "versions" / v / "massive" / f"{v}.jsonl").write_text("")
    (out / "latest").symlink_to("versions/v1")
    (out / "massive").symlink_to("latest/massive")
    got, direct = merge.resolve_mined_path(out), merge.resolve_mined_path(out / "massive")
    storage.replace_symlink(out / "latest", "versions/v2", durable=False)      # the next night publishes
    for path in (got, direct):                                                  # still the version it began with
        assert sorted(p.name for p in path.iterdir()) == ["v1.jsonl"]
    named = tmp_path / "massive"                                  # a run root that is itself called massive
    named.mkdir()
    (named / "versions" / "v1" / "massive").mkdir(parents=True)
    (named / "latest").symlink_to("versions/v1")
    (named / "massive").symlink_to("latest/massive")
    (named / "turns").mkdir()
    assert merge.resolve_mined_path(named) == (named / "versions" / "v1" / "massive").resolve()


@pytest.mark.usefixtures("clean_cli_state")
@pytest.mark.parametrize("target", ["run", "corpus", "file"])
def test_merge_cli_never_replaces_a_folder_that_is_no_merge_output(tmp_path, capsys, target):
    """Found in review: ``--out`` naming a run's OUT root (or a corpus folder) replaced it as a
    whole with the merged files: every version, labels/ and link gone, exit 0."""
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music")])
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("wake me up", "alarm_set", confidence=0.9)])
    out = tmp_path / target
    if target == "file":
        out.write_text("notes\n")
    else:
        (out / ("versions" if target == "run" else "LICENSE")).mkdir(parents=True)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code = cli.main(["merge", "--base", str(base), "--mined", str(mined), "--out", str(out)])
    assert code == cli.EXIT_CONFIG == 2 and "no earlier merge output" in capsys.readouterr().err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    # an earlier merge output is replaced, as before (merging night by night into one folder)
    assert _merge_cli(tmp_path, base, mined) == 0
    assert _merge_cli(tmp_path, tmp_path / "merged", mined) == 0
    assert sorted(merge.read_training_set(tmp_path / "merged")["utt"]) == ["play jazz", "wake me up"]


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_keeps_integer_human_ids_beside_mined_ids(tmp_path, capsys):
    """Found in review: a base whose ids are JSON integers (converted human corpora) crashed the
    merge with any mined row (the column cast to Int64, exit 1); each id is now kept as it is."""
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music", id=1), m_row("stop", "audio_stop", id=2)])
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("wake me up", "alarm_set", confidence=0.9)])
    assert _merge_cli(tmp_path, base, mined) == 0
    rows = [json.loads(x) for x in (tmp_path / "merged" / "en-US.jsonl").read_text().splitlines()]
    ids = {r["utt"]: r["id"] for r in rows}
    assert ids["play jazz"] == 1 and ids["stop"] == 2 and ids["wake me up"] == export.massive_id("en-US", "wake me up")


@pytest.mark.usefixtures("clean_cli_state")
@pytest.mark.parametrize("field, value", [("locale", None), ("locale", ".."), ("utt", None), ("utt", " "),
                                          ("intent", None), ("intent", "")])
def test_merge_cli_rows_without_locale_utt_or_intent_exit_3(tmp_path, capsys, field, value):
    """Found in review: a null intent was written as a training label, a null utt shared the
    key of an empty one (counted as a duplicate and dropped), a null locale crashed (exit 1)."""
    bad = m_row("turn it up", "audio_volume_up")
    bad[field] = value
    base = _jsonl(tmp_path / "base.jsonl", [m_row("play jazz", "play_music"), bad])
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("wake me up", "alarm_set", confidence=0.9)])
    assert _merge_cli(tmp_path, base, mined) == cli.EXIT_INPUT == 3
    err = capsys.readouterr().err
    assert f"unusable {field} (rows [2])" in err and not (tmp_path / "merged").exists()
    assert _merge_cli(tmp_path, mined, base) == 3     # as mined rows too
    assert f"mined: 1 row(s) with a null, blank or unusable {field}" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_cli_state")
def test_merge_cli_takes_an_empty_out_a_link_to_an_earlier_output_and_a_linked_base_file(tmp_path, capsys):
    """Found in the session's review: the --out guard refused an empty folder (mktemp -d), wrote
    a real folder over a link to an earlier output, and resolving --base broke a base file
    linked into a content-addressed cache (a blob without the .jsonl suffix)."""
    (tmp_path / "blobs").mkdir()
    blob = _jsonl(tmp_path / "blobs" / "3f2a9c", [m_row("play jazz", "play_music")])
    base = tmp_path / "en-US.jsonl"
    base.symlink_to(blob)
    mined = _jsonl(tmp_path / "mined.jsonl", [m_row("wake me up", "alarm_set", confidence=0.9)])
    (tmp_path / "merged").mkdir()                                   # empty: taken
    assert _merge_cli(tmp_path, base, mined) == 0
    (tmp_path / "current").symlink_to("merged")
    extra = _jsonl(tmp_path / "more.jsonl", [m_row("stop", "audio_stop", confidence=0.9)])
    assert cli.main(["merge", "--base", str(tmp_path / "current"), "--mined", str(extra),
                     "--out", str(tmp_path / "current")]) == 0
    assert (tmp_path / "current").is_symlink()                      # the link stays, its target is new
    assert sorted(merge.read_training_set(tmp_path / "current")["utt"]) == ["play jazz", "stop", "wake me up"]
