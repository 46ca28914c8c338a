"""Stage 4, ``aggregate_labels``: accepted rephrase pairs + clusters + per-text stats → weak
labels with calibrated confidence and support, per locale → ``labels/``."""
from __future__ import annotations

import pickle

import pandas as pd

from mining.core import aggregation, target_failure
from mining.core.background import read_derived
from mining.io import storage
from mining.stages.common import counts_by, stage_settings_digest

#: Texts per pandas group (a locale's texts split by a hash of the cluster, whole clusters per
#: group): bounds a Python worker's memory at any volume; ~100k texts with the failing ones'
#: 384-float vectors stay under about 1 GiB.
GROUP_TEXTS = 100_000


def run(spark, cfg) -> dict:
    """Accepted pairs + clusters + per-text stats → labels with decisions (per locale).

    With ``aggregation.logs_check`` each locale's candidates are checked against its
    friction-free turns (:mod:`mining.core.confident_learning`): the check is fitted once per
    locale on at most ``logs_check_max_texts`` friction-free texts (a seeded hash sample) with
    their ``embed_utterances`` vectors, and the failing texts get theirs.

    Labels are computed per (locale, group): a locale's texts split by a hash of their variant
    cluster (of the text when unclustered) into ⌈texts / :data:`GROUP_TEXTS`⌉ groups, so a
    group holds whole clusters and a Python worker's memory stays bounded at any volume, and
    the groups run in parallel. The labels are those of one call over the whole locale
    (:func:`mining.core.aggregation.aggregate_locale` with the locale's fitted check).

    :return: stats: failing texts decided, counts per decision (``labeled`` or an abstain
        reason) and per evidence, the calibration version, ``groups`` (per locale, the pandas
        groups its labels were computed in), ``variant_min_sim_by_locale`` (the variant
        cosine each locale's labels used: derived, or the override), and ``logs_check``: per locale the
        candidates per check status (confirmed, contradicted, uninformative, unknown_intent,
        or the skip reason) and the labels it confirmed / abstained (``contradicted_by_logs``,
        ``variant_cluster_disagrees``).
    :raises FileNotFoundError: an upstream output (``turns/``, ``rephrase_pairs/``,
        ``clusters/``, with the check ``embeddings/``) is missing (exit 3)."""
    from pyspark.sql import functions as F

    turns = spark.read.parquet(storage.require_stage(cfg.out, "turns", "detect_rephrases"))
    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    clusters = spark.read.parquet(storage.require_stage(cfg.out, "clusters", "cluster_variants"))
    ac = cfg.aggregation
    lineage = storage.stage_lineage(cfg.out, ["turns", "rephrase_pairs",     # in run order
                                              *(["embeddings"] if ac.logs_check else []), "clusters"])
    texts = (turns.groupBy("locale", "text_norm").agg(
        F.count("*").alias("n_turns"), F.sum(F.col("is_friction").cast("long")).alias("n_friction"),
        F.countDistinct("user_pseudonym").alias("text_users"),
        F.mode("utterance", deterministic=True).alias("utterance"),
        F.mode(F.when(~F.col("is_friction"), F.col("nlu_intent")), deterministic=True).alias("accepted_intent"),
        F.mode(F.when(F.col("is_friction"), F.col("nlu_intent")), deterministic=True).alias("rejected_intent"))
        .join(clusters.select("locale", "text_norm", "cluster_id", "cluster_size", "sim_to_medoid"),
              ["locale", "text_norm"], "left"))
    derived = read_derived(cfg.out)      # per locale: variant_min_sim from the night's own background
    texts = base = texts.persist()       # read by the check's fit, the group sizes and the labels
    # every event weighs by how often its target's words fail, whichever group the target falls in
    target_counts = texts.select("locale", F.col("text_norm").alias("target_text_norm"),
                                 F.col("n_turns").alias("target_n_turns"),
                                 F.col("n_friction").alias("target_n_friction"))
    classifiers: dict[str, bytes] = {}
    if ac.logs_check:
        emb = spark.read.parquet(storage.require_stage(cfg.out, "embeddings", "embed_utterances"))
        classifiers = _fit_checks(texts, emb, ac)
    # A group holds whole variant clusters: their failing texts (the labels' rows) and their
    # friction-free members (which intent the cluster accepts), plus unclustered failing texts.
    texts = texts.where((F.col("n_friction") > 0) | F.col("cluster_id").isNotNull())
    if ac.logs_check:                    # the candidates' vectors; the fit's were read above
        texts = (texts.join(emb.select("locale", "text_norm", "embedding"), ["locale", "text_norm"], "left")
                 .withColumn("embedding", F.when(F.col("n_friction") > 0, F.col("embedding"))))
    else:
        texts = texts.withColumn("embedding", F.lit(None).cast("array<float>"))
    groups = {r["locale"]: max(1, -(-r["count"] // GROUP_TEXTS))
              for r in texts.groupBy("locale").count().orderBy("locale").collect()}
    n_groups = F.create_map(*[F.lit(x) for loc, n in groups.items() for x in (loc, n)])
    texts = texts.withColumn("group", F.pmod(F.xxhash64(F.coalesce("cluster_id", "text_norm")),
                                             n_groups[F.col("locale")]).cast("int"))
    # an accepted pair's source failed, so it is one of ``texts``: the inner join keeps every event
    events = (pairs.where("accepted").select(
        "locale", F.col("source_text_norm").alias("text_norm"), "target_turn_id", "target_text_norm",
        "target_intent", "target_slots", "score", "user_pseudonym")
        .join(target_counts, ["locale", "target_text_norm"], "left")
        .join(texts.select("locale", "text_norm", F.col("group").alias("source_group")), ["locale", "text_norm"]))
    failure = _fit_target_failure(events)
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
        clf = pickle.loads(classifiers[locale]) if locale in classifiers else None
        return aggregation.aggregate_locale(t, e, ac.for_locale(locale, derived.get(locale)), classifier=clf,
                                            target_failure=failure.get(locale, target_failure.TargetFailureModel()))

    labels = (texts.groupBy("locale", "group").cogroup(events.groupBy("locale", "source_group"))
              .applyInPandas(aggregate, label_schema))
    try:
        return storage.write_parquet_stage(
            labels, cfg.out, "labels",
            lambda l: {"lineage": lineage, "settings": stage_settings_digest(cfg), "texts_with_friction": l.count(),
                       "by_decision": counts_by(l, "decision"),
                       "by_evidence": counts_by(l.where("decision = 'labeled'"), "evidence"),
                       "calibration": ac.fitted_calibration.version, "logs_check": _check_stats(l),
                       "target_failure": {loc: m.to_dict() for loc, m in sorted(failure.items())},
                       "groups": groups,
                       # the variant cosine each locale's labels used (derived, or the override)
                       "variant_min_sim_by_locale": {loc: ac.for_locale(loc, derived.get(loc)).variant_min_sim
                                                     for loc in sorted(groups)},
                       # what `mining audit sample` must respect (the export gates on them, mining/fit/audit.py)
                       "privacy": {"min_users": cfg.privacy.min_users, "dp": bool(cfg.privacy.dp.enabled)}})
    finally:
        base.unpersist()


def _fit_target_failure(events) -> dict:
    """{locale: :class:`mining.core.target_failure.TargetFailureModel`} fitted on the locale's
    distinct target texts of accepted events, collected as (turns, friction turns) counts: a
    few hundred rows per locale whatever the volume."""
    from pyspark.sql import functions as F

    rows = (events.where(F.col("target_n_turns").isNotNull())
            .select("locale", "target_text_norm", "target_n_turns", "target_n_friction").distinct()
            .groupBy("locale", F.col("target_n_turns").alias("n_turns"), F.col("target_n_friction").alias("n_friction"))
            .count().orderBy("locale", "n_turns", "n_friction").toPandas())
    return {loc: target_failure.fit_from_texts(g) for loc, g in rows.groupby("locale", sort=True)}


def _fit_checks(texts, emb, ac) -> dict[str, bytes]:
    """Per locale, the logs check (:func:`mining.core.confident_learning.fit_locale`), pickled:
    fitted once per locale, in Spark, on at most ``logs_check_max_texts`` friction-free texts
    (a seeded hash sample), so no group ever holds a locale's vectors. Every locale of
    ``texts`` gets one (a locale with no friction-free text: a skipped check)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from mining.core import confident_learning

    kw = dict(max_texts=ac.logs_check_max_texts, min_texts=ac.logs_check_min_texts,
              folds=ac.logs_check_folds, seed=ac.logs_check_seed)
    rank = F.row_number().over(Window.partitionBy("locale")
                               .orderBy(F.xxhash64("text_norm", F.lit(ac.logs_check_seed)), "text_norm"))
    train = (texts.where((F.col("n_friction") == 0) & F.col("accepted_intent").isNotNull())
             .withColumn("rank", rank).where(F.col("rank") <= ac.logs_check_max_texts)
             .join(emb.select("locale", "text_norm", "embedding"), ["locale", "text_norm"])
             .select("locale", "text_norm", "n_friction", "accepted_intent", "embedding"))

    def fit(t: pd.DataFrame) -> pd.DataFrame:
        clf = confident_learning.fit_locale(t, **kw)
        return pd.DataFrame({"locale": [t["locale"].iloc[0]], "classifier": [pickle.dumps(clf)]})

    fitted = {r["locale"]: bytes(r["classifier"]) for r in
              train.groupBy("locale").applyInPandas(fit, "locale string, classifier binary").collect()}
    empty = pd.DataFrame(columns=["text_norm", "n_friction", "accepted_intent", "embedding"])
    for r in texts.select("locale").distinct().collect():
        if r["locale"] not in fitted:
            fitted[r["locale"]] = pickle.dumps(confident_learning.fit_locale(empty, **kw))
    return fitted


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
