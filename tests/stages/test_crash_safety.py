"""Crash safety of the atomic publish, two ways.

- Fast (no Spark): the export's commit + publish (``mining.io.storage.commit`` of a staged
  version, then ``mining.io.export.publish``) is interrupted before each of its file-system
  steps in turn (rename, exchange, symlink, delete: a SIGKILL lands between two of them), on
  a fresh OUT, on one holding another published version and on one holding the same
  version; after every interruption a reader sees no version (fresh OUT only), the previous
  one or the complete new one, and a rerun publishes the new one.
- Slow (``bench/crash_trials.py --trials 3``): the real ``mining run`` killed with SIGKILL
  in export, in detect_rephrases while a cold embedding cache fills (a fresh OUT: the rerun
  is an independent second run, so this is also the determinism check: same inputs and
  config give byte-identical training set and MASSIVE JSONL, manifest checksums equal) and
  in cluster_variants over an OUT whose version is already published.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mining.io import export

from mining.io import storage
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "crash_trials.py"


def _trials_module():
    spec = importlib.util.spec_from_file_location("crash_trials", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Crash(BaseException):
    """The process dies here (BaseException: no `except Exception` cleanup runs)."""


def _stage_version(out: Path, version: str, tag: str) -> Path:
    staging = storage.staging_path(out, f"version-{version}")
    ts = staging / "training_set" / "locale=en-US"
    ts.mkdir(parents=True)
    pq.write_table(pa.table({"utterance": [f"{tag} one", f"{tag} two"], "intent": ["a", "b"]}),
                   ts / "part-00000.parquet")
    (staging / "massive").mkdir()
    (staging / "massive" / "en-US.jsonl").write_text(json.dumps({"utt": tag}) + "\n")
    rw = staging / "rewrites" / "locale=en-US"
    rw.mkdir(parents=True)
    pq.write_table(pa.table({"failed_text": [f"{tag} one"], "rewrite_text": [f"{tag} two"]}),
                   rw / "part-00000.parquet")
    manifest = {"dataset_version": version, "rows": 2, "tag": tag, "checksums": export.checksums(staging)}
    storage.write_json(staging / "manifest.json", manifest)
    storage.write_text(staging / "report.html", f"<p>{tag}</p>\n")
    return staging


def _publish(out: Path, version: str, tag: str) -> None:
    """What the export_dataset stage does once the version's files are written."""
    staging = _stage_version(out, version, tag)
    storage.commit(staging, out / "versions" / version)
    export.publish(out, out / "versions" / version)


def _steps(monkeypatch, crash_at: int | None) -> list[str]:
    """Count the file-system steps of a publish; raise Crash before step ``crash_at``."""
    calls: list[str] = []

    def wrap(owner, name):
        real = getattr(owner, name)

        def step(*a, **k):
            if crash_at is not None and len(calls) == crash_at:
                raise Crash(f"before {name} #{crash_at}")
            calls.append(name)
            return real(*a, **k)
        monkeypatch.setattr(owner, name, step)

    for owner, name in ((os, "replace"), (os, "rename"), (os, "symlink"), (os, "unlink"),
                        (storage, "_exchange"), (shutil, "rmtree")):
        if hasattr(owner, name):
            wrap(owner, name)
    return calls


@pytest.mark.parametrize("scenario", ["fresh", "previous", "same"])
def test_publish_interrupted_at_every_step_leaves_a_complete_version(tmp_path, monkeypatch, scenario):
    trials = _trials_module()
    new = "v20261102-new"

    def setup(out: Path):
        if scenario == "previous":
            _publish(out, "v20261101-old", "old")
        elif scenario == "same":
            _publish(out, new, "first")

    # how many steps a publish takes here
    probe = tmp_path / "probe"
    setup(probe)
    with monkeypatch.context() as m:
        calls = _steps(m, None)
        _publish(probe, new, "second")
    assert len(calls) >= 2, calls
    allowed = {"fresh": {None, new}, "previous": {"v20261101-old", new}, "same": {new}}[scenario]
    for k in range(len(calls) + 1):
        out = tmp_path / f"crash-{k}"
        setup(out)
        with monkeypatch.context() as m:
            _steps(m, k)
            try:
                _publish(out, new, "second")
                crashed = False
            except Crash:
                crashed = True
        assert crashed == (k < len(calls))
        seen, problems = trials.reader_view(out, [])
        assert problems == [], (k, calls[k] if k < len(calls) else "end", problems)
        assert seen in allowed, (k, seen)
        _publish(out, new, "second")                   # the rerun
        seen, problems = trials.reader_view(out, [])
        assert (seen, problems) == (new, [])
        assert json.loads((out / "manifest.json").read_text())["tag"] == "second"
        if scenario == "previous":
            assert (out / "versions" / "v20261101-old" / "manifest.json").is_file()


def test_commit_over_an_existing_folder_never_leaves_the_name_missing(tmp_path, monkeypatch):
    """Replacing a committed folder swaps it in one step (renameat2 RENAME_EXCHANGE on
    Linux): there is no moment where the name is missing."""
    final = tmp_path / "versions" / "v1"
    _publish(tmp_path, "v1", "first")
    staging = _stage_version(tmp_path, "v1", "second")
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir(), b.mkdir(), (a / "x").touch()
    if not storage._exchange(a, b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: commit renames the old folder aside")
    assert (b / "x").exists() and not (a / "x").exists()
    swaps, renames = [], []
    real_exchange = storage._exchange

    def exchange(x, y):     # the name exists right before and right after the one swap
        before = final.exists()
        done = real_exchange(x, y)
        swaps.append((before, done, final.exists()))
        return done

    monkeypatch.setattr(storage, "_exchange", exchange)
    for name in ("replace", "rename"):          # a rename of final aside would leave a gap
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda x, y, _r=real, **k: (renames.append((str(x), str(y))), _r(x, y, **k))[1])
    storage.commit(staging, final)
    assert json.loads((final / "manifest.json").read_text())["tag"] == "second"
    assert swaps == [(True, True, True)] and renames == [] and not staging.exists()


@pytest.mark.slow
def test_crash_trials_kill_in_export_detect_and_cluster_then_rerun_identically(tmp_path):
    """`bench/crash_trials.py --trials 3`: every trial survives, one kill lands in export,
    and a rerun into a fresh OUT with a cold cache is byte-identical to the reference."""
    report = tmp_path / "trials.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "3", "--turns", "1500", "--seed", "3",
         "--stages", "export_dataset,detect_rephrases,cluster_variants",
         "--scenarios", "previous,fresh,same", "--work", str(tmp_path / "work"), "--json", str(report)],
        capture_output=True, text=True, timeout=2400, cwd=ROOT, check=False)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "trials survived: 3/3" in proc.stdout
    result = json.loads(report.read_text())
    trials = result["trials"]
    assert [t["target"] for t in trials] == ["export_dataset", "detect_rephrases", "cluster_variants"]
    assert trials[0]["stage"] == "export_dataset"          # the kill landed in export
    assert all(t["visible_ok"] and t["rerun_ok"] and t["identical"] for t in trials)
    independent = trials[1]                                 # fresh OUT, cold cache: determinism
    assert (independent["scenario"], independent["cache"]) == ("fresh", "cold") and independent["identical"]
