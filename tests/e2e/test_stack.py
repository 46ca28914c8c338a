"""End to end on the production-shaped stack (stack/stack.py): PostgreSQL, the Airflow
scheduler (LocalExecutor), api-server, dag-processor and triggerer, and a Spark standalone
cluster of two workers; runs watched through the REST API with ``apache-airflow-client``.

The tests run in file order and build on each other: the two-night backfill publishes the
versions that every rerun after a fault must reproduce byte for byte. Each fault is its own
test: a Spark worker SIGKILLed in the middle of a stage, the scheduler SIGKILLed in the middle
of the export, PostgreSQL restarted during a stage, a night whose logs arrive late, and
leftover ``.staging/`` folders of killed runs. ``make test-e2e`` runs them (``-m e2e``); the
default ``make test`` leaves them out (pytest ``addopts``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ADHOC, BIN, NIGHTLY, NIGHTS, QUALITY_ENV, E2EStack, _state

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.airflow]

RUN_TIMEOUT_S = 1200          # one nightly run on 2 loaded cores takes 3-5 min; a retry adds 5-10 min
REFERENCE: dict[str, dict] = {}   # night → {"version", "files"} from the backfill, for every rerun


# --- helpers ---------------------------------------------------------------------------------


def night_out(stack: E2EStack, ds: str) -> Path:
    return stack.out / "runs" / ds


def version_files(out: Path) -> dict[str, bytes]:
    """Bytes of the training set and the MASSIVE JSONL of the version ``OUT/latest`` points at."""
    version = (out / "latest").resolve()
    return {str(p.relative_to(version)): p.read_bytes() for p in sorted(version.rglob("*"))
            if p.is_file() and p.relative_to(version).parts[0] in ("training_set", "massive")}


def complete_versions(out: Path) -> list[str]:
    """Names of ``OUT/versions/*``, each checked complete: a manifest whose sha256 checksums
    match every data file (no half-written version). ``latest`` must point at one of them."""
    import hashlib

    names = sorted(p.name for p in (out / "versions").iterdir())
    for name in names:
        version = out / "versions" / name
        manifest = json.loads((version / "manifest.json").read_text())
        assert manifest["dataset_version"] == name
        data = {str(p.relative_to(version)) for pattern in ("*.parquet", "*.jsonl") for p in version.rglob(pattern)}
        assert data == set(manifest["checksums"]), f"{name}: files differ from the manifest's checksums"
        for rel, digest in manifest["checksums"].items():
            assert hashlib.sha256((version / rel).read_bytes()).hexdigest() == digest, f"{name}/{rel} corrupt"
    assert (out / "latest").resolve().name in names
    return names


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def staging_entries(out: Path) -> list[str]:
    staging = out / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []


def reference_run(stack: E2EStack, ds: str, previous: str | None) -> subprocess.Popen:
    """``mining run`` of night ``ds`` with the arguments the nightly DAG renders (lookback 3,
    min users from the configuration, the previous night's manifest as quality baseline), on local[2], into its
    own output root: the byte-for-byte reference of the Airflow run."""
    out = stack.root / "reference"
    start = (__import__("datetime").date.fromisoformat(ds) - __import__("datetime").timedelta(days=2)).isoformat()
    args = [str(BIN / "mining"), "run", "--logs", str(stack.logs), "--out", str(out / "runs" / ds),
            "--start-date", start, "--end-date", ds, "--cache-dir", str(out / "embedding_cache")]
    if previous:
        args += ["--set", f"quality.baseline={out / 'runs' / previous / 'manifest.json'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINING_"))}
    env.update(QUALITY_ENV, MINING_DEMO_MODE="1", HF_HUB_OFFLINE="1", SPARK_LOCAL_IP="127.0.0.1")
    log = open(stack.root / f"reference-{ds}.log", "w")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(stack.root))


def worker_executors(stack: E2EStack, n: int) -> list[dict]:
    port = stack.state["ports"][f"spark_worker_{n}_ui"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/", timeout=5) as response:
            return json.loads(response.read()).get("executors", [])
    except OSError:
        return []


def tries(tis: dict) -> dict[str, int]:
    return {task_id: ti.try_number for task_id, ti in tis.items()}


def rerun(stack: E2EStack, ds: str, first_task: str, on_tick=None, timeout_s: float = RUN_TIMEOUT_S) -> dict:
    """Clear ``first_task`` and downstream in night ``ds``'s run, wait for it (``on_tick`` injects
    the fault), then check that nothing was lost or published twice: same version and bytes as
    the backfill, one complete version, exactly one more Asset event. Returns figures."""
    if ds not in REFERENCE:
        pytest.fail(f"night {ds} was not published by test_backfill_of_two_nights_...: nothing to rerun")
    run = stack.run_for(ds)
    events_before = len(stack.asset_events(run.dag_run_id))
    tries_before = tries(stack.task_instances(NIGHTLY, run.dag_run_id))
    t0 = time.monotonic()
    stack.clear(NIGHTLY, run.dag_run_id, [first_task])
    stack.wait_run(NIGHTLY, run.dag_run_id, timeout_s, on_tick=on_tick)
    out = night_out(stack, ds)
    assert manifest(out)["dataset_version"] == REFERENCE[ds]["version"]
    assert version_files(out) == REFERENCE[ds]["files"], "a rerun after a fault changed the published bytes"
    assert complete_versions(out) == [REFERENCE[ds]["version"]]
    events = stack.asset_events(run.dag_run_id)
    assert len(events) == events_before + 1, f"{len(events) - events_before} Asset events for one rerun"
    assert events[-1].extra["dataset_version"] == REFERENCE[ds]["version"]
    after = tries(stack.task_instances(NIGHTLY, run.dag_run_id))
    # a clear starts the next try of every cleared task: more than one new try is a retry
    retries = {t: n - tries_before[t] - 1 for t, n in after.items() if n > tries_before[t] + 1}
    return {"wall_s": round(time.monotonic() - t0, 1), "version": REFERENCE[ds]["version"],
            "rows_out": manifest(out)["rows"], "tries": after, "airflow_retries": retries,
            "staging_leftovers": staging_entries(out)}


# --- the tests -------------------------------------------------------------------------------


def test_backfill_of_two_nights_through_the_scheduler_and_the_cluster(stack):
    """`airflow backfill create` of two nights, run by the scheduler, every stage submitted to
    the standalone master; two versions, their Asset events with row counts, and training sets
    byte-identical to `mining run` of the same days."""
    import airflow_client.client as ac
    from airflow_client.client.api.dag_api import DAGApi

    with stack.api() as client:
        dag = stack.call(DAGApi(client).patch_dag, NIGHTLY, ac.DAGPatchBody(is_paused=False))
    assert dag.is_paused is False
    t0 = time.monotonic()
    created = stack.airflow("backfill", "create", "--dag-id", NIGHTLY, "--from-date", NIGHTS[0],
                            "--to-date", f"{NIGHTS[1]}T03:00:00+00:00", "--max-active-runs", "1")
    assert "Created backfill Dag run" in created.stdout + created.stderr
    reference = reference_run(stack, NIGHTS[0], None)     # meanwhile, on local[2]

    runs = [stack.run_for(ds) for ds in NIGHTS[:2]]
    assert all(r.run_type is not None and "backfill" in _state(r.run_type) for r in runs)
    for run in runs:
        stack.wait_run(NIGHTLY, run.dag_run_id, RUN_TIMEOUT_S)
    wall = round(time.monotonic() - t0, 1)
    assert reference.wait(timeout=900) == 0, (stack.root / f"reference-{NIGHTS[0]}.log").read_text()[-3000:]
    reference = reference_run(stack, NIGHTS[1], NIGHTS[0])

    first, second = (manifest(night_out(stack, ds)) for ds in NIGHTS[:2])
    assert first["input_partitions"] == [NIGHTS[0]] and second["input_partitions"] == list(NIGHTS[:2])
    assert first["dataset_version"] != second["dataset_version"] and first["rows"] > 0 and second["rows"] > 0
    assert second["stages"]["rejects"]["input"] > first["stages"]["rejects"]["input"] > 0
    for ds in NIGHTS[:2]:
        assert len(complete_versions(night_out(stack, ds))) == 1

    # every stage ran on the cluster: one finished Spark application per stage and night
    master = json.loads(urllib.request.urlopen(stack.state["spark_master_ui"] + "/json/", timeout=5).read())
    apps = sorted(a["name"] for a in master["completedapps"])
    assert apps == sorted(f"mining.{s}" for s in ("detect_rephrases", "embed_utterances", "cluster_variants",
                                                   "aggregate_labels", "export_dataset") for _ in range(2)), apps
    log = stack.task_log(NIGHTLY, runs[1].dag_run_id, "detect_rephrases", 1, lines=100000)
    assert f"--master {stack.state['spark_master']}" in log

    # the Asset events: one per night, carrying path, version and row counts
    events = stack.asset_events()
    assert [e.extra["dataset_version"] for e in events] == [first["dataset_version"], second["dataset_version"]]
    for event, ds, m in zip(events, NIGHTS, (first, second)):
        assert event.extra["path"] == str(night_out(stack, ds)) and event.extra["rows"] == m["rows"]
        assert sum(event.extra["rows_by_locale"].values()) == m["rows"]
        assert event.extra["stage_rows"]["turns"] == m["stages"]["turns"]["turns"]
        assert event.extra["quality"] == "passed"

    # byte for byte the same as `mining run` on the same days (night 2 after night 1, as the DAG)
    assert reference.wait(timeout=900) == 0, (stack.root / f"reference-{NIGHTS[1]}.log").read_text()[-3000:]
    for ds in NIGHTS[:2]:
        ref_out = stack.root / "reference" / "runs" / ds
        assert manifest(ref_out)["dataset_version"] == manifest(night_out(stack, ds))["dataset_version"], ds
        assert version_files(ref_out) == version_files(night_out(stack, ds)), f"night {ds}: bytes differ"
        REFERENCE[ds] = {"version": manifest(night_out(stack, ds))["dataset_version"],
                         "files": version_files(night_out(stack, ds))}
    stack.figures["backfill"] = {
        "wall_s": wall, "versions": [first["dataset_version"], second["dataset_version"]],
        "rows_in": [m["stages"]["rejects"]["input"] for m in (first, second)],
        "rows_out": [first["rows"], second["rows"]], "asset_events": len(events),
        "spark_apps": len(apps), "tries": [tries(stack.task_instances(NIGHTLY, r.dag_run_id)) for r in runs]}


def test_adhoc_run_triggered_through_the_api_with_params(stack):
    """`mining_adhoc` triggered with typed Params (dates, locale, a rephrase threshold, an
    output folder): the threshold reaches the jobs' config; no Asset event."""
    import airflow_client.client as ac
    from airflow_client.client.api.dag_api import DAGApi
    from airflow_client.client.api.dag_run_api import DagRunApi

    out = stack.root / "adhoc-0.6"
    conf = {"start_date": NIGHTS[0], "end_date": NIGHTS[1], "locales": ["en-US"], "rephrase_threshold": 0.6,
            "out": str(out)}
    t0 = time.monotonic()
    with stack.api() as client:
        stack.call(DAGApi(client).patch_dag, ADHOC, ac.DAGPatchBody(is_paused=False))
        run = stack.call(DagRunApi(client).trigger_dag_run, ADHOC,
                         ac.TriggerDAGRunPostBody(conf=conf, logical_date=None))
    assert run.conf == conf
    stack.wait_run(ADHOC, run.dag_run_id, RUN_TIMEOUT_S)
    m = manifest(out)
    assert m["config"]["rephrase"]["threshold"] == 0.6
    assert m["input_partitions"] == list(NIGHTS[:2]) and m["rows"] > 0
    assert set(m["rows_by_locale_intent"]) and all(k.startswith("en-US/") for k in m["rows_by_locale_intent"])
    assert len(complete_versions(out)) == 1
    assert stack.asset_events() and all(e.source_dag_id == NIGHTLY for e in stack.asset_events())
    nightly = manifest(night_out(stack, NIGHTS[1]))    # same partitions, default threshold
    stack.figures["adhoc"] = {"wall_s": round(time.monotonic() - t0, 1), "version": m["dataset_version"],
                              "rows_out": m["rows"],
                              "accepted_pairs": m["stages"]["rephrase_pairs"]["accepted_pairs"],
                              "accepted_pairs_default_threshold": nightly["stages"]["rephrase_pairs"]["accepted_pairs"]}


def test_spark_worker_killed_in_the_middle_of_a_stage(stack):
    """SIGKILL to a Spark worker and everything it runs (its executor and Python workers) while
    `detect_rephrases` computes: Spark reruns the lost tasks on the other worker (or Airflow
    retries the task); the night is republished with the same bytes."""
    seen: dict[str, float] = {}

    def kill_a_busy_worker(tis):
        if "killed" in seen or _state(tis["detect_rephrases"].state) != "running":
            return
        for n in (1, 2):
            if any(e.get("appdesc", {}).get("name") == "mining.detect_rephrases" for e in worker_executors(stack, n)):
                seen.setdefault(f"worker-{n}", time.monotonic())
                if time.monotonic() - seen[f"worker-{n}"] >= 5:
                    stack.cli("kill", f"spark-worker-{n}", "--signal", "KILL", "--tree")
                    seen.update(killed=n, at=time.monotonic())
                    return

    figures = rerun(stack, NIGHTS[1], "detect_rephrases", on_tick=kill_a_busy_worker)
    assert "killed" in seen, "the stage finished before a worker ran one of its executors"
    worker = f"spark-worker-{seen['killed']}"
    assert stack.runtime(worker)["starts"] == 2        # its supervisor restarted it
    run = stack.run_for(NIGHTS[1])
    attempt = figures["tries"]["detect_rephrases"]
    log = "\n".join(stack.task_log(NIGHTLY, run.dag_run_id, "detect_rephrases", a, lines=100000)
                    for a in range(1, attempt + 1))
    lost = sum(1 for line in log.splitlines() if "is now LOST" in line or "worker lost" in line
               or "ExecutorLostFailure" in line or "Lost executor" in line)
    assert lost or figures["airflow_retries"], "the killed worker's executor was never reported lost"
    stack.figures["worker_kill"] = {**figures, "killed": worker, "executor_lost_lines": lost}


def test_scheduler_killed_in_the_middle_of_the_export_and_restarted(stack):
    """SIGKILL to the scheduler while `export_dataset` runs; its supervisor kills what the dead
    scheduler left running (its LocalExecutor workers and the export's task, its serve-logs and
    health-check servers), as a container restart would, and starts a new one, which resets the
    orphaned task and runs it again. The run finishes with one complete version and exactly one
    more Asset event: nothing published twice, nothing half written."""
    killed: dict[str, float] = {}
    starts = stack.runtime("scheduler")["starts"]

    def kill_scheduler(tis):
        if not killed and _state(tis["export_dataset"].state) == "running":
            killed["pid"] = json.loads(stack.cli("kill", "scheduler", "--signal", "KILL").stdout)["pid"]

    figures = rerun(stack, NIGHTS[1], "aggregate_labels", on_tick=kill_scheduler)
    assert killed, "export_dataset was never seen running"
    assert stack.runtime("scheduler")["starts"] >= starts + 1 and stack.runtime("scheduler")["pid"] != killed["pid"]
    assert stack.cli("status", check=False).returncode == 0, stack.cli("status", check=False).stdout
    crash = [e for e in stack.runtime("scheduler")["exits"] if not e["requested"]][-1]
    assert crash["rc"] == -9 and crash["leftovers_killed"] >= 1, crash
    stack.figures["scheduler_kill"] = {**figures, "leftovers_killed": crash["leftovers_killed"]}


def test_postgres_restarted_during_a_run(stack):
    """PostgreSQL stopped (fast shutdown) and started again while `cluster_variants` runs: the
    run finishes with the same bytes. Airflow 3.3's scheduler, dag-processor and triggerer exit
    when the database is gone for a few seconds; their supervisors start them again (as
    compose's restart policy does), and every service is healthy afterwards."""
    restarted: dict[str, float] = {}
    services = ("api-server", "scheduler", "dag-processor", "triggerer")
    starts = {s: stack.runtime(s)["starts"] for s in services}

    def restart_postgres(tis):
        if not restarted and _state(tis["cluster_variants"].state) == "running":
            t0 = time.monotonic()
            stack.cli("restart", "postgres", timeout=300)
            restarted["s"] = round(time.monotonic() - t0, 1)

    figures = rerun(stack, NIGHTS[1], "cluster_variants", on_tick=restart_postgres)
    assert restarted, "cluster_variants was never seen running"
    restarts = {s: stack.runtime(s)["starts"] - starts[s] for s in services}
    stack.figures["postgres_restart"] = {**figures, "restart_s": restarted["s"], "service_restarts": restarts}
    status = stack.cli("status", check=False)
    assert status.returncode == 0, f"not every service is healthy after the restart:\n{status.stdout}"


def test_late_logs_the_sensor_waits_then_the_night_completes(stack):
    """Night 3 is backfilled before its logs exist: `wait_for_logs` reschedules itself (20 s
    pokes) until the partition arrives (an atomic rename), then the night is mined."""
    ds = NIGHTS[2]
    assert not (stack.logs / f"dt={ds}").exists()
    t0 = time.monotonic()
    stack.airflow("backfill", "create", "--dag-id", NIGHTLY, "--from-date", ds, "--to-date", f"{ds}T03:00:00+00:00",
                  "--max-active-runs", "1")
    run = stack.run_for(ds)
    waiting: dict[str, float] = {"reschedules": 0}

    def deliver_late(tis):
        sensor = _state(tis["wait_for_logs"].state)
        if "arrived" in waiting:
            return
        if sensor == "up_for_reschedule":
            waiting["reschedules"] += 1
            waiting.setdefault("first", time.monotonic())
        if waiting["reschedules"] >= 3 and time.monotonic() - waiting["first"] >= 30:
            incoming = stack.logs / f".dt={ds}.incoming"     # hidden: the sensor ignores it
            shutil.copytree(stack.logs_all / f"dt={ds}", incoming)
            incoming.rename(stack.logs / f"dt={ds}")
            waiting["arrived"] = time.monotonic()

    stack.wait_run(NIGHTLY, run.dag_run_id, RUN_TIMEOUT_S, on_tick=deliver_late)
    assert "arrived" in waiting, "the run finished before its logs arrived"
    m = manifest(night_out(stack, ds))
    assert m["input_partitions"] == list(NIGHTS)
    assert m["stages"]["turns"]["turns"] + m["stages"]["rejects"]["rejected"] == m["stages"]["rejects"]["input"]
    events = stack.asset_events(run.dag_run_id)
    assert len(events) == 1 and events[0].extra["rows"] == m["rows"]
    sensor = stack.task_instances(NIGHTLY, run.dag_run_id)["wait_for_logs"]
    pokes = stack.task_log(NIGHTLY, run.dag_run_id, "wait_for_logs", 1, lines=100000).count("Poking callable")
    assert pokes >= 2 and sensor.try_number == 1, (pokes, sensor.try_number)   # waited, never failed
    stack.figures["late_logs"] = {"wall_s": round(time.monotonic() - t0, 1),
                                  "waited_s": round(waiting["arrived"] - waiting["first"], 1),
                                  "pokes": pokes, "sensor_try": sensor.try_number,
                                  "version": m["dataset_version"], "rows_in": m["stages"]["rejects"]["input"],
                                  "rows_out": m["rows"]}


def test_leftover_staging_folders_of_killed_runs_are_swept(stack):
    """Staging folders left by runs killed a day or more ago (a stage's, a version's, an old
    output set aside) are removed when the export stages its next version; a young one, which
    may belong to a live writer, is left alone; the version republished is the same."""
    out = night_out(stack, NIGHTS[1])
    stamp = time.time() - 2 * 24 * 3600
    planted = {"turns-0123456789ab": "_temporary/0/part-00000.parquet",
               f"version-{REFERENCE.get(NIGHTS[1], {}).get('version', 'v0')}-0123456789ab": "training_set/part-00000.parquet",
               "old-clusters-01234567": "part-00000.parquet"}
    for name, rel in planted.items():
        path = out / ".staging" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written by a killed run")
        for folder, dirs, files in os.walk(out / ".staging" / name):
            for entry in [folder, *(os.path.join(folder, f) for f in files)]:
                os.utime(entry, (stamp, stamp))
    young = out / ".staging" / "labels-fedcba987654"
    young.mkdir()
    (young / "part-00000.parquet").write_bytes(b"being written")

    figures = rerun(stack, NIGHTS[1], "export_dataset")
    left = staging_entries(out)
    assert not set(planted) & set(left), f"leftovers not swept: {sorted(set(planted) & set(left))}"
    assert young.name in left
    run = stack.run_for(NIGHTS[1])
    log = stack.task_log(NIGHTLY, run.dag_run_id, "export_dataset", figures["tries"]["export_dataset"], lines=100000)
    assert "swept 3 leftover staging entries" in log
    shutil.rmtree(young)
    stack.figures["staging_sweep"] = {**figures, "swept": sorted(planted), "kept": [young.name]}
