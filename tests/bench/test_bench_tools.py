"""The benchmark tools' own logic: the event-log profile (bench/spark_profile.py) on a
synthetic log and on a real Spark run, and the scale report's exponent fit
(bench/scale.py). The benchmarks themselves run with `make bench`, not in the tests."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402  (bench/scale.py)
import spark_profile  # noqa: E402  (bench/spark_profile.py)

SQL = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecution"


def _write_plan(path: str) -> str:
    return (f"== Physical Plan ==\n(3) Execute InsertIntoHadoopFsRelationCommand\nInput: []\n"
            f"Arguments: file:{path}, false, Parquet\n")


def _task(stage: int, run_ms: int, written: int, read: int) -> dict:
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage, "Task Metrics": {
        "Executor Run Time": run_ms, "Shuffle Write Metrics": {"Shuffle Bytes Written": written},
        "Shuffle Read Metrics": {"Remote Bytes Read": 0, "Local Bytes Read": read}}}


def test_profile_groups_root_executions_by_call_site(tmp_path):
    mb = 2**20
    events = [
        {"Event": "SparkListenerApplicationStart", "Timestamp": 0},
        {"Event": SQL + "Start", "executionId": 0, "rootExecutionId": 0, "time": 1000,
         "description": f"collect at {ROOT}/mining/spark/ingest.py:575", "physicalPlanDescription": ""},
        {"Event": "SparkListenerJobStart", "Stage IDs": [5, 6], "Properties": {"spark.sql.execution.id": "0"}},
        _task(5, 1500, 3 * mb, 0), _task(6, 500, 0, 3 * mb),
        {"Event": SQL + "Start", "executionId": 1, "rootExecutionId": 0, "time": 1100,   # nested: not counted
         "description": "nested", "physicalPlanDescription": ""},
        {"Event": "SparkListenerJobStart", "Stage IDs": [7], "Properties": {"spark.sql.execution.id": "1"}},
        _task(7, 1000, mb, 0),                                   # a nested execution's task: its root's
        {"Event": SQL + "End", "executionId": 1, "time": 1500},
        {"Event": SQL + "End", "executionId": 0, "time": 3000},
        {"Event": SQL + "Start", "executionId": 2, "rootExecutionId": 2, "time": 4000,
         "description": "parquet at NativeMethodAccessorImpl.java:0",
         "physicalPlanDescription": _write_plan("/x/out/.staging/turns-0123456789ab")},
        {"Event": SQL + "End", "executionId": 2, "time": 9000},
        {"Event": SQL + "Start", "executionId": 3, "time": 9000,
         "description": f"collect at {ROOT}/mining/spark/ingest.py:575", "physicalPlanDescription": ""},
        {"Event": SQL + "End", "executionId": 3, "time": 9500},
        {"Event": "SparkListenerApplicationEnd", "Timestamp": 10_000},
    ]
    log = tmp_path / "eventlog_v2_local-1"
    log.mkdir()
    lines = [json.dumps(e) for e in events]
    (log / "events_1_local-1").write_text("\n".join(lines[:4]) + "\n")      # rolled: two files
    (log / "events_2_local-1").write_text("\n".join(lines[4:]) + "\n")
    p = spark_profile.profile(log)
    assert p["app_s"] == 10.0
    assert p["by_site"] == [("write turns", 1, 5.0), ("collect at mining/spark/ingest.py:575", 2, 2.5)]
    assert p["sql_s"] == 7.5
    assert p["tasks"] == {"collect at mining/spark/ingest.py:575":
                          {"task_s": 3.0, "shuffle_write_mb": 4.0, "shuffle_read_mb": 3.0}}


@pytest.mark.slow
def test_profile_of_a_real_spark_run(tmp_path):
    """`spark_profile.py run` turns the event log on for a real Spark job and profiles it."""
    script = ("from mining.spark.session import get_spark; s = get_spark('t'); "
              f"s.range(1000).write.parquet('{tmp_path}/out'); print(s.range(10).count())")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "spark_profile.py"), "run", "--",
                          sys.executable, "-c", script],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "| `write out` | 1 |" in out.stdout
    assert "count at" in out.stdout


def test_exponent_is_the_log_log_slope():
    rows = [{"turns": n, "total_s": 3.0 * n ** 0.8} for n in (1e4, 1e5, 1e6)]
    assert scale.exponent(rows) == pytest.approx(0.8)
    assert scale.exponent(rows[:1]) is None


def test_gpu_bench_knn_paths_agree_and_render(monkeypatch):
    """bench/gpu.py: the FAISS CPU row and the torch fallback (what runs where faiss is
    missing) time the same exact search; the table names how each row was measured."""
    import gpu  # bench/gpu.py

    faiss_row = gpu.bench_knn(3000, "cpu", 500, seed=0)
    assert faiss_row["how"] == "faiss CPU IndexFlatIP (mining.core.index)" and faiss_row["queries"] == 500
    monkeypatch.setitem(sys.modules, "faiss", None)           # import faiss → ImportError
    torch_row = gpu.bench_knn(3000, "cpu", 500, seed=0)
    assert torch_row["how"].startswith("torch matmul + topk") and torch_row["per_s"] > 0
    gpu_row = {**torch_row, "device": "cuda", "how": "torch matmul + topk (fp16; faiss-gpu not installed)",
               "queries": 3000, "per_s": 10 * torch_row["per_s"]}
    doc = {"command": "python bench/gpu.py", "machine": {"cpus": 2, "torch": "x", "python": "3"},
           "rows": [gpu_row, torch_row]}
    text = gpu.render(doc)
    assert "| 10.0x |" in text and "faiss-gpu was not installed" in text


def test_before_after_compares_whole_rows_in_any_order(tmp_path):
    """bench/before_after.py: a hot-spot fix must leave the outputs' rows as they were;
    order and files do not matter, a one-ulp float change, a list element, a duplicate row
    or a missing folder does."""
    import math

    import before_after
    import pandas as pd

    rows = pd.DataFrame({"id": ["a", "b"], "score": [0.1, 0.2], "signals": [["x"], ["y"]]})
    frames = {"a": [rows], "b": [rows.iloc[1:], rows.iloc[:1]],        # other order, two files
              "c": [rows.assign(score=[0.1, math.nextafter(0.2, 1)])],
              "d": [rows.assign(signals=[["x"], ["z"]])],
              "e": [pd.concat([rows, rows.iloc[:1]], ignore_index=True)]}
    for name, parts in frames.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "_SUCCESS").touch()
        for i, df in enumerate(parts):
            df.reset_index(drop=True).to_parquet(tmp_path / name / f"part-{i}.parquet")
    assert before_after.same_rows(tmp_path / "a", tmp_path / "b") == "equal (2 rows)"
    assert before_after.same_rows(tmp_path / "a", tmp_path / "c") == "DIFFER: 2 vs 2 rows, 1 only before, 1 only after"
    assert before_after.same_rows(tmp_path / "a", tmp_path / "d").startswith("DIFFER: 2 vs 2 rows")
    assert before_after.same_rows(tmp_path / "a", tmp_path / "e") == "DIFFER: 2 vs 3 rows, 0 only before, 1 only after"
    assert before_after.same_rows(tmp_path / "a", tmp_path / "f") == "DIFFER: no committed folder after"
