"""The one module that reads (and, where a library needs it, sets) environment variables.

Library modules ask here instead of touching ``os.environ``, so every variable the
system reacts to is listed in one place (``mining --help`` prints the user-facing ones):

==============================  ===============================================================
``MINING_CONFIG``               TOML file over ``mining/defaults.toml`` (default of ``--config``)
``MINING__<SECTION>__<KEY>``    one config value, between the file and ``--set`` (mining.config)
``MINING_PSEUDONYM_KEY``        HMAC key for user/session ids (secret, >= 16 bytes)
``MINING_DEMO_MODE``            ``1``: allow the public demo key instead
``MINING_SPARK_MASTER``         Spark master of local runs (default ``local[2]``)
``MINING_DRIVER_MEMORY``        driver heap of local runs (default ``4g``)
``MINING_SHUFFLE_PARTITIONS``   ``spark.sql.shuffle.partitions`` of local runs (default 64)
``MINING_TORCH_THREADS``        torch threads per Spark task that encodes (default 1)
``MINING_SCHEMA_DIR``           folder of the schema files (default: the repo's ``schemas/``)
``MINING_HOME``                 repo root in a container image (``$MINING_HOME/schemas``)
``MINING_LOG_FORMAT``           ``text`` (default) or ``json``
``MINING_RUN_ID``               run id in every log line, inherited by child processes
==============================  ===============================================================

The DAG files read their own parse-time variables (``dags/mining_stages.py``): the DAG
processor does not import this package's heavy modules.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping

from mining.errors import ConfigError

CONFIG_ENV = "MINING_CONFIG"
CONFIG_PREFIX = "MINING__"
KEY_ENV = "MINING_PSEUDONYM_KEY"
DEMO_ENV = "MINING_DEMO_MODE"
RUN_ID_ENV = "MINING_RUN_ID"
LOG_FORMAT_ENV = "MINING_LOG_FORMAT"


def environ() -> Mapping[str, str]:
    """The process environment (read-only view for callers such as :mod:`mining.config`)."""
    return os.environ


def demo_mode() -> bool:
    """Whether ``$MINING_DEMO_MODE`` is ``1``/``true``/``yes``: the public demo key is allowed."""
    return os.environ.get(DEMO_ENV, "") in ("1", "true", "yes")


def pseudonym_key() -> str | None:
    """``$MINING_PSEUDONYM_KEY`` or None (validated by :func:`mining.privacy.pii.resolve_key`)."""
    return os.environ.get(KEY_ENV) or None


def spark_master() -> str:
    return os.environ.get("MINING_SPARK_MASTER") or "local[2]"


def _checked(name: str, default: str, pattern: str, expected: str) -> str:
    """``$name`` (or ``default``) when it matches ``pattern``, else ``ConfigError`` naming the
    variable (exit 2: a configuration error, not retried)."""
    value = os.environ.get(name) or default
    if not re.fullmatch(pattern, value):
        raise ConfigError(f"{name}={value!r}: expected {expected}")
    return value


def driver_memory() -> str:
    """``$MINING_DRIVER_MEMORY`` (default ``4g``): a JVM heap size with its unit (``4g``,
    ``512m``): the launcher hands it to ``-Xmx``, which refuses ``4gb`` or a bare number."""
    return _checked("MINING_DRIVER_MEMORY", "4g", r"[1-9][0-9]*[kKmMgGtT]", "a JVM heap size such as 4g or 512m")


def shuffle_partitions() -> str:
    """``$MINING_SHUFFLE_PARTITIONS`` (default 64): a positive integer."""
    return _checked("MINING_SHUFFLE_PARTITIONS", "64", r"[1-9][0-9]*", "a positive integer")


def torch_threads() -> int:
    """``$MINING_TORCH_THREADS`` (default 1): a positive integer."""
    return int(_checked("MINING_TORCH_THREADS", "1", r"[1-9][0-9]*", "a positive integer"))


def schema_dir() -> str | None:
    return os.environ.get("MINING_SCHEMA_DIR") or None


def mining_home() -> str | None:
    return os.environ.get("MINING_HOME") or None


def log_format() -> str | None:
    return os.environ.get(LOG_FORMAT_ENV) or None


def run_id() -> str | None:
    return os.environ.get(RUN_ID_ENV) or None


def export_run_id(value: str) -> None:
    """Set ``$MINING_RUN_ID`` so child processes (spark-submit, Python workers) log under it."""
    os.environ[RUN_ID_ENV] = value


def configure_pyspark_python() -> None:
    """Spark's Python workers run this interpreter (else "No module named pyarrow", STACK.md)
    and a local driver binds to loopback; values already set win."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def offline_models() -> None:
    """Never reach a model hub (weights come from packages) and keep tokenizers single-threaded
    inside Spark tasks; values already set win."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextlib.contextmanager
def scoped(**values: str) -> Iterator[None]:
    """Set environment variables for the ``with`` block only, then restore them: e.g.
    ``scoped(MINING_DEMO_MODE="1")`` while a fit runs the pipeline on simulated users."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
