"""Label retention in the export stage (mining.stages.export_dataset._retain) on local Spark:
a locale-restricted run carries forward only the previous version's rows of its locales."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from mining.io import retention, schemas


def _old(rows):
    return pd.DataFrame([{"utterance": u, "locale": loc, "intent": "alarm_set", "slots": [], "annot_utt": u,
                          "confidence": 0.9, "support_users": 3, "support_events": 4, "evidence": "rephrase",
                          "cluster_id": None, "dataset_version": "v20261101-aaaa", "evidence_version": None}
                         for loc, u in rows])


def test_locale_restricted_run_does_not_carry_other_locales(spark, tmp_path):
    from mining.config import load_config
    from mining.stages.export_dataset import _retain

    cfg = load_config(str(tmp_path / "logs"), str(tmp_path / "out"), locales=("de-DE",),
                      overrides={"export": {"label_retention": "until_contradicted"}}, environ={})
    old = _old([("en-US", "wake me at 7"), ("de-DE", "weck mich um 7")])
    fresh = schemas.arrow_schema("training_set").empty_table()     # nothing fresh tonight
    labels = spark.createDataFrame([], "locale string, text_norm string, vote_intent string, "
                                       "vote_share double, vote_events long, defect_rate double")
    assert list(retention.VOTE_COLUMNS) == labels.columns
    table, contradicted = _retain(spark, cfg, labels, fresh, old, "v20261102-bbbb")
    assert table.column("locale").to_pylist() == ["de-DE"]
    assert table.column("utterance").to_pylist() == ["weck mich um 7"]
    assert table.schema == fresh.schema and isinstance(table, pa.Table)
    assert contradicted.empty


def test_locale_restricted_changelog_retires_no_other_locale(spark, tmp_path):
    from mining.config import load_config
    from mining.stages.export_dataset import _changelog

    cfg = load_config(str(tmp_path / "logs"), str(tmp_path / "out"), locales=("de-DE",), environ={})
    old = _old([("en-US", "wake me at 7"), ("de-DE", "weck mich um 7"), ("de-DE", "stell den wecker")])
    new = pa.Table.from_pandas(_old([("de-DE", "weck mich um 7")]), preserve_index=False)
    # this run's labels/ spells the retired text otherwise: its reason is found by text_norm
    labels = spark.createDataFrame([("de-DE", "stell den wecker", "Stell den Wecker!", "conflicting_evidence", 3)],
                                   "locale string, text_norm string, utterance string, decision string, "
                                   "text_users long")
    (tmp_path / "staging").mkdir()
    entry = _changelog(spark, cfg, labels, new, "v20261101-aaaa", old, tmp_path / "staging")
    assert (entry["added"], entry["changed"], entry["retired"]) == (0, 0, 1)
    rows = [json.loads(line) for line in (tmp_path / "staging" / "changelog.jsonl").read_text().splitlines()]
    assert [(r["locale"], r["utterance"], r["change"], r["reason"]) for r in rows] == [
        ("de-DE", "stell den wecker", "retired", "conflicting_evidence")]
    # a contradicted label keeps that reason whatever spelling labels/ gives it
    contradicted = pd.DataFrame({"locale": ["de-DE"], "utterance": ["stell den wecker"], "reason": ["contradicted"]})
    _changelog(spark, cfg, labels, new, "v20261101-aaaa", old, tmp_path / "staging", contradicted)
    rows = [json.loads(line) for line in (tmp_path / "staging" / "changelog.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == ["contradicted"]


def test_under_dp_every_retired_text_has_one_reason(spark, tmp_path):
    """Found in review: under DP the changelog told, unnoised, whether anyone said a retired text
    in the window (no labels/ row: no_evidence_in_window; one user's abstain: its decision)."""
    from mining.config import load_config
    from mining.stages.export_dataset import _changelog

    old = _old([("de-DE", "weck mich um 7"), ("de-DE", "stell den wecker"), ("de-DE", "licht an")])
    new = pa.Table.from_pandas(_old([("de-DE", "weck mich um 7")]), preserve_index=False)
    labels = spark.createDataFrame([("de-DE", "stell den wecker", "stell den wecker", "conflicting_evidence", 1)],
                                   "locale string, text_norm string, utterance string, decision string, "
                                   "text_users long")
    (tmp_path / "staging").mkdir()
    reasons = {}
    for dp in (False, True):
        cfg = load_config(str(tmp_path / "logs"), str(tmp_path / "out"), environ={},
                          overrides={"privacy": {"dp": {"enabled": dp}}})
        _changelog(spark, cfg, labels, new, "v20261101-aaaa", old, tmp_path / "staging")
        rows = [json.loads(line) for line in (tmp_path / "staging" / "changelog.jsonl").read_text().splitlines()]
        reasons[dp] = {r["utterance"]: r["reason"] for r in rows if r["change"] == "retired"}
    assert reasons[False] == {"stell den wecker": "conflicting_evidence", "licht an": "no_evidence_in_window"}
    assert reasons[True] == {"stell den wecker": "dp_not_selected", "licht an": "dp_not_selected"}


def test_labels_of_a_version_under_weaker_privacy_are_not_carried_forward(tmp_path):
    """Retention must not re-export texts this run's gates refuse: a previous version made at a
    smaller min_users, or without DP when DP is on, is not carried from."""
    from mining.config import load_config
    from mining.stages.export_dataset import retention_blocked

    def previous(min_users, dp=None):
        folder = tmp_path / f"v-{min_users}-{bool(dp)}"
        folder.mkdir(exist_ok=True)
        dp = dp or {"enabled": False, "epsilon": 1.0, "delta": 1e-6, "max_texts_per_user": 1}
        (folder / "manifest.json").write_text(json.dumps({"config": {"privacy": {"min_users": min_users, "dp": dp}}}))
        return folder

    def cfg(**privacy):
        return load_config("l", str(tmp_path), overrides={"privacy": privacy} if privacy else None, environ={})

    assert retention_blocked(previous(2), cfg()) is None
    assert "min_users 2 < 5" in retention_blocked(previous(2), cfg(min_users=5))
    assert retention_blocked(previous(5), cfg(min_users=2)) is None
    dp_on = {"enabled": True, "epsilon": 1.0, "delta": 1e-6, "max_texts_per_user": 1}
    assert "privacy.dp" in retention_blocked(previous(3), cfg(dp=dp_on))
    assert retention_blocked(previous(4, dp_on), cfg(dp=dp_on)) is None
    assert "privacy.dp" in retention_blocked(previous(6, dp_on), cfg(dp={**dp_on, "epsilon": 0.5}))
    assert "no privacy settings" in retention_blocked(tmp_path, cfg())


def test_the_previous_version_names_the_version_whatever_the_retention_policy():
    """Found in review: under ``label_retention = "window"`` the previous version was left out of
    the name, but changelog.jsonl (checksummed in the version) is against it: a rerun with
    another baseline wrote other bytes under the published name."""
    from mining.stages.export_dataset import version_fingerprint

    args = ({"export": {"label_retention": "window"}}, ["2026-11-01"], ("en-US",), "abc")
    assert version_fingerprint(*args, None) != version_fingerprint(*args, "v20261031-aaaa")
    assert version_fingerprint(*args, "v20261031-aaaa") == version_fingerprint(*args, "v20261031-aaaa")


def test_a_stage_rerun_with_other_settings_names_another_version():
    """Found in review: `mining aggregate-labels --set ...` then `mining export-dataset` without
    it gave the name of the full run's version, and the export swapped new bytes into it."""
    from mining.config import load_config
    from mining.stages.common import stage_settings_digest
    from mining.stages.export_dataset import version_fingerprint

    default = stage_settings_digest(load_config("-", "-"))
    other = stage_settings_digest(load_config("-", "-", overrides={"aggregation": {"min_events": 5}}))
    # the privacy and export sections are the export's own: they are not a stage's settings
    assert stage_settings_digest(load_config("-", "-", overrides={"privacy": {"min_users": 5}})) == default
    assert other != default
    args = ({}, ["2026-11-01"], ("en-US",), "abc", None)
    full = version_fingerprint(*args, {"labels": default, "clusters": default})
    assert version_fingerprint(*args, {"labels": other, "clusters": default}) != full
    assert version_fingerprint(*args, {"clusters": default, "labels": default}) == full   # order-free


def test_the_code_version_names_uncommitted_and_installed_code(tmp_path):
    from mining.stages.common import code_version, source_digest

    assert code_version().endswith("." + source_digest())
    (tmp_path / "a.py").write_text("x = 1\n")
    before = source_digest(tmp_path)
    (tmp_path / "a.py").write_text("x = 22\n")
    assert source_digest(tmp_path) != before
