"""Spark session for the CLI and tests (``spark-submit`` builds its own from the submit config).

Sizing (memory, cores, shuffle partitions) belongs in the submit configuration: the
``conf`` of the Airflow ``SparkSubmitOperator`` or ``spark-submit --conf``. The local
session here only sets what a local run needs to work at all (STACK.md): workers must run
this interpreter, and the driver binds to loopback.
"""
from __future__ import annotations

import sys
from mining import env


def configure_python_env() -> None:
    """Make Spark's Python workers use this interpreter (else: "No module named pyarrow")."""
    env.configure_pyspark_python()


def get_spark(app_name: str = "utterance-mining", master: str | None = None, *,
              console_progress: bool | None = None):
    """The active SparkSession, or a new one (``master`` default: ``$MINING_SPARK_MASTER``
    or ``local[2]``), with :func:`session_conf` applied either way. The UI is off for local
    runs. Spark's console progress bar (``spark.ui.showConsoleProgress``) is on only when
    ``console_progress`` is true, by default when stderr is a terminal: never in logs that a
    scheduler or CI captures.

    Local sizing: the driver JVM hosts the executors, so its heap is
    ``$MINING_DRIVER_MEMORY`` (default 4g: 10M turns of detect_rephrases ran out of a 1g
    heap); ``$MINING_SHUFFLE_PARTITIONS`` (default 64) bounds a shuffle partition, and
    adaptive execution coalesces small ones, so small inputs do not pay for 64 tasks."""
    configure_python_env()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:   # a notebook's or shell's session: it still needs UTC (session_conf)
        session_conf(active)
        return active
    master = master or env.spark_master()
    if console_progress is None:
        console_progress = sys.stderr.isatty()
    builder = (SparkSession.builder.appName(app_name).master(master)
               .config("spark.ui.showConsoleProgress", str(bool(console_progress)).lower())
               .config("spark.sql.shuffle.partitions", env.shuffle_partitions())
               .config("spark.sql.adaptive.enabled", "true")
               .config("spark.sql.adaptive.coalescePartitions.enabled", "true"))
    if master.startswith("local"):
        builder = (builder.config("spark.ui.enabled", "false")
                   .config("spark.driver.memory", env.driver_memory()))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    session_conf(spark)
    return spark


def session_conf(spark) -> None:
    """Settings every job needs whatever the master: UTC timestamps, nanosecond Parquet
    timestamps read as longs (``spark.sql.legacy.parquet.nanosAsLong``), Arrow transfers to
    pandas, and adaptive execution
    free to coalesce the partitions of a cached DataFrame
    (``spark.sql.optimizer.canChangeCachedPlanOutputPartitioning``, false in this
    pyspark 4.2 build). Without it every stage downstream of a ``cache()`` runs one task per
    shuffle partition (64) whatever the size: measured on 20,000 texts (local[2]), the jobs of
    ``ensure_embeddings`` took 2.5 s and 2.8 s with it off, 1.4 s and 0.9 s with it on."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # Parquet TIMESTAMP(NANOS), pandas' default, fails the whole read ("Illegal Parquet
    # type") unless read as a long; ingest converts a nanosecond ``ts`` (ingest._convert)
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    # Arrow for toPandas/pandas UDF batches also under spark-submit (jobs/*.py), not only here
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    spark.conf.set("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
