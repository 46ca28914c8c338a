"""Running stages: :func:`run_all` on one Spark session (``mining run``, the demo, benchmarks)
and :func:`job_main`, the body of every ``jobs/<stage>.py`` under spark-submit."""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

from mining.stages import STAGE_NAMES, get, stage_fn

log = logging.getLogger(__name__)


def run_all(spark, cfg, stages: Sequence[str] = STAGE_NAMES, *, progress: bool | None = None) -> dict:
    """Run ``stages`` (names of :data:`mining.stages.STAGE_NAMES`) in order on one Spark
    session; returns ``{stage: stats}``, each with ``seconds`` and the process's ``run_id``
    (:mod:`mining.run_logging`).

    Logs one line at each stage's start and end; ``progress`` (default: stderr is a
    terminal) also shows a bar over the stages (:func:`mining.run_logging.stage_progress`).
    Raises ``ConfigError`` for an unknown stage before any stage runs."""
    from mining.run_logging import current_run_id, stage_progress

    fns = {name: stage_fn(get(name).name) for name in stages}
    results = {}
    with stage_progress(len(stages), progress) as bar:
        for name in stages:
            t0 = time.perf_counter()
            bar.start(name)
            log.info("stage %s: start", name)
            results[name] = fns[name](spark, cfg)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            results[name]["run_id"] = current_run_id()
            log.info("stage %s: done in %.1fs", name, results[name]["seconds"])
            bar.done()
    return results


def job_main(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of ``jobs/<stage>.py`` under spark-submit: the master and sizing come from
    the submit configuration, never from the job. Same arguments as ``mining <stage>``,
    same logging (run id from ``$MINING_RUN_ID`` when the submitter sets it) and exit codes
    (:data:`mining.errors.EXIT_CODES`)."""
    from mining.entrypoint import add_run_args, config_from_args, guarded, top_level
    from mining.run_logging import setup_logging

    get(stage)
    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"Spark job: {stage}")
    add_run_args(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    def go():
        from pyspark.sql import SparkSession

        from mining.spark.session import configure_python_env, session_conf

        configure_python_env()
        cfg = config_from_args(args)
        spark = SparkSession.builder.appName(f"mining.{stage}").getOrCreate()
        session_conf(spark)
        try:
            return run_all(spark, cfg, (stage,))
        finally:
            spark.stop()

    return top_level(guarded, go)
