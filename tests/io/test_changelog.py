"""Changelog of a dataset version against the previous one (mining.io.changelog). No Spark."""
from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pyarrow as pa

from mining.io import changelog, export, schemas


def _rows(*rows):
    """(locale, utterance, intent, slots) tuples → a training-set-like pandas frame."""
    return pd.DataFrame([{"locale": loc, "utterance": u, "intent": i, "slots": s,
                          "annot_utt": u if not s else f"{u} [{s[0]['name']} : {s[0]['value']}]"}
                         for loc, u, i, s in rows])


SIX = [{"name": "time", "value": "six"}]
SEVEN = [{"name": "time", "value": "seven"}]
OLD = _rows(("en-US", "wake me at six", "alarm_set", SIX), ("en-US", "lights off", "iot_hue_lightoff", []),
            ("en-US", "play the weekend", "play_radio", []), ("de-DE", "licht aus", "iot_hue_lightoff", []),
            ("en-US", "quiet", "audio_volume_mute", []))
NEW = _rows(("en-US", "wake me at six", "alarm_set", SEVEN), ("en-US", "lights off", "iot_hue_lightoff", []),
            ("en-US", "play the weekend", "play_music", []), ("en-US", "what's up", "general_quirky", []),
            ("de-DE", "licht an", "iot_hue_lighton", []))


def test_added_changed_retired_with_reasons():
    diff = changelog.diff_training_sets(OLD, NEW)
    assert list(diff.columns) == list(changelog.COLUMNS)
    got = {(r.locale, r.utterance): (r.change, r.reason) for r in diff.itertuples()}
    assert got == {
        ("en-US", "wake me at six"): ("changed", "slots_changed"),
        ("en-US", "play the weekend"): ("changed", "intent_changed"),
        ("en-US", "what's up"): ("added", "new_evidence"),
        ("en-US", "quiet"): ("retired", "no_evidence_in_window"),
        ("de-DE", "licht aus"): ("retired", "no_evidence_in_window"),
        ("de-DE", "licht an"): ("added", "new_evidence")}
    row = diff.set_index("utterance").loc["play the weekend"]
    assert (row.old_intent, row.new_intent) == ("play_radio", "play_music")
    added = diff.set_index("utterance").loc["what's up"]
    assert added.old_intent is None and added.old_annot_utt is None and added.new_intent == "general_quirky"
    retired = diff.set_index("utterance").loc["quiet"]
    assert retired.new_intent is None and retired.old_intent == "audio_volume_mute"


def test_order_is_locale_change_utterance_and_deterministic():
    diff = changelog.diff_training_sets(OLD, NEW)
    keys = list(zip(diff["locale"], diff["change"], diff["utterance"]))
    assert keys == sorted(keys)
    shuffled = changelog.diff_training_sets(OLD.sample(frac=1, random_state=1), NEW.sample(frac=1, random_state=2))
    pd.testing.assert_frame_equal(diff, shuffled)


def test_retired_reasons_come_from_the_new_runs_decisions():
    labels = pd.DataFrame({"locale": ["en-US", "de-DE", "en-US"], "utterance": ["quiet", "licht aus", "other"],
                           "decision": ["conflicting_evidence", "labeled", "labeled"], "text_users": [9, 1, 9]})
    reasons = changelog.retire_reasons(labels, min_users=2)
    diff = changelog.diff_training_sets(OLD, NEW, reasons)
    got = dict(zip(diff.loc[diff.change == "retired", "utterance"], diff.loc[diff.change == "retired", "reason"]))
    assert got == {"quiet": "conflicting_evidence", "licht aus": "below_min_users"}
    under_dp = changelog.retire_reasons(labels, min_users=2, dp=True).set_index("utterance")["reason"]
    # under DP one reason whatever the exact count: below_min_users would reveal its side of k
    assert under_dp["other"] == under_dp["licht aus"] == "dp_not_selected"


def test_a_label_is_matched_on_its_normalized_text_not_its_spelling():
    # the training set shows a text's most common spelling, which may change from night to
    # night: "Play jazz" → "play jazz" is the same label, not a retirement plus an addition
    old = _rows(("en-US", "Play jazz", "play_music", []), ("en-US", "Lights OFF", "iot_hue_lightoff", []))
    new = _rows(("en-US", "play jazz", "play_music", []), ("en-US", "lights off", "iot_hue_lighton", []))
    diff = changelog.diff_training_sets(old, new)
    assert [(r.utterance, r.change, r.reason) for r in diff.itertuples()] == \
        [("lights off", "changed", "intent_changed")]
    # a retired label's reason is found whatever spelling the new run's labels/ shows
    labels = pd.DataFrame({"locale": ["en-US"], "utterance": ["play JAZZ"], "decision": ["conflicting_evidence"],
                           "text_users": [9]})
    diff = changelog.diff_training_sets(old, _rows(), changelog.retire_reasons(labels, min_users=2))
    assert dict(zip(diff["utterance"], diff["reason"])) == {"Play jazz": "conflicting_evidence",
                                                            "Lights OFF": "no_evidence_in_window"}


def test_no_previous_version_adds_everything_and_identical_sets_change_nothing():
    diff = changelog.diff_training_sets(None, NEW)
    assert set(diff["change"]) == {"added"} and len(diff) == len(NEW)
    assert changelog.summarize(diff) == {"added": 5, "changed": 0, "retired": 0, "by_reason": {"new_evidence": 5}}
    same = changelog.diff_training_sets(NEW, NEW.copy())
    assert same.empty and list(same.columns) == list(changelog.COLUMNS)
    assert changelog.summarize(same) == {"added": 0, "changed": 0, "retired": 0, "by_reason": {}}


def test_summarize_counts_changes_and_reasons():
    assert changelog.summarize(changelog.diff_training_sets(OLD, NEW)) == {
        "added": 2, "changed": 2, "retired": 2,
        "by_reason": {"intent_changed": 1, "new_evidence": 2, "no_evidence_in_window": 2, "slots_changed": 1}}


def _publish(root, name, df, manifest_extra=None):
    version = root / "versions" / name
    table = pa.Table.from_pylist([{**r, "confidence": 0.9, "support_users": 2, "support_events": 2,
                                   "evidence": "rephrase", "cluster_id": None, "dataset_version": name}
                                  for r in df.to_dict("records")], schema=schemas.arrow_schema("training_set"))
    export.write_training_set(table, version / "training_set")
    (version / "manifest.json").write_text(json.dumps({"dataset_version": name, **(manifest_extra or {})}))
    return version


def test_arrow_tables_read_back_diff_like_pandas_and_the_file_round_trips(tmp_path):
    v1, v2 = _publish(tmp_path, "v1", OLD), _publish(tmp_path, "v2", NEW)
    diff = changelog.diff_training_sets(*(export.read_training_set(v, columns=changelog.READ_COLUMNS) for v in (v1, v2)))
    pd.testing.assert_frame_equal(diff, changelog.diff_training_sets(OLD, NEW))
    assert changelog.write_changelog(tmp_path / "changelog.jsonl", diff) == 6
    first = json.loads((tmp_path / "changelog.jsonl").read_text().splitlines()[0])
    assert list(first) == list(changelog.COLUMNS) and first["locale"] == "de-DE"
    pd.testing.assert_frame_equal(changelog.read_changelog(tmp_path / "changelog.jsonl"), diff)


def test_previous_version_latest_then_rerun_then_baseline(tmp_path):
    out = tmp_path / "out"
    assert changelog.previous_version(out, "", "2026-11-02") == (None, None)
    v1 = _publish(out, "v20261101-aaaa", OLD, {"input_partitions": ["2026-10-31", "2026-11-01"]})
    os.symlink("versions/v20261101-aaaa", out / "latest")
    assert changelog.previous_version(out, "", "2026-11-02") == ("v20261101-aaaa", v1.resolve())
    # latest ends on the same night: a rerun (any config) follows what latest followed
    _publish(out, "v20261102-bbbb", NEW, {"changelog": {"previous": "v20261101-aaaa"}})
    os.replace(out / "latest", tmp_path / "gone")
    os.symlink("versions/v20261102-bbbb", out / "latest")
    assert changelog.previous_version(out, "", "2026-11-02") == ("v20261101-aaaa", v1.resolve())
    # a later latest is no predecessor of an earlier night (a backfill into the same OUT)
    assert changelog.previous_version(out, "", "2026-11-01") == (None, None)
    # a fresh OUT: a previous night's manifest (through its links) as quality.baseline
    night = tmp_path / "night1"
    _publish(night, "v20261101-cccc", OLD)
    os.symlink("versions/v20261101-cccc", night / "latest")
    os.symlink("latest/manifest.json", night / "manifest.json")
    assert changelog.previous_version(tmp_path / "fresh", str(night / "manifest.json"), "2026-11-02") == \
        ("v20261101-cccc", (night / "versions" / "v20261101-cccc").resolve())
    # ... but not a baseline of the same or a later night
    assert changelog.previous_version(tmp_path / "fresh", str(night / "manifest.json"), "2026-11-01") == (None, None)


def test_a_backfill_follows_what_its_night_followed_through_the_recorded_chain(tmp_path):
    out = tmp_path / "out"
    v1 = _publish(out, "v20261101-aaaa", OLD, {"input_partitions": ["2026-11-01"]})
    v2 = _publish(out, "v20261102-bbbb", NEW, {"input_partitions": ["2026-11-02"],
                                               "changelog": {"previous": "v20261101-aaaa"}})
    _publish(out, "v20261103-cccc", NEW, {"input_partitions": ["2026-11-03"],
                                          "changelog": {"previous": "v20261102-bbbb"}})
    os.symlink("versions/v20261103-cccc", out / "latest")
    # rerunning night 2 while latest is night 3: night 2 followed night 1, so does its rerun
    assert changelog.previous_version(out, "", "2026-11-02") == ("v20261101-aaaa", v1.resolve())
    # rerunning the latest night: what it followed
    assert changelog.previous_version(out, "", "2026-11-03") == ("v20261102-bbbb", v2.resolve())
    assert changelog.previous_version(out, "", "2026-11-01") == (None, None)
    # a broken chain (the recorded previous was deleted) is no predecessor
    shutil.rmtree(v2)
    assert changelog.previous_version(out, "", "2026-11-02") == (None, None)


def test_release_diff_is_the_one_policy_of_the_export_and_mining_diff():
    """Locales of a restricted run only; under DP one reason for every retired text; else the
    run's own reasons (None: no_evidence_in_window). Old as pandas or pyarrow alike."""
    def retired(diff):
        return {(r.locale, r.utterance): r.reason for r in diff.itertuples() if r.change == "retired"}

    asked = []

    def reasons_for(keys):
        asked.append(sorted(keys["utterance"]))
        return keys.assign(reason="conflicting_evidence")

    for old in (OLD, pa.Table.from_pandas(OLD, preserve_index=False)):
        assert retired(changelog.release_diff(old, NEW)) == {("en-US", "quiet"): "no_evidence_in_window",
                                                             ("de-DE", "licht aus"): "no_evidence_in_window"}
        assert retired(changelog.release_diff(old, NEW, locales=("de-DE",), reasons_for=reasons_for)) == {
            ("de-DE", "licht aus"): "conflicting_evidence"}
        assert retired(changelog.release_diff(old, NEW, dp=True, reasons_for=reasons_for)) == {
            ("en-US", "quiet"): "dp_not_selected", ("de-DE", "licht aus"): "dp_not_selected"}
    assert asked == [["licht aus"], ["licht aus"]]        # never asked under DP
    assert len(changelog.release_diff(None, NEW, locales=("de-DE",))) == len(NEW)   # no previous version
