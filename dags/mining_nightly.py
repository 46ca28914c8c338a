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
  over a few days.
- **Outputs.** `{out_root}/runs/{ds}/` (`training_set/`, `manifest.json`, …), published
  atomically by the jobs; the training set is the Asset `mining_training_set`, whose
  event extra carries the run's path. The embedding cache `{out_root}/embedding_cache`
  is shared by all nights, so each distinct text is embedded once per model.
- **Reruns and backfills** are safe: a run rewrites only its own `runs/{ds}`. Catchup
  is off; backfill with `airflow backfill create --dag-id mining_nightly --from-date …
  --to-date …`. One run at a time (the cache is shared).
- **Waiting.** `wait_for_logs` re-checks every 10 minutes (freeing its worker slot) and
  fails the run after 8 hours (`MINING_SENSOR_POKE_S`, `MINING_SENSOR_TIMEOUT_S`).
- **Spark.** Each stage is `spark-submit jobs/<stage>.py` on connection `spark_default`;
  sizing is in the tasks' `conf` (see `dags/mining_stages.py`), never in the jobs.
  The pseudonymization key comes from the worker's `MINING_PSEUDONYM_KEY`
  (or `MINING_DEMO_MODE=1` for the built-in demo key) and is never a Param.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, PokeReturnValue, dag, task

from mining_stages import DEFAULT_OUT_ROOT, build_stages, partition_ready, shared_params

DAG_ID = "mining_nightly"

#: How often (s) and how long (s) to wait for the day's log partition before failing the run;
#: short values make `airflow dags test` fail fast instead of waiting when logs are missing.
SENSOR_POKE_S = float(os.environ.get("MINING_SENSOR_POKE_S") or 600)
SENSOR_TIMEOUT_S = float(os.environ.get("MINING_SENSOR_TIMEOUT_S") or 8 * 3600)

#: The nightly training set. The URI names the folder of all runs; each asset event's
#: extra carries the run's own folder (``{out_root}/runs/{ds}``).
TRAINING_SET = Asset(name="mining_training_set", uri=f"file://{DEFAULT_OUT_ROOT}/runs", group="mining")


@dag(
    dag_id=DAG_ID,
    # The data-interval timetable makes a run's logical date (ds) the start of the day it
    # mines; a plain cron string would give the trigger day instead (Airflow 3 default).
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=20),
    tags=["mining", "spark", "nightly"],
    doc_md=__doc__,
    default_args={"owner": "mining"},
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
        """Wait until the day's partition `{logs}/dt={ds}` holds at least one data file."""
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
            "--min-users": "{{ params.min_users }}",
            "--cache-dir": "{{ params.out_root }}/embedding_cache",
        },
        outlets=[TRAINING_SET],
    )
    wait_for_logs() >> stages[0]


mining_nightly()
