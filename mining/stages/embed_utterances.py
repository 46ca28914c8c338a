"""Stage 2, ``embed_utterances``: distinct normalized utterances per locale → ``embeddings/``
(cache: each text is encoded once per model, across runs)."""
from __future__ import annotations

import uuid

from mining.io import storage
from mining.spark import embedding
from mining.stages.common import counts_by, stage_settings_digest


def run(spark, cfg) -> dict:
    """Distinct normalized utterances per locale → embeddings (cache: each text once).

    :return: stats: texts in total, encoded now vs found in the cache, rows per locale.
    :raises FileNotFoundError: ``turns/`` of ``detect_rephrases`` is missing (exit 3)."""
    turns = spark.read.parquet(storage.require_stage(cfg.out, "turns", "detect_rephrases"))
    lineage = storage.stage_lineage(cfg.out, ["turns"])
    with embedding.embedded(spark, turns, cfg.embedding, uuid.uuid4().hex[:12], out=cfg.out) as (out, stats):
        return storage.write_parquet_stage(
            out, cfg.out, "embeddings",
            lambda e: {"lineage": lineage, "settings": stage_settings_digest(cfg), **stats, "rows": e.count(),
                       "by_locale": counts_by(e, "locale")})
