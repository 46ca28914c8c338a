"""Stage 1, ``detect_rephrases``: validate + quarantine → pseudonymize → sessions → friction →
scored rephrase pairs. Writes ``rejects/``, ``turns/``, ``rephrase_pairs/``."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

from mining.core import background
from mining.errors import NoInputPartitions
from mining.io import storage
from mining.privacy import pii as privacy
from mining.spark import embedding, ingest, rephrase, sessions, validate
from mining.stages.common import code_version, counts_by, stage_settings

log = logging.getLogger(__name__)


def _turn_counts(t) -> dict:
    """``turns``, ``friction_turns``, ``pii_scrubbed`` (placeholders by kind) and ``by_signal``
    (friction turns per signal) of the written ``turns/``, in two Spark jobs."""
    from pyspark.sql import functions as F

    pii = privacy.spark_placeholder_counts(F.col("utterance"))
    row = t.agg(F.count("*").alias("_turns"), F.count(F.when(F.col("is_friction"), 1)).alias("_friction"),
                *[c.alias(k) for k, c in pii.items()]).first().asDict()
    return {"turns": row.pop("_turns"), "friction_turns": row.pop("_friction"), "pii_scrubbed": row,
            "by_signal": counts_by(t.select(F.explode("friction_signals").alias("signal")), "signal")}


def _pair_counts(p) -> dict:
    """``candidates``, ``accepted_pairs``, ``by_decision`` and, per friction signal,
    ``candidates_by_signal`` / ``accepted_by_signal`` of the written ``rephrase_pairs/``
    (signals without an accepted pair absent from the latter), in two Spark jobs."""
    from pyspark.sql import functions as F

    accepted = F.count(F.when(F.col("accepted"), 1))
    by_decision = p.groupBy("decision").agg(F.count("*").alias("n"), accepted.alias("a")).orderBy("decision").collect()
    by_signal = (p.select(F.explode("friction_signals").alias("s"), "accepted").groupBy("s")
                 .agg(F.count("*").alias("n"), accepted.alias("a")).orderBy("s").collect())
    return {"candidates": sum(r["n"] for r in by_decision), "accepted_pairs": sum(r["a"] for r in by_decision),
            "by_decision": {str(r["decision"]): r["n"] for r in by_decision},
            "candidates_by_signal": {str(r["s"]): r["n"] for r in by_signal},
            "accepted_by_signal": {str(r["s"]): r["a"] for r in by_signal if r["a"]}}


def run(spark, cfg) -> dict:
    """Validate + quarantine → pseudonymize → sessions → friction → scored candidate pairs.

    :param cfg: :class:`mining.config.RunConfig` (logs, dates, locales, out and its sections).
    :return: stats ``{"validation": row counts per reason, "turns": …, "pairs": …}``, also
        written as ``_stats.json`` beside each output folder. ``pairs["background"]`` holds,
        per locale, the background of the night's own texts and the cosines derived from it
        (:func:`mining.core.background.derive_thresholds`), read by the later stages.
    :raises PrivacyError: no pseudonymization key (exit 4). ``NoInputPartitions``,
        ``RejectShareExceeded``: no input, or rejects over ``validation.max_reject_share``
        (exit 3; ``rejects/`` is written first, so the rejected rows can be inspected);
        ``NoInputPartitions`` also when ``cfg.locales`` matches no accepted turn (exit 3,
        naming the locales the logs hold; ``turns/`` is written, empty). A locale asked for
        that has no turn while others have some is a warning and ``turns_by_locale`` 0 in
        ``turns/_stats.json``: one quiet locale does not block the others' version."""
    from pyspark.sql import functions as F

    key = privacy.resolve_key()  # fail before any work when no key is configured
    logs = ingest.read_logs(spark, cfg.logs, cfg.start_date, cfg.end_date)
    partitions = logs.partitions
    # what decides this stage's outputs; every later stage checks its inputs share it
    settings = stage_settings(cfg)
    lineage = storage.lineage_id({"listing": logs.file_stats["listing"], "partitions": partitions,
                                  "locales": list(cfg.locales), "code": code_version(),
                                  "config": settings, "key": privacy.pseudonymize("lineage", key)})
    accepted, rejects, counts = validate.validate(logs.df, cfg.validation, cfg.sessions,
                                                  file_stats=logs.file_stats, key=key)
    # no rejects counted: write the empty folder without scanning the rows again
    storage.write_parquet_stage(rejects if counts["rejected"] else rejects.limit(0), cfg.out, "rejects",
                                {"partitions": partitions, "lineage": lineage, **counts}, num_files=1)
    validate.check_reject_share(counts, partitions, cfg.validation.max_reject_share)
    every = accepted
    if cfg.locales:
        accepted = accepted.where(F.col("locale").isin(list(cfg.locales)))
    turn_stats = storage.write_parquet_stage(
        sessions.prepare_turns(accepted, cfg.friction, cfg.rephrase, key), cfg.out, "turns",
        lambda t: {"partitions": partitions, "locales": list(cfg.locales), "lineage": lineage, **_turn_counts(t),
                   # a locale asked for: its turns (0 for one the logs lack, e.g. a misspelt one)
                   **({"turns_by_locale": {**{loc: 0 for loc in cfg.locales}, **counts_by(t, "locale")}}
                      if cfg.locales else {})})
    missing = sorted(loc for loc, n in turn_stats.get("turns_by_locale", {}).items() if not n)
    if missing and len(missing) < len(cfg.locales):   # mined for the others: one quiet locale blocks none
        log.warning("no accepted turn of locale(s) %s in partitions %s..%s (misspelt, or not logged): "
                    "this run mines the others", ", ".join(missing), partitions[0], partitions[-1])
    if cfg.locales and not turn_stats["turns"]:   # e.g. --locale en-us where the logs say en-US
        found = sorted(r["locale"] for r in every.select("locale").distinct().limit(50).collect())
        raise NoInputPartitions(f"no accepted turn of locale(s) {', '.join(cfg.locales)} in partitions "
                                f"{partitions[0]}..{partitions[-1]}; the logs hold {', '.join(found) or 'none'}")
    turns = spark.read.parquet(str(Path(cfg.out) / "turns"))
    candidates = rephrase.candidate_pairs(turns, cfg.rephrase).cache()
    # every distinct text of the night is embedded here (the cache makes embed_utterances
    # a lookup): the intent centroids need the successful turns', the features the pairs'
    with embedding.embedded(spark, turns, cfg.embedding, uuid.uuid4().hex[:12], out=cfg.out) as (emb, emb_stats):
        emb = emb.cache()
        centroids = rephrase.intent_centroids(turns, emb)
        # the night's own similarity scale per locale: z features here, cosines for later stages
        backgrounds = rephrase.locale_backgrounds(emb, cfg.embedding, seed=cfg.cluster.seed)
        derived = {loc: background.derive_thresholds(bg, cluster_rel=cfg.cluster.min_sim_rel,
                                                     variant_rel=cfg.aggregation.variant_min_sim_rel,
                                                     cluster_default=cfg.cluster.min_sim,
                                                     variant_default=cfg.aggregation.variant_min_sim)
                   for loc, bg in backgrounds.items()}
        pairs = rephrase.to_contract(rephrase.score_pairs(candidates, emb, cfg.rephrase, centroids, backgrounds))
        stats = storage.write_parquet_stage(
            pairs, cfg.out, "rephrase_pairs",
            lambda p: {"lineage": lineage, **_pair_counts(p),
                       "model": cfg.rephrase.fitted.version, "threshold": cfg.rephrase.threshold,
                       "threshold_by_locale": dict(sorted(cfg.rephrase.threshold_by_locale.items())),
                       "background": derived,
                       "embedding": emb_stats})
        candidates.unpersist()
        emb.unpersist()
    return {"validation": counts, "turns": turn_stats, "pairs": stats}
