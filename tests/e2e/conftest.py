"""The production-shaped stack for the end-to-end tests: one per test session, started with
``stack/stack.py up`` in a fresh folder on free ports, always stopped at the end.

Sizes are kept small for CI (2 cores): a 2,000-turn simulated HWU64 log over three nights,
Spark workers of 1 core and 1.5 GiB, executors of 1 GiB, a 20 s sensor poke (shorter pokes
race the LocalExecutor's event of the previous poke: Airflow 3.3 then fails the sensor). The nightly
DAG's start date is set two days ahead, so the scheduler creates no run of its own: every
run in these tests is a backfill, a rerun or a trigger made by a test. The stack folder is
kept (its path printed) when a test failed, and removed otherwise.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_PY = REPO / "stack" / "stack.py"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
NIGHTLY, ADHOC = "mining_nightly", "mining_adhoc"
NIGHTS = ("2026-11-01", "2026-11-02", "2026-11-03")
TERMINAL = {"success", "failed"}
#: Spark sizing of every stage on the test cluster (workers of 1 core, 1.5 GiB each).
SPARK_CONF = {"spark.executor.cores": "1", "spark.cores.max": "2", "spark.executor.memory": "1g",
              "spark.executor.memoryOverhead": "512m", "spark.driver.memory": "1g",
              "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}
#: The tiny nights change a lot in relative terms: the row-change gate is checked, with a limit they pass.
QUALITY_ENV = {"MINING__QUALITY__MIN_BASELINE_ROWS": "1", "MINING__QUALITY__MAX_ROW_CHANGE": "20"}


def _state(value) -> str:
    """An API enum (``DagRunState.SUCCESS``) or None as its plain value (``success``, ``none``)."""
    return str(getattr(value, "value", value)).lower()


class E2EStack:
    """Handle on the running stack: its CLI, the ``airflow`` CLI with its environment, the REST
    API through ``apache-airflow-client``, and the data folders of the tests."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "stack"
        self.logs_all = root / "logs-all"     # the simulated nights; tests move them into `logs`
        self.logs = root / "logs"             # MINING_LOGS
        self.out = root / "mining"            # MINING_OUT: runs/<ds>/, embedding_cache/, adhoc/
        self.figures: dict[str, dict] = {}

    # --- CLIs --------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """``stack.py --dir DIR ARGS``."""
        proc = subprocess.run([PYTHON, str(STACK_PY), "--dir", str(self.dir), *args], capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"stack.py {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        return proc

    @property
    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    @property
    def env(self) -> dict[str, str]:
        return json.loads((self.dir / "env.json").read_text())

    def runtime(self, service: str) -> dict:
        return json.loads((self.dir / "run" / f"{service}.json").read_text())

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``airflow ARGS`` against the stack (its env.json); asserts success."""
        proc = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.root))
        assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    # --- REST API ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def api(self):
        """An ``airflow_client.client.ApiClient`` with a fresh token (POST /auth/token)."""
        import airflow_client.client as ac

        sys.path.insert(0, str(STACK_PY.parent))
        try:
            import stack as stack_module
        finally:
            sys.path.remove(str(STACK_PY.parent))
        token = stack_module.api_token(stack_module.Stack(self.dir))
        with ac.ApiClient(ac.Configuration(host=self.state["api_url"], access_token=token)) as client:
            yield client

    def call(self, fn, *args, attempts: int = 30, **kwargs):
        """``fn(*args, **kwargs)`` retried for up to ~60 s while the API answers with an error
        (e.g. during a PostgreSQL restart); the last error is raised."""
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - urllib3/ApiException: retried, then raised
                if attempt == attempts - 1:
                    raise
                time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, object]:
        from airflow_client.client.api.task_instance_api import TaskInstanceApi

        with self.api() as client:
            tis = self.call(TaskInstanceApi(client).get_task_instances, dag_id, run_id).task_instances
        return {ti.task_id: ti for ti in tis}

    def dag_run(self, dag_id: str, run_id: str):
        from airflow_client.client.api.dag_run_api import DagRunApi

        with self.api() as client:
            return self.call(DagRunApi(client).get_dag_run, dag_id, run_id)

    def dag_runs(self, dag_id: str) -> list:
        from airflow_client.client.api.dag_run_api import DagRunApi

        with self.api() as client:
            return self.call(DagRunApi(client).get_dag_runs, dag_id, limit=100, order_by=["logical_date"]).dag_runs

    def run_for(self, ds: str):
        """The nightly run whose logical date is night ``ds`` (03:00 UTC)."""
        runs = [r for r in self.dag_runs(NIGHTLY) if r.logical_date and r.logical_date.date().isoformat() == ds]
        assert len(runs) == 1, f"{len(runs)} nightly runs for {ds}: {[r.dag_run_id for r in runs]}"
        return runs[0]

    def asset_events(self, run_id: str | None = None) -> list:
        from airflow_client.client.api.asset_api import AssetApi

        with self.api() as client:
            events = self.call(AssetApi(client).get_asset_events, source_dag_id=NIGHTLY, source_run_id=run_id,
                               order_by=["timestamp"], limit=100).asset_events
        return [e for e in events if e.name == "mining_training_set"]

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Rerun ``task_ids`` and everything downstream of them in a finished run, as an
        operator does from the UI (POST /dags/{dag}/clearTaskInstances)."""
        import airflow_client.client as ac
        from airflow_client.client.api.task_instance_api import TaskInstanceApi

        body = ac.ClearTaskInstancesBody(dag_run_id=run_id, include_downstream=True,
                                         task_ids=[ac.ClearTaskInstancesBodyTaskIdsInner(t) for t in task_ids],
                                         only_failed=False, dry_run=False, reset_dag_runs=True)
        with self.api() as client:
            self.call(TaskInstanceApi(client).post_clear_task_instances, dag_id, body)

    def wait_run(self, dag_id: str, run_id: str, timeout_s: float, on_tick=None, expect: str = "success"):
        """Poll the run through the API every 3 s until it is finished; ``on_tick(tis)`` is called
        with the task instances on every poll (fault injection). Fails with the task states, the
        task logs of failed and running tasks and the service logs when the run ends otherwise
        than ``expect`` or is still running after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.dag_run(dag_id, run_id)
            tis = self.task_instances(dag_id, run_id)
            if on_tick is not None:
                on_tick(tis)
            if _state(run.state) in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} {run_id} still {_state(run.state)} after {timeout_s:.0f} s\n"
                                     + self.diagnostics(dag_id, run_id))
            time.sleep(3)
        if _state(run.state) != expect:
            raise AssertionError(f"{dag_id} {run_id} ended {_state(run.state)}, expected {expect}\n"
                                 + self.diagnostics(dag_id, run_id))
        return run

    # --- logs --------------------------------------------------------------------------------
    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int, lines: int = 60) -> str:
        """The last ``lines`` events of one attempt's task log (logs/airflow/dag_id=…/…/attempt=N.log)."""
        path = (self.dir / "logs" / "airflow" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
                / f"attempt={attempt}.log")
        if not path.exists():
            return f"(no task log {path})"
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                events.append(f"{record.get('timestamp', '')[11:19]} {record.get('event', '')}")
            except json.JSONDecodeError:
                events.append(line)
        return f"--- {path}\n" + "\n".join(events[-lines:])

    def service_log(self, service: str, lines: int = 30) -> str:
        path = self.dir / "logs" / f"{service}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(no log)"]
        return f"--- {path}\n" + "\n".join(text)

    def diagnostics(self, dag_id: str, run_id: str) -> str:
        parts = []
        try:
            tis = self.task_instances(dag_id, run_id)
            parts.append("task instances: " + ", ".join(f"{t}={_state(ti.state)}/try {ti.try_number}"
                                                         for t, ti in tis.items()))
            for task_id, ti in tis.items():
                if _state(ti.state) not in ("success", "none", "scheduled", "queued"):
                    parts.append(self.task_log(dag_id, run_id, task_id, max(ti.try_number, 1)))
        except Exception as error:  # noqa: BLE001 - diagnostics must not hide the failure
            parts.append(f"(API unavailable: {error!r})")
        parts += [self.service_log(s) for s in ("scheduler", "api-server", "dag-processor", "postgres")]
        parts.append(self.cli("status", check=False).stdout)
        return "\n".join(parts)


def _simulate(root: Path) -> dict:
    """2,000 simulated HWU64 turns over the three nights (seed 7), in ``logs-all``."""
    proc = subprocess.run([str(BIN / "mining"), "simulate", "--corpus", "hwu64", "--turns", "2000", "--days", "3",
                           "--start-date", NIGHTS[0], "--seed", "7", "--logs", str(root / "logs-all"),
                           "--gold", str(root / "gold")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MINING_DEMO_MODE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def stack(request):
    """The running stack (see the module docstring), stopped at the end of the session."""
    # Under /tmp, world-traversable: PostgreSQL runs as the user `postgres` when we are root.
    root = Path(tempfile.mkdtemp(prefix="mining-e2e-", dir="/tmp"))
    os.chmod(root, 0o755)
    s = E2EStack(root)
    s.figures["simulation"] = _simulate(root)
    s.logs.mkdir()
    for night in NIGHTS[:2]:    # the third night "arrives late" (test_late_logs)
        shutil.copytree(s.logs_all / f"dt={night}", s.logs / f"dt={night}")
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINING_"))}
    env.update(QUALITY_ENV, MINING_LOGS=str(s.logs), MINING_OUT=str(s.out), MINING_DEMO_MODE="1",
               MINING_START_DATE=tomorrow, MINING_CATCHUP="0", MINING_SENSOR_POKE_S="20",
               MINING_SENSOR_TIMEOUT_S="900", MINING_SPARK_CONF=json.dumps(SPARK_CONF),
               # a killed scheduler's tasks are noticed within ~45 s instead of 5 min
               AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL="15",
               AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="90")
    t0 = time.monotonic()
    proc = subprocess.run([PYTHON, str(STACK_PY), "--dir", str(s.dir), "up", "--worker-cores", "1",
                           "--worker-memory", "1536m", "--timeout", "300"], env=env, capture_output=True,
                          text=True, timeout=900)
    s.figures["stack_up_s"] = round(time.monotonic() - t0, 1)
    try:
        assert proc.returncode == 0, f"stack up failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        yield s
    finally:
        t1 = time.monotonic()
        down = s.cli("down", check=False, timeout=300)
        s.figures["stack_down_s"] = round(time.monotonic() - t1, 1)
        figures = json.dumps({k: v for k, v in s.figures.items() if k != "simulation"}, indent=1)
        if os.environ.get("MINING_E2E_FIGURES"):       # where to keep the figures as JSON
            Path(os.environ["MINING_E2E_FIGURES"]).write_text(figures + "\n")
        report = request.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"e2e figures (wall times in s): {figures}"]
        keep = bool(request.session.testsfailed or down.returncode)
        if keep:
            lines.append(f"e2e: stack folder kept for inspection: {s.dir} (logs in {s.dir / 'logs'})\n{down.stderr}")
        for line in lines:
            report.write_line(line) if report else print(line)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
