"""Building blocks shared by the mining DAGs: the five Spark stages and the log-partition check.

Not a DAG file (listed in ``.airflowignore``): ``mining_nightly.py`` and ``mining_adhoc.py``
import it from the DAG folder, which Airflow puts on ``sys.path``. The stage list and the
exit codes come from the package's two registries, ``mining.stages`` and ``mining.errors``
(standard library only); parsing imports nothing heavy (no pyspark, no encoder, no other
``mining`` module) and makes no connection: the Spark master is looked up only when a
stage runs.

Environment read at parse time (the DAG processor's and the workers' must agree):

- ``MINING_HOME``: repository root holding ``jobs/<stage>.py`` (default: parent of ``dags/``).
- ``MINING_PYTHON``: Python that drivers and executors run (default: ``sys.executable``).
- ``MINING_LOGS``, ``MINING_OUT``: defaults of the ``logs`` and output-root Params.
- ``MINING_SPARK_CONF``: JSON object of Spark properties merged over the sizing below,
  e.g. ``{"spark.executor.memory": "8g"}`` on a bigger cluster.
- ``MINING_GPU_POOL``, ``MINING_GPU_QUEUE``, ``MINING_GPU_SPARK_CONF``: GPU routing of the
  stages that hold an encoder or a FAISS index (:func:`gpu_routing`); unset = every stage on CPU.

Environment read at run time only (never serialized, never shown in the UI): the
pseudonymization key ``MINING_PSEUDONYM_KEY``, or else the password of the Airflow
connection ``mining_pseudonym_key`` (:func:`pseudonym_key_env`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseHook, Param, chain
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mining.errors import EXIT_CODES, NON_RETRYABLE_EXIT_CODES as _NON_RETRYABLE
from mining.stages import STAGE_NAMES
from mining.stages import STAGES as _REGISTRY

log = logging.getLogger(__name__)

#: Stage stems in run order (the registry ``mining.stages``); each is ``jobs/<stem>.py`` and
#: the task_id of its task.
STAGES: tuple[str, ...] = STAGE_NAMES

MINING_HOME = Path(os.environ.get("MINING_HOME") or Path(__file__).resolve().parent.parent)
MINING_PYTHON = os.environ.get("MINING_PYTHON") or sys.executable
DEFAULT_LOGS = os.environ.get("MINING_LOGS") or "/data/logs"
DEFAULT_OUT_ROOT = os.environ.get("MINING_OUT") or "/data/mining"

#: Variables copied from the worker's environment into spark-submit's, at run time only:
#: never put in a templated field, so the key is neither serialized nor rendered in the UI.
FORWARDED_ENV = ("MINING_PSEUDONYM_KEY", "MINING_DEMO_MODE", "MINING_CONFIG", "MINING_LOG_FORMAT",
                 "MINING_RUN_ID")
#: Environment variables with these prefixes are forwarded too: config overrides
#: ``MINING__<SECTION>__<KEY>`` (mining/config.py).
FORWARDED_PREFIXES = ("MINING__",)

#: ``spark.redaction.regex``: Spark's default (``(?i)secret|password|token|access[.]?key``)
#: plus ``pseudonym``, so the key forwarded as ``spark.yarn.appMasterEnv.MINING_PSEUDONYM_KEY``
#: / ``spark.kubernetes.driverEnv.MINING_PSEUDONYM_KEY`` is redacted in the UI and event logs.
SPARK_REDACTION_REGEX = r"(?i)secret|password|token|access[.]?key|pseudonym"

#: Spark sizing of every stage. Memory in JVM units; cores per executor; ``spark.cores.max``
#: caps one application on a standalone cluster (ignored by local masters).
BASE_SPARK_CONF: dict[str, str] = {
    "spark.driver.memory": "2g",
    "spark.executor.memory": "2g",
    "spark.executor.cores": "2",
    "spark.cores.max": "4",
    "spark.sql.shuffle.partitions": "64",  # adaptive execution coalesces small partitions
    "spark.sql.session.timeZone": "UTC",
    "spark.pyspark.python": MINING_PYTHON,
    "spark.pyspark.driver.python": MINING_PYTHON,
    "spark.redaction.regex": SPARK_REDACTION_REGEX,
}
#: Per-stage overrides: a stage that holds a sentence encoder or a FAISS index per Python
#: worker (the registry's ``encoder``/``index`` flags) needs memory off the JVM heap.
STAGE_SPARK_CONF: dict[str, dict[str, str]] = {
    s.name: {"spark.executor.memory": "3g", "spark.executor.memoryOverhead": "2g"} for s in _REGISTRY if s.gpu
}

#: Stages that hold a sentence encoder (detect, embed) or a FAISS index (cluster): the ones
#: worth a GPU.
GPU_STAGES: tuple[str, ...] = tuple(s.name for s in _REGISTRY if s.gpu)
#: The GPU stages that hold a sentence encoder.
ENCODER_STAGES: tuple[str, ...] = tuple(s.name for s in _REGISTRY if s.encoder)
#: Spark resources a GPU stage asks for when GPU routing is on: one GPU per executor, shared
#: by its two task slots (``spark.executor.cores`` = 2), so only executors on a worker that
#: advertises a GPU (``spark.worker.resource.gpu.*``, see docker-compose.yml) can run it.
DEFAULT_GPU_SPARK_CONF: dict[str, str] = {
    "spark.executor.resource.gpu.amount": "1",
    "spark.task.resource.gpu.amount": "0.5",
}

#: Exit codes of the jobs (``mining.errors.EXIT_CODES``) that a retry cannot fix: bad
#: configuration (2), bad or missing input, rejects over the limit, a failed data-quality
#: gate (3), a privacy precondition such as a missing key (4). The task fails at once.
NON_RETRYABLE_EXIT_CODES: dict[int, str] = {code: EXIT_CODES[code] for code in _NON_RETRYABLE}

#: Airflow connection whose password is the pseudonymization key, used when the worker has
#: no ``MINING_PSEUDONYM_KEY`` (e.g. a secrets backend serves connections, not variables).
PSEUDONYM_KEY_CONN_ID = "mining_pseudonym_key"

#: Task arguments of every stage: retried twice, about 5-10 then 10-20 minutes after a failure
#: (exponential backoff; Airflow spreads the delays by a hash of the task).
STAGE_TASK_DEFAULTS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=6),
}


def spark_conf(stage: str) -> dict[str, str]:
    """Spark properties of one stage: base sizing, stage overrides, then ``MINING_SPARK_CONF``."""
    extra = json.loads(os.environ.get("MINING_SPARK_CONF") or "{}")
    if not isinstance(extra, dict):
        raise ValueError("MINING_SPARK_CONF must be a JSON object of Spark properties")
    return {**BASE_SPARK_CONF, **STAGE_SPARK_CONF.get(stage, {}), **{k: str(v) for k, v in extra.items()}}


def gpu_routing(stage: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Where a stage runs when GPUs are configured: ``{"pool", "queue", "conf"}`` or ``{}``.

    Only :data:`GPU_STAGES` are routed. Routing is on when any of ``MINING_GPU_POOL``
    (an Airflow pool, e.g. ``mining_gpu`` with as many slots as GPU workers: GPU stages
    of concurrent runs then queue instead of competing for the device),
    ``MINING_GPU_QUEUE`` (an executor queue served by GPU hosts, Celery/Edge executors)
    or ``MINING_GPU_SPARK_CONF`` (JSON Spark properties; default
    :data:`DEFAULT_GPU_SPARK_CONF`) is set. FAISS picks CUDA where its executor sees a GPU.
    The encoder's device is resolved once, on the Spark driver (it names the runtime and the
    cache folder every executor shares), and in client mode the driver runs on the Airflow
    worker, which may have no GPU: so when the conf gives executors a GPU, an encoder stage
    also gets ``"args": ["--set", "embedding.device=cuda"]``.
    """
    environ = os.environ if environ is None else environ
    pool, queue = environ.get("MINING_GPU_POOL") or None, environ.get("MINING_GPU_QUEUE") or None
    raw = environ.get("MINING_GPU_SPARK_CONF") or ""
    if stage not in GPU_STAGES or not (pool or queue or raw):
        return {}
    conf = json.loads(raw) if raw else DEFAULT_GPU_SPARK_CONF
    if not isinstance(conf, dict):
        raise ValueError("MINING_GPU_SPARK_CONF must be a JSON object of Spark properties")
    routed: dict[str, Any] = {"pool": pool, "queue": queue, "conf": {k: str(v) for k, v in conf.items()}}
    if stage in ENCODER_STAGES and float(conf.get("spark.executor.resource.gpu.amount") or 0) > 0:
        routed["args"] = ["--set", "embedding.device=cuda"]
    return routed


def previous_run_manifest(out_root: str, ds: str, locales=()) -> str:
    """Manifest of the latest nightly run before ``ds`` that covers ``locales`` (the run's
    ``locales`` Param; empty = all): ``{out_root}/runs/<d>/manifest.json`` with the greatest
    ``d < ds`` (ISO dates compare as strings) whose ``locales`` are all (empty) or include
    every one of ``locales``; ``""`` when there is none. A night triggered for some locales
    only is skipped by a later full night: following it would drop every label of the other
    locales that was only being retained, and no changelog would list them.

    It is the baseline of the data-quality gate (``quality.baseline``, mining/core/quality.py:
    the label count of night ``ds`` is compared with the previous published night's) and the
    version label retention and the changelog follow (mining/io/changelog.py). Used as a
    Jinja macro, so it runs on the worker when the task renders, never at parse time.
    """
    runs = Path(out_root) / "runs"
    if not runs.is_dir():
        return ""
    wanted = set(locales or ())
    earlier = sorted((p.name for p in runs.iterdir()
                      if p.name < ds and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name)
                      and (p / "manifest.json").is_file()), reverse=True)
    for name in earlier:
        try:
            covered = set(json.loads((runs / name / "manifest.json").read_text(encoding="utf-8")).get("locales") or ())
        except (OSError, ValueError, AttributeError):
            continue
        if not covered or (wanted and wanted <= covered):
            return str(runs / name / "manifest.json")
    return ""


def exit_code(error: BaseException) -> int | None:
    """spark-submit's exit code from the provider's ``AirflowException`` message
    ("... Error code is: 3."), or None when the message carries none. On Kubernetes in
    cluster mode spark-submit itself exits 0 and the message adds the driver's code
    ("Kubernetes spark exit code is: 3"), which is taken then. (YARN cluster mode reports 1 for any
    failure: every failure is then retried; run the stages in client mode.)"""
    code = re.search(r"Error code is: (-?\d+)", str(error))
    k8s = re.search(r"Kubernetes spark exit code is: (-?\d+)", str(error))
    if k8s and int(k8s.group(1)) != 0 and (code is None or int(code.group(1)) == 0):
        return int(k8s.group(1))     # (client mode on Kubernetes reports 0 there: ignored)
    return int(code.group(1)) if code else None


def pseudonym_key_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"MINING_PSEUDONYM_KEY": key}`` from the password of the Airflow connection
    :data:`PSEUDONYM_KEY_CONN_ID` when the worker's environment has no key; ``{}`` when the
    environment has one or the connection does not exist (the job then refuses to run
    without a key, exit 4, unless demo mode). Called at run time only."""
    if environ.get("MINING_PSEUDONYM_KEY"):
        return {}
    try:
        password = BaseHook.get_connection(PSEUDONYM_KEY_CONN_ID).password
    except AirflowException:  # AirflowNotFoundException: no such connection
        return {}
    return {"MINING_PSEUDONYM_KEY": password} if password else {}


def run_stats(out: str | None) -> dict[str, Any]:
    """What the outlet Asset event of a finished run carries, read from ``{out}/manifest.json``:
    the dataset version and row counts of the training set (total and per locale) and of every
    stage (turns, rejects, rephrase pairs, embeddings, clusters, labels). ``{}`` when absent."""
    path = Path(out or "") / "manifest.json"
    if not out or not path.is_file():
        return {}
    manifest = json.loads(path.read_text())
    stages = manifest.get("stages", {})
    by_locale: dict[str, int] = {}
    for key, n in manifest.get("rows_by_locale_intent", {}).items():
        locale = key.split("/", 1)[0]
        by_locale[locale] = by_locale.get(locale, 0) + n
    return {
        "dataset_version": manifest.get("dataset_version"),
        "rows": manifest.get("rows"),
        "rows_by_locale": by_locale,
        "stage_rows": {
            "input": stages.get("rejects", {}).get("input"),
            "rejected": stages.get("rejects", {}).get("rejected"),
            "turns": stages.get("turns", {}).get("turns"),
            "rephrase_pairs": stages.get("rephrase_pairs", {}).get("accepted_pairs"),
            "embeddings": stages.get("embeddings", {}).get("rows"),
            "clusters": stages.get("clusters", {}).get("clusters"),
            "labels": sum(stages.get("labels", {}).get("by_decision", {}).values()) or None,
        },
        "quality": "passed" if all(c.get("ok") for c in manifest.get("quality", [])) else "failed",
    }


def error_text(exception: BaseException | None, limit: int = 500) -> str:
    """``str(exception)`` with secrets hidden, then clipped to ``limit`` characters. A failed
    spark-submit's message repeats its command line, which on YARN/Kubernetes carries
    ``MINING_PSEUDONYM_KEY=<key>``: clipping first could cut inside the key, and Airflow's
    masker hides only the whole key, so the masker runs first; then the worker's own key and
    the value given to ``MINING_PSEUDONYM_KEY`` (up to its closing quote, the next `` --`` or
    the line end, so a passphrase with spaces goes whole) become ``***``."""
    text = str(exception)
    try:
        from airflow.sdk.log import redact

        text = str(redact(text))
    except Exception:  # noqa: BLE001 - the replacements below still apply
        pass
    key = os.environ.get("MINING_PSEUDONYM_KEY")
    if key:                                  # the worker's own key, wherever it appears
        text = text.replace(key, "***")
    # KEY=value / 'KEY': 'value': the value up to its closing quote, the next " --" or the line end
    text = re.sub(r"""(MINING_PSEUDONYM_KEY['"]?\s*[=:]\s*['"]?).*?(?=['"]|\s--|$)""", r"\1***", text, flags=re.M)
    return text[:limit]


def on_stage_failure(context: Mapping[str, Any]) -> None:
    """Failure callback of every stage: one ERROR line saying what failed and where its output is.

    Names the DAG, run, task, try, the exception, the run's output folder (``--out``), the
    version readers see there now (``latest``: the last published one; a stage that fails
    publishes nothing, though ``export_dataset`` failing after its publish, e.g. while its
    process shuts down, leaves its own version there) and the task log. Airflow calls it once the task has failed for good (after
    its retries); it never raises, so a broken callback cannot hide the original failure.
    """
    try:
        ti = context.get("task_instance") or context.get("ti")
        task = context.get("task") or getattr(ti, "task", None)
        out = option_value(list(getattr(task, "application_args", None) or []), "--out")
        latest = Path(out) / "latest" if out else None
        published = latest.resolve().name if latest is not None and latest.exists() else "none"
        log.error(
            "mining stage failed: dag=%s run=%s task=%s try=%s error=%r output=%s "
            "published_version=%s (what readers see now) log=%s",
            getattr(ti, "dag_id", None), context.get("run_id"), getattr(ti, "task_id", None),
            getattr(ti, "try_number", None), error_text(context.get("exception")), out or "-",
            published, getattr(ti, "log_url", None) or "-",
        )
    except Exception:  # noqa: BLE001 - a callback must never raise
        log.exception("on_stage_failure could not describe the failure")


def stage_args(options: Mapping[str, str | Sequence[str]]) -> list[str]:
    """Flatten ``{"--flag": template}`` into spark-submit application arguments.

    A sequence value repeats its flag (``{"--set": [a, b]}`` → ``--set a --set b``). Values are
    Jinja templates; see :func:`expand_options` for what happens after rendering.
    """
    args: list[str] = []
    for flag, value in options.items():
        for item in [value] if isinstance(value, str) else value:
            args += [flag, item]
    return args


#: ``--min-users`` as rendered: empty (the flag dropped) unless the run sets the Param
MIN_USERS_ARG = "{{ '' if params.min_users is none else params.min_users }}"


def expand_options(args: Sequence[Any]) -> list[str]:
    """Post-process rendered ``[flag, value, flag, value, ...]`` arguments.

    A value that rendered empty drops its flag (optional options such as ``--start-date``);
    a value that rendered to a JSON array repeats its flag once per element (``--locale``),
    an empty array dropping it. Anything else is passed as is.
    """
    if len(args) % 2:
        raise ValueError(f"application arguments must be flag/value pairs, got {list(args)!r}")
    out: list[str] = []
    for flag, value in zip(args[::2], args[1::2]):
        value = str(value).strip()
        if value.startswith("["):
            out += [x for item in json.loads(value) for x in (str(flag), str(item))]
        elif value:
            out += [str(flag), value]
    return out


def option_value(args: Sequence[str], flag: str) -> str | None:
    """Value of the last ``flag`` in flat arguments, or None."""
    values = [v for f, v in zip(args[::2], args[1::2]) if f == flag]
    return values[-1] if values else None


def night_to_mine(ds: str | None, now: datetime) -> str:
    """The night ``ds`` (``YYYY-MM-DD``) a ``mining_nightly`` run mines, checked before its
    sensor waits for it.

    A scheduled run's ``ds`` is a finished day (the data-interval timetable runs it at 03:00
    UTC the next day). A manual trigger may carry no logical date at all (Airflow 3: ``ds`` is
    then absent, and the stages' ``{{ ds }}`` templates could not render) or "now", today, whose partition
    already holds the first hours' logs: the sensor would pass and a partial day would be
    published as that night's version. Both fail here, without retries, naming the fix.

    :param now: timezone-aware current time (UTC is used for "today")
    Raises :class:`AirflowFailException` when ``ds`` is None or not before today (UTC)."""
    if not ds:
        raise AirflowFailException(
            "mining_nightly mines the night of its logical date, and this run has none (a manual "
            "trigger without one): trigger it with the night to mine as its logical date (03:00 "
            "UTC, e.g. yesterday's), or run mining_adhoc with start_date/end_date")
    today = now.astimezone(timezone.utc).date()
    if date.fromisoformat(ds) >= today:
        raise AirflowFailException(
            f"night {ds} is not over (today is {today.isoformat()} UTC): its partition is still "
            f"being written; trigger mining_nightly with an earlier logical date (yesterday: "
            f"{(today - timedelta(days=1)).isoformat()})")
    return ds


def partition_ready(logs: str | os.PathLike[str], ds: str) -> bool:
    """Whether ``<logs>/dt=<ds>`` exists and holds at least one data file.

    Files and folders whose names start with ``.`` or ``_`` (``_SUCCESS``, ``.crc``,
    ``_temporary``, in-flight uploads) do not count; sub-folders are searched (ingest reads
    only the files directly under the partition and rejects a sub-folder as
    ``unsupported_file``, so such a layout fails the run at validation, not at the sensor).
    """
    partition = Path(logs) / f"dt={ds}"
    if not partition.is_dir():
        return False
    for _root, dirs, files in os.walk(partition):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        if any(not f.startswith((".", "_")) for f in files):
            return True
    return False


def runtime_env(master: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Environment added to spark-submit's at run time.

    :param master: the Spark connection's host, e.g. ``local[2]`` or ``spark://spark-master``.
    :param environ: the worker's environment; :data:`FORWARDED_ENV` entries that are set
        are copied, and ``SPARK_LOCAL_IP=127.0.0.1`` is added for local masters (unless
        already set), so a laptop's driver never binds to a public interface.
    """
    env = {name: environ[name] for name in environ
           if (name in FORWARDED_ENV or name.startswith(FORWARDED_PREFIXES)) and environ.get(name)}
    if master.startswith("local") and "SPARK_LOCAL_IP" not in environ:
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


class StageSubmitOperator(SparkSubmitOperator):
    """``spark-submit jobs/<stage>.py`` with optional and repeated options, see :func:`expand_options`.

    At run time it also checks ``--start-date <= --end-date`` (failing without retry), sets
    ``SPARK_LOCAL_IP=127.0.0.1`` for ``local[...]`` masters, forwards :data:`FORWARDED_ENV`
    from the worker (the key from the Airflow connection when the environment has none,
    registered with Airflow's secrets masker before the submit),
    fails without retry on the exit codes of :data:`NON_RETRYABLE_EXIT_CODES`, and attaches
    the run's path and row counts (:func:`run_stats`) to the events of its outlet Assets.
    """

    def render_template_fields(self, context, jinja_env=None) -> None:
        super().render_template_fields(context, jinja_env)
        self.application_args = expand_options(self.application_args or [])

    def execute(self, context) -> None:
        args = self.application_args or []
        start, end = option_value(args, "--start-date"), option_value(args, "--end-date")
        if start and end and start > end:
            raise AirflowFailException(f"--start-date {start} is after --end-date {end}")
        master = BaseHook.get_connection(self._conn_id).host or ""
        self.env_vars = {**(self.env_vars or {}), **runtime_env(master, os.environ),
                         **pseudonym_key_env(os.environ)}
        if key := self.env_vars.get("MINING_PSEUDONYM_KEY"):
            # spark-submit's command line (logged) carries it as --conf ...Env.MINING_PSEUDONYM_KEY=
            # on YARN/k8s. No name: the masker skips a value whose name it deems harmless.
            from airflow.sdk.log import mask_secret

            mask_secret(key)
        try:
            super().execute(context)
        except AirflowException as error:
            code = exit_code(error)
            if code in NON_RETRYABLE_EXIT_CODES:
                raise AirflowFailException(
                    f"{self.task_id}: spark-submit exited {code} ({NON_RETRYABLE_EXIT_CODES[code]}); "
                    "not retried, see the job's last stderr line above") from error
            raise
        out = option_value(args, "--out")
        for asset in self.outlets or []:
            context["outlet_events"][asset].extra = {"path": out, "start_date": start, "end_date": end,
                                                     **run_stats(out)}


def build_stages(
    dag_id: str,
    options: Mapping[str, str | Sequence[str]],
    *,
    outlets: Iterable[Any] = (),
    conn_id: str = "spark_default",
) -> list[StageSubmitOperator]:
    """Create the five stage tasks, chained in :data:`STAGES` order, inside the current DAG.

    :param options: ``{"--flag": Jinja template}`` given to every stage (see :func:`stage_args`).
    :param outlets: Assets the last stage (``export_dataset``) produces.
    :return: the tasks in run order.
    """
    tasks = []
    for stage in STAGES:
        gpu = gpu_routing(stage)
        placement = {k: v for k, v in (("pool", gpu.get("pool")), ("queue", gpu.get("queue"))) if v}
        tasks.append(StageSubmitOperator(
            task_id=stage,
            application=str(MINING_HOME / "jobs" / f"{stage}.py"),
            application_args=stage_args(options) + gpu.get("args", []),
            conf={**spark_conf(stage), **gpu.get("conf", {})},
            conn_id=conn_id,
            name=f"{dag_id}.{stage}",
            outlets=list(outlets) if stage == STAGES[-1] else [],
            doc_md=f"`spark-submit jobs/{stage}.py` (see `jobs/{stage}.py --help`)"
            + (" on the GPU workers." if gpu else "."),
            on_failure_callback=on_stage_failure,
            **placement,
            **STAGE_TASK_DEFAULTS,
        ))
    chain(*tasks)
    return tasks


def shared_params() -> dict[str, Param]:
    """Params both DAGs take, defined once: ``logs``, ``locales``, ``min_users``."""
    return {
        "logs": Param(
            DEFAULT_LOGS,
            type="string",
            minLength=1,
            title="Logs root",
            description="Folder holding the interaction logs as dt=YYYY-MM-DD/ partitions "
            "(Parquet or JSONL). Default: $MINING_LOGS or /data/logs.",
        ),
        "locales": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
            uniqueItems=True,
            title="Locales",
            description="BCP-47 locales to mine, e.g. en-US; empty = all locales in the logs.",
        ),
        # null: the configuration's privacy.min_users (MINING_CONFIG, MINING__PRIVACY__MIN_USERS,
        # defaults.toml); a value here would override a stricter configured gate (MIN_USERS_ARG)
        "min_users": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Minimum distinct users",
            description="k-anonymity gate: an utterance text is exported only when at least "
            "this many distinct users said it. Empty: privacy.min_users of the configuration.",
        ),
    }
