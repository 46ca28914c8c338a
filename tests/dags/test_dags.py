"""Integrity of the Airflow DAGs in dags/: parsing, structure, Params, rendered spark-submit arguments.

No scheduler, no network, no Spark: the DAG files are parsed with the same BundleDagBag the
DAG processor uses. Only the test marked ``slow`` runs ``airflow dags test`` (stub jobs,
local Spark) end to end.
"""

from __future__ import annotations

import ast
import atexit
import copy
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from mining.stages import STAGE_NAMES

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_IDS = {"mining_nightly", "mining_adhoc"}
STAGES = list(STAGE_NAMES)   # the registry the DAGs, the CLI and the runner import
HEAVY_MODULES = ("pyspark", "torch", "sentence_transformers", "faiss", "sklearn", "mining")
#: The only package modules the DAG files may import: the two stdlib-only registries.
ALLOWED_MINING = ("mining", "mining.errors", "mining.stages")

# Airflow reads its configuration when first imported: point it at a throw-away home first.
_AIRFLOW_ENV = {
    "AIRFLOW_HOME": tempfile.mkdtemp(prefix="airflow-home-"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}
os.environ.update(_AIRFLOW_ENV)
atexit.register(shutil.rmtree, _AIRFLOW_ENV["AIRFLOW_HOME"], ignore_errors=True)
logging.getLogger("py4j").setLevel(logging.WARNING)

from airflow.dag_processing.dagbag import BundleDagBag  # noqa: E402
from airflow.sdk import Asset, CronDataIntervalTimetable  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, ParamValidationError  # noqa: E402
from airflow.sdk.execution_time import macros  # noqa: E402


@pytest.fixture(scope="module")
def dagbag() -> BundleDagBag:
    # BundleDagBag puts dags/ on sys.path, as the DAG processor and the workers do.
    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)


@pytest.fixture(scope="module")
def stages_module(dagbag):
    import mining_stages

    return mining_stages


def stage_tasks(dag):
    return [dag.get_task(stage) for stage in STAGES]


def fresh_param(dagbag, dag_id, key):
    """A copy of a DAG's Param: ``Param.resolve`` stores the value it checks."""
    return copy.deepcopy(dagbag.dags[dag_id].params.get_param(key))


def render_args(task, **context):
    """application_args of a copy of *task* as a run with *context* would render them."""
    task = copy.deepcopy(task)
    params = copy.deepcopy(task.dag.params)
    params.update(context.pop("params", {}))
    params = params.validate()
    task.render_template_fields({"params": params, "macros": macros, **context})
    return task.application_args


# --- parsing -------------------------------------------------------------------------------


def test_dagbag_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_dagbag_holds_both_dags_named_after_their_files(dagbag):
    assert set(dagbag.dags) == DAG_IDS
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_parsing_imports_nothing_heavy_and_serializes_no_secret():
    # A fresh interpreter: this test process may have imported anything already.
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from airflow.dag_processing.dagbag import BundleDagBag
        bag = BundleDagBag(dag_folder={str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))
        assert not bag.import_errors, bag.import_errors
        heavy = sorted({{m for m in sys.modules if m.split(".")[0] in {HEAVY_MODULES!r}
                          and m not in {ALLOWED_MINING!r}}})
        from airflow.serialization.serialized_objects import DagSerialization
        blob = json.dumps([DagSerialization.to_dict(d) for d in bag.dags.values()], default=str)
        print(json.dumps({{"heavy": heavy, "dags": sorted(bag.dags), "secret": "sentinel-key-123" in blob}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(_AIRFLOW_ENV, MINING_PSEUDONYM_KEY="sentinel-key-123")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "dags": sorted(DAG_IDS), "secret": False}


# --- structure -----------------------------------------------------------------------------


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_has_no_cycles(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    dag.check_cycle()  # raises AirflowDagCycleException
    assert len(dag.topological_sort()) == len(dag.tasks)


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_has_tags_and_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert {"mining", "spark"} <= set(dag.tags)
    docstring = ast.get_docstring(ast.parse(Path(dag.fileloc).read_text()), clean=False)
    assert dag.doc_md and dag.doc_md == docstring
    assert dag.max_active_runs == 1


def test_nightly_runs_sensor_then_the_five_stages_in_order(dagbag):
    dag = dagbag.dags["mining_nightly"]
    assert set(dag.task_ids) == {"wait_for_logs", *STAGES}
    upstream = ["wait_for_logs", *STAGES]
    assert dag.get_task("wait_for_logs").upstream_task_ids == set()
    for before, stage in zip(upstream, STAGES):
        assert dag.get_task(stage).upstream_task_ids == {before}


def test_adhoc_runs_the_five_stages_in_order_without_sensor(dagbag):
    dag = dagbag.dags["mining_adhoc"]
    assert set(dag.task_ids) == set(STAGES)
    assert dag.get_task(STAGES[0]).upstream_task_ids == set()
    for before, stage in zip(STAGES, STAGES[1:]):
        assert dag.get_task(stage).upstream_task_ids == {before}


def test_nightly_schedule_mines_the_day_that_ended(dagbag):
    dag = dagbag.dags["mining_nightly"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "0 3 * * *"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.start_date.isoformat() == "2026-11-01T00:00:00+00:00"
    assert dag.catchup is True  # missed nights are mined, one at a time, in date order


def test_adhoc_is_manual_only(dagbag):
    dag = dagbag.dags["mining_adhoc"]
    assert dag.timetable.can_be_scheduled is False


def test_sensor_reschedules_with_a_timeout(dagbag):
    sensor = dagbag.dags["mining_nightly"].get_task("wait_for_logs")
    assert sensor.mode == "reschedule"
    assert 0 < sensor.poke_interval < sensor.timeout <= 24 * 3600
    assert sensor.retries == 0


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_stage_tasks_submit_their_job_with_retries_and_sizing(dagbag, dag_id):
    python = os.environ.get("MINING_PYTHON") or sys.executable
    for stage, task in zip(STAGES, stage_tasks(dagbag.dags[dag_id])):
        assert task.retries >= 1 and task.retry_exponential_backoff > 0
        assert task._conn_id == "spark_default"
        assert Path(task.application).is_absolute() and task.application.endswith(f"jobs/{stage}.py")
        for key in ("spark.driver.memory", "spark.executor.memory", "spark.sql.shuffle.partitions"):
            assert key in task.conf
        assert task.conf["spark.pyspark.python"] == task.conf["spark.pyspark.driver.python"] == python
        assert not task.env_vars  # secrets are added at run time only


def test_stage_applications_default_to_the_repo_jobs_folder(dagbag):
    if os.environ.get("MINING_HOME"):
        pytest.skip("MINING_HOME overrides the repository root")
    task = dagbag.dags["mining_nightly"].get_task("detect_rephrases")
    assert task.application == str(REPO / "jobs" / "detect_rephrases.py")


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_stage_failures_are_reported_by_the_callback(dagbag, dag_id, stages_module):
    for task in stage_tasks(dagbag.dags[dag_id]):
        assert stages_module.on_stage_failure in task.on_failure_callback


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_without_gpu_settings_every_stage_runs_in_the_default_pool(dagbag, dag_id):
    if any(os.environ.get(k) for k in ("MINING_GPU_POOL", "MINING_GPU_QUEUE", "MINING_GPU_SPARK_CONF")):
        pytest.skip("GPU routing configured in this environment")
    for task in stage_tasks(dagbag.dags[dag_id]):
        assert task.pool == "default_pool"
        assert not any(k.startswith("spark.executor.resource.gpu") for k in task.conf)


def test_gpu_pool_routes_the_encoder_and_index_stages_only():
    """Parse the DAGs with MINING_GPU_POOL set, as a DAG processor with that environment would:
    the stages that hold an encoder or a FAISS index (registry flags) go to the GPU pool."""
    code = textwrap.dedent(
        f"""
        import json
        from airflow.dag_processing.dagbag import BundleDagBag
        bag = BundleDagBag(dag_folder={str(DAGS)!r}, bundle_path={str(DAGS)!r})
        print(json.dumps({{d: {{t.task_id: [t.pool, t.queue, t.conf.get("spark.executor.resource.gpu.amount"),
                                            "embedding.device=cuda" in t.application_args]
                             for t in bag.dags[d].tasks if t.task_id != "wait_for_logs"}} for d in bag.dags}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINING_GPU"))}
    env.update(_AIRFLOW_ENV, MINING_GPU_POOL="mining_gpu", MINING_GPU_QUEUE="gpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    placed = json.loads(proc.stdout.strip().splitlines()[-1])
    for dag_id in DAG_IDS:
        for stage in STAGES:
            gpu = stage in ("detect_rephrases", "embed_utterances", "cluster_variants")
            # the encoder's device is resolved on the driver, which may have no GPU: told
            encoder = stage in ("detect_rephrases", "embed_utterances")
            assert placed[dag_id][stage] == (["mining_gpu", "gpu", "1", encoder] if gpu else
                                             ["default_pool", placed[dag_id][stage][1], None, False]), (dag_id, stage)
            assert gpu or placed[dag_id][stage][1] != "gpu"


def test_gpu_routing_spark_conf_override(stages_module):
    environ = {"MINING_GPU_SPARK_CONF": json.dumps({"spark.executor.resource.gpu.amount": 2})}
    assert stages_module.gpu_routing("embed_utterances", environ) == {
        "pool": None, "queue": None, "conf": {"spark.executor.resource.gpu.amount": "2"},
        "args": ["--set", "embedding.device=cuda"]}
    assert "args" not in stages_module.gpu_routing("cluster_variants", environ)   # FAISS: per executor
    no_gpu = {"MINING_GPU_SPARK_CONF": json.dumps({"spark.executor.memory": "8g"})}
    assert "args" not in stages_module.gpu_routing("embed_utterances", no_gpu)
    assert stages_module.gpu_routing("aggregate_labels", environ) == {}
    assert stages_module.gpu_routing("embed_utterances", {}) == {}
    with pytest.raises(ValueError, match="JSON object"):
        stages_module.gpu_routing("cluster_variants", {"MINING_GPU_SPARK_CONF": "[1]"})


def test_only_the_nightly_export_produces_the_training_set_asset(dagbag):
    nightly = dagbag.dags["mining_nightly"]
    outlets = nightly.get_task("export_dataset").outlets
    assert len(outlets) == 1 and isinstance(outlets[0], Asset) and outlets[0].name == "mining_training_set"
    for stage in STAGES[:-1]:
        assert not nightly.get_task(stage).outlets
    assert not any(t.outlets for t in dagbag.dags["mining_adhoc"].tasks)


# --- Params --------------------------------------------------------------------------------


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_params_are_typed_and_described(dagbag, dag_id):
    params = dagbag.dags[dag_id].params
    for key in params:
        param = params.get_param(key)
        assert param.schema.get("type"), key
        assert param.description, key


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_param_defaults_validate(dagbag, dag_id):
    params = copy.deepcopy(dagbag.dags[dag_id].params)
    resolved = params.validate()            # raises ParamValidationError on a bad default
    assert set(resolved) == set(params.keys()) and "logs" in resolved


@pytest.mark.parametrize(
    ("dag_id", "key", "value"),
    [
        ("mining_nightly", "min_users", 0),
        ("mining_nightly", "min_users", "2"),
        ("mining_nightly", "lookback_days", 0),
        ("mining_nightly", "lookback_days", 32),
        ("mining_nightly", "locales", "en-US"),
        ("mining_nightly", "locales", ["en US"]),
        ("mining_nightly", "logs", ""),
        ("mining_adhoc", "min_users", 0),
        ("mining_adhoc", "rephrase_threshold", 2),
        ("mining_adhoc", "rephrase_threshold", -0.1),
        ("mining_adhoc", "variant_min_sim", 1.5),
        ("mining_adhoc", "min_confidence", "high"),
        ("mining_adhoc", "start_date", "2026-13-01"),
        ("mining_adhoc", "end_date", "yesterday"),
    ],
)
def test_param_rejects_bad_value(dagbag, dag_id, key, value):
    with pytest.raises(ParamValidationError):
        fresh_param(dagbag, dag_id, key).resolve(value)


@pytest.mark.parametrize(
    ("dag_id", "key", "value"),
    [
        ("mining_nightly", "lookback_days", 31),
        ("mining_nightly", "locales", ["en-US", "de-DE"]),
        ("mining_adhoc", "rephrase_threshold", 0.6),
        ("mining_adhoc", "start_date", "2026-11-05"),
        ("mining_adhoc", "out", "/tmp/x"),
    ],
)
def test_param_accepts_good_value(dagbag, dag_id, key, value):
    assert fresh_param(dagbag, dag_id, key).resolve(value) == value


# --- rendered spark-submit arguments -------------------------------------------------------


def test_nightly_args_cover_the_lookback_window(dagbag, stages_module):
    task = dagbag.dags["mining_nightly"].get_task("embed_utterances")
    args = render_args(
        task,
        ds="2026-11-05",
        params={"logs": "/l", "out_root": "/o", "lookback_days": 3, "locales": ["en-US", "de-DE"]},
    )
    assert args == [
        "--logs", "/l",
        "--out", "/o/runs/2026-11-05",
        "--start-date", "2026-11-03",
        "--end-date", "2026-11-05",
        "--locale", "en-US",
        "--locale", "de-DE",
        "--cache-dir", "/o/embedding_cache",
    ]  # fmt: skip


def test_adhoc_args_with_defaults_omit_optional_options(dagbag, stages_module):
    task = dagbag.dags["mining_adhoc"].get_task("detect_rephrases")
    args = render_args(task, run_id="manual__2026-11-21T10:00:00+00:00")
    assert args == [
        "--logs", stages_module.DEFAULT_LOGS,
        "--out", f"{stages_module.DEFAULT_OUT_ROOT}/adhoc/manual__2026-11-21T1000000000",
        "--cache-dir", f"{stages_module.DEFAULT_OUT_ROOT}/embedding_cache",
    ]  # fmt: skip


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_min_users_comes_from_the_configuration_unless_the_run_sets_it(dagbag, dag_id):
    """Found in review: the Param's default 2 always rendered ``--min-users 2``, which beats
    MINING_CONFIG and MINING__PRIVACY__MIN_USERS: a stricter configured k-anonymity gate was
    lowered to 2 in Airflow. Now the flag is passed only when a run sets the Param."""
    task = dagbag.dags[dag_id].get_task("export_dataset")
    params = {"logs": "/l", "out": "/o/x", "out_root": "/o"}
    assert "--min-users" not in render_args(task, run_id="r", ds="2026-11-05", params=params)
    args = render_args(task, run_id="r", ds="2026-11-05", params={**params, "min_users": 5})
    assert args[args.index("--min-users") + 1] == "5"
    assert fresh_param(dagbag, dag_id, "min_users").resolve(None) is None


def test_adhoc_args_pass_dates_locales_and_threshold(dagbag):
    task = dagbag.dags["mining_adhoc"].get_task("export_dataset")
    params = {
        "start_date": "2026-11-01",
        "end_date": "2026-11-07",
        "locales": ["fr-FR"],
        "min_users": 3,
        "rephrase_threshold": 0.6,
        "logs": "/l",
        "out": "/o/x",
    }
    args = render_args(task, run_id="r", params=params)
    assert args == [
        "--logs", "/l",
        "--out", "/o/x",
        "--start-date", "2026-11-01",
        "--end-date", "2026-11-07",
        "--locale", "fr-FR",
        "--min-users", "3",
        "--cache-dir", args[args.index("--cache-dir") + 1],
        "--set", "rephrase.threshold=0.6",
    ]  # fmt: skip


def test_nightly_args_take_the_previous_night_as_quality_baseline(dagbag, tmp_path):
    runs = tmp_path / "runs"
    for day, published in (("2026-11-02", True), ("2026-11-03", True), ("2026-11-04", False),
                           ("2026-11-05", True), ("2026-11-06", True)):
        (runs / day).mkdir(parents=True)
        if published:
            (runs / day / "manifest.json").write_text("{}")
    (runs / "notes").mkdir()
    task = dagbag.dags["mining_nightly"].get_task("export_dataset")
    args = render_args(task, ds="2026-11-05", params={"logs": "/l", "out_root": str(tmp_path)})
    # the latest earlier night with a published manifest: 11-04 failed, 11-05 and 11-06 are not earlier
    assert args[-2:] == ["--set", f"quality.baseline={runs}/2026-11-03/manifest.json"]
    first = render_args(task, ds="2026-11-02", params={"logs": "/l", "out_root": str(tmp_path)})
    assert "--set" not in first
    # a night triggered for some locales only is no baseline of a night that mines others:
    # following it would drop the other locales' retained labels without a changelog entry
    (runs / "2026-11-03" / "manifest.json").write_text('{"locales": ["en-US"]}')
    full = render_args(task, ds="2026-11-05", params={"logs": "/l", "out_root": str(tmp_path)})
    assert full[-2:] == ["--set", f"quality.baseline={runs}/2026-11-02/manifest.json"]
    en = render_args(task, ds="2026-11-05", params={"logs": "/l", "out_root": str(tmp_path), "locales": ["en-US"]})
    assert en[-2:] == ["--set", f"quality.baseline={runs}/2026-11-03/manifest.json"]


def test_adhoc_args_pass_every_threshold(dagbag):
    task = dagbag.dags["mining_adhoc"].get_task("aggregate_labels")
    params = {"rephrase_threshold": 0.55, "variant_min_sim": 0.8, "min_confidence": 0.7, "out": "/o/x"}
    args = render_args(task, run_id="r", params=params)
    sets = [v for f, v in zip(args[::2], args[1::2]) if f == "--set"]
    assert sets == ["rephrase.threshold=0.55", "cluster.min_sim_rel=0.8", "aggregation.min_confidence=0.7"]


def test_exit_code_reads_the_kubernetes_drivers_code(stages_module):
    # the installed provider's wordings (spark_submit.py): client mode, and Kubernetes cluster
    # mode, where spark-submit itself exits 0 and the driver's code follows
    assert stages_module.exit_code(Exception("Cannot execute: x. Error code is: 3.")) == 3
    assert stages_module.exit_code(Exception(
        "Cannot execute: x. Error code is: 0. Kubernetes spark exit code is: 3")) == 3
    assert stages_module.exit_code(Exception("something else")) is None
    # Kubernetes client mode: the provider reports the driver's code as 0; spark-submit's wins
    assert stages_module.exit_code(Exception("x. Error code is: 3. Kubernetes spark exit code is: 0")) == 3


@pytest.mark.parametrize(("code", "retried"), [(1, True), (2, False), (3, False), (4, False), (None, True)])
def test_stage_retries_only_what_a_retry_can_fix(dagbag, stages_module, monkeypatch, code, retried):
    """Exit codes 2-4 (config, input or quality gate, privacy) fail the task for good;
    other failures stay retryable. spark-submit and the connection are stubbed here; the
    exit codes themselves are the jobs' (mining/errors.py; tests/stages/test_registry.py, tests/test_cli.py)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    message = "Cannot execute: spark-submit jobs/x.py." + (f" Error code is: {code}." if code is not None else "")

    def fail(self, context):
        raise stages_module.AirflowException(message)

    monkeypatch.setattr(SparkSubmitOperator, "execute", fail)
    monkeypatch.setattr(stages_module.BaseHook, "get_connection",
                        staticmethod(lambda conn_id: type("C", (), {"host": "local[2]", "password": None})()))
    task = copy.deepcopy(dagbag.dags["mining_nightly"].get_task("export_dataset"))
    task.application_args = ["--out", "/o"]
    with pytest.raises(stages_module.AirflowException) as info:
        task.execute({})
    assert isinstance(info.value, AirflowFailException) is not retried
    if not retried:
        assert f"exited {code}" in str(info.value)


def test_stage_masks_the_pseudonym_key_before_submit(dagbag, stages_module, monkeypatch):
    """On YARN/k8s the provider puts env_vars on spark-submit's logged command line
    (``--conf spark.yarn.appMasterEnv.MINING_PSEUDONYM_KEY=<key>``): the key, from the
    connection, is registered with Airflow's (real) secrets masker before the submit.
    spark-submit and the connection are stubbed."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk._shared.secrets_masker import redact

    key = "pseudo-key-6f1c2a9e44"
    seen = {}

    def submit(self, context):
        seen["env"] = dict(self.env_vars)
        seen["cmd"] = redact(f"--conf spark.yarn.appMasterEnv.MINING_PSEUDONYM_KEY={key}")

    monkeypatch.delenv("MINING_PSEUDONYM_KEY", raising=False)
    monkeypatch.setattr(SparkSubmitOperator, "execute", submit)
    monkeypatch.setattr(stages_module.BaseHook, "get_connection",
                        staticmethod(lambda conn_id: type("C", (), {"host": "yarn", "password": key})()))
    task = copy.deepcopy(dagbag.dags["mining_adhoc"].get_task("detect_rephrases"))
    task.application_args = ["--out", "/o"]
    task.outlets = []
    task.execute({})
    assert seen["env"]["MINING_PSEUDONYM_KEY"] == key
    assert key not in seen["cmd"] and seen["cmd"].endswith("MINING_PSEUDONYM_KEY=***")


def test_spark_redaction_regex_covers_the_pseudonym_key_and_keeps_sparks_default(dagbag, stages_module):
    """spark.redaction.regex (a Java regex; these alternations read the same in Python)
    matches the conf names that carry the key on YARN/k8s and Spark's default ones."""
    for dag_id in DAG_IDS:
        for task in stage_tasks(dagbag.dags[dag_id]):
            regex = re.compile(task.conf["spark.redaction.regex"])
            for name in ("spark.yarn.appMasterEnv.MINING_PSEUDONYM_KEY",
                         "spark.kubernetes.driverEnv.MINING_PSEUDONYM_KEY",
                         "spark.ssl.keyPassword", "spark.hadoop.fs.s3a.access.key", "some.secret", "a.token"):
                assert regex.search(name), (task.task_id, name)
            assert not regex.search("spark.executor.memory")


def test_failure_callback_names_task_error_output_and_published_version(stages_module, tmp_path, caplog):
    (tmp_path / "versions" / "v20261102-abc").mkdir(parents=True)
    (tmp_path / "latest").symlink_to(Path("versions") / "v20261102-abc")
    ti = type("TI", (), {"dag_id": "mining_nightly", "task_id": "export_dataset", "try_number": 3,
                         "log_url": "http://airflow/log"})()
    task = type("T", (), {"application_args": ["--logs", "/l", "--out", str(tmp_path)]})()
    context = {"task_instance": ti, "task": task, "run_id": "scheduled__2026-11-03",
               "exception": RuntimeError("quality gate failed: row_change")}
    with caplog.at_level(logging.ERROR, logger=stages_module.log.name):
        stages_module.on_stage_failure(context)
    (line,) = [r.getMessage() for r in caplog.records]
    for part in ("task=export_dataset", "try=3", "row_change", f"output={tmp_path}",
                 "published_version=v20261102-abc", "log=http://airflow/log"):
        assert part in line
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=stages_module.log.name):
        stages_module.on_stage_failure({})  # never raises, even on an empty context
    assert caplog.records


def test_the_failure_line_never_shows_part_of_the_pseudonymization_key(stages_module):
    """A failed spark-submit repeats its command; on YARN it carries the key. Clipped to 500
    characters first, the line could end inside the key, which the masker cannot then find."""
    key = "K" * 36                                     # a stand-in key (no real secret in the tests)
    command = "x" * 420 + f" --conf spark.yarn.appMasterEnv.MINING_PSEUDONYM_KEY={key} --conf a=b"
    text = stages_module.error_text(RuntimeError(f"Cannot execute: {command}"))
    assert len(text) <= 500 and "KKK" not in text and "MINING_PSEUDONYM_KEY=***" in text
    assert stages_module.error_text(RuntimeError(f"MINING_PSEUDONYM_KEY='{key}'")) == "MINING_PSEUDONYM_KEY='***'"
    # a passphrase with spaces, a JSON/dict form, the worker's own key anywhere
    spaced = stages_module.error_text(RuntimeError("appMasterEnv.MINING_PSEUDONYM_KEY=horse battery staple --conf a=b"))
    assert spaced == "appMasterEnv.MINING_PSEUDONYM_KEY=*** --conf a=b"
    assert stages_module.error_text(RuntimeError("env={'MINING_PSEUDONYM_KEY': 'abcdabcd'}")) == \
        "env={'MINING_PSEUDONYM_KEY': '***'}"


def test_run_stats_carry_row_counts_from_the_manifest(stages_module, tmp_path):
    manifest = {"dataset_version": "v1", "rows": 5, "rows_by_locale_intent": {"de-DE/a": 2, "en-US/a": 1, "en-US/b": 2},
                "stages": {"rejects": {"input": 100, "rejected": 3}, "turns": {"turns": 97},
                           "rephrase_pairs": {"accepted_pairs": 12}, "embeddings": {"rows": 40},
                           "clusters": {"clusters": 30}, "labels": {"by_decision": {"labeled": 6, "abstain": 4}}},
                "quality": [{"name": "schema", "ok": True}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    stats = stages_module.run_stats(str(tmp_path))
    assert stats == {"dataset_version": "v1", "rows": 5, "rows_by_locale": {"de-DE": 2, "en-US": 3},
                     "stage_rows": {"input": 100, "rejected": 3, "turns": 97, "rephrase_pairs": 12,
                                    "embeddings": 40, "clusters": 30, "labels": 10},
                     "quality": "passed"}
    assert stages_module.run_stats(str(tmp_path / "missing")) == {}


def test_pseudonym_key_from_environment_wins_over_the_connection(stages_module, monkeypatch):
    monkeypatch.setattr(stages_module.BaseHook, "get_connection",
                        staticmethod(lambda conn_id: type("C", (), {"password": f"from-{conn_id}"})()))
    assert stages_module.pseudonym_key_env({"MINING_PSEUDONYM_KEY": "k"}) == {}
    assert stages_module.pseudonym_key_env({}) == {"MINING_PSEUDONYM_KEY": "from-mining_pseudonym_key"}

    def missing(conn_id):
        raise stages_module.AirflowException(f"The conn_id `{conn_id}` isn't defined")

    monkeypatch.setattr(stages_module.BaseHook, "get_connection", staticmethod(missing))
    assert stages_module.pseudonym_key_env({}) == {}


def test_stage_fails_without_retry_on_reversed_dates(dagbag):
    task = copy.deepcopy(dagbag.dags["mining_adhoc"].get_task("detect_rephrases"))
    task.application_args = ["--start-date", "2026-11-07", "--end-date", "2026-11-01"]
    with pytest.raises(AirflowFailException, match="after --end-date"):
        task.execute({})


# --- helpers -------------------------------------------------------------------------------


def test_expand_options_drops_empty_and_repeats_arrays(stages_module):
    rendered = ["--a", "1", "--b", "", "--c", '["x", "y"]', "--d", "[]", "--e", " 2 "]
    assert stages_module.expand_options(rendered) == ["--a", "1", "--c", "x", "--c", "y", "--e", "2"]


def test_expand_options_is_idempotent(stages_module):
    once = stages_module.expand_options(["--a", "1", "--c", '["x"]'])
    assert stages_module.expand_options(once) == once


def test_expand_options_rejects_unpaired_arguments(stages_module):
    with pytest.raises(ValueError, match="pairs"):
        stages_module.expand_options(["--a"])


def test_runtime_env_local_master_binds_loopback_and_forwards_key(stages_module):
    environ = {"MINING_PSEUDONYM_KEY": "k", "MINING_DEMO_MODE": "", "HOME": "/h"}
    env = stages_module.runtime_env("local[2]", environ)
    assert env == {"MINING_PSEUDONYM_KEY": "k", "SPARK_LOCAL_IP": "127.0.0.1"}


def test_runtime_env_forwards_config_overrides_and_the_run_id(stages_module):
    environ = {"MINING__PRIVACY__MIN_USERS": "3", "MINING_RUN_ID": "r1", "MINING_LOG_FORMAT": "json",
               "MINING_OTHER": "x", "HOME": "/h"}
    env = stages_module.runtime_env("spark-master", environ)
    assert env == {"MINING__PRIVACY__MIN_USERS": "3", "MINING_RUN_ID": "r1", "MINING_LOG_FORMAT": "json"}


def test_runtime_env_cluster_master_keeps_spark_local_ip_unset(stages_module):
    assert stages_module.runtime_env("spark-master", {"MINING_DEMO_MODE": "1"}) == {"MINING_DEMO_MODE": "1"}


def test_spark_conf_env_override_wins(stages_module, monkeypatch):
    override = {"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": 64}
    monkeypatch.setenv("MINING_SPARK_CONF", json.dumps(override))
    conf = stages_module.spark_conf("embed_utterances")
    assert conf["spark.executor.memory"] == "8g" and conf["spark.sql.shuffle.partitions"] == "64"


@pytest.mark.parametrize(
    ("files", "ready"),
    [
        (None, False),  # no partition folder
        ([], False),  # empty folder
        (["_SUCCESS", ".part-0.parquet.crc", "_temporary/part-0.parquet"], False),  # markers only
        (["part-0.parquet"], True),
        (["locale=en-US/part-0.jsonl.gz"], True),  # nested data file
    ],
)
def test_partition_ready(stages_module, tmp_path, files, ready):
    if files is not None:
        (tmp_path / "dt=2026-11-05").mkdir()
        for name in files:
            path = tmp_path / "dt=2026-11-05" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    assert stages_module.partition_ready(tmp_path, "2026-11-05") is ready
    assert stages_module.partition_ready(tmp_path, "2026-11-06") is False


def test_sensor_fails_a_run_without_a_logical_date_and_pokes_a_finished_night(dagbag, tmp_path):
    """The nightly sensor's callable checks the night before it pokes (night_to_mine wired in)."""
    from airflow.sdk.exceptions import AirflowFailException

    sensor = dagbag.dags["mining_nightly"].get_task("wait_for_logs")
    with pytest.raises(AirflowFailException, match="has none"):
        sensor.python_callable(params={"logs": str(tmp_path)}, ds=None)
    (tmp_path / "dt=2026-11-05").mkdir()
    (tmp_path / "dt=2026-11-05" / "part-0.parquet").write_text("x")
    poke = sensor.python_callable(params={"logs": str(tmp_path)}, ds="2026-11-05")
    assert poke.is_done and poke.xcom_value == f"{tmp_path}/dt=2026-11-05"


def test_night_to_mine_refuses_a_run_without_a_finished_night(stages_module):
    """A manual trigger without a logical date, or with today's, fails before the sensor could
    pass on a partial partition; a scheduled night (run the next day at 03:00 UTC) passes."""
    from datetime import datetime, timedelta, timezone

    from airflow.sdk.exceptions import AirflowFailException

    now = datetime(2026, 11, 6, 3, 0, 5, tzinfo=timezone.utc)
    assert stages_module.night_to_mine("2026-11-05", now) == "2026-11-05"
    with pytest.raises(AirflowFailException, match="has none"):
        stages_module.night_to_mine(None, now)
    with pytest.raises(AirflowFailException, match=r"night 2026-11-06 is not over.*yesterday: 2026-11-05"):
        stages_module.night_to_mine("2026-11-06", now)
    # "today" is UTC's: 01:00 on the 6th in UTC+5 is still the 5th in UTC
    late = datetime(2026, 11, 6, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(AirflowFailException, match="not over"):
        stages_module.night_to_mine("2026-11-05", late)


# --- end to end ----------------------------------------------------------------------------

_STUB_JOB = """\
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / (Path(__file__).stem + ".json")).write_text(json.dumps({
    "argv": args, "python": sys.executable,
    "env": {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "MINING_PSEUDONYM_KEY")},
}))
"""


def airflow_env(tmp_path, *, master: str, **mining_env) -> dict[str, str]:
    """Environment of an Airflow installation in a fresh AIRFLOW_HOME under tmp_path (SQLite,
    migrated here), with only ``mining_env`` as MINING_* settings."""
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINING_"))}
    env.update(
        _AIRFLOW_ENV,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": master}),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        **mining_env,
    )
    airflow(env, "db", "migrate", timeout=300)
    return env


def airflow(env, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``airflow ARGS`` in ``env``; asserts success."""
    proc = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def airflow_dags_test(tmp_path, args, *, master: str, timeout: int, **mining_env):
    """`airflow dags test ARGS` in a fresh Airflow installation (see :func:`airflow_env`)."""
    return airflow(airflow_env(tmp_path, master=master, **mining_env), "dags", "test", *args, timeout=timeout)


@pytest.mark.slow
@pytest.mark.airflow
def test_airflow_dags_test_runs_adhoc_stages_through_spark_submit(tmp_path):
    """`airflow dags test mining_adhoc` with stub jobs: every stage gets spark-submitted, in order."""
    home = tmp_path / "mining_home"
    (home / "jobs").mkdir(parents=True)
    for stage in STAGES:
        (home / "jobs" / f"{stage}.py").write_text(_STUB_JOB)
    conf = {"start_date": "2026-11-01", "end_date": "2026-11-02", "locales": ["en-US"]}
    conf["out"] = str(tmp_path / "run")
    proc = airflow_dags_test(
        tmp_path, ["mining_adhoc", "-c", json.dumps(conf)], master="local[1]", timeout=600,
        MINING_HOME=str(home), MINING_OUT=str(tmp_path / "out"), MINING_PSEUDONYM_KEY="test-key",
    )  # fmt: skip
    for stage in STAGES:
        record = json.loads((tmp_path / "run" / f"{stage}.json").read_text())
        assert record["argv"][:2] == ["--logs", "/data/logs"]
        assert ["--locale", "en-US"] == record["argv"][record["argv"].index("--locale") :][:2]
        assert record["python"] == sys.executable
        assert record["env"] == {"SPARK_LOCAL_IP": "127.0.0.1", "MINING_PSEUDONYM_KEY": "test-key"}
    assert "test-key" not in proc.stdout + proc.stderr


def version_files(run: Path) -> dict[str, bytes]:
    """Bytes of every data file of the version a run's ``latest`` points at (not the report)."""
    version = (run / "latest").resolve()
    return {str(p.relative_to(version)): p.read_bytes() for p in sorted(version.rglob("*"))
            if p.is_file() and p.parent.name != "" and p.parts[len(version.parts)] in ("training_set", "massive")}


@pytest.mark.slow
@pytest.mark.airflow
def test_nightly_backfill_of_two_dates_gives_two_versions_and_a_rerun_is_byte_identical(tmp_path, small_sim):
    """The nightly DAG end to end with the real jobs on local[2]: a backfill over the two
    days of the small log (the dates `airflow backfill create` plans, each run as
    `airflow dags test` runs it: sensor, five spark-submits), the second night gated
    against the first, its Asset event carrying row counts, then a rerun of one night
    whose training set and JSONL are byte-identical."""
    env = airflow_env(
        tmp_path, master="local[2]",
        MINING_LOGS=str(small_sim["logs"]), MINING_OUT=str(tmp_path / "mining"), MINING_DEMO_MODE="1",
        MINING_SENSOR_POKE_S="5", MINING_SENSOR_TIMEOUT_S="30",
        MINING_SPARK_CONF=json.dumps({"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "4"}),
        # the small log's nights are tiny and night 2 mines twice night 1's days: check the
        # row change against the baseline, with a limit they pass
        MINING__QUALITY__MIN_BASELINE_ROWS="1", MINING__QUALITY__MAX_ROW_CHANGE="20",
    )
    airflow(env, "dags", "reserialize")
    plan = airflow(env, "backfill", "create", "--dag-id", "mining_nightly", "--from-date", "2026-11-01",
                   "--to-date", "2026-11-02T03:00:00+00:00", "--dry-run").stdout
    logical_dates = sorted(set(re.findall(r"\| (2026-11-\d\d \d\d:\d\d:\d\d\+00:00) \|", plan)))
    assert logical_dates == ["2026-11-01 03:00:00+00:00", "2026-11-02 03:00:00+00:00"], plan
    for logical_date in logical_dates:
        airflow(env, "dags", "test", "mining_nightly", logical_date.replace(" ", "T"), timeout=900)

    runs = tmp_path / "mining" / "runs"
    first, second = (json.loads((runs / d / "manifest.json").read_text()) for d in ("2026-11-01", "2026-11-02"))
    assert first["input_partitions"] == ["2026-11-01"]
    assert second["input_partitions"] == ["2026-11-01", "2026-11-02"]
    assert first["dataset_version"] != second["dataset_version"]
    assert 0 < first["rows"] and 0 < second["rows"]
    assert second["stages"]["turns"]["turns"] == small_sim["summary"]["turns"]
    row_change = {c["name"]: c for c in second["quality"]}["row_change"]
    assert row_change["ok"] and row_change["value"] == pytest.approx(abs(second["rows"] - first["rows"]) / first["rows"])
    assert f"baseline {first['dataset_version']}" in row_change["detail"]

    events = subprocess.run(
        [sys.executable, "-c", "import json; from airflow.utils.session import create_session; "
         "from airflow.models.asset import AssetEvent, AssetModel; from sqlalchemy import select\n"
         "with create_session() as s: print(json.dumps([e.extra for e in s.scalars(select(AssetEvent)"
         ".join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.name == 'mining_training_set').order_by(AssetEvent.id))]))"],
        env=env, capture_output=True, text=True, timeout=120, check=True)
    extras = json.loads(events.stdout.strip().splitlines()[-1])
    assert [e["dataset_version"] for e in extras] == [first["dataset_version"], second["dataset_version"]]
    assert extras[1]["rows"] == second["rows"] and extras[1]["path"] == str(runs / "2026-11-02")
    assert extras[1]["stage_rows"]["turns"] == second["stages"]["turns"]["turns"]
    assert sum(extras[1]["rows_by_locale"].values()) == second["rows"]

    before = version_files(runs / "2026-11-02")
    assert any(k.startswith("training_set/") for k in before) and any(k.startswith("massive/") for k in before)
    airflow(env, "dags", "test", "mining_nightly", logical_dates[1].replace(" ", "T"), timeout=900)
    rerun = json.loads((runs / "2026-11-02" / "manifest.json").read_text())
    assert rerun["dataset_version"] == second["dataset_version"]
    assert rerun["checksums"] == second["checksums"]
    assert version_files(runs / "2026-11-02") == before


def test_dags_take_the_stage_list_and_exit_codes_from_the_registries(stages_module):
    """One table each (mining.stages, mining.errors): the DAG helper holds no second copy."""
    from mining import errors
    from mining.stages import STAGES as REGISTRY

    assert stages_module.STAGES == STAGE_NAMES
    assert stages_module.GPU_STAGES == tuple(s.name for s in REGISTRY if s.gpu)
    assert set(stages_module.NON_RETRYABLE_EXIT_CODES) == set(errors.NON_RETRYABLE_EXIT_CODES)
    assert all(stages_module.NON_RETRYABLE_EXIT_CODES[c] == errors.EXIT_CODES[c]
               for c in errors.NON_RETRYABLE_EXIT_CODES)
