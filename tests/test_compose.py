"""docker-compose.yml is valid against the Compose specification (offline, vendored schema),
and agrees with the DAGs, the image and .env.example: the Spark connection points at the
master, both workers can hold the DAGs' executors, every stage's paths are mounted where
the DAGs' defaults expect them, the GPU profile offers what the GPU stages ask for, and no
secret is written in the file.

Docker itself is not run here (no daemon in CI); these tests read the files.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
sys.path.insert(0, str(REPO / "dags"))  # mining_stages, as the DAG processor imports it
import mining_stages  # noqa: E402

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
SPARK_WORKERS = ("spark-worker-1", "spark-worker-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with ``env`` (like `docker compose config`)."""
    def sub(m):
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""
    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", sub, str(value))


def java_bytes(size: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    return int(size[:-1]) * units[size[-1].lower()] if size[-1].isalpha() else int(size)


def test_compose_file_matches_the_compose_spec():
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe, "check-jsonschema is a dev dependency: pip install -e '.[dev]'"
    proc = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_stack_has_every_service_with_a_healthcheck(compose):
    services = compose["services"]
    expected = {"postgres", "airflow-init", *AIRFLOW_SERVICES, "spark-master", *SPARK_WORKERS, "spark-worker-gpu"}
    assert expected <= set(services)
    for name in expected - {"airflow-init"}:  # a one-shot job needs none
        assert services[name].get("healthcheck", {}).get("test"), name
    assert services["airflow-init"]["restart"] == "no"


def test_spark_connection_points_at_the_master(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    conn = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
    master = compose["services"]["spark-master"]
    command = master["command"]
    assert conn["conn_type"] == "spark"
    assert conn["host"] == f"spark://{master['hostname']}"
    assert str(conn["port"]) == command[command.index("--port") + 1]
    for worker in (*SPARK_WORKERS, "spark-worker-gpu"):
        assert f"spark://{master['hostname']}:{conn['port']}" in compose["services"][worker]["command"]


def test_workers_can_hold_the_dags_executors(compose, dotenv):
    """Every stage's executor (memory + overhead, cores) fits one worker as .env.example sizes it."""
    worker = compose["services"]["spark-worker-1"]["command"]
    memory = java_bytes(interpolate(worker[worker.index("--memory") + 1], dotenv))
    cores = int(interpolate(worker[worker.index("--cores") + 1], dotenv))
    for stage in mining_stages.STAGES:
        conf = mining_stages.spark_conf(stage)
        need = java_bytes(conf["spark.executor.memory"]) + java_bytes(conf.get("spark.executor.memoryOverhead", "384m"))
        assert need <= memory, (stage, need, memory)
        assert int(conf["spark.executor.cores"]) <= cores, stage
    assert int(mining_stages.BASE_SPARK_CONF["spark.cores.max"]) <= cores * len(SPARK_WORKERS)


def test_logs_and_outputs_are_mounted_where_the_dags_look(compose, dotenv):
    """Drivers run in the scheduler (client mode), executors on the workers: all of them read
    the logs and write the outputs at the paths the image sets as the DAGs' defaults."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    image_env = dict(re.findall(r"^\s+(MINING_LOGS|MINING_OUT|MINING_HOME|AIRFLOW__CORE__DAGS_FOLDER)=(\S+)",
                                dockerfile, re.M))
    assert image_env["AIRFLOW__CORE__DAGS_FOLDER"] == image_env["MINING_HOME"] + "/dags"
    for name in ("airflow-scheduler", *SPARK_WORKERS, "spark-worker-gpu"):
        volumes = [interpolate(v, dotenv) for v in compose["services"][name]["volumes"]]
        targets = {v.split(":")[1]: v for v in volumes}
        assert image_env["MINING_LOGS"] in targets and targets[image_env["MINING_LOGS"]].endswith(":ro"), name
        assert image_env["MINING_OUT"] in targets, name
    for copied in ("mining/", "jobs/", "dags/", "schemas/", "docker/gpu-discovery.sh"):
        assert f"COPY {copied}" in dockerfile


def test_airflow_services_pass_what_the_dags_read(compose):
    """The run-time settings the DAGs forward to spark-submit, and the parse-time ones, reach
    every Airflow process (the DAG processor parses, the scheduler runs tasks)."""
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        for key in ("MINING_PSEUDONYM_KEY", "MINING_DEMO_MODE", "MINING_SPARK_CONF", "MINING_GPU_POOL",
                    "MINING_START_DATE", "MINING_CATCHUP", "AIRFLOW_CONN_SPARK_DEFAULT"):
            assert key in env, (name, key)
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:")
    assert set(mining_stages.FORWARDED_ENV) - {"MINING_CONFIG", "MINING_LOG_FORMAT", "MINING_RUN_ID"} <= set(
        compose["services"]["airflow-scheduler"]["environment"])


def test_gpu_profile_offers_what_the_gpu_stages_ask_for(compose, dotenv):
    gpu = compose["services"]["spark-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    opts = dict(re.findall(r"-D(\S+)=(\S+)", gpu["environment"]["SPARK_WORKER_OPTS"]))
    assert opts["spark.worker.resource.gpu.discoveryScript"] == "/opt/mining/docker/gpu-discovery.sh"
    assert (REPO / "docker" / "gpu-discovery.sh").stat().st_mode & 0o111
    asked = mining_stages.DEFAULT_GPU_SPARK_CONF
    assert float(asked["spark.executor.resource.gpu.amount"]) <= float(opts["spark.worker.resource.gpu.amount"])
    cores = int(mining_stages.BASE_SPARK_CONF["spark.executor.cores"])
    assert float(asked["spark.task.resource.gpu.amount"]) * cores <= float(asked["spark.executor.resource.gpu.amount"])
    assert gpu["build"]["args"]["MINING_EXTRA"] == "gpu"
    # airflow-init creates the pool the DAGs are told to use
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow pools set mining_gpu" in init
    assert "MINING_GPU_POOL=mining_gpu" in (REPO / ".env.example").read_text()
    assert "MINING_GPU_POOL" in dotenv and dotenv["MINING_GPU_POOL"] == ""  # CPU only by default


def test_no_secret_is_written_in_the_compose_file(compose, dotenv):
    """Secrets come from the environment (.env), with no default: a missing one stops
    `docker compose` with a message, or leaves the value empty (the job then refuses to run)."""
    text = COMPOSE.read_text()
    for name in re.findall(r"\$\{(\w*(?:PASSWORD|SECRET|KEY)\w*)", text):
        for use in re.findall(r"\$\{%s(:-|:\?)?([^}]*)\}" % name, text):
            assert use[0] != ":-" or use[1] == "", f"{name} has a default value in docker-compose.yml"
    for key, value in dotenv.items():
        if re.search(r"PASSWORD|SECRET|KEY", key):
            assert value == "", f".env.example ships a value for {key}"
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used <= set(dotenv), f"variables not documented in .env.example: {sorted(used - set(dotenv))}"
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], dotenv)
    assert not os.path.exists(REPO / ".env") or ".env" in (REPO / ".gitignore").read_text().split()


def test_the_image_installs_the_versions_the_tests_ran_with():
    """The image resolves its dependencies under constraints.txt, as `make install` does."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY .*\bconstraints\.txt \./$", dockerfile, re.M)
    assert "pip install -c constraints.txt \".[${MINING_EXTRA}]\"" in dockerfile
    assert (REPO / "constraints.txt").exists()


def _in_build_context(path: str, rules: list[str]) -> bool:
    """Whether ``path`` (relative to the context root) reaches the build under .dockerignore
    ``rules``, as Docker reads them: the last rule matching the path or a folder above it
    wins, ``!`` re-includes. Only the forms the file uses (``*``, names, ``**/x``)."""
    from fnmatch import fnmatchcase

    parts = Path(path).parts
    candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    included = True
    for rule in rules:
        negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        if any(fnmatchcase(c, pattern) or fnmatchcase(c, pattern.removeprefix("**/")) for c in candidates):
            included = negate
    return included


def test_every_file_the_image_copies_is_in_its_build_context():
    """A COPY source that .dockerignore leaves out fails `docker compose build`."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    rules = [line.strip() for line in (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    sources = [src for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M) for src in line.split()[:-1]]
    assert "constraints.txt" in sources
    assert not _in_build_context("tests/test_compose.py", rules)
    missing = [src for src in sources if not (REPO / src).exists() or not _in_build_context(src, rules)]
    assert not missing, f"COPY sources outside the build context: {missing}"
