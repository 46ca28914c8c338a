"""Stage 4, ``aggregate_labels``: accepted rephrase pairs + clusters + per-text stats → weak
labels with calibrated confidence and support, per locale → ``labels/``."""
from __future__ import annotations

import pandas as pd

from mining.core import aggregation
from mining.io import storage
from mining.stages.common import counts_by


def run(spark, cfg) -> dict:
    """Accepted pairs + clusters + per-text stats → labels with decisions (per locale).

    :return: stats: failing texts decided, counts per decision (``labeled`` or an abstain
        reason) and per evidence, the calibration version.
    :raises FileNotFoundError: an upstream output (``turns/``, ``rephrase_pairs/``,
        ``clusters/``) is missing (exit 3)."""
    from pyspark.sql import functions as F

    turns = spark.read.parquet(storage.require_stage(cfg.out, "turns", "detect_rephrases"))
    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    clusters = spark.read.parquet(storage.require_stage(cfg.out, "clusters", "cluster_variants"))
    texts = (turns.groupBy("locale", "text_norm").agg(
        F.count("*").alias("n_turns"), F.sum(F.col("is_friction").cast("long")).alias("n_friction"),
        F.countDistinct("user_pseudonym").alias("text_users"),
        F.mode("utterance", deterministic=True).alias("utterance"))
        .join(clusters.select("locale", "text_norm", "cluster_id", "cluster_size", "sim_to_medoid"),
              ["locale", "text_norm"], "left"))
    events = pairs.where("accepted").select(
        "locale", F.col("source_text_norm").alias("text_norm"), "target_intent", "target_slots",
        "score", "user_pseudonym")
    ac = cfg.aggregation
    label_schema = ("locale string, text_norm string, utterance string, intent string, "
                    "slots array<struct<name:string,value:string>>, confidence double, "
                    "support_users long, support_events long, evidence string, cluster_id string, "
                    "decision string, defect_rate double, text_users long, candidate_intent string, "
                    "candidate_evidence string, raw_score double, posterior_mean double, "
                    "vote_intent string, vote_share double, vote_events long")

    def aggregate(t: pd.DataFrame, e: pd.DataFrame) -> pd.DataFrame:
        if t.empty:
            return pd.DataFrame(columns=aggregation.LABEL_COLUMNS)
        return aggregation.aggregate_locale(t, e, ac.for_locale(t["locale"].iloc[0]))

    labels = texts.groupBy("locale").cogroup(events.groupBy("locale")).applyInPandas(aggregate, label_schema)
    return storage.write_parquet_stage(
        labels, cfg.out, "labels",
        lambda l: {"texts_with_friction": l.count(), "by_decision": counts_by(l, "decision"),
                   "by_evidence": counts_by(l.where("decision = 'labeled'"), "evidence"),
                   "calibration": ac.fitted_calibration.version})
