"""
### Nightly utterance mining

Every night at 03:00 UTC, mines the interaction logs of the day that just ended into a new
weakly labeled NLU training set:

`wait_for_logs` → `detect_rephrases` → `embed_utterances` → `cluster_variants` →
`aggregate_labels` → `export_dataset`

- **Which days.** A run's `ds` is the day it mines (its data interval is that day, 03:00 to
  03:00 UTC; it starts once the interval has ended). It waits until
  `{logs}/dt={ds}` holds a data file, then mines partitions `ds - lookback_days + 1 … ds`,
  so friction and rephrases that straddle midnight are seen, and evidence is pooled
  over a few days. A manual trigger needs a logical date of a finished day (yesterday or
  earlier): one without a logical date, or with today's, fails at once, since today's
  partition is still being written (`night_to_mine`); `mining_adhoc` mines any range.
- **Outputs.** `{out_root}/runs/{ds}/` (`training_set/`, `manifest.json`, …), published
  atomically by the jobs; the training set is the Asset `mining_training_set`, whose
  event extra carries the run's path. The embedding cache `{out_root}/embedding_cache`
  is shared by all nights, so each distinct text is embedded once per model.
- **Reruns, catchup and backfills** are safe: a run rewrites only its own `runs/{ds}`, and
  the same logs and config give the same bytes. Catchup is on (`MINING_CATCHUP=0` turns it
  off): nights missed since `MINING_START_DATE` (default 2026-11-01) are mined in date
  order, one run at a time (the cache is shared). Backfill a range with
  `airflow backfill create --dag-id mining_nightly --from-date … --to-date …
  --max-active-runs 1`; every logical date gets its own dataset version. Keep
  `--max-active-runs 1`: a backfill's runs do not count against this DAG's
  `max_active_runs` (the backfill's own default is 10), and each night's quality gate and
  label retention read the night before's manifest, so nights mined side by side may
  follow an older night than the one before them.
- **Quality gate.** `export_dataset` publishes nothing when the training set fails its
  checks (schema, reject share, label count change against the previous night's
  `runs/<d>/manifest.json`, see `mining/core/quality.py`); the task then fails without retry.
- **Waiting.** `wait_for_logs` re-checks every 10 minutes (freeing its worker slot) and
  fails the run after 8 hours (`MINING_SENSOR_POKE_S`, `MINING_SENSOR_TIMEOUT_S`).
- **Spark.** Each stage is `spark-submit jobs/<stage>.py` on connection `spark_default`;
  sizing is in the tasks' `conf` (see `dags/mining_stages.py`), never in the jobs.
  With `MINING_GPU_POOL` / `MINING_GPU_QUEUE` set, `detect_rephrases` (which embeds
  the night's texts), `embed_utterances` and
  `cluster_variants` run in that pool or queue and ask Spark for GPU executors.
- **Failures.** Stages retry twice with exponential backoff (about 5-10, then 10-20 minutes) except
  on configuration, input, quality-gate and privacy errors (exit codes 2–4), which fail
  at once; a failed stage logs one line naming the task, the error, its output folder and
  the version still published there.
- **Secrets.** The pseudonymization key comes from the worker's `MINING_PSEUDONYM_KEY`, or
  the password of the Airflow connection `mining_pseudonym_key` (or `MINING_DEMO_MODE=1`
  for the built-in demo key); it is never a Param and never rendered.
- **Asset.** Each successful run emits an event on `mining_training_set` whose extra holds
  the path, dataset version and row counts (training set per locale, and every stage).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, PokeReturnValue, dag, task

from mining_stages import (DEFAULT_OUT_ROOT, MIN_USERS_ARG, build_stages, night_to_mine, partition_ready,
                           previous_run_manifest, shared_params)

DAG_ID = "mining_nightly"

#: How often (s) and how long (s) to wait for the day's log partition before failing the run;
#: short values make `airflow dags test` fail fast instead of waiting when logs are missing.
SENSOR_POKE_S = float(os.environ.get("MINING_SENSOR_POKE_S") or 600)
SENSOR_TIMEOUT_S = float(os.environ.get("MINING_SENSOR_TIMEOUT_S") or 8 * 3600)
#: First night mined, and whether nights missed since then are run (catchup).
START_DATE = datetime.fromisoformat(os.environ.get("MINING_START_DATE") or "2026-11-01").replace(tzinfo=timezone.utc)
CATCHUP = (os.environ.get("MINING_CATCHUP") or "1").lower() not in ("0", "false", "no")

#: The nightly training set. The URI names the folder of all runs; each asset event's
#: extra carries the run's own folder (``{out_root}/runs/{ds}``).
TRAINING_SET = Asset(name="mining_training_set", uri=f"file://{DEFAULT_OUT_ROOT}/runs", group="mining")


@dag(
    dag_id=DAG_ID,
    # The data-interval timetable makes a run's logical date (ds) the start of the day it
    # mines; a plain cron string would give the trigger day instead (Airflow 3 default).
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=20),
    tags=["mining", "spark", "nightly"],
    doc_md=__doc__,
    default_args={"owner": "mining"},
    user_defined_macros={"previous_run_manifest": previous_run_manifest},
    params={
        **shared_params(),
        "out_root": Param(
            DEFAULT_OUT_ROOT,
            type="string",
            minLength=1,
            title="Output root",
            description="Runs are written to {out_root}/runs/{ds}; the embedding cache "
            "{out_root}/embedding_cache is shared by all runs. Default: $MINING_OUT or /data/mining.",
        ),
        "lookback_days": Param(
            3,
            type="integer",
            minimum=1,
            maximum=31,
            title="Lookback (days)",
            description="Number of daily partitions mined, ending with the run's day ds: "
            "[ds - lookback_days + 1, ds].",
        ),
    },
)
def mining_nightly():
    @task.sensor(
        task_id="wait_for_logs",
        mode="reschedule",
        poke_interval=SENSOR_POKE_S,
        timeout=SENSOR_TIMEOUT_S,
        retries=0,
    )
    def wait_for_logs(params=None, ds=None) -> PokeReturnValue:
        """Wait until the day's partition `{logs}/dt={ds}` holds at least one data file; a run
        without a logical date, or of a day not over yet, fails at once (`night_to_mine`)."""
        ds = night_to_mine(ds, datetime.now(timezone.utc))
        partition = f"{params['logs']}/dt={ds}"
        return PokeReturnValue(is_done=partition_ready(params["logs"], ds), xcom_value=partition)

    stages = build_stages(
        DAG_ID,
        {
            "--logs": "{{ params.logs }}",
            "--out": "{{ params.out_root }}/runs/{{ ds }}",
            "--start-date": "{{ macros.ds_add(ds, 1 - params.lookback_days) }}",
            "--end-date": "{{ ds }}",
            "--locale": "{{ params.locales | tojson }}",
            "--min-users": MIN_USERS_ARG,
            "--cache-dir": "{{ params.out_root }}/embedding_cache",
            # baseline of the quality gate's row-count check: the previous night's version
            "--set": "{% set m = previous_run_manifest(params.out_root, ds, params.locales) %}"
            "{{ 'quality.baseline=' ~ m if m else '' }}",
        },
        outlets=[TRAINING_SET],
    )
    wait_for_logs() >> stages[0]


mining_nightly()
