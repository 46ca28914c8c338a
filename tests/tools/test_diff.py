"""`mining diff A B`: the changelog between two published versions (mining.tools.diff)."""
from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining import cli
from tests.tools.test_inspect_dataset import _version

pytestmark = pytest.mark.usefixtures("clean_cli_state")

OLD_ROWS = [("wake me at six", "en-US", "alarm_set", 0.95, 4, "rephrase"),
            ("lights off", "en-US", "iot_hue_lightoff", 0.99, 9, "rephrase"),
            ("quiet", "en-US", "audio_volume_mute", 0.9, 3, "rephrase"),
            ("licht aus", "de-DE", "iot_hue_lightoff", 0.80, 3, "rephrase")]
NEW_ROWS = [("wake me at six", "en-US", "alarm_query", 0.91, 5, "rephrase"),
            ("lights off", "en-US", "iot_hue_lightoff", 0.97, 10, "rephrase"),
            ("play jazz", "en-US", "play_music", 0.90, 2, "variant"),
            ("licht aus", "de-DE", "iot_hue_lightoff", 0.85, 3, "rephrase")]


def _two_runs(tmp_path):
    old, new = tmp_path / "night1", tmp_path / "night2"
    _version(old, OLD_ROWS, name="v20261102-aaa")
    _version(new, NEW_ROWS, name="v20261103-bbb")
    return old, new


def test_diff_prints_counts_reasons_and_the_changes(tmp_path, capsys):
    old, new = _two_runs(tmp_path)
    assert cli.main(["diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "v20261102-aaa" in out and "v20261103-bbb" in out
    assert "  added    1" in out and "  changed  1" in out and "  retired  1" in out
    assert "intent_changed         1" in out and "no_evidence_in_window  1" in out
    table = out[out.index("changes (3 of 3"):]
    assert table.index("play jazz") < table.index("wake me at six") < table.index("quiet")
    assert "alarm_set" in table and "alarm_query" in table and "lights off" not in table


def test_diff_json_and_paths_like_inspect(tmp_path, capsys):
    old, new = _two_runs(tmp_path)
    results = []
    for a, b in ((old, new), (old / "latest", new / "versions" / "v20261103-bbb")):
        assert cli.main(["diff", str(a), str(b), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["changes"] == results[1]["changes"]
    d = results[0]
    assert d["old"]["dataset_version"] == "v20261102-aaa" and d["new"]["dataset_version"] == "v20261103-bbb"
    assert d["summary"] == {"added": 1, "changed": 1, "retired": 1,
                            "by_reason": {"intent_changed": 1, "new_evidence": 1, "no_evidence_in_window": 1}}
    assert [(c["locale"], c["change"], c["utterance"]) for c in d["changes"]] == [
        ("en-US", "added", "play jazz"), ("en-US", "changed", "wake me at six"), ("en-US", "retired", "quiet")]
    # the same version on both sides: nothing changed
    assert cli.main(["diff", str(new), str(new)]) == 0
    assert "no label changed" in capsys.readouterr().out


def _labels(run, labels_lineage, manifest_lineage):
    """``run/labels/`` saying why "quiet" was retired (its text spelled "Quiet!" there: found by
    ``text_norm``), stamped ``labels_lineage`` (none when None), and NEW's manifest naming
    ``manifest_lineage`` as its labels' lineage (none when None)."""
    labels = run / "labels"
    labels.mkdir()
    pq.write_table(pa.table({"locale": ["en-US"], "text_norm": ["quiet"], "utterance": ["Quiet!"],
                             "decision": ["conflicting_evidence"],
                             "text_users": pa.array([3], pa.int64())}), labels / "part-0.parquet")
    (labels / "_SUCCESS").touch()
    (labels / "_stats.json").write_text(json.dumps({} if labels_lineage is None else {"lineage": labels_lineage}))
    manifest = run / "latest" / "manifest.json"
    doc = json.loads(manifest.read_text())
    if manifest_lineage is not None:
        doc["stages"] = {"labels": {"lineage": manifest_lineage}}
    manifest.write_text(json.dumps(doc))


def _retired_reasons(old, new, capsys):
    assert cli.main(["diff", str(old), str(new), "--json"]) == 0
    return [c["reason"] for c in json.loads(capsys.readouterr().out)["changes"] if c["change"] == "retired"]


def test_diff_retired_reason_from_the_new_runs_labels(tmp_path, capsys):
    old, new = _two_runs(tmp_path)
    _labels(new, "d2d324dcbd813dc5", "d2d324dcbd813dc5")
    assert _retired_reasons(old, new, capsys) == ["conflicting_evidence"]


@pytest.mark.parametrize("labels_lineage, manifest_lineage", [
    ("aaaaaaaaaaaaaaaa", "d2d324dcbd813dc5"),     # labels/ of a later rerun into the same OUT
    (None, "d2d324dcbd813dc5"),                   # labels/ without a stamp
    ("d2d324dcbd813dc5", None),                   # a manifest that names no labels lineage
    (None, None),
])
def test_diff_ignores_labels_of_another_run(tmp_path, capsys, labels_lineage, manifest_lineage):
    old, new = _two_runs(tmp_path)
    _labels(new, labels_lineage, manifest_lineage)
    assert _retired_reasons(old, new, capsys) == ["no_evidence_in_window"]


def test_diff_exits_3_without_a_complete_version(tmp_path, capsys):
    old, _ = _two_runs(tmp_path)
    assert cli.main(["diff", str(old), str(tmp_path / "missing")]) == cli.EXIT_INPUT == 3
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "versions").mkdir(parents=True)
    assert cli.main(["diff", str(empty), str(old)]) == 3
    broken = tmp_path / "broken"
    broken.mkdir()
    os.symlink("versions/nothing", broken / "latest")
    assert cli.main(["diff", str(old), str(broken)]) == 3


def _manifest_set(run, **fields):
    manifest = run / "latest" / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc.update(fields)
    manifest.write_text(json.dumps(doc))


def test_diff_under_dp_gives_every_retired_text_dp_not_selected(tmp_path, capsys):
    """As the export's changelog: an exact reason would tell, unnoised, whether anyone said it."""
    old, new = _two_runs(tmp_path)
    _labels(new, "d2d324dcbd813dc5", "d2d324dcbd813dc5")
    _manifest_set(new, config={"privacy": {"min_users": 2, "dp": {"enabled": True}}})
    assert _retired_reasons(old, new, capsys) == ["dp_not_selected"]
    (new / "labels").rename(tmp_path / "labels-aside")      # without labels/ too
    assert _retired_reasons(old, new, capsys) == ["dp_not_selected"]


def test_diff_against_a_locale_run_compares_its_locales_only(tmp_path, capsys):
    old, new = tmp_path / "night1", tmp_path / "night2"
    _version(old, OLD_ROWS, name="v20261102-aaa")
    _version(new, [r for r in NEW_ROWS if r[1] == "de-DE"], name="v20261103-bbb")
    _manifest_set(new, locales=["de-DE"])
    assert cli.main(["diff", str(old), str(new), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["summary"]["retired"] == 0 and d["summary"]["changed"] == 0   # en-US was not read
    _manifest_set(new, locales=[])     # a run over every locale retires the others' labels
    assert cli.main(["diff", str(old), str(new), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["retired"] == 3
