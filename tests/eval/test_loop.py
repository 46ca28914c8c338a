"""The simulated self-learning loop (mining.eval.loop, `mining loop`)."""
import json

import pandas as pd
import numpy as np
import pytest

from mining.eval import loop
from mining.eval.loop_report import build_loop_report
from mining.io import changelog, export


def _record(night, acc, oracle, serving, defects, precision=0.97, oscillating=0):
    return {"night": night, "date": f"2026-11-0{night}", "nlu_accuracy": acc, "oracle_accuracy": oracle,
            "serving_accuracy": serving, "defect_rate": defects, "friction_rate": defects / 2, "labels": 10 * night,
            "added": 10, "changed": 1, "retired": 0, "retained": 9, "contradicted": 0, "label_precision": precision,
            "oscillating": oscillating, "dataset_version": f"v2026110{night}-x", "turns": 100, "seconds": 1.0}


def test_oscillations_count_re_adds_and_flips_back_from_the_first_label():
    history = {("en-US", "a"): [None, "x", "x"],          # new on night 2: fine
               ("en-US", "b"): ["x", None, "x"],          # retired, re-added
               ("en-US", "c"): ["x", "y", "x"],           # flipped back
               ("en-US", "d"): ["x", "y", "y"],           # changed once: fine
               ("en-US", "e"): ["x", None, None]}         # retired for good: fine
    assert loop.oscillations(history) == 2


def test_targets_measure_drop_gain_share_defects_oscillation_and_precision():
    records = [_record(1, 0.72, 0.76, 0.70, 0.30), _record(2, 0.75, 0.80, 0.72, 0.25),
               _record(3, 0.748, 0.81, 0.75, 0.20, precision=0.94, oscillating=1)]
    t = loop.targets(records, labels_ever=40)
    assert t["max_accuracy_drop_points"]["value"] == pytest.approx(0.2) and t["max_accuracy_drop_points"]["met"]
    assert t["oracle_gain_share"]["value"] == pytest.approx((0.748 - 0.70) / (0.81 - 0.70), abs=1e-3)
    assert not t["oracle_gain_share"]["met"]
    assert t["defect_rate_falls"]["met"]
    assert t["oscillation_share"]["value"] == 0.025 and not t["oscillation_share"]["met"]
    assert t["min_label_precision"]["value"] == 0.94 and not t["min_label_precision"]["met"]
    rising = loop.targets([_record(1, 0.7, 0.8, 0.7, 0.2), _record(2, 0.69, 0.8, 0.7, 0.3)], 5)
    assert not rising["defect_rate_falls"]["met"] and not rising["max_accuracy_drop_points"]["met"]
    assert not loop.targets([_record(1, 0.7, 0.8, 0.7, 0.2)], 5)["defect_rate_falls"]["met"]   # one night: no fall


def test_report_has_the_curves_the_targets_and_the_table():
    records = [_record(1, 0.72, 0.76, 0.70, 0.30), _record(2, 0.75, 0.80, 0.72, 0.25)]
    doc = {"config": {"corpus": "hwu64", "nights": 2}, "records": records, "targets": loop.targets(records, 20)}
    page = build_loop_report(doc)
    assert page.count("<svg") == 1 and "id='targets'" in page and "retrained" in page
    assert build_loop_report(doc) == page                   # same records, same bytes


def test_write_loop_report_writes_both_files_whole_and_a_night_without_labels_is_a_gap(tmp_path):
    from mining.eval.loop_report import draw_curves, write_loop_report
    from matplotlib.figure import Figure

    records = [_record(1, 0.72, 0.76, 0.70, 0.30), {**_record(2, 0.75, 0.80, 0.72, 0.25), "label_precision": None}]
    fig = Figure()
    draw_curves(fig, records)
    precision = fig.axes[-1].lines[0].get_ydata()
    assert np.isnan(precision[1])                           # not drawn as 0 (off the 0.8-1.0 axis)
    doc = {"config": {"nights": 2}, "records": records, "targets": loop.targets(records, 20)}
    write_loop_report(doc, tmp_path / "loop.html", tmp_path / "loop.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.html", "loop.png"]   # no temp file left
    assert (tmp_path / "loop.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.usefixtures("clean_cli_state")
def test_an_out_holding_a_finished_loop_is_an_argument_error_exit_2(tmp_path, capsys):
    from mining import cli

    (tmp_path / "loop.json").write_text("{}\n")
    with pytest.raises(ValueError, match="loop.json exists"):
        loop.run_loop(tmp_path, nights=1, turns=10)
    assert cli.main(["loop", "--out", str(tmp_path), "--nights", "1", "--turns", "10"]) == cli.EXIT_CONFIG == 2
    assert "choose another --out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.json"]        # nothing simulated


@pytest.mark.slow
def test_two_nights_mine_retrain_and_keep_labels_until_contradicted(tmp_path):
    """The real loop: simulate → the five stages on Spark → retrain, twice. Night 2's NLU is
    trained on night 1's labels; every label of night 1 is in night 2's training set unless
    night 2's changelog retires it as contradicted."""
    out = tmp_path / "loop"
    records = loop.run_loop(out, nights=2, turns=1500)
    doc = json.loads((out / "loop.json").read_text())
    assert [r["night"] for r in doc["records"]] == [1, 2] and set(doc["records"][0]) == set(loop.RECORD_FIELDS)
    assert records[0]["serving_accuracy"] < records[1]["serving_accuracy"] == records[0]["nlu_accuracy"]
    assert records[0]["labels"] > 0 and records[0]["added"] == records[0]["labels"]
    assert records[0]["oracle_accuracy"] >= records[0]["serving_accuracy"]
    assert (out / "loop.html").stat().st_size > 0 and (out / "loop.png").stat().st_size > 0
    first, second = (out / "runs" / d / "latest" for d in ("2026-11-01", "2026-11-02"))
    old = export.read_training_set(first).to_pandas()
    new = export.read_training_set(second).to_pandas()
    diff = changelog.read_changelog(second / "changelog.jsonl")
    gone = diff[diff["change"] == "retired"]
    assert set(gone["reason"]) <= {"contradicted"}
    kept = set(zip(new["locale"], new["utterance"])) | set(zip(gone["locale"], gone["utterance"]))
    assert set(zip(old["locale"], old["utterance"])) <= kept
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["retention"]["policy"] == "until_contradicted"
    assert manifest["retention"]["previous"] == records[0]["dataset_version"]
    retained = new[new["evidence_version"] != new["dataset_version"]]
    assert len(retained) == manifest["retention"]["retained"] == records[1]["retained"]
    assert set(retained["evidence_version"]) <= {records[0]["dataset_version"]}
    with pytest.raises(ValueError, match="loop.json exists"):
        loop.run_loop(out, nights=1, turns=100)
    assert pd.read_parquet(out / "logs").shape[0] == sum(r["turns"] for r in records)
