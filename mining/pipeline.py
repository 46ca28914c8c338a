"""The five stages, each ``stage(spark, cfg) -> stats``, and :func:`run_all`.

Stage → output folder (the job module, the Airflow task_id and the folder share a stem
where the contract allows): ``detect_rephrases`` → ``turns/``, ``rejects/``,
``rephrase_pairs/``; ``embed_utterances`` → ``embeddings/``; ``cluster_variants`` →
``clusters/``; ``aggregate_labels`` → ``labels/``; ``export_dataset`` →
``versions/<v>/`` + ``latest`` (see :mod:`mining.export`).
"""
from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from mining import (aggregation, clustering, dp, embedding, export, index, ingest, privacy, quality,
                    rephrase, schemas, sessions, storage)
from mining.text import text_hash

log = logging.getLogger(__name__)
STAGES = ("detect_rephrases", "embed_utterances", "cluster_variants", "aggregate_labels", "export_dataset")


def _counts(df, col: str) -> dict:
    return {str(r[col]): r["count"] for r in df.groupBy(col).count().orderBy(col).collect()}


def detect_rephrases(spark, cfg) -> dict:
    """Validate + quarantine → pseudonymize → sessions → friction → scored candidate pairs."""
    from pyspark.sql import functions as F

    key = privacy.resolve_key()  # fail before any work when no key is configured
    raw, partitions = ingest.read_logs(spark, cfg.logs, cfg.start_date, cfg.end_date)
    accepted, rejects, counts = ingest.validate(raw, cfg, key=key)
    storage.write_parquet_stage(rejects, cfg.out, "rejects", {"partitions": partitions, **counts}, num_files=1)
    ingest.check_reject_share(counts, partitions, cfg.validation.max_reject_share)
    if cfg.locales:
        accepted = accepted.where(F.col("locale").isin(list(cfg.locales)))
    turn_stats = storage.write_parquet_stage(
        sessions.prepare_turns(accepted, cfg, key), cfg.out, "turns",
        lambda t: {"partitions": partitions, "locales": list(cfg.locales), "turns": t.count(),
                   "friction_turns": t.where("is_friction").count(),
                   "pii_scrubbed": t.agg(*[c.alias(k) for k, c in
                                           privacy.spark_placeholder_counts(F.col("utterance")).items()]
                                         ).first().asDict(),
                   "by_signal": _counts(t.select(F.explode("friction_signals").alias("signal")), "signal")})
    turns = spark.read.parquet(str(Path(cfg.out) / "turns"))
    candidates = rephrase.candidate_pairs(turns, cfg).cache()
    # every distinct text of the night is embedded here (the cache makes embed_utterances
    # a lookup): the intent centroids need the successful turns', the features the pairs'
    emb, emb_stats = embedding.ensure_embeddings(spark, turns, cfg, uuid.uuid4().hex[:12])
    emb = emb.cache()
    centroids = rephrase.intent_centroids(turns, emb)
    pairs = rephrase.to_contract(rephrase.score_pairs(candidates, emb, cfg, centroids))
    stats = storage.write_parquet_stage(
        pairs, cfg.out, "rephrase_pairs",
        lambda p: {"candidates": p.count(), "accepted_pairs": p.where("accepted").count(),
                   "by_decision": _counts(p, "decision"),
                   "candidates_by_signal": _counts(p.select(F.explode("friction_signals").alias("s")), "s"),
                   "accepted_by_signal": _counts(p.where("accepted")
                                                 .select(F.explode("friction_signals").alias("s")), "s"),
                   "model": cfg.rephrase.fitted.version, "threshold": cfg.rephrase.threshold,
                   "threshold_by_locale": dict(sorted(cfg.rephrase.threshold_by_locale.items())),
                   "embedding": emb_stats})
    candidates.unpersist()
    emb.unpersist()
    return {"validation": counts, "turns": turn_stats, "pairs": stats}


def embed_utterances(spark, cfg) -> dict:
    """Distinct normalized utterances per locale → embeddings (cache: each text once)."""
    turns = spark.read.parquet(storage.require_stage(cfg.out, "turns", "detect_rephrases"))
    out, stats = embedding.ensure_embeddings(spark, turns, cfg, uuid.uuid4().hex[:12])
    return storage.write_parquet_stage(
        out, cfg.out, "embeddings",
        lambda e: {**stats, "rows": e.count(), "by_locale": _counts(e, "locale")})


def _cluster_fn(cc, device: str):
    """applyInPandas function: one (locale, coarse part)'s embeddings → its clusters rows."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("text_norm", kind="stable").reset_index(drop=True)
        emb = np.stack(pdf["embedding"].to_numpy()).astype(np.float32)
        lc = cc.for_locale(pdf["locale"].iloc[0])
        graph = index.neighbour_graph(emb, lc.k, lc.min_sim, max_degree=cc.max_cluster_size,
                                      exact_max_n=cc.exact_max_n, nprobe=cc.ivf_nprobe, device=device, seed=cc.seed)
        labels = clustering.clusters_from_graph(graph, cc.max_cluster_size)
        med = clustering.medoids(emb, labels)
        med_of = med[labels]
        locale = pdf["locale"].iloc[0]
        medoid_text = pdf["text_norm"].to_numpy()[med_of]
        return pd.DataFrame({
            "locale": locale,
            "cluster_id": [f"{locale}:{text_hash(t)[:12]}" for t in medoid_text],
            "text_norm": pdf["text_norm"], "is_medoid": med_of == np.arange(len(pdf)),
            "cluster_size": np.bincount(labels)[labels].astype(np.int64),
            "medoid_text": medoid_text,
            "sim_to_medoid": np.einsum("ij,ij->i", emb, emb[med_of]).astype(np.float64)})
    return run


def _coarse_parts(emb, sizes: dict, cc):
    """``emb`` + column ``part``: 0 for locales of at most ``max_task_texts`` texts; for
    larger ones the nearest of :func:`mining.index.coarse_cells` k-means centroids trained
    on a seeded sample of at most 100k of the locale's vectors (the sample reaches the
    driver, the locale does not)."""
    from pyspark.sql import functions as F

    centroids = {}
    for loc, n in sorted(sizes.items()):
        cells = index.coarse_cells(n, cc.max_task_texts)
        if cells == 1:
            continue
        sample = (emb.where(F.col("locale") == loc).sample(fraction=min(1.0, 100_000 / n), seed=cc.seed)
                  .select("text_hash", "embedding").toPandas().sort_values("text_hash"))
        centroids[loc] = index.coarse_centroids(np.stack(sample["embedding"].to_numpy()), cells, cc.seed)
        log.info("locale %s: %d texts split into %d coarse k-means parts", loc, n, cells)
    if not centroids:
        return emb.withColumn("part", F.lit(0).cast("int")), {}

    def assign(batches):
        for pdf in batches:
            part = np.zeros(len(pdf), dtype=np.int32)
            for loc, c in centroids.items():
                sel = (pdf["locale"] == loc).to_numpy()
                if sel.any():
                    part[sel] = index.nearest_centroid(np.stack(pdf.loc[sel, "embedding"].to_numpy()), c)
            yield pdf.assign(part=part)

    from pyspark.sql import types as T

    schema = T.StructType(emb.schema.fields + [T.StructField("part", T.IntegerType())])
    return emb.mapInPandas(assign, schema), {k: len(v) for k, v in centroids.items()}


def cluster_variants(spark, cfg) -> dict:
    """Per locale, in parallel Spark tasks: FAISS kNN graph → star communities (the
    communities of sentence-transformers' community_detection, on the sparse graph) →
    clusters with medoids. A locale larger than ``cluster.max_task_texts`` is
    split by coarse k-means, one task per part."""
    from pyspark.sql import functions as F

    cc = cfg.cluster
    emb = spark.read.parquet(storage.require_stage(cfg.out, "embeddings", "embed_utterances"))
    sizes = {r["locale"]: r["count"] for r in emb.groupBy("locale").count().collect()}
    parted, parts = _coarse_parts(emb.select("locale", "text_norm", "text_hash", "embedding"), sizes, cc)
    clusters = parted.groupBy("locale", "part").applyInPandas(
        _cluster_fn(cc, "cpu" if cfg.embedding.device == "cpu" else "auto"), schemas.spark_schema("clusters"))
    return storage.write_parquet_stage(
        clusters, cfg.out, "clusters",
        lambda c: {"texts": c.count(), "clusters": c.where("is_medoid").count(),
                   "multi_member_clusters": c.where("is_medoid AND cluster_size > 1").count(),
                   "largest_cluster": c.agg(F.max("cluster_size")).first()[0],
                   "coarse_parts": parts,
                   "cluster_size_histogram": _counts(
                       c.where("is_medoid").withColumn(
                           "size", F.when(F.col("cluster_size") >= 100, "100+")
                           .when(F.col("cluster_size") >= 10, "10-99")
                           .when(F.col("cluster_size") >= 2, "2-9").otherwise("1")), "size")})


def aggregate_labels(spark, cfg) -> dict:
    """Accepted pairs + clusters + per-text stats → labels with decisions (per locale)."""
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
                    "candidate_evidence string, raw_score double, posterior_mean double")

    def run(t: pd.DataFrame, e: pd.DataFrame) -> pd.DataFrame:
        if t.empty:
            return pd.DataFrame(columns=aggregation.LABEL_COLUMNS)
        return aggregation.aggregate_locale(t, e, ac.for_locale(t["locale"].iloc[0]))

    labels = texts.groupBy("locale").cogroup(events.groupBy("locale")).applyInPandas(run, label_schema)
    return storage.write_parquet_stage(
        labels, cfg.out, "labels",
        lambda l: {"texts_with_friction": l.count(), "by_decision": _counts(l, "decision"),
                   "by_evidence": _counts(l.where("decision = 'labeled'"), "evidence"),
                   "calibration": ac.fitted_calibration.version})


def code_version() -> str:
    from mining import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _dp_select(spark, cfg, labeled, fingerprint: str):
    """``privacy.dp``: bounded distinct users per failing source text of ``rephrase_pairs``
    → noisy threshold (:mod:`mining.dp`). Returns (``labeled`` + column ``dp_users``, null
    where the text was not selected; the manifest's ``dp`` entry)."""
    from pyspark.sql import functions as F

    dc = cfg.privacy.dp
    cal = dp.calibrate(float(dc.epsilon), float(dc.delta), dc.max_texts_per_user)
    key = dp.noise_key(privacy.resolve_key(), fingerprint) if dc.noise == "keyed" else None
    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    counts = dp.spark_text_counts(pairs, dc.max_texts_per_user, dc.seed)
    # materialized once: with noise = "opendp" a recomputation would draw other noise
    released = counts.mapInPandas(dp.release_fn(cal, key), dp.RELEASE_SCHEMA).localCheckpoint()
    tally = released.agg(F.count("*").alias("considered"), F.count("dp_users").alias("selected")).first()
    log.info("dp: %d of %d failing texts selected (epsilon=%s, delta=%s, threshold=%d)",
             tally["selected"], tally["considered"], dc.epsilon, dc.delta, cal.threshold)
    out = labeled.join(released.select("locale", "text_norm", "dp_users"), ["locale", "text_norm"], "left")
    return out, dp.manifest_record(dc, cal, texts_considered=tally["considered"], texts_selected=tally["selected"])


def export_dataset(spark, cfg) -> dict:
    """Privacy gates + slot projection → versioned training set, manifest, atomic publish."""
    from pyspark.sql import functions as F

    labels = spark.read.parquet(storage.require_stage(cfg.out, "labels", "aggregate_labels"))
    upstream = {s: storage.read_stats(cfg.out, s) for s in
                ("rejects", "turns", "rephrase_pairs", "embeddings", "clusters", "labels")}
    partitions = upstream["turns"].get("partitions", [])
    # the quality gate's settings (incl. its baseline path) decide whether a version is
    # published, never its bytes: left out, so a rerun's version does not depend on them
    settings = {k: v for k, v in json.loads(cfg.to_json()).items() if k != "quality"}
    # where the embedding cache lives is storage, not a setting: same vectors wherever it is
    settings.get("embedding", {}).pop("cache_dir", None)
    if not cfg.privacy.dp.enabled:  # then no dp setting changes a byte: versions stay as before dp
        settings.get("privacy", {}).pop("dp", None)
    fingerprint = json.dumps({"config": settings, "partitions": partitions,
                              "locales": list(cfg.locales), "code": code_version()}, sort_keys=True)
    version = export.dataset_version(max(partitions) if partitions else "00000000", fingerprint)
    min_users, dp_on = cfg.privacy.min_users, cfg.privacy.dp.enabled
    labeled, dp_record = labels.where("decision = 'labeled'"), dp.manifest_record(cfg.privacy.dp)
    if dp_on:
        labeled, dp_record = _dp_select(spark, cfg, labeled, fingerprint)

    def run(batches):
        for pdf in batches:
            yield export.finalize_labels(pdf, min_users, version, dp=dp_on)

    final = labeled.mapInPandas(run, export.final_schema()).cache()
    drops = _counts(final.where("drop_reason IS NOT NULL"), "drop_reason")
    kept = final.where("drop_reason IS NULL")
    tally = kept.agg(*[F.sum(c).alias(c) for c in final.columns
                       if c.startswith(("pii_", "dropped_"))]).first().asDict()
    cols = [f.name for f in schemas.spark_schema("training_set")]
    out = Path(cfg.out)
    table = kept.select(*cols).orderBy("locale", "intent", "utterance").toArrow()
    # the data-quality gate runs before anything is written (mining/quality.py)
    checks = quality.check_export(table, upstream["rejects"], quality.baseline_manifest(out, cfg.quality.baseline),
                                  cfg.quality, cfg.validation.max_reject_share)
    staging = storage.staging_path(out, f"version-{version}")
    export.write_training_set(table, staging / "training_set")
    massive = export.write_massive_jsonl(table, staging / "massive", cfg.export.dev_share, cfg.export.split_seed)
    grouped = table.group_by(["locale", "intent"]).aggregate([([], "count_all")]).to_pylist()
    by_locale_intent = dict(sorted((f"{r['locale']}/{r['intent']}", r["count_all"]) for r in grouped))
    manifest = {
        "dataset_version": version, "code_version": code_version(), "input_partitions": partitions,
        "logs": cfg.logs, "locales": list(cfg.locales), "config": cfg.sections,
        "rows": sum(by_locale_intent.values()), "rows_by_locale_intent": by_locale_intent,
        "drops": {**{k: v for k, v in upstream["labels"].get("by_decision", {}).items() if k != "labeled"},
                  **drops},
        "pii_scrubbed": {k[4:]: int(v or 0) for k, v in tally.items() if k.startswith("pii_")},
        "slots_dropped": {k[8:]: int(v or 0) for k, v in tally.items() if k.startswith("dropped_")},
        "massive_jsonl": massive, "models": {"rephrase": cfg.rephrase.fitted.version,
                                             "calibration": cfg.aggregation.fitted_calibration.version},
        "stages": upstream, "quality": checks, "checksums": export.checksums(staging),
        "dp": {**dp_record, **({"labels_released": sum(by_locale_intent.values()),
                                "labels_not_selected": drops.get("dp_not_selected", 0)} if dp_on else {})},
    }
    final.unpersist()
    storage.write_json(staging / "manifest.json", manifest)
    from mining import report

    report.write_report(out, staging / "report.html", version_dir=staging)
    version_dir = out / "versions" / version
    storage.commit(staging, version_dir)
    export.publish(out, version_dir)
    return {"dataset_version": version, "rows": manifest["rows"], "drops": manifest["drops"]}


def run_all(spark, cfg, stages=STAGES, *, progress: bool | None = None) -> dict:
    """Run ``stages`` in order on one Spark session; returns {stage: stats}, each with
    ``seconds`` and the process's ``run_id`` (:mod:`mining.logs`).

    Logs one line at each stage's start and end; ``progress`` (default: stderr is a
    terminal) also shows a bar over the stages (:func:`mining.logs.stage_progress`)."""
    from mining.logs import current_run_id, stage_progress

    results = {}
    with stage_progress(len(stages), progress) as bar:
        for name in stages:
            t0 = time.perf_counter()
            bar.start(name)
            log.info("stage %s: start", name)
            results[name] = globals()[name](spark, cfg)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            results[name]["run_id"] = current_run_id()
            log.info("stage %s: done in %.1fs", name, results[name]["seconds"])
            bar.done()
    return results
