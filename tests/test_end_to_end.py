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
