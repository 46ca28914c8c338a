"""Rephrase pairs: a friction turn, then a reformulation of the same goal that succeeds.

Candidates: for every friction turn (:mod:`mining.core.friction`), the next
1..``rephrase.max_turn_distance`` turns of the same session, in the same locale, that start
within ``rephrase.max_gap_s`` seconds (a bilingual user's turn in another locale is no
reformulation whose interpretation the failed words could inherit). Turns are ordered by (ts, turn_id), so out-of-order and
same-timestamp turns give the same candidates on every run. Features per candidate
(:data:`mining.core.rephrase_model.FEATURES`): character n-gram similarity, token edit
similarity, embedding cosine, length ratio, time gap, turn distance, interpretation change,
whether the target succeeded, both NLU confidences, the friction signals that fired, and
how well the source words fit the target's interpretation (:func:`text_pair_features`:
cosine to the centroid of that intent's successful requests in the same logs). The model
reads the embedding features relative to the locale's background of random-pair cosines in the same run (:func:`locale_backgrounds`, :mod:`mining.core.background`),
so one fitted scorer and one threshold serve every locale and both encoders.

Score: the fitted logistic model of :mod:`mining.core.rephrase_model`. A source's accepted pair
is its best-scoring candidate whose target succeeded, whose text differs (a verbatim repeat
is friction evidence, counted, never a label source), and whose score ≥ the threshold.
Every candidate is kept in the output with its ``decision``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mining.core import text
from mining.spark.sessions import SESSION_KEYS, session_window

TURN_FIELDS = ["turn_id", "ts", "utterance", "text_norm", "nlu_intent", "nlu_slots", "nlu_confidence", "succeeded"]
DECISIONS = ("accepted", "verbatim_repeat", "target_failed", "below_threshold", "not_best_candidate")


def candidate_pairs(turns, rephrase):
    """DataFrame of (source friction turn, later turn of the same locale) candidates; one row
    per pair with ``source_*``/``target_*`` columns, ``locale``, ``turn_distance`` (1 = next
    turn of the session, whatever its locale) and ``gap_s``.

    :param turns: turns of :func:`mining.spark.sessions.prepare_turns`
    :param rephrase: the ``[rephrase]`` section (:class:`mining.config.RephraseConfig`):
        ``max_turn_distance`` and ``max_gap_s`` bound the candidates"""
    from pyspark.sql import functions as F

    w = session_window()
    n = rephrase.max_turn_distance
    nxt = F.array(*[F.lead(F.struct(*TURN_FIELDS, "locale"), k).over(w) for k in range(1, n + 1)])
    src = turns.select(*SESSION_KEYS, "locale", "friction_signals", "is_friction",
                       *[F.col(c).alias(f"source_{c}") for c in TURN_FIELDS], nxt.alias("_next"))
    pairs = (src.where("is_friction")
             .select("*", F.posexplode("_next").alias("_pos", "_t"))
             .where(F.col("_t").isNotNull() & (F.col("_t.locale") == F.col("locale"))))
    pairs = pairs.select(*SESSION_KEYS, "locale", "friction_signals",
                         *[f"source_{c}" for c in TURN_FIELDS],
                         *[F.col(f"_t.{c}").alias(f"target_{c}") for c in TURN_FIELDS],
                         (F.col("_pos") + 1).cast("int").alias("turn_distance"))
    gap = F.col("target_ts").cast("double") - F.col("source_ts").cast("double")
    return pairs.withColumn("gap_s", gap).where(F.col("gap_s") <= rephrase.max_gap_s)


def lexical_features(source: pd.Series, target: pd.Series, n: int = 3) -> pd.DataFrame:
    """``char_sim`` and ``token_sim`` (float64 in [0, 1]) of aligned normalized texts."""
    return pd.DataFrame({
        "char_sim": text.char_sims(source.tolist(), target.tolist(), n),
        "token_sim": [text.token_sim(a, b) for a, b in zip(source, target)],
    }, index=source.index, dtype=np.float64)



def intent_centroids(turns, embeddings) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per locale: (intents, float32 (n_intents, dim) L2-normalized centroids) of the
    embeddings of successful turns by their NLU intent, each text weighted by its turns.

    A nearest-centroid ("Rocchio") model of what each intent's successful requests look
    like in this night's logs, built without any gold. Computed per (locale, intent) group
    in Spark; only the centroids (locales × intents × dim) reach the driver."""
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


def _fill_intent_fit(locale_centroids, rows, ok, vecs, intents, fit, margin, rank) -> None:
    """How well the source words fit the target's interpretation, for one locale's ``rows``,
    written into the float64 arrays ``fit``, ``margin`` and ``rank``:

    - ``intent_fit``: cosine of the source embedding and the target intent's centroid, -1..1;
    - ``intent_fit_margin``: intent_fit − the best cosine to any other intent of the locale
      (> 0: the source looks most like the target intent), -2..2;
    - ``intent_fit_log_rank``: ln(1 + number of intents closer to the source than the
      target intent), 0..ln(1 + n_intents).

    ``locale_centroids``: the locale's (intents, centroids) of :func:`intent_centroids`, or
    None; ``ok``: the rows that have a source vector, ``vecs`` their (len(ok), dim) float32
    vectors; ``intents``: every row's target intent. A target intent without a centroid (or a
    source without an embedding) keeps the uninformative worst case the caller filled in
    (fit 0, margin −1) with rank = all intents of the locale."""
    names, mat = locale_centroids or ([], None)
    rank[rows] = np.log1p(len(names))
    if mat is None or not len(ok):
        return
    index = {name: k for k, name in enumerate(names)}
    k = np.array([index.get(x, -1) for x in intents[ok]], dtype=np.int64)
    known = k >= 0
    ok, k, vecs = ok[known], k[known], vecs[known]
    if not len(ok):
        return
    sims = _intent_sims(vecs, mat)
    r = np.arange(len(ok))
    own = sims[r, k]
    fit[ok] = own
    if sims.shape[1] == 1:
        margin[ok] = 1.0
        rank[ok] = 0.0
        return
    sims[r, k] = -np.inf
    margin[ok] = own - sims.max(axis=1)
    rank[ok] = np.log1p((sims > own[:, None]).sum(axis=1))


def _intent_sims(vecs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, n_intents) float32 cosines of source vectors (n, dim) and L2-normalized centroids.

    One float64 matrix product, rounded to float32: a float32 product's last bits depend on
    the BLAS kernel the batch's shape selects, a float64 product rounded to float32 does
    (but for a value on a rounding boundary) not, so a candidate's features do not depend
    on the rows Spark batched it with."""
    return (vecs.astype(np.float64) @ centroids.astype(np.float64).T).astype(np.float32)


PAIR_KEYS = ("locale", "source_text_norm", "target_text_norm", "target_nlu_intent")
#: Up to this many distinct text pairs, :func:`score_pairs` broadcasts their features to
#: the candidates instead of shuffling both sides: the candidates then stay partitioned by
#: session from :func:`candidate_pairs`, and the ranking window over a source turn's
#: candidates needs no shuffle either. A row is 4 short strings and 6 doubles, so about
#: 150 MB at the cap, well inside the driver's 4g (:mod:`mining.spark.session`).
MAX_BROADCAST_TEXT_PAIRS = 1_000_000
TEXT_PAIR_FEATURES = ("embedding_cos", "char_sim", "token_sim", "intent_fit", "intent_fit_margin",
                      "intent_fit_log_rank")


def _vectors(column, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``rows`` of an Arrow list<float> column as (mask, vectors): ``mask`` (len(rows),
    bool) marks the non-null ones, ``vectors`` their (mask.sum(), dim) float32 matrix, read
    from the column's flat values without a Python object per row. Raises ``ValueError``
    when the non-null lists differ in length."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.take(pa.array(rows, type=pa.int64()))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    mask = arr.is_valid().to_numpy(zero_copy_only=False)
    n = int(mask.sum())
    if not n:
        return mask, np.zeros((0, 0), dtype=np.float32)
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)[mask]
    if (lengths != lengths[0]).any():
        raise ValueError(f"embeddings of one locale differ in length: {sorted(set(lengths.tolist()))}")
    return mask, arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, -1)


def text_pair_features(batch, char_ngram: int, centroids):
    """One Arrow record batch of distinct :data:`PAIR_KEYS` rows with ``_se`` / ``_te``
    (source / target embedding, list<float>, null when missing) → a batch of the keys and
    :data:`TEXT_PAIR_FEATURES` (float64), the features that depend only on the texts and
    the target intent. The vectors are read per locale (locales may use encoders of other
    dimensions) as matrices: ``embedding_cos`` is each row's float64 dot product
    (0.0 where either vector is missing), the intent fit (:func:`_fill_intent_fit`) one
    matrix product per locale."""
    import pyarrow as pa

    n = batch.num_rows
    locales = np.asarray(batch.column("locale").to_pylist(), dtype=object)
    intents = np.asarray(batch.column("target_nlu_intent").to_pylist(), dtype=object)
    cos, fit, margin, rank = np.zeros(n), np.zeros(n), np.full(n, -1.0), np.zeros(n)
    for loc in pd.unique(locales):
        rows = np.flatnonzero(locales == loc)
        has_s, src = _vectors(batch.column("_se"), rows)
        has_t, tgt = _vectors(batch.column("_te"), rows)
        both = has_s & has_t
        if both.any():   # each row summed on its own in float64: its value never depends on the batch
            cos[rows[both]] = np.einsum("ij,ij->i", src[both[has_s]].astype(np.float64),
                                        tgt[both[has_t]].astype(np.float64))
        _fill_intent_fit(centroids.get(loc), rows, rows[has_s], src, intents, fit, margin, rank)
    lex = lexical_features(pd.Series(batch.column("source_text_norm").to_pylist(), dtype=object),
                           pd.Series(batch.column("target_text_norm").to_pylist(), dtype=object), char_ngram)
    values = {"embedding_cos": cos, "char_sim": lex["char_sim"].to_numpy(), "token_sim": lex["token_sim"].to_numpy(),
              "intent_fit": fit, "intent_fit_margin": margin, "intent_fit_log_rank": rank}
    return pa.RecordBatch.from_arrays([batch.column(k) for k in PAIR_KEYS]
                                      + [pa.array(values[f], type=pa.float64()) for f in TEXT_PAIR_FEATURES],
                                      names=[*PAIR_KEYS, *TEXT_PAIR_FEATURES])


def text_pair_features_udf(char_ngram: int, centroids):
    """mapInArrow function: :func:`text_pair_features` of each record batch (Arrow in and
    out: the 384-float vectors never become a Python object per row; 5.6M distinct text
    pairs on the 10M-turn night, ``bench/RESULTS.md``)."""
    def run(batches):
        for batch in batches:
            yield text_pair_features(batch, char_ngram, centroids)
    return run


def spark_features() -> dict:
    """{feature: Spark Column} of :data:`mining.core.rephrase_model.FEATURES`, the same values
    as :func:`mining.core.rephrase_model.model_features` computes in pandas (double; lengths in
    code points on both sides), from candidate columns that carry
    :data:`TEXT_PAIR_FEATURES` and the locale's ``background_mean``. Computed in the JVM so
    the wide candidate rows never make a round trip through Python (``bench/RESULTS.md``,
    hot spots)."""
    from pyspark.sql import functions as F

    from mining.core.rephrase_model import FEATURES, REL_CLIP

    def clip(c):
        return F.least(F.greatest(c, F.lit(-REL_CLIP)), F.lit(REL_CLIP))

    ls, lt = F.length("source_text_norm").cast("double"), F.length("target_text_norm").cast("double")
    mu = F.col("background_mean").cast("double")
    room = F.lit(1.0) - mu
    out = {f: F.col(f).cast("double") for f in (*TEXT_PAIR_FEATURES, "turn_distance")}
    out.update({
        "embedding_rel": clip((F.col("embedding_cos").cast("double") - mu) / room),
        "intent_fit_rel": clip((F.col("intent_fit").cast("double") - mu) / room),
        "intent_fit_margin_rel": clip(F.col("intent_fit_margin").cast("double") / room),
        "length_ratio": F.least(ls, lt) / F.greatest(ls, lt, F.lit(1.0)),
        "log_gap_s": F.log1p(F.greatest(F.col("gap_s").cast("double"), F.lit(0.0))),
        "interpretation_changed": F.col("interpretation_changed").cast("double"),
        "target_succeeded": F.col("target_succeeded").cast("double"),
        "source_nlu_confidence": F.coalesce(F.col("source_nlu_confidence").cast("double"), F.lit(0.0)),
        "target_nlu_confidence": F.coalesce(F.col("target_nlu_confidence").cast("double"), F.lit(0.0)),
    })
    for f in FEATURES:
        if f.startswith("signal_"):
            out[f] = F.coalesce(F.array_contains("friction_signals", f[len("signal_"):]), F.lit(False)).cast("double")
    return {f: out[f] for f in FEATURES}


def spark_score(model, features: dict):
    """Spark Column: ``model``'s score sigmoid(intercept + Σ weight·feature), the terms added
    in the model's weight order as :meth:`RephraseModel.score` does; (0, 1)."""
    from pyspark.sql import functions as F

    z = F.lit(float(model.intercept))
    for name, weight in model.weights.items():
        z = z + F.lit(float(weight)) * features[name]
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-z))


def locale_backgrounds(embeddings, ec, *, seed: int = 0) -> dict:
    """{locale: :class:`mining.core.background.Background`} of the run's own texts.

    Per locale, the first :data:`mining.core.background.MAX_TEXTS` texts in ``text_hash``
    order (pseudo-random, the same on every run) reach the driver (at most 2,000 × 384
    floats per locale), then :func:`mining.core.background.locale_backgrounds` with each
    locale's encoder (:func:`mining.spark.embedding.encoder_spec`) for the small-locale
    fallback. ``embeddings``: DataFrame[locale, text_hash, embedding], one row per text;
    ``ec``: the ``[embedding]`` section."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from mining.core import background
    from mining.spark.embedding import encoder_spec

    w = Window.partitionBy("locale").orderBy("text_hash")
    rows = (embeddings.select("locale", "text_hash", "embedding").dropDuplicates(["locale", "text_hash"])
            .withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= background.MAX_TEXTS)
            .drop("_r").toPandas())
    samples = {loc: np.stack(g.sort_values("text_hash")["embedding"].to_numpy()).astype(np.float32)
               for loc, g in rows.groupby("locale")}
    groups = {loc: encoder_spec(loc, ec).model_id for loc in samples}
    return background.locale_backgrounds(samples, groups, seed=seed)


def _by_locale(values: dict, default: float):
    """Spark Column: ``values[locale]`` (double), ``default`` for a locale not in it."""
    from pyspark.sql import functions as F

    col = F.lit(float(default))
    for locale, value in sorted(values.items()):
        col = F.when(F.col("locale") == locale, F.lit(float(value))).otherwise(col)
    return col


def score_pairs(pairs, embeddings, rephrase, centroids, backgrounds=None):
    """Add features, ``score``, ``is_repeat``, ``decision`` and ``accepted`` to candidates.

    ``embeddings``: DataFrame[locale, text_norm, embedding] covering the candidates' texts
    (vectors are looked up per locale: locales may use different encoders); ``rephrase``:
    the ``[rephrase]`` section (:class:`mining.config.RephraseConfig`: the fitted model,
    ``threshold``, ``threshold_by_locale``, ``char_ngram``); ``centroids``:
    :func:`intent_centroids`; ``backgrounds``: :func:`locale_backgrounds` (a locale without
    one: mean 0, i.e. raw cosines). Decisions: ``verbatim_repeat``, ``target_failed``,
    ``below_threshold``, ``not_best_candidate``, ``accepted``.

    The text features (:data:`TEXT_PAIR_FEATURES`) are computed once per distinct
    (locale, source text, target text, target intent), not per candidate, and joined back
    on those keys: requests repeat across users, so there are fewer of them (36,251 of
    57,210 candidates on 100k simulated HWU64 turns), and only they carry 384-float vectors
    through the shuffle (``bench/scale.py``, before/after in ``bench/RESULTS.md``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    rc = rephrase
    emb = embeddings.select("locale", "text_norm", "embedding")
    intent_key = F.coalesce(F.col("target_nlu_intent"), F.lit("\u0000"))    # null-safe join key
    text_pairs = (pairs.select(*PAIR_KEYS).distinct()
                  .join(emb.withColumnRenamed("text_norm", "source_text_norm")
                        .withColumnRenamed("embedding", "_se"), ["locale", "source_text_norm"], "left")
                  .join(emb.withColumnRenamed("text_norm", "target_text_norm")
                        .withColumnRenamed("embedding", "_te"), ["locale", "target_text_norm"], "left"))
    feat_schema = T.StructType([text_pairs.schema[k] for k in PAIR_KEYS]
                               + [T.StructField(c, T.DoubleType()) for c in TEXT_PAIR_FEATURES])
    feats = (text_pairs.mapInArrow(text_pair_features_udf(rc.char_ngram, centroids), feat_schema)
             .withColumn("_ik", intent_key).drop("target_nlu_intent")).localCheckpoint(eager=True)
    if feats.count() <= MAX_BROADCAST_TEXT_PAIRS:
        feats = F.broadcast(feats)
    changed = ~F.coalesce(F.col("source_nlu_intent") == F.col("target_nlu_intent"), F.lit(False))
    pairs = (pairs.withColumn("_ik", intent_key)
             .join(feats, ["locale", "source_text_norm", "target_text_norm", "_ik"], "left").drop("_ik")
             .withColumn("interpretation_changed", changed)
             .withColumn("is_repeat", F.col("source_text_norm") == F.col("target_text_norm")))
    bgs = backgrounds or {}
    pairs = pairs.withColumn("background_mean", _by_locale({k: b.mean for k, b in bgs.items()}, 0.0))
    feats = spark_features()
    pairs = pairs.withColumn("length_ratio", feats["length_ratio"]).withColumn("score", spark_score(rc.fitted, feats))
    threshold = _by_locale(rc.threshold_by_locale, rc.threshold)
    eligible = ~F.col("is_repeat") & F.col("target_succeeded") & (F.col("score") >= threshold)
    # ties on score → the nearer turn, then the turn id: the same pair on every run
    w = Window.partitionBy(*SESSION_KEYS, "source_turn_id").orderBy(F.desc("_eligible"), F.desc("score"), "turn_distance",
                                                     "target_turn_id")
    pairs = pairs.withColumn("_eligible", eligible).withColumn("_rank", F.row_number().over(w))
    decision = (F.when(F.col("is_repeat"), "verbatim_repeat")
                .when(~F.col("target_succeeded"), "target_failed")
                .when(F.col("score") < threshold, "below_threshold")
                .when(F.col("_rank") > 1, "not_best_candidate")
                .otherwise("accepted"))
    return (pairs.withColumn("decision", decision)
            .withColumn("accepted", F.col("decision") == "accepted")
            .drop("_eligible", "_rank"))


def to_contract(pairs):
    """Select and rename to the ``rephrase_pairs`` v1 schema, in schema order."""
    from pyspark.sql import functions as F

    from mining.io import schemas
    renames = {"target_intent": F.col("target_nlu_intent"), "target_slots": F.col("target_nlu_slots"),
               "source_nlu_confidence": F.col("source_nlu_confidence"),
               "target_nlu_confidence": F.col("target_nlu_confidence")}
    cols = []
    for field in schemas.spark_schema("rephrase_pairs", all_nullable=True):
        c = renames.get(field.name, F.col(field.name))
        cols.append(c.cast(field.dataType).alias(field.name))
    return pairs.select(*cols)
