"""Stage 4, ``aggregate_labels``: accepted rephrase pairs + clusters + per-text stats → weak
labels with calibrated confidence and support, per locale → ``labels/``."""
from __future__ import annotations

import pandas as pd

from mining.core import aggregation
from mining.core.background import read_derived
from mining.io import storage
from mining.stages.common import counts_by


def run(spark, cfg) -> dict:
    """Accepted pairs + clusters + per-text stats → labels with decisions (per locale).

    With ``aggregation.logs_check`` each locale's candidates are checked against its
    friction-free turns (:mod:`mining.core.confident_learning`): the embeddings of
    ``embed_utterances`` are joined to the failing texts and to at most
    ``logs_check_max_texts`` friction-free texts per locale (a seeded hash sample, so a
    locale's pandas group stays bounded at any log volume).

    :return: stats: failing texts decided, counts per decision (``labeled`` or an abstain
        reason) and per evidence, the calibration version, and ``logs_check``: per locale the
        candidates per check status (confirmed, contradicted, uninformative, unknown_intent,
        or the skip reason) and the labels it confirmed / abstained (``contradicted_by_logs``,
        ``variant_cluster_disagrees``).
    :raises FileNotFoundError: an upstream output (``turns/``, ``rephrase_pairs/``,
        ``clusters/``, with the check ``embeddings/``) is missing (exit 3)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    turns = spark.read.parquet(storage.require_stage(cfg.out, "turns", "detect_rephrases"))
    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    clusters = spark.read.parquet(storage.require_stage(cfg.out, "clusters", "cluster_variants"))
    texts = (turns.groupBy("locale", "text_norm").agg(
        F.count("*").alias("n_turns"), F.sum(F.col("is_friction").cast("long")).alias("n_friction"),
        F.countDistinct("user_pseudonym").alias("text_users"),
        F.mode("utterance", deterministic=True).alias("utterance"),
        F.mode(F.when(~F.col("is_friction"), F.col("nlu_intent")), deterministic=True).alias("accepted_intent"),
        F.mode(F.when(F.col("is_friction"), F.col("nlu_intent")), deterministic=True).alias("rejected_intent"))
        .join(clusters.select("locale", "text_norm", "cluster_id", "cluster_size", "sim_to_medoid"),
              ["locale", "text_norm"], "left"))
    ac = cfg.aggregation
    derived = read_derived(cfg.out)      # per locale: variant_min_sim from the night's own background
    if ac.logs_check:
        emb = spark.read.parquet(storage.require_stage(cfg.out, "embeddings", "embed_utterances"))
        trainable = (F.col("n_friction") == 0) & F.col("accepted_intent").isNotNull()
        rank = F.row_number().over(Window.partitionBy("locale", F.when(trainable, 1).otherwise(0))
                                   .orderBy(F.xxhash64("text_norm", F.lit(ac.logs_check_seed)), "text_norm"))
        texts = (texts.withColumn("rank", rank)
                 .join(emb.select("locale", "text_norm", "embedding"), ["locale", "text_norm"], "left")
                 .withColumn("embedding", F.when((F.col("n_friction") > 0)
                                                 | (trainable & (F.col("rank") <= ac.logs_check_max_texts)),
                                                 F.col("embedding")))
                 .drop("rank"))
    else:
        texts = texts.withColumn("embedding", F.lit(None).cast("array<float>"))
    events = pairs.where("accepted").select(
        "locale", F.col("source_text_norm").alias("text_norm"), "target_turn_id", "target_text_norm",
        "target_intent", "target_slots", "score", "user_pseudonym")
    label_schema = ("locale string, text_norm string, utterance string, intent string, "
                    "slots array<struct<name:string,value:string>>, confidence double, "
                    "support_users long, support_events long, evidence string, cluster_id string, "
                    "decision string, defect_rate double, text_users long, candidate_intent string, "
                    "candidate_evidence string, raw_score double, posterior_mean double, "
                    "vote_intent string, vote_share double, vote_events long, logs_check string, "
                    "logs_intent string")

    def aggregate(t: pd.DataFrame, e: pd.DataFrame) -> pd.DataFrame:
        if t.empty:
            return pd.DataFrame(columns=aggregation.LABEL_COLUMNS)
        locale = t["locale"].iloc[0]
        return aggregation.aggregate_locale(t, e, ac.for_locale(locale, derived.get(locale)))

    labels = texts.groupBy("locale").cogroup(events.groupBy("locale")).applyInPandas(aggregate, label_schema)
    return storage.write_parquet_stage(
        labels, cfg.out, "labels",
        lambda l: {"texts_with_friction": l.count(), "by_decision": counts_by(l, "decision"),
                   "by_evidence": counts_by(l.where("decision = 'labeled'"), "evidence"),
                   "calibration": ac.fitted_calibration.version, "logs_check": _check_stats(l)})


def _check_stats(labels) -> dict:
    """Per locale: candidates per ``logs_check`` status, and ``confirmed`` (labeled and
    confirmed), ``abstained`` (per logs decision) and ``demoted`` (always 0: the check
    abstains, it never lowers a confidence)."""
    from pyspark.sql import functions as F

    rows = (labels.where(F.col("logs_check").isNotNull()).groupBy("locale", "logs_check", "decision").count()
            .collect())
    out: dict = {}
    for r in sorted(rows, key=lambda r: (r["locale"], r["logs_check"], r["decision"])):
        loc = out.setdefault(r["locale"], {"candidates": {}, "confirmed": 0, "demoted": 0, "abstained": {}})
        loc["candidates"][r["logs_check"]] = loc["candidates"].get(r["logs_check"], 0) + r["count"]
        if r["decision"] == "labeled" and r["logs_check"] == "confirmed":
            loc["confirmed"] += r["count"]
        if r["decision"] in ("contradicted_by_logs", "variant_cluster_disagrees"):
            loc["abstained"][r["decision"]] = loc["abstained"].get(r["decision"], 0) + r["count"]
    return out
