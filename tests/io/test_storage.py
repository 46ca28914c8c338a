"""Sweeping leftovers of killed runs under ``OUT/.staging/`` (mining.io.storage.sweep_staging).

The end-to-end check on the running stack (a stage of the nightly DAG sweeps what killed
runs left) is ``tests/e2e/test_stack.py::test_leftover_staging_folders_of_killed_runs_are_swept``.
"""
from __future__ import annotations

import os
import time

import pytest

from mining.io import storage

DAY = 24 * 3600


def _age(path, seconds):
    """Set the modification time of ``path`` and everything under it ``seconds`` into the past."""
    stamp = time.time() - seconds
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _leftover(out, name, age_s, files=("part-00000.parquet",)):
    folder = out / ".staging" / name
    for f in files:
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        (folder / f).write_bytes(b"half written")
    _age(folder, age_s)
    return folder


def test_sweep_removes_only_entries_unchanged_for_a_day(tmp_path):
    old = _leftover(tmp_path, "turns-0123456789ab", 2 * DAY, ("_temporary/0/part-00000.parquet",))
    aside = _leftover(tmp_path, "old-clusters-89abcdef", DAY + 60)
    live = _leftover(tmp_path, "version-v1-fedcba987654", 2 * DAY, ("training_set/part-00000.parquet",))
    (live / "manifest.json").write_text("{}")      # a live writer just added a file: young again
    fresh = _leftover(tmp_path, "embeddings-aaaaaaaaaaaa", 60)
    stray = tmp_path / ".staging" / ".manifest.json.tmp"
    stray.write_text("x")
    _age(stray, 3 * DAY)

    removed = storage.sweep_staging(tmp_path)

    assert removed == [".manifest.json.tmp", "old-clusters-89abcdef", "turns-0123456789ab"]
    assert not old.exists() and not aside.exists() and not stray.exists()
    assert live.is_dir() and fresh.is_dir()


def test_sweep_threshold_and_clock_are_parameters(tmp_path):
    folder = _leftover(tmp_path, "labels-000000000000", 120)
    assert storage.sweep_staging(tmp_path, older_than_s=600) == []
    assert storage.sweep_staging(tmp_path, older_than_s=600, now=time.time() + 600) == ["labels-000000000000"]
    assert not folder.exists()


def test_sweep_without_staging_folder_is_a_no_op(tmp_path):
    assert storage.sweep_staging(tmp_path / "missing") == []
    assert storage.sweep_staging(tmp_path) == []


def test_a_new_staging_path_sweeps_leftovers_beside_it(tmp_path, caplog):
    old = _leftover(tmp_path, "rephrase_pairs-0123456789ab", 2 * DAY)
    with caplog.at_level("INFO", logger=storage.log.name):
        path = storage.staging_path(tmp_path, "rephrase_pairs")
    assert not old.exists() and not path.exists() and path.parent == tmp_path / ".staging"
    assert "swept 1 leftover staging entry" in caplog.text and old.name in caplog.text


def test_a_commit_still_works_after_a_sweep(tmp_path):
    _leftover(tmp_path, "labels-0123456789ab", 2 * DAY)
    staging = storage.staging_path(tmp_path, "labels")
    staging.mkdir(parents=True)
    (staging / "part-00000.parquet").write_bytes(b"data")
    storage.commit(staging, tmp_path / "labels")
    assert (tmp_path / "labels" / "part-00000.parquet").read_bytes() == b"data"
    assert list((tmp_path / ".staging").iterdir()) == []


def test_stage_lineage_is_shared_or_refused_naming_the_stage_to_rerun(tmp_path):
    import json

    import pytest

    from mining.errors import StageOutputMismatch

    def stamp(name, lineage):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "_stats.json").write_text(json.dumps({"lineage": lineage} if lineage else {}))

    a = storage.lineage_id({"listing": "x", "partitions": ["2026-11-01"]})
    assert a == storage.lineage_id({"partitions": ["2026-11-01"], "listing": "x"}) and len(a) == 16
    assert a != storage.lineage_id({"listing": "y", "partitions": ["2026-11-01"]})
    for name in ("turns", "rephrase_pairs", "clusters"):
        stamp(name, a)
    assert storage.stage_lineage(tmp_path, ["turns", "rephrase_pairs", "clusters"]) == a
    stamp("labels", None)                        # written before lineage stamps: not a mismatch
    assert storage.stage_lineage(tmp_path, ["turns", "labels"]) == a
    assert storage.stage_lineage(tmp_path, ["labels", "missing"]) is None
    stamp("turns", "0123456789abcdef")           # detect_rephrases reran on other logs
    with pytest.raises(StageOutputMismatch, match="wrote rephrase_pairs/") as e:
        storage.stage_lineage(tmp_path, ["turns", "rephrase_pairs", "clusters"])
    assert isinstance(e.value, FileNotFoundError)   # exit 3, as a missing stage output


def test_a_failed_stage_write_leaves_no_staging_copy(spark, tmp_path):
    # Airflow retries after minutes; a staging copy left per failed try would pile up (the
    # sweep removes only day-old ones) and fill the disk the failure may have come from
    import pytest

    df = spark.createDataFrame([(1,), (2,)], "x int")

    def stats(written):
        assert written.count() == 2
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        storage.write_parquet_stage(df, tmp_path, "turns", stats)
    assert not (tmp_path / "turns").exists()
    assert not [p for p in (tmp_path / ".staging").iterdir()]
    assert storage.write_parquet_stage(df, tmp_path, "turns", {"rows": 2}) == {"rows": 2}
    assert (tmp_path / "turns" / "_SUCCESS").exists()


def test_a_commit_interrupted_between_its_two_renames_puts_the_old_output_back(tmp_path, monkeypatch):
    """Without renameat2 (NFS, non-Linux) commit renames the old output aside, then the new one
    in: an interruption in between must not leave the stage missing (the caller's cleanup
    then deletes the staging copy, so the new data would be gone as well)."""
    final, staging = tmp_path / "labels", tmp_path / ".staging" / "labels-1"
    final.mkdir()
    (final / "old.parquet").write_text("old")
    staging.mkdir(parents=True)
    (staging / "new.parquet").write_text("new")
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        storage.commit(staging, final, durable=False)
    monkeypatch.setattr(os, "replace", real)
    assert sorted(p.name for p in final.iterdir()) == ["old.parquet"]
    assert (staging / "new.parquet").exists()
