"""End to end through the CLI, as a user runs it: simulate → mining run → evaluate.

The mined labels must beat the naive rule (label each friction turn with the next
successful turn's intent) measured on the same logs in the same run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
MINING = str(Path(sys.executable).with_name("mining"))


def _mining(*args, env=None, timeout=900):
    env = {**os.environ, "MINING_DEMO_MODE": "1", **(env or {})}
    return subprocess.run([MINING, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    sim = _mining("simulate", "--corpus", "hwu64", "--turns", 8000, "--days", 2, "--seed", 3,
                  "--logs", root / "logs", "--gold", root / "gold")
    assert sim.returncode == 0, sim.stderr[-2000:]
    run = _mining("run", "--logs", root / "logs", "--out", root / "out", "--min-users", 2)
    assert run.returncode == 0, run.stderr[-3000:]
    ev = _mining("evaluate", "--gold", root / "gold", "--out", root / "out", "--json", root / "eval.json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    print(ev.stdout)
    return json.loads((root / "eval.json").read_text()), root


def test_mined_labels_beat_the_naive_rule(evaluated):
    report, _ = evaluated
    assert report["labels"] >= 30
    assert report["label_precision"] > report["naive_text_precision"]
    assert report["label_precision"] > report["naive_turn_precision"]
    assert report["label_precision"] >= 0.8


def test_mined_labels_lift_the_retrained_nlu(evaluated):
    report, _ = evaluated
    assert report["acc_seed_oracle"] > report["acc_seed"]
    assert report["acc_seed_mined"] > report["acc_seed"]


def test_no_raw_ids_in_exported_files(evaluated):
    _, root = evaluated
    import pyarrow.dataset as ds
    users = set(ds.dataset(str(root / "logs"), format="parquet").to_table(columns=["user_id"])
                .column("user_id").to_pylist())
    blob = b"".join(p.read_bytes() for p in (root / "out" / "latest").rglob("*") if p.is_file())
    assert not any(u.encode() in blob for u in list(users)[:500])


def test_run_without_a_key_fails_with_exit_code_4(tmp_path, evaluated):
    _, root = evaluated
    env = {k: v for k, v in os.environ.items() if k not in ("MINING_DEMO_MODE", "MINING_PSEUDONYM_KEY")}
    proc = subprocess.run([MINING, "detect-rephrases", "--logs", str(root / "logs"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 4 and "MINING_PSEUDONYM_KEY" in proc.stderr


def test_a_locale_the_logs_do_not_hold_fails_with_exit_code_3_naming_theirs(tmp_path, evaluated):
    """Found in review: `--locale en-us` (the logs say en-US) ran every stage on no rows."""
    _, root = evaluated
    proc = subprocess.run([MINING, "detect-rephrases", "--logs", str(root / "logs"), "--out", str(tmp_path),
                           "--locale", "xx-YY"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3 and "xx-YY" in proc.stderr and "en-US" in proc.stderr, proc.stderr
    # one of several asked for: a warning and a 0 in the stats; the others are mined
    proc = subprocess.run([MINING, "detect-rephrases", "--logs", str(root / "logs"), "--out", str(tmp_path / "two"),
                           "--locale", "en-US", "--locale", "xx-YY"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "no accepted turn of locale(s) xx-YY" in proc.stderr, proc.stderr
    by_locale = json.loads((tmp_path / "two" / "turns" / "_stats.json").read_text())["turns_by_locale"]
    assert by_locale["xx-YY"] == 0 and by_locale["en-US"] > 0


def test_massive_export_loads_with_hugging_face_datasets(evaluated):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is in the dev extra")
    _, root = evaluated
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    files = sorted(str(p) for p in (root / "out" / "massive").glob("*.jsonl"))
    assert files and all(f"massive/{Path(f).name}" in manifest["checksums"] for f in files)
    ds = datasets.load_dataset("json", data_files=files, split="train",
                               cache_dir=str(root / "hf-cache"))
    assert ds.num_rows == manifest["rows"]
    # one run, one configuration: every stage after detect_rephrases stamped the same settings
    assert set(manifest["stage_settings"]) == {"embeddings", "clusters", "labels"}
    assert len(set(manifest["stage_settings"].values())) == 1
    assert {"id", "locale", "partition", "utt", "annot_utt", "intent"} <= set(ds.column_names)
    assert set(ds["partition"]) <= {"train", "dev"}


def test_merge_keeps_human_labels_and_adds_mined_ones(evaluated, tmp_path):
    """`mining merge` of a run into a human training set: no duplicates, human labels win."""
    from mining.tools.merge import read_training_set
    from mining.core.text import normalize

    _, root = evaluated
    mined = read_training_set(root / "out" / "massive")
    assert len(mined) >= 3
    same, conflict = mined.iloc[0], mined.iloc[1]
    other_intent = "general_quirky" if conflict["intent"] != "general_quirky" else "weather_query"
    human = [{"locale": same["locale"], "partition": "train", "utt": same["utt"].upper() + "!",
              "annot_utt": same["utt"].upper() + "!", "intent": same["intent"]},
             {"locale": conflict["locale"], "partition": "test", "utt": conflict["utt"],
              "annot_utt": conflict["utt"], "intent": other_intent},
             {"locale": "en-US", "partition": "train", "utt": "a human only request",
              "annot_utt": "a human only request", "intent": "alarm_set"}]
    base = tmp_path / "human.jsonl"
    base.write_text("".join(json.dumps(r) + "\n" for r in human))
    out = tmp_path / "merged"
    res = _mining("merge", "--base", base, "--mined", root / "out", "--out", out,
                  "--conflicts", tmp_path / "conflicts.jsonl")
    assert res.returncode == 0, res.stderr[-2000:]
    merged = read_training_set(out)
    stats = json.loads((out / "merge_manifest.json").read_text())["stats"]
    assert (stats["duplicate_of_human"], stats["conflicts_with_human"]) == (1, 1)
    assert stats["added"] == len(mined) - 2 and len(merged) == len(mined) + 1
    keys = list(zip(merged["locale"], merged["utt"].map(normalize)))
    assert len(keys) == len(set(keys))
    humans = merged[merged["label_source"] == "human"].set_index("utt")
    assert humans.loc[conflict["utt"], "intent"] == other_intent          # never overridden
    assert humans.loc[conflict["utt"], "partition"] == "test"
    assert len(humans) == 3
    assert len((tmp_path / "conflicts.jsonl").read_text().splitlines()) == 1


def test_run_and_evaluate_write_their_reports(evaluated):
    """Every export publishes report.html with its version; evaluate adds the gold figures."""
    _, root = evaluated
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    run_report = (root / "out" / "report.html").read_text()
    assert (root / "out" / "report.html").resolve().parent.name == manifest["dataset_version"]
    assert f'data-metric="exported_rows" data-value="{manifest["rows"]}"' in run_report
    gold_report = (root / "out" / "evaluation" / "report.html").read_text()
    assert 'data-metric="reliability.ece"' in gold_report and 'data-metric="reliability.ece"' not in run_report


def test_stage_outputs_of_another_detect_run_are_refused_not_mixed(evaluated, tmp_path):
    """Every stage output of one run carries one lineage. Rerunning only detect_rephrases on
    the logs plus a late file changes it; export_dataset then refuses the older labels
    (exit 3, naming the output to redo) instead of publishing a mix of two runs."""
    import shutil

    import pyarrow.parquet as pq

    _, root = evaluated
    stats = {p.parent.name: json.loads(p.read_text()) for p in (root / "out").glob("*/_stats.json")}
    assert {"rejects", "turns", "rephrase_pairs", "embeddings", "clusters", "labels"} <= set(stats)
    assert len({s["lineage"] for s in stats.values()}) == 1
    logs, out = tmp_path / "logs", tmp_path / "out"
    shutil.copytree(root / "logs", logs)
    shutil.copytree(root / "out", out, symlinks=True)
    part = sorted(logs.glob("dt=*"))[-1]
    late = pq.read_table(sorted(part.glob("*.parquet"))[0]).slice(0, 5)
    late = late.set_column(late.schema.get_field_index("turn_id"), "turn_id",
                           [[f"late-{i}" for i in range(late.num_rows)]])
    pq.write_table(late, part / "zz-late.parquet")
    detect = _mining("detect-rephrases", "--logs", logs, "--out", out)
    assert detect.returncode == 0, detect.stderr[-2000:]
    after = json.loads((out / "turns" / "_stats.json").read_text())["lineage"]
    assert after != stats["turns"]["lineage"]
    export = _mining("export-dataset", "--logs", logs, "--out", out)
    assert export.returncode == 3, export.stderr[-2000:]
    assert "different detect_rephrases runs" in export.stderr and "wrote embeddings/" in export.stderr
    assert os.readlink(out / "latest") == os.readlink(root / "out" / "latest")   # nothing published


def test_a_failed_export_leaves_no_staging_copy_behind(evaluated, tmp_path, spark, monkeypatch):
    """Found in review: an export that failed after writing its staging folder (here the report)
    left a whole copy of the version under OUT/.staging for a day, one per retry."""
    import shutil

    from mining.config import load_config
    from mining.report import run_report
    from mining.stages import export_dataset

    _, root = evaluated
    out = tmp_path / "out"
    shutil.copytree(root / "out", out, symlinks=True)

    def boom(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setenv("MINING_DEMO_MODE", "1")
    monkeypatch.setattr(run_report, "write_report", boom)
    with pytest.raises(RuntimeError, match="report failed"):
        export_dataset.run(spark, load_config(str(root / "logs"), str(out), overrides={"privacy": {"min_users": 2}}))
    assert not list((out / ".staging").glob("version-*"))
    assert os.readlink(out / "latest") == os.readlink(root / "out" / "latest")
