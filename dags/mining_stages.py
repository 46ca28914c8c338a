"""Building blocks shared by the mining DAGs: the five Spark stages and the log-partition check.

Not a DAG file (listed in ``.airflowignore``): ``mining_nightly.py`` and ``mining_adhoc.py``
import it from the DAG folder, which Airflow puts on ``sys.path``. Parsing it imports
nothing heavy (no pyspark, no ``mining``) and makes no connection: the Spark master is
looked up only when a stage runs.

Environment read at parse time (the DAG processor's and the workers' must agree):

- ``MINING_HOME``: repository root holding ``jobs/<stage>.py`` (default: parent of ``dags/``).
- ``MINING_PYTHON``: Python that drivers and executors run (default: ``sys.executable``).
- ``MINING_LOGS``, ``MINING_OUT``: defaults of the ``logs`` and output-root Params.
- ``MINING_SPARK_CONF``: JSON object of Spark properties merged over the sizing below,
  e.g. ``{"spark.executor.memory": "8g"}`` on a bigger cluster.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseHook, Param, chain
from airflow.sdk.exceptions import AirflowFailException

#: Stage stems in run order; each is ``jobs/<stem>.py`` and the task_id of its task.
STAGES: tuple[str, ...] = (
    "detect_rephrases",
    "embed_utterances",
    "cluster_variants",
    "aggregate_labels",
    "export_dataset",
)

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
}
#: Per-stage overrides: the sentence encoder (embed) and the FAISS index (cluster) hold a
#: model or an index per Python worker, off the JVM heap, hence the extra overhead.
STAGE_SPARK_CONF: dict[str, dict[str, str]] = {
    "embed_utterances": {"spark.executor.memory": "3g", "spark.executor.memoryOverhead": "2g"},
    "cluster_variants": {"spark.executor.memory": "3g", "spark.executor.memoryOverhead": "2g"},
}

#: Task arguments of every stage: retried twice, about 5 then 10 minutes after a failure.
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


def partition_ready(logs: str | os.PathLike[str], ds: str) -> bool:
    """Whether ``<logs>/dt=<ds>`` exists and holds at least one data file.

    Files and folders whose names start with ``.`` or ``_`` (``_SUCCESS``, ``.crc``,
    ``_temporary``, in-flight uploads) do not count; sub-folders are searched.
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
    from the worker, and attaches the ``--out`` path to the events of its outlet Assets.
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
        self.env_vars = {**(self.env_vars or {}), **runtime_env(master, os.environ)}
        super().execute(context)
        out = option_value(args, "--out")
        for asset in self.outlets or []:
            context["outlet_events"][asset].extra = {"path": out, "start_date": start, "end_date": end}


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
    tasks = [
        StageSubmitOperator(
            task_id=stage,
            application=str(MINING_HOME / "jobs" / f"{stage}.py"),
            application_args=stage_args(options),
            conf=spark_conf(stage),
            conn_id=conn_id,
            name=f"{dag_id}.{stage}",
            outlets=list(outlets) if stage == STAGES[-1] else [],
            doc_md=f"`spark-submit jobs/{stage}.py` (see `jobs/{stage}.py --help`).",
            **STAGE_TASK_DEFAULTS,
        )
        for stage in STAGES
    ]
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
        "min_users": Param(
            2,
            type="integer",
            minimum=1,
            title="Minimum distinct users",
            description="k-anonymity gate: an utterance text is exported only when at least "
            "this many distinct users said it (privacy.min_users).",
        ),
    }
