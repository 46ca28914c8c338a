"""Rephrase pairs: a friction turn, then a reformulation of the same goal that succeeds.

Candidates: for every friction turn (:mod:`mining.friction`), the next
1..``rephrase.max_turn_distance`` turns of the same session that start within
``rephrase.max_gap_s`` seconds. Turns are ordered by (ts, turn_id), so out-of-order and
same-timestamp turns give the same candidates on every run. Features per candidate
(:data:`mining.rephrase_model.FEATURES`): character n-gram similarity, token edit
similarity, embedding cosine, length ratio, time gap, turn distance, interpretation change,
whether the target succeeded, both NLU confidences and the friction signals that fired.

Score: the fitted logistic model of :mod:`mining.rephrase_model`. A source's accepted pair
is its best-scoring candidate whose target succeeded, whose text differs (a verbatim repeat
is friction evidence, counted, never a label source), and whose score ≥ the threshold.
Every candidate is kept in the output with its ``decision``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mining import text
from mining.sessions import SESSION_KEYS, session_window

TURN_FIELDS = ["turn_id", "ts", "utterance", "text_norm", "nlu_intent", "nlu_slots", "nlu_confidence", "succeeded"]
DECISIONS = ("accepted", "verbatim_repeat", "target_failed", "below_threshold", "not_best_candidate")


def candidate_pairs(turns, cfg):
    """DataFrame of (source friction turn, later turn) candidates; one row per pair with
    ``source_*``/``target_*`` columns, ``turn_distance`` (1 = next) and ``gap_s``."""
    from pyspark.sql import functions as F

    w = session_window()
    n = cfg.rephrase.max_turn_distance
    nxt = F.array(*[F.lead(F.struct(*TURN_FIELDS), k).over(w) for k in range(1, n + 1)])
    src = turns.select(*SESSION_KEYS, "locale", "friction_signals", "is_friction",
                       *[F.col(c).alias(f"source_{c}") for c in TURN_FIELDS], nxt.alias("_next"))
    pairs = (src.where("is_friction")
             .select("*", F.posexplode("_next").alias("_pos", "_t"))
             .where(F.col("_t").isNotNull()))
    pairs = pairs.select(*SESSION_KEYS, "locale", "friction_signals",
                         *[f"source_{c}" for c in TURN_FIELDS],
                         *[F.col(f"_t.{c}").alias(f"target_{c}") for c in TURN_FIELDS],
                         (F.col("_pos") + 1).cast("int").alias("turn_distance"))
    gap = F.col("target_ts").cast("double") - F.col("source_ts").cast("double")
    return pairs.withColumn("gap_s", gap).where(F.col("gap_s") <= cfg.rephrase.max_gap_s)


def lexical_features(source: pd.Series, target: pd.Series, n: int = 3) -> pd.DataFrame:
    """``char_sim`` and ``token_sim`` (float64 in [0, 1]) of aligned normalized texts."""
    return pd.DataFrame({
        "char_sim": [text.char_sim(a, b, n) for a, b in zip(source, target)],
        "token_sim": [text.token_sim(a, b) for a, b in zip(source, target)],
    }, index=source.index, dtype=np.float64)


SCORED_COLUMNS = ("char_sim", "token_sim", "length_ratio", "score")


def features_udf(char_ngram: int, model):
    """mapInPandas function adding :data:`SCORED_COLUMNS` to candidate batches (which
    already carry embedding_cos, interpretation_changed, gap_s and the turn columns)."""
    from mining.rephrase_model import model_features

    def run(batches):
        for pdf in batches:
            pdf = pd.concat([pdf, lexical_features(pdf["source_text_norm"], pdf["target_text_norm"],
                                                   char_ngram)], axis=1)
            feats = model_features(pdf)
            pdf["length_ratio"] = feats["length_ratio"]
            pdf["score"] = model.score(feats)
            yield pdf
    return run


def score_pairs(pairs, embeddings, cfg):
    """Add features, ``score``, ``is_repeat``, ``decision`` and ``accepted`` to candidates.

    ``embeddings``: DataFrame[text_norm, embedding]. Decisions: ``verbatim_repeat``,
    ``target_failed``, ``below_threshold``, ``not_best_candidate``, ``accepted``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from mining.embedding import cosine_expr

    rc = cfg.rephrase
    emb = embeddings.select("text_norm", "embedding")
    pairs = (pairs.join(emb.withColumnRenamed("text_norm", "source_text_norm")
                        .withColumnRenamed("embedding", "_se"), "source_text_norm", "left")
             .join(emb.withColumnRenamed("text_norm", "target_text_norm")
                   .withColumnRenamed("embedding", "_te"), "target_text_norm", "left")
             .withColumn("embedding_cos", F.coalesce(cosine_expr("_se", "_te"), F.lit(0.0)))
             .drop("_se", "_te"))
    changed = ~F.coalesce(F.col("source_nlu_intent") == F.col("target_nlu_intent"), F.lit(False))
    pairs = (pairs.withColumn("interpretation_changed", changed)
             .withColumn("is_repeat", F.col("source_text_norm") == F.col("target_text_norm")))
    out_schema = T.StructType(pairs.schema.fields + [
        T.StructField(c, T.DoubleType()) for c in SCORED_COLUMNS])
    pairs = pairs.mapInPandas(features_udf(rc.char_ngram, rc.fitted), out_schema)
    eligible = ~F.col("is_repeat") & F.col("target_succeeded") & (F.col("score") >= rc.threshold)
    w = Window.partitionBy("source_turn_id").orderBy(F.desc("_eligible"), F.desc("score"), "turn_distance")
    pairs = pairs.withColumn("_eligible", eligible).withColumn("_rank", F.row_number().over(w))
    decision = (F.when(F.col("is_repeat"), "verbatim_repeat")
                .when(~F.col("target_succeeded"), "target_failed")
                .when(F.col("score") < rc.threshold, "below_threshold")
                .when(F.col("_rank") > 1, "not_best_candidate")
                .otherwise("accepted"))
    return (pairs.withColumn("decision", decision)
            .withColumn("accepted", F.col("decision") == "accepted")
            .drop("_eligible", "_rank"))


def to_contract(pairs):
    """Select and rename to the ``rephrase_pairs`` v1 schema, in schema order."""
    from pyspark.sql import functions as F

    from mining import schemas

    renames = {"target_intent": F.col("target_nlu_intent"), "target_slots": F.col("target_nlu_slots"),
               "source_nlu_confidence": F.col("source_nlu_confidence"),
               "target_nlu_confidence": F.col("target_nlu_confidence")}
    cols = []
    for field in schemas.spark_schema("rephrase_pairs", all_nullable=True):
        c = renames.get(field.name, F.col(field.name))
        cols.append(c.cast(field.dataType).alias(field.name))
    return pairs.select(*cols)
