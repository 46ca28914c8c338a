"""Rephrase pairs: a friction turn, then a reformulation of the same goal that succeeds.

Candidates: for every friction turn (:mod:`mining.friction`), the next
1..``rephrase.max_turn_distance`` turns of the same session that start within
``rephrase.max_gap_s`` seconds. Turns are ordered by (ts, turn_id), so out-of-order and
same-timestamp turns give the same candidates on every run. Features per candidate
(:data:`mining.rephrase_model.FEATURES`): character n-gram similarity, token edit
similarity, embedding cosine, length ratio, time gap, turn distance, interpretation change,
whether the target succeeded, both NLU confidences, the friction signals that fired, and
how well the source words fit the target's interpretation (:func:`intent_fit_features`:
cosine to the centroid of that intent's successful requests in the same logs).

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


SCORED_COLUMNS = ("char_sim", "token_sim", "length_ratio", "intent_fit", "intent_fit_margin",
                  "intent_fit_log_rank", "score")


def intent_centroids(turns, embeddings) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per locale: (intents, float32 (n_intents, dim) L2-normalized centroids) of the
    embeddings of successful turns by their NLU intent, each text weighted by its turns.

    A nearest-centroid ("Rocchio") model of what each intent's successful requests look
    like in this night's logs, built without any gold. Computed per (locale, intent) group
    in Spark; only the centroids (locales × intents × dim) reach the driver."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    counts = (turns.where("succeeded").groupBy("locale", "nlu_intent", "text_norm").count()
              .join(embeddings.select("locale", "text_norm", "embedding"), ["locale", "text_norm"]))

    def centroid(pdf: pd.DataFrame) -> pd.DataFrame:
        vec = np.stack(pdf["embedding"].to_numpy()).astype(np.float64)
        c = (vec * pdf["count"].to_numpy()[:, None]).sum(axis=0)
        c /= max(np.linalg.norm(c), 1e-12)
        return pd.DataFrame({"locale": [pdf["locale"].iloc[0]], "nlu_intent": [pdf["nlu_intent"].iloc[0]],
                             "centroid": [c.astype(np.float32)]})

    schema = T.StructType([T.StructField("locale", T.StringType()), T.StructField("nlu_intent", T.StringType()),
                           T.StructField("centroid", T.ArrayType(T.FloatType()))])
    rows = (counts.groupBy("locale", "nlu_intent").applyInPandas(centroid, schema)
            .orderBy("locale", "nlu_intent").collect())
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for locale in sorted({r["locale"] for r in rows}):
        sel = [r for r in rows if r["locale"] == locale]
        out[locale] = ([r["nlu_intent"] for r in sel], np.array([r["centroid"] for r in sel], dtype=np.float32))
    return out


def intent_fit_features(locales, source_emb, target_intents, centroids) -> pd.DataFrame:
    """How well the source words fit the target's interpretation, per candidate:

    - ``intent_fit``: cosine of the source embedding and the target intent's centroid, -1..1;
    - ``intent_fit_margin``: intent_fit − the best cosine to any other intent of the locale
      (> 0: the source looks most like the target intent), -2..2;
    - ``intent_fit_log_rank``: ln(1 + number of intents closer to the source than the
      target intent), 0..ln(1 + n_intents).

    A target intent without a centroid (or a source without an embedding) gets the
    uninformative worst case: fit 0, margin −1, rank = all intents. Inputs are aligned
    sequences; returns float64 columns on a RangeIndex."""
    n = len(target_intents)
    fit, margin, rank = np.zeros(n), np.full(n, -1.0), np.zeros(n)
    for i, (loc, emb, intent) in enumerate(zip(locales, source_emb, target_intents)):
        names, mat = centroids.get(loc, ([], None))
        rank[i] = np.log1p(len(names))
        if mat is None or emb is None or intent not in names:
            continue
        sims = mat @ np.asarray(emb, dtype=np.float32)
        k = names.index(intent)
        fit[i] = float(sims[k])
        others = np.delete(sims, k)
        margin[i] = float(sims[k] - others.max()) if len(others) else 1.0
        rank[i] = np.log1p(int((others > sims[k]).sum()))
    return pd.DataFrame({"intent_fit": fit, "intent_fit_margin": margin, "intent_fit_log_rank": rank})


def features_udf(char_ngram: int, model, centroids):
    """mapInPandas function adding :data:`SCORED_COLUMNS` to candidate batches (which
    carry embedding_cos, interpretation_changed, gap_s, the turn columns and ``_se``, the
    source embedding, dropped here)."""
    from mining.rephrase_model import model_features

    def run(batches):
        for pdf in batches:
            pdf = pdf.reset_index(drop=True)
            fit = intent_fit_features(pdf["locale"], pdf["_se"], pdf["target_nlu_intent"], centroids)
            pdf = pd.concat([pdf.drop(columns="_se"), fit,
                             lexical_features(pdf["source_text_norm"], pdf["target_text_norm"], char_ngram)],
                            axis=1)
            feats = model_features(pdf)
            pdf["length_ratio"] = feats["length_ratio"]
            pdf["score"] = model.score(feats)
            yield pdf
    return run


def score_pairs(pairs, embeddings, cfg, centroids):
    """Add features, ``score``, ``is_repeat``, ``decision`` and ``accepted`` to candidates.

    ``embeddings``: DataFrame[locale, text_norm, embedding] covering the candidates' texts
    (vectors are looked up per locale: locales may use different encoders);
    ``centroids``: :func:`intent_centroids`. Decisions: ``verbatim_repeat``,
    ``target_failed``, ``below_threshold``, ``not_best_candidate``, ``accepted``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from mining.embedding import cosine_expr

    rc = cfg.rephrase
    emb = embeddings.select("locale", "text_norm", "embedding")
    pairs = (pairs.join(emb.withColumnRenamed("text_norm", "source_text_norm")
                        .withColumnRenamed("embedding", "_se"), ["locale", "source_text_norm"], "left")
             .join(emb.withColumnRenamed("text_norm", "target_text_norm")
                   .withColumnRenamed("embedding", "_te"), ["locale", "target_text_norm"], "left")
             .withColumn("embedding_cos", F.coalesce(cosine_expr("_se", "_te"), F.lit(0.0)))
             .drop("_te"))
    changed = ~F.coalesce(F.col("source_nlu_intent") == F.col("target_nlu_intent"), F.lit(False))
    pairs = (pairs.withColumn("interpretation_changed", changed)
             .withColumn("is_repeat", F.col("source_text_norm") == F.col("target_text_norm")))
    out_schema = T.StructType([f for f in pairs.schema.fields if f.name != "_se"] + [
        T.StructField(c, T.DoubleType()) for c in SCORED_COLUMNS])
    pairs = pairs.mapInPandas(features_udf(rc.char_ngram, rc.fitted, centroids), out_schema)
    eligible = ~F.col("is_repeat") & F.col("target_succeeded") & (F.col("score") >= rc.threshold)
    # ties on score → the nearer turn, then the turn id: the same pair on every run
    w = Window.partitionBy("source_turn_id").orderBy(F.desc("_eligible"), F.desc("score"), "turn_distance",
                                                     "target_turn_id")
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
