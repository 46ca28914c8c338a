"""Stage 3, ``cluster_variants``: per locale, FAISS kNN graph → variant clusters with
medoids → ``clusters/``."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mining.core import background, clustering, index
from mining.io import schemas, storage
from mining.stages.common import counts_by, stage_settings_digest

log = logging.getLogger(__name__)


def _cluster_fn(cc, device: str, derived: dict | None = None):
    """applyInPandas function: one (locale, coarse part)'s embeddings → its ``clusters`` rows
    (:func:`mining.core.clustering.cluster_frame` with the locale's edge threshold:
    :meth:`mining.config.ClusterConfig.for_locale` of its ``derived`` entry)."""
    derived = derived or {}

    def cluster(pdf: pd.DataFrame) -> pd.DataFrame:
        locale = pdf["locale"].iloc[0]
        lc = cc.for_locale(locale, derived.get(locale))
        return clustering.cluster_frame(pdf, k=lc.k, min_sim=lc.min_sim, max_cluster_size=cc.max_cluster_size,
                                        exact_max_n=cc.exact_max_n, nprobe=cc.ivf_nprobe, device=device,
                                        seed=cc.seed)
    return cluster


#: Vectors the coarse k-means of a split locale is trained on, about (a seeded hash sample).
COARSE_SAMPLE = 100_000


def _coarse_parts(emb, sizes: dict, cc):
    """``emb`` + column ``part``: 0 for locales of at most ``max_task_texts`` texts; for
    larger ones the nearest of :func:`mining.core.index.coarse_cells` k-means centroids trained
    on a seeded sample of about 100k of the locale's vectors (the sample reaches the
    driver, the locale does not). The sample is drawn by a seeded hash of each text, not by
    ``DataFrame.sample``, whose draw depends on how the rows are split into partitions
    (file sizes, cores, ``maxPartitionBytes``): the same texts give the same parts anywhere."""
    from pyspark.sql import functions as F

    centroids = {}
    for loc, n in sorted(sizes.items()):
        cells = index.coarse_cells(n, cc.max_task_texts)
        if cells == 1:
            continue
        keep = int(min(1.0, COARSE_SAMPLE / n) * 1_000_000)
        sample = (emb.where((F.col("locale") == loc)
                            & (F.pmod(F.xxhash64("text_hash", F.lit(cc.seed)), F.lit(1_000_000)) < keep))
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


def run(spark, cfg) -> dict:
    """Per locale, in parallel Spark tasks: FAISS kNN graph → star communities (the
    communities of sentence-transformers' community_detection, on the sparse graph) →
    clusters with medoids. A locale larger than ``cluster.max_task_texts`` is
    split by coarse k-means, one task per part.

    The edge cosine of each locale is the one ``detect_rephrases`` derived from the
    locale's background (:func:`mining.core.background.read_derived`), unless
    ``cluster.min_sim_by_locale`` overrides it.

    :return: stats: texts, clusters, multi-member clusters, the largest cluster's size, coarse
        parts per split locale, the edge cosine used per locale, a histogram of cluster sizes.
    :raises FileNotFoundError: ``embeddings/`` of ``embed_utterances`` or ``rephrase_pairs/``
        of ``detect_rephrases`` (whose stats hold the derived edge cosines) is missing (exit 3):
        without it every locale would fall back to ``cluster.min_sim`` unnoticed."""
    from pyspark.sql import functions as F

    cc = cfg.cluster
    emb = spark.read.parquet(storage.require_stage(cfg.out, "embeddings", "embed_utterances"))
    storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases")
    # the night's background comes from rephrase_pairs' stats: both from one detect_rephrases run
    lineage = storage.stage_lineage(cfg.out, ["rephrase_pairs", "embeddings"])
    sizes = {r["locale"]: r["count"] for r in emb.groupBy("locale").count().collect()}
    parted, parts = _coarse_parts(emb.select("locale", "text_norm", "text_hash", "embedding"), sizes, cc)
    derived = background.read_derived(cfg.out)
    min_sim = {loc: cc.for_locale(loc, derived.get(loc)).min_sim for loc in sorted(sizes)}
    log.info("cluster edge cosine per locale: %s", min_sim)
    clusters = parted.groupBy("locale", "part").applyInPandas(
        _cluster_fn(cc, "cpu" if cfg.embedding.device == "cpu" else "auto", derived),
        schemas.spark_schema("clusters"))
    return storage.write_parquet_stage(
        clusters, cfg.out, "clusters",
        lambda c: {"lineage": lineage, "settings": stage_settings_digest(cfg), "texts": c.count(),
                   "clusters": c.where("is_medoid").count(),
                   "multi_member_clusters": c.where("is_medoid AND cluster_size > 1").count(),
                   "largest_cluster": c.agg(F.max("cluster_size")).first()[0],
                   "coarse_parts": parts, "min_sim_by_locale": min_sim,
                   "cluster_size_histogram": counts_by(
                       c.where("is_medoid").withColumn(
                           "size", F.when(F.col("cluster_size") >= 100, "100+")
                           .when(F.col("cluster_size") >= 10, "10-99")
                           .when(F.col("cluster_size") >= 2, "2-9").otherwise("1")), "size")})
