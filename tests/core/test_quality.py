"""The export's data-quality gate on hand-built tables (no Spark)."""
import json

import pyarrow as pa
import pytest

from mining.io import schemas
from mining.config import load_config
from mining.core.quality import QualityGateFailed, baseline_manifest, check_export


@pytest.fixture
def qcfg():
    return load_config("l", "o").quality


def _table(n: int, **override) -> pa.Table:
    cols = {"utterance": [f"wake me at {i}" for i in range(n)], "locale": ["en-US"] * n,
            "intent": ["alarm_set"] * n, "slots": [[] for _ in range(n)], "annot_utt": [f"wake me at {i}" for i in range(n)],
            "confidence": [0.9] * n, "support_users": [2] * n, "support_events": [3] * n,
            "evidence": ["rephrase"] * n, "cluster_id": ["c"] * n, "dataset_version": ["v1"] * n,
            "evidence_version": ["v1"] * n}
    cols.update(override)
    return pa.Table.from_pydict(cols, schema=schemas.arrow_schema("training_set"))


REJECTS = {"input": 1000, "rejected": 10}


def test_a_clean_table_passes_every_check(qcfg):
    checks = check_export(_table(200), REJECTS, {"rows": 150, "dataset_version": "v0"}, qcfg, 0.05)
    assert [c["name"] for c in checks] == ["schema", "required_values", "reject_share", "min_rows", "row_change",
                                           "fresh_row_change"]
    assert all(c["ok"] for c in checks)
    assert checks[4]["value"] == pytest.approx(50 / 150)


def test_row_change_against_the_baseline_fails_with_one_line(qcfg):
    with pytest.raises(QualityGateFailed, match=r"row_change = 0\.8 \(limit 0\.5; 1000 rows in baseline v0, 200 now\)"):
        check_export(_table(200), REJECTS, {"rows": 1000, "dataset_version": "v0"}, qcfg, 0.05)


def test_row_change_is_skipped_without_a_large_enough_baseline(qcfg):
    for baseline in (None, {"rows": 10}):
        rc = check_export(_table(5), REJECTS, baseline, qcfg, 0.05)[-2]
        assert rc["ok"] and rc["detail"].startswith("skipped")


def test_bad_values_schema_rejects_and_empty_exports_fail(qcfg):
    bad = _table(4, confidence=[0.5, 1.5, None, float("nan")], intent=["a", None, "b", "c"])
    with pytest.raises(QualityGateFailed, match="required_values") as e:
        check_export(bad, REJECTS, None, qcfg, 0.05)
    assert '"confidence_outside_0_1": 3' in str(e.value) and '"null_intent": 1' in str(e.value)
    with pytest.raises(QualityGateFailed, match="schema"):
        check_export(_table(3).drop_columns(["cluster_id"]), REJECTS, None, qcfg, 0.05)
    with pytest.raises(QualityGateFailed, match="reject_share"):
        check_export(_table(3), {"input": 100, "rejected": 6}, None, qcfg, 0.05)
    with pytest.raises(QualityGateFailed, match="min_rows = 0"):
        check_export(_table(0), REJECTS, None, qcfg, 0.05)


def test_mistyped_columns_fail_the_schema_check_not_with_an_arrow_error(qcfg):
    """Found in review: a renamed slot field raised ArrowTypeError (a TypeError) past the
    schema check, and a castable string column crashed the value checks."""
    good = _table(3)
    renamed = pa.array([[{"slot": "time", "value": "7"}]] * 3,
                       pa.list_(pa.struct([("slot", pa.string()), ("value", pa.string())])))
    with pytest.raises(QualityGateFailed, match=r"schema = .*struct fields.*required_values = \"not evaluated"):
        check_export(good.set_column(good.column_names.index("slots"), "slots", renamed), REJECTS, None, qcfg, 0.05)
    as_text = good.set_column(good.column_names.index("confidence"), "confidence", pa.array(["0.9", "1.5", "0.2"]))
    with pytest.raises(QualityGateFailed, match='required_values = {"confidence_outside_0_1": 1}'):
        check_export(as_text, REJECTS, None, qcfg, 0.05)       # cast to the contract's double (as the export
                                                               # writes it), then checked


def test_blank_values_unknown_evidence_no_events_and_duplicate_keys_fail(qcfg):
    """What a null check cannot see: "" or blank required strings, an evidence outside the
    contract's symbols, support_events < 1, and two rows of one (locale, normalized text) key."""
    bad = _table(5, locale=["en-US", "", "en-US", "en-US", "en-US"], utterance=["a", "b", "  ", "Wake me at 3!", "e"],
                 support_events=[1, 1, 1, 1, -5])
    with pytest.raises(QualityGateFailed, match="required_values") as e:
        check_export(bad, REJECTS, None, qcfg, 0.05)
    for key in ('"empty_locale": 1', '"empty_utterance": 1', '"support_events_below_1": 1'):
        assert key in str(e.value)
    dup = _table(4, utterance=["wake me at 0", "Wake me at 0!", "wake me at 1", "wake me at 2"])
    with pytest.raises(QualityGateFailed, match='"duplicate_keys": 1'):
        check_export(dup, REJECTS, None, qcfg, 0.05)
    other = pa.Table.from_pydict({**_table(3).to_pydict(), "evidence": ["rephrase", "guess", "variant"]})
    with pytest.raises(QualityGateFailed, match='"unknown_evidence": 1'):
        check_export(other, REJECTS, None, qcfg, 0.05)


def test_retained_labels_do_not_hide_a_collapse_of_the_nights_own(qcfg):
    """Under label retention a night that mined almost nothing still exports the previous
    version's labels: the row count holds, the fresh row count does not."""
    baseline = {"rows": 1000, "dataset_version": "v0", "retention": {"fresh": 1000}}
    table = _table(1000)
    with pytest.raises(QualityGateFailed, match=r"fresh_row_change = 0\.98 \(limit 0\.5; 1000 fresh rows"):
        check_export(table, REJECTS, baseline, qcfg, 0.05, fresh_rows=20)
    checks = check_export(table, REJECTS, baseline, qcfg, 0.05, fresh_rows=900)
    assert checks[4]["value"] == 0.0 and checks[5]["value"] == pytest.approx(0.1)
    # a baseline written before retention counts its rows as fresh
    assert check_export(table, REJECTS, {"rows": 950}, qcfg, 0.05, fresh_rows=900)[5]["ok"]


def test_baseline_is_the_followed_version_or_an_explicit_manifest(tmp_path):
    """Not OUT/latest: a rerun of the night latest holds would compare with itself (and write
    other manifest bytes under a published name), a backfill with a later night."""
    assert baseline_manifest("", None) is None
    (tmp_path / "versions" / "v0").mkdir(parents=True)
    (tmp_path / "versions" / "v0" / "manifest.json").write_text(json.dumps(
        {"rows": 7, "rows_by_locale_intent": {"de-DE/a": 3, "en-US/a": 4}, "retention": {"fresh": 6}}))
    (tmp_path / "versions" / "v1").mkdir(parents=True)
    (tmp_path / "versions" / "v1" / "manifest.json").write_text(json.dumps({"rows": 9}))
    (tmp_path / "latest").symlink_to("versions/v1")
    assert baseline_manifest("", tmp_path / "versions" / "v0")["rows"] == 7
    assert baseline_manifest(str(tmp_path / "latest" / "manifest.json"), tmp_path / "versions" / "v0")["rows"] == 9
    only_de = baseline_manifest("", tmp_path / "versions" / "v0", ("de-DE",))
    assert only_de["rows"] == 3 and only_de["only_locales"] == ["de-DE"]
    skipped = check_export(_table(3), REJECTS, only_de, load_config("l", "o").quality, 0.05, fresh_rows=2)[-1]
    assert skipped["ok"] and "--locale" in skipped["detail"]
    with pytest.raises(FileNotFoundError, match="quality.baseline"):
        baseline_manifest(str(tmp_path / "missing.json"))
