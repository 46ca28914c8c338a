"""Spark integration: each stage on a small simulated HWU64 log (real corpus, real model,
real FAISS), in pipeline order, checked against the simulator's gold."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from mining.stages import STAGE_NAMES, stage_fn
from mining.io import schemas
from mining.config import load_config

pytestmark = pytest.mark.slow


def _read(path) -> pd.DataFrame:
    return ds.dataset(str(path), format="parquet", partitioning="hive").to_table().to_pandas()


@pytest.fixture(scope="module")
def run(spark, small_sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = load_config(str(small_sim["logs"]), str(out))
    stats = {}
    for stage in STAGE_NAMES:   # each test below checks one stage's output
        stats[stage] = stage_fn(stage)(spark, cfg)
    return {"cfg": cfg, "out": out, "stats": stats, "gold": _read(small_sim["gold"] / "turns")}


def test_detect_rephrases_accounts_for_every_row_and_pseudonymizes(run, small_sim):
    v = run["stats"]["detect_rephrases"]["validation"]
    assert v["input"] == small_sim["summary"]["turns"] == v["accepted"] + v["rejected"]
    turns = _read(run["out"] / "turns")
    assert "user_id" not in turns.columns and "session_id" not in turns.columns
    assert turns["user_pseudonym"].str.fullmatch(r"[0-9a-f]{64}").all()
    # every turn the simulator made fail is flagged as friction
    g = run["gold"].merge(turns[["turn_id", "is_friction"]], on="turn_id")
    assert g.loc[g["friction"], "is_friction"].all()


def test_detect_rephrases_accepted_pairs_are_mostly_true_rephrases(run):
    pairs = _read(run["out"] / "rephrase_pairs")
    assert list(pairs.columns) == [f.name for f in schemas.arrow_schema("rephrase_pairs")]
    acc = pairs[pairs["accepted"]]
    assert len(acc) > 50
    goal = run["gold"].set_index("turn_id")["goal_id"]
    precision = (goal.reindex(acc["source_turn_id"]).to_numpy() == goal.reindex(acc["target_turn_id"]).to_numpy()).mean()
    assert precision >= 0.9
    assert not acc["is_repeat"].any() and acc["target_succeeded"].all()
    assert set(pairs["decision"]) <= {"accepted", "verbatim_repeat", "target_failed", "below_threshold",
                                      "not_best_candidate"}
    # a source has at most one accepted pair
    assert acc["source_turn_id"].is_unique


def test_embed_utterances_embeds_each_distinct_text_once(run, spark):
    emb = _read(run["out"] / "embeddings")
    turns = _read(run["out"] / "turns")
    assert len(emb) == turns[["locale", "text_norm"]].drop_duplicates().shape[0]
    vecs = np.stack(emb["embedding"].to_numpy())
    assert vecs.shape[1] == 384 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    # the pair texts were embedded by detect_rephrases: a rerun encodes nothing new
    again = stage_fn("embed_utterances")(spark, run["cfg"])
    assert again["encoded"] == 0 and again["cache_hits"] == again["distinct_texts"]


def test_cluster_variants_partition_texts_per_locale(run):
    cl = _read(run["out"] / "clusters")
    emb = _read(run["out"] / "embeddings")
    assert sorted(cl["text_norm"]) == sorted(emb["text_norm"])
    assert (cl.groupby("cluster_id")["locale"].nunique() == 1).all()
    assert (cl.groupby("cluster_id")["is_medoid"].sum() == 1).all()
    assert cl["cluster_size"].max() <= run["cfg"].cluster.max_cluster_size
    assert (cl["cluster_size"] > 1).any()


def test_cluster_variants_splits_a_large_locale_by_coarse_kmeans(run, spark, tmp_path):
    """A locale above cluster.max_task_texts is clustered per coarse k-means part: every
    text still gets exactly one cluster, clusters never span parts, and the run's stats
    name the split."""
    import shutil

    emb = _read(run["out"] / "embeddings")
    assert len(emb) > 1000      # max_task_texts below cannot go under 1000
    shutil.copytree(run["out"] / "embeddings", tmp_path / "embeddings")
    # the locale's background (derived edge cosine) is in detect_rephrases' stats: same threshold as the run
    shutil.copytree(run["out"] / "rephrase_pairs", tmp_path / "rephrase_pairs")
    cfg = load_config(str(run["cfg"].logs), str(tmp_path), overrides={"cluster": {"max_task_texts": 1000}})
    stats = stage_fn("cluster_variants")(spark, cfg)
    cells = 2 * -(-len(emb) // 1000)
    assert stats["coarse_parts"] == {"en-US": cells}
    split = _read(tmp_path / "clusters")
    whole = _read(run["out"] / "clusters")
    assert sorted(split["text_norm"]) == sorted(whole["text_norm"])
    assert (split.groupby("cluster_id")["is_medoid"].sum() == 1).all()
    # parts are clustered alone: at least as many clusters as without the split
    assert split["cluster_id"].nunique() >= whole["cluster_id"].nunique()
    assert (split["cluster_size"] > 1).any()


def test_coarse_parts_do_not_depend_on_how_the_embeddings_are_split_into_files(run, spark, tmp_path,
                                                                               monkeypatch):
    """The k-means sample of a split locale is drawn by a seeded hash of each text:
    the same embeddings in 1 or 7 files give the same clusters (DataFrame.sample drew
    per partition)."""
    import shutil

    from mining.stages import cluster_variants

    monkeypatch.setattr(cluster_variants, "COARSE_SAMPLE", 400)     # a sample, not every text
    emb = spark.read.parquet(str(run["out"] / "embeddings"))
    got = []
    for files in (1, 7):
        out = tmp_path / f"files-{files}"
        emb.repartition(files, "text_hash").write.parquet(str(out / "embeddings"))
        shutil.copytree(run["out"] / "rephrase_pairs", out / "rephrase_pairs")
        cfg = load_config(str(run["cfg"].logs), str(out), overrides={"cluster": {"max_task_texts": 1000}})
        stage_fn("cluster_variants")(spark, cfg)
        got.append(_read(out / "clusters").sort_values("text_norm")[["text_norm", "cluster_id"]]
                   .reset_index(drop=True))
    pd.testing.assert_frame_equal(got[0], got[1])


def test_aggregate_labels_decides_every_failing_text(run):
    labels = _read(run["out"] / "labels")
    turns = _read(run["out"] / "turns")
    failing = turns.loc[turns["is_friction"], "text_norm"].nunique()
    assert len(labels) == failing
    labeled = labels[labels["decision"] == "labeled"]
    assert len(labeled) > 0 and labeled["intent"].notna().all()
    assert labels.loc[labels["decision"] != "labeled", "intent"].isna().all()
    assert ((labeled["confidence"] > 0) & (labeled["confidence"] <= 1)).all()
    # the logs check (confident learning): every candidate carries a named status, counted per locale
    candidates = labels[labels["logs_check"].notna()]
    assert len(candidates) > 0 and candidates["candidate_intent"].notna().all()
    assert set(candidates["logs_check"]) <= {"confirmed", "contradicted", "uninformative", "unknown_intent",
                                             "no_embedding", "skipped_too_few_texts", "skipped_too_few_classes"}
    assert (labels.loc[labels["decision"] == "contradicted_by_logs", "logs_check"] == "contradicted").all()
    check = run["stats"]["aggregate_labels"]["logs_check"]
    assert sum(sum(loc["candidates"].values()) for loc in check.values()) == len(candidates)
    # the misread-target mixture, fitted per locale on the run's own targets (or why not)
    failure = run["stats"]["aggregate_labels"]["target_failure"]
    assert failure and set(failure) <= set(labels["locale"])
    for m in failure.values():
        assert m["targets"] >= m["informative"] >= 0 and 0 <= m["share"] <= 1
        assert m["fitted"] or m["reason"]
    # the variant cosine each locale's labels used: the one derived from the night's background
    used = run["stats"]["aggregate_labels"]["variant_min_sim_by_locale"]
    derived = run["stats"]["detect_rephrases"]["pairs"]["background"]
    assert used and all(abs(v - derived[loc]["variant_min_sim"]) < 1e-12 for loc, v in used.items())


def test_aggregate_labels_split_into_groups_gives_the_whole_locales_labels(run, spark, tmp_path, monkeypatch):
    """A locale split into several pandas groups (whole variant clusters each, the logs check
    fitted once per locale) gives the labels of one group per locale, row for row."""
    import shutil

    from mining.stages import aggregate_labels

    for name in ("turns", "rephrase_pairs", "clusters", "embeddings"):
        shutil.copytree(run["out"] / name, tmp_path / name)
    labels = _read(run["out"] / "labels")
    monkeypatch.setattr(aggregate_labels, "GROUP_TEXTS", 150)
    stats = stage_fn("aggregate_labels")(spark, load_config(str(run["cfg"].logs), str(tmp_path)))
    split = _read(tmp_path / "labels")
    assert stats["groups"]["en-US"] >= 3 and run["stats"]["aggregate_labels"]["groups"] == {"en-US": 1}
    key = ["locale", "text_norm"]
    pd.testing.assert_frame_equal(split.sort_values(key).reset_index(drop=True),
                                  labels.sort_values(key).reset_index(drop=True), check_like=True)
    assert stats["logs_check"] == run["stats"]["aggregate_labels"]["logs_check"]


def test_export_dataset_publishes_contract_rows_with_manifest(run):
    out = run["out"]
    train = _read(out / "training_set")
    assert set(train.columns) == {f.name for f in schemas.arrow_schema("training_set")}
    assert (train["support_users"] >= 1).all() and set(train["evidence"]) <= {"rephrase", "variant"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == len(train)
    assert (out / "latest").is_symlink() and (out / "training_set").resolve().parent.name == manifest["dataset_version"]
    for rel, digest in manifest["checksums"].items():
        import hashlib
        assert hashlib.sha256((out / "latest" / rel).read_bytes()).hexdigest() == digest
    assert any(rel.startswith("massive/") for rel in manifest["checksums"])
    # first version in this OUT, no baseline: every label added, the changelog checksummed
    assert manifest["changelog"] == {"previous": None, "added": len(train), "changed": 0, "retired": 0,
                                     "by_reason": {"new_evidence": len(train)} if len(train) else {}}
    assert "changelog.jsonl" in manifest["checksums"]
    # k-anonymity: every exported text was said by >= min_users distinct users
    labels = _read(out / "labels").set_index("utterance")
    assert (labels.loc[train["utterance"], "text_users"] >= run["cfg"].privacy.min_users).all()
    # the rewrite table: behind the training set's gates, agreeing with its labels
    rewrites = _read(out / "rewrites")
    assert set(rewrites.columns) == {f.name for f in schemas.arrow_schema("rewrites")}
    assert manifest["rewrites"]["rows"] == len(rewrites) > 0
    assert any(rel.startswith("rewrites/") for rel in manifest["checksums"])
    assert not rewrites.duplicated(["locale", "failed_text"]).any()
    assert (rewrites["support_users"] >= run["cfg"].privacy.min_users).all()
    label_of = train.set_index(["locale", "utterance"])
    keys = list(zip(rewrites["locale"], rewrites["failed_text"]))
    assert set(keys) <= set(label_of.index)
    assert list(label_of.loc[keys, "intent"]) == list(rewrites["intent"])
    assert list(label_of.loc[keys, "confidence"]) == list(rewrites["confidence"])


def test_spark_submit_job_reexports_the_same_bytes(run, small_sim):
    """The real spark-submit entry point; a rerun on the same inputs yields the same version."""
    before = json.loads((run["out"] / "manifest.json").read_text())
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1", "MINING_DEMO_MODE": "1"}
    submit = Path(sys.executable).with_name("spark-submit")
    job = Path(__file__).resolve().parents[2] / "jobs" / "export_dataset.py"
    proc = subprocess.run([str(submit), "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(job),
                           "--logs", str(small_sim["logs"]), "--out", str(run["out"])],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads((run["out"] / "manifest.json").read_text())
    assert after["dataset_version"] == before["dataset_version"]
    assert after["checksums"] == before["checksums"]


def test_export_quality_gate_failure_publishes_nothing(run, spark):
    """A version whose row count collapses against the published one is not published. (A
    rerun of the same night compares with what that night followed, here nothing: the
    published version is named as the baseline.)"""
    from mining.core.quality import QualityGateFailed

    out = run["out"]
    before = (os.readlink(out / "latest"), sorted(p.name for p in (out / "versions").iterdir()))
    cfg = load_config(run["cfg"].logs, str(out), overrides={
        "privacy": {"min_users": 100000},
        "quality": {"min_baseline_rows": 1, "baseline": str(out / "latest" / "manifest.json")}})
    with pytest.raises(QualityGateFailed, match=r"min_rows = 0 .*row_change = 1\.0"):
        stage_fn("export_dataset")(spark, cfg)
    assert (os.readlink(out / "latest"), sorted(p.name for p in (out / "versions").iterdir())) == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert {c["name"]: c["ok"] for c in manifest["quality"]} == {
        "schema": True, "required_values": True, "reject_share": True, "min_rows": True, "row_change": True,
        "fresh_row_change": True}
