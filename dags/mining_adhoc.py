"""
### Ad hoc utterance mining

Triggered by hand (or by the API) to mine a chosen date range, locales and thresholds,
e.g. to test a new rephrase threshold or to re-mine one locale:

`detect_rephrases` → `embed_utterances` → `cluster_variants` → `aggregate_labels` →
`export_dataset`

- **Dates.** `start_date` / `end_date` (inclusive, `YYYY-MM-DD`) select the `dt=`
  partitions under `logs`; leave one empty for an open end (both empty: every partition).
- **Outputs.** `out`, or when empty `$MINING_OUT/adhoc/<run id>`. The run shares the
  nightly embedding cache `$MINING_OUT/embedding_cache`, so re-mining costs no
  re-embedding. Ad hoc outputs are not an Asset: they trigger nothing downstream.
- **Thresholds.** `rephrase_threshold`, `variant_min_sim` and `min_confidence` override
  `rephrase.threshold`, `cluster.min_sim_rel` and `aggregation.min_confidence` of the job
  config (`--set key=value`); empty keeps the configured default.
- Same Spark stages, sizing and retries as `mining_nightly` (see `dags/mining_stages.py`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from airflow.sdk import Param, dag

from mining_stages import DEFAULT_OUT_ROOT, MIN_USERS_ARG, build_stages, shared_params

DAG_ID = "mining_adhoc"

_NULLABLE_DATE = {"type": ["null", "string"], "format": "date"}

#: Default output of a run: run ids hold ':' and '+', which Hadoop paths do not accept.
_DEFAULT_OUT = (
    "{{ params.out or (%s ~ '/adhoc/' ~ (run_id | replace(':', '') | replace('+', ''))) }}"
    % json.dumps(DEFAULT_OUT_ROOT)
)

#: Threshold Params: name → (config key, title, what the value is). Each is a nullable number
#: in [0, 1] that, when given, becomes ``--set <config key>=<value>`` (a JSON array: one flag each).
_THRESHOLDS = {
    "rephrase_threshold": ("rephrase.threshold", "Rephrase threshold", "Minimum score of a rephrase pair"),
    # the edge cosine is derived per run and locale from min_sim_rel (cluster.min_sim only
    # serves a run with under two texts), so the Param sets the relative threshold
    "variant_min_sim": ("cluster.min_sim_rel", "Variant similarity (relative to the locale)",
                        "Cluster edge threshold relative to the locale's background: cosine = "
                        "m + value * (1 - m), m = mean cosine of random same-locale pairs of the run"),
    "min_confidence": ("aggregation.min_confidence", "Minimum label confidence",
                       "Calibrated confidence below which a label abstains"),
}
_THRESHOLD_OVERRIDES = "{{ %s | select | list | tojson }}" % (
    "[" + ", ".join(f"('' if params.{p} is none else '{k}=' ~ params.{p})" for p, (k, _, _) in _THRESHOLDS.items())
    + "]"
)


def _threshold_params() -> dict[str, Param]:
    return {
        name: Param(None, type=["null", "number"], minimum=0, maximum=1, title=title,
                    description=f"{what} (0..1), passed as --set {key}=…; empty = the configured default.")
        for name, (key, title, what) in _THRESHOLDS.items()
    }

@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["mining", "spark", "adhoc"],
    doc_md=__doc__,
    default_args={"owner": "mining"},
    params={
        **shared_params(),
        "start_date": Param(
            None,
            **_NULLABLE_DATE,
            title="First day",
            description="First dt= partition mined (YYYY-MM-DD, inclusive); empty = from the first one.",
        ),
        "end_date": Param(
            None,
            **_NULLABLE_DATE,
            title="Last day",
            description="Last dt= partition mined (YYYY-MM-DD, inclusive); empty = up to the last one.",
        ),
        **_threshold_params(),
        "out": Param(
            None,
            type=["null", "string"],
            title="Output folder",
            description="Where the run writes training_set/, manifest.json, …; "
            "empty = $MINING_OUT/adhoc/<run id>. An existing run there is replaced; a run of an "
            "earlier date range than the one published there adds its version under versions/ "
            "and leaves latest on the later one.",
        ),
    },
)
def mining_adhoc():
    build_stages(
        DAG_ID,
        {
            "--logs": "{{ params.logs }}",
            "--out": _DEFAULT_OUT,
            "--start-date": "{{ params.start_date or '' }}",
            "--end-date": "{{ params.end_date or '' }}",
            "--locale": "{{ params.locales | tojson }}",
            "--min-users": MIN_USERS_ARG,
            "--cache-dir": f"{DEFAULT_OUT_ROOT}/embedding_cache",
            "--set": _THRESHOLD_OVERRIDES,
        },
    )


mining_adhoc()
