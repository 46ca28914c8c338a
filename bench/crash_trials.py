"""Crash trials: kill `mining run` with SIGKILL at random points, check what a reader sees,
rerun, and check the rerun is byte-identical to an uninterrupted reference run.

    python bench/crash_trials.py                      # 20 trials, 3,000 simulated turns
    python bench/crash_trials.py --trials 3 --stages export_dataset,detect_rephrases,cluster_variants

Steps (all through the real CLI, the way a user or a scheduler runs it):

1. ``mining simulate`` a small HWU64 log (two days); demo-mode pseudonymization key.
2. One uninterrupted reference run ``mining run --logs LOGS --out REF`` with a cold
   embedding cache (``REF/embedding_cache``), its stage durations taken from its output.
   Its cache is copied to a shared warm cache, and a second published version is made
   (``mining export-dataset`` with another ``export.split_seed`` on a copy of REF), the
   "previous" version of the ``previous`` scenario.
3. Each trial starts ``mining run`` in a new process group into an OUT that is
   ``fresh`` (empty), ``previous`` (holds the other published version: it must stay
   visible until the new one is complete) or ``same`` (a copy of REF: the same version is
   already published and is republished in place). Trials whose kill targets
   ``detect_rephrases`` start with a cold embedding cache, so kills land while texts are
   encoded and the cache batch is committed; the others use the warm cache (a nightly run).
   The target stages rotate over the five stages (``--stages`` fixes them); when the
   target stage's start line appears in the run's log, the script sleeps a random share
   (uniform 2..98 %) of that stage's shortest duration seen so far (the reference run's,
   lowered by each trial's logs: on a loaded machine durations vary twofold) and kills the
   whole process group
   (the CLI, the Spark JVM and its Python workers) with SIGKILL. The stage killed in is
   read from the log (the last stage started and not done); for the export, the phase too
   (``computing``: no staged version yet, ``staging``: version being written,
   ``committed``: version folder in place, not yet ``latest``, ``published``).
4. Reader's view after the kill: ``OUT/latest`` (and the stable links ``training_set``,
   ``massive``, ``manifest.json``, ``report.html``) is absent (fresh OUT only) or resolves
   to a complete version allowed for the scenario (the previous one, or one identical to
   the reference); a complete version is one whose manifest checksums verify, whose data
   files are exactly the manifest's and whose Parquet reads with the manifest's row count.
   Every folder under ``versions/`` must be complete, every stage output folder committed
   (``_SUCCESS`` + ``_stats.json``), every embedding-cache batch committed and readable.
5. The same ``mining run`` again, to the end: it must succeed, the reader's view must be
   complete, and its manifest checksums and the bytes of every data file (``training_set/``,
   ``massive/``, ``rewrites/``) must equal the reference's; the changelog against the
   previous version (:data:`HISTORY_FILES`) may differ by design. In a ``fresh`` OUT with a cold cache the
   rerun is an independent second run on the same inputs and config: determinism.

Prints a table and ``trials survived: X/N`` with the kill points per stage; exits 1 when a
trial fails. ``--json FILE`` writes every trial's record.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mining.stages import STAGE_NAMES as STAGES
from mining.stages import STAGES as REGISTRY

SCENARIOS = ("fresh", "previous", "same")
STAGE_DIRS = tuple(o for s in REGISTRY[:-1] for o in s.outputs)   # every stage output but the export's
LINKS = ("training_set", "massive", "rewrites", "manifest.json", "report.html")
STAGE_LINE = re.compile(r"mining\.stages\.runner: stage (\w+): (start|done)")
STAGE_DONE = re.compile(r"mining\.stages\.runner: stage (\w+): done in ([0-9.]+)s")
MINING = str(Path(sys.executable).with_name("mining"))
# quality settings are left out of the dataset version; the previous version of the
# `previous` scenario differs from the new one in rows, which the row-change check may flag
QUALITY = ["--set", "quality.max_row_change=1000"]


def child_env() -> dict:
    env = {**os.environ, "MINING_DEMO_MODE": "1", "HF_HUB_OFFLINE": "1", "MINING_LOG_FORMAT": "text"}
    env.setdefault("MINING_SHUFFLE_PARTITIONS", "4")   # a small log: few shuffle tasks
    env.setdefault("MINING_DRIVER_MEMORY", "1g")
    return env


def mining(*args, log: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    with open(log, "w") as fh:
        proc = subprocess.run([MINING, *map(str, args)], stdout=subprocess.PIPE, stderr=fh, text=True,
                              env=child_env(), timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise SystemExit(f"mining {' '.join(map(str, args[:1]))} failed (exit {proc.returncode}), {log}:\n{tail}")
    return proc


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_files(version_dir: Path) -> list[str]:
    """Relative paths of the data files of a version (what its manifest checksums cover),
    and of any other file under training_set/ or massive/ (a stray file is a failure)."""
    found = set()
    for sub in ("training_set", "massive"):
        root = version_dir / sub
        if root.is_dir():
            found |= {str(p.relative_to(version_dir)) for p in root.rglob("*") if p.is_file()}
    found |= {str(p.relative_to(version_dir)) for pat in ("*.parquet", "*.jsonl")
              for p in version_dir.rglob(pat) if p.is_file()}
    return sorted(found)


def verify_version(vdir: Path) -> tuple[list[str], dict | None]:
    """Problems of a version folder (empty: complete) and its manifest."""
    import pyarrow.dataset as ds

    name = vdir.name
    mpath = vdir / "manifest.json"
    if not mpath.is_file():
        return [f"{name}: no manifest.json"], None
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as e:
        return [f"{name}: manifest.json unreadable ({e})"], None
    problems = []
    if manifest.get("dataset_version") != name:
        problems.append(f"{name}: manifest names {manifest.get('dataset_version')}")
    sums = manifest.get("checksums") or {}
    if not any(k.startswith("training_set/") for k in sums):
        problems.append(f"{name}: manifest checksums name no training_set file")
    for rel, digest in sums.items():
        p = vdir / rel
        if not p.is_file():
            problems.append(f"{name}: {rel} missing")
        elif sha256(p) != digest:
            problems.append(f"{name}: {rel} checksum mismatch")
    extra = sorted(set(data_files(vdir)) - set(sums))
    if extra:
        problems.append(f"{name}: files not in the manifest: {extra[:3]}")
    if not (vdir / "report.html").is_file():
        problems.append(f"{name}: no report.html")
    if not problems:
        try:
            rows = ds.dataset(str(vdir / "training_set"), format="parquet", partitioning="hive").count_rows()
            if rows != manifest.get("rows"):
                problems.append(f"{name}: {rows} Parquet rows, manifest says {manifest.get('rows')}")
        except Exception as e:  # noqa: BLE001 - any read failure is a finding
            problems.append(f"{name}: training_set unreadable ({type(e).__name__}: {e})")
    return problems, manifest


def reader_view(out: Path, cache_dirs: list[Path]) -> tuple[str | None, list[str]]:
    """(version a reader of OUT/latest sees, or None; problems with what is visible)."""
    problems: list[str] = []
    latest = out / "latest"
    version = None
    if latest.is_symlink() or latest.exists():
        target = latest.resolve()
        if not target.is_dir():
            problems.append(f"latest -> {os.readlink(latest)} does not resolve")
        else:
            version = target.name
            problems += verify_version(target)[0]
    for name in LINKS:
        link = out / name
        if link.exists():              # resolves (a dangling link reads as absent)
            if version is None:
                problems.append(f"{name} resolves while latest does not")
            elif link.resolve() != (latest.resolve() / name):
                problems.append(f"{name} resolves to {link.resolve()}, not latest/{name}")
        elif link.is_symlink() and version is not None:
            problems.append(f"{name} dangles while latest resolves")
    versions = out / "versions"
    if versions.is_dir():
        for vdir in sorted(versions.iterdir()):
            if not vdir.name.startswith("."):
                problems += verify_version(vdir)[0]
    for stage in STAGE_DIRS:
        d = out / stage
        if d.exists() and not ((d / "_SUCCESS").is_file() and (d / "_stats.json").is_file()):
            problems.append(f"stage output {stage}/ visible but not committed")
    for cache in cache_dirs:
        for batch in sorted(cache.glob("*/batch-*")):
            if not (batch / "_SUCCESS").is_file():
                problems.append(f"cache batch {batch.parent.name}/{batch.name} without _SUCCESS")
                continue
            try:
                import pyarrow.parquet as pq
                pq.read_table(str(batch))
            except Exception as e:  # noqa: BLE001
                problems.append(f"cache batch {batch.name} unreadable ({type(e).__name__})")
    return version, problems


#: Files of a version that depend on what was published before it, not only on the inputs,
#: config and code: the changelog against the previous version (mining/io/changelog.py).
HISTORY_FILES = ("changelog.jsonl",)


def same_bytes(out: Path, ref: Path) -> tuple[bool, str]:
    """Manifest checksums and the bytes of every data file (training_set/, massive/,
    rewrites/) equal, but for :data:`HISTORY_FILES`: a scenario with a previous version has
    another changelog than the fresh reference, by design."""
    a, b = (out / "latest").resolve(), (ref / "latest").resolve()
    ma, mb = (json.loads((v / "manifest.json").read_text()) for v in (a, b))
    if ma["dataset_version"] != mb["dataset_version"]:
        return False, f"version {ma['dataset_version']} != {mb['dataset_version']}"
    sums_a, sums_b = ({k: v for k, v in m["checksums"].items() if k not in HISTORY_FILES} for m in (ma, mb))
    if sums_a != sums_b:
        return False, "manifest checksums differ"
    fa, fb = (sorted(f for f in data_files(v) if f not in HISTORY_FILES) for v in (a, b))
    if fa != fb:
        return False, f"file lists differ: {sorted(set(fa) ^ set(fb))[:3]}"
    for rel in fa:
        if (a / rel).read_bytes() != (b / rel).read_bytes():
            return False, f"{rel} bytes differ"
    return True, ""


def export_phase(out: Path, ref_version: str, scenario: str) -> str:
    staged = (out / ".staging").is_dir() and any(p.name.startswith("version-") for p in (out / ".staging").iterdir())
    if scenario != "same":
        latest = out / "latest"
        if latest.is_symlink() and os.readlink(latest).endswith(ref_version):
            return "published"
        if (out / "versions" / ref_version).is_dir():
            return "committed"
    return "staging" if staged else "computing"


def cache_phase(cache: Path) -> str:
    committed = any(cache.glob("*/batch-*"))
    staged = any(cache.glob("*/.staging/batch-*"))
    return "committed" if committed else ("encoding" if staged else "none")


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:     # the JVM and the Python workers: same group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def note_durations(log: Path, seconds: dict) -> None:
    """Lower ``seconds[stage]`` to the stage durations a run's log reports (load varies:
    the shortest duration seen keeps the kill points inside the stage)."""
    for stage, took in STAGE_DONE.findall(log.read_text(errors="replace")):
        seconds[stage] = max(1.0, min(seconds.get(stage, float("inf")), float(took)))


def killed_run(args: list[str], log: Path, target: str, share: float, ref_seconds: dict,
               timeout: float) -> dict:
    """Start `mining run ...` in its own process group, kill it ``share`` of the shortest
    duration of ``target`` seen so far after that stage's start line appears."""
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen([MINING, *args], stdout=subprocess.DEVNULL, stderr=fh, env=child_env(),
                                start_new_session=True)
    kill_at = None
    try:
        while True:
            text = log.read_text(errors="replace")
            seen = STAGE_LINE.findall(text)
            if kill_at is None and (target, "start") in seen:
                kill_at = time.monotonic() + share * ref_seconds[target]
            if kill_at is not None and time.monotonic() >= kill_at:
                break
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                break
            time.sleep(0.02)
        finished = proc.poll() is not None
    finally:
        kill_group(proc)                 # also when this script is interrupted
    seconds = time.monotonic() - t0
    seen = STAGE_LINE.findall(log.read_text(errors="replace"))
    started = [s for s, ev in seen if ev == "start"]
    done = {s for s, ev in seen if ev == "done"}
    running = [s for s in started if s not in done]
    stage = "completed" if finished and proc.returncode == 0 else (
        running[-1] if running else ("before_stages" if not started else "between_stages"))
    if finished and proc.returncode not in (0, -signal.SIGKILL):
        stage = f"failed(exit {proc.returncode})"
    return {"stage": stage, "seconds": round(seconds, 1)}


def trial_plan(n: int, seed: int, stages: list[str] | None, scenarios: list[str] | None) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    if stages:
        targets = [stages[i % len(stages)] for i in range(n)]
    else:
        targets = []
        while len(targets) < n:             # every stage once per block of five, shuffled
            block = list(STAGES)
            rng.shuffle(block)
            targets += block
        targets = targets[:n]
    scen = [(scenarios or list(SCENARIOS))[i % len(scenarios or SCENARIOS)] for i in range(n)]
    return [(t, s, rng.uniform(0.02, 0.98)) for t, s in zip(targets, scen)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="seed of the simulated log and of the kill points")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / ".work" / "crash",
                    help="scratch folder (emptied first)")
    ap.add_argument("--turns", type=int, default=3000, help="simulated turns (two days)")
    ap.add_argument("--stages", help="comma-separated kill-target stages, cycled (default: every stage, "
                                     "in seeded shuffled blocks of five)")
    ap.add_argument("--scenarios", help=f"comma-separated OUT scenarios, cycled (default: {','.join(SCENARIOS)})")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds allowed for one run")
    ap.add_argument("--json", type=Path, help="write every trial's record here")
    args = ap.parse_args(argv)
    stages = args.stages.split(",") if args.stages else None
    scenarios = args.scenarios.split(",") if args.scenarios else None
    for s in stages or []:
        if s not in STAGES:
            ap.error(f"unknown stage {s!r}; one of {', '.join(STAGES)}")
    for s in scenarios or []:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; one of {', '.join(SCENARIOS)}")

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    logs, ref, warm = work / "logs", work / "ref", work / "cache"
    t_start = time.monotonic()
    mining("simulate", "--corpus", "hwu64", "--turns", args.turns, "--days", 2, "--start-date", "2026-11-01",
           "--seed", args.seed, "--logs", logs, "--gold", work / "gold", log=work / "simulate.log")
    res = json.loads(mining("run", "--logs", logs, "--out", ref, *QUALITY, log=work / "ref.log",
                            timeout=args.timeout).stdout)
    ref_seconds = {s: max(1.0, float(res[s]["seconds"])) for s in STAGES}
    stage_seconds = dict(ref_seconds)          # shortest seen so far, per stage
    problems = reader_view(ref, [ref / "embedding_cache"])[1]
    if problems:
        raise SystemExit(f"reference run is not complete: {problems}")
    ref_manifest = json.loads((ref / "manifest.json").read_text())
    ref_version = ref_manifest["dataset_version"]
    shutil.copytree(ref / "embedding_cache", warm, symlinks=True)
    # the `previous` scenario's OUT: another published version, the reference's removed
    previous = work / "previous-template"
    shutil.copytree(ref, previous, symlinks=True)
    shutil.rmtree(previous / "embedding_cache")
    mining("export-dataset", "--logs", logs, "--out", previous, "--set", "export.split_seed=12345", *QUALITY,
           log=work / "previous.log", timeout=args.timeout)
    prev_version = json.loads((previous / "manifest.json").read_text())["dataset_version"]
    assert prev_version != ref_version
    shutil.rmtree(previous / "versions" / ref_version)
    print(f"reference {ref_version}: {ref_manifest['rows']} rows, "
          f"{sum(ref_seconds.values()):.0f} s ({', '.join(f'{s} {ref_seconds[s]:.0f}' for s in STAGES)}); "
          f"previous version {prev_version}; setup {time.monotonic() - t_start:.0f} s", flush=True)

    records = []
    header = (f"{'trial':>5}  {'scenario':<8}  {'cache':<5}  {'target':<16}  {'stage killed in':<16}  "
              f"{'phase':<14}  {'seconds':>7}  {'visible ok':<10}  {'rerun ok':<8}  {'identical':<9}")
    lines = []
    for i, (target, scenario, share) in enumerate(trial_plan(args.trials, args.seed, stages, scenarios), 1):
        out = work / f"trial-{i:02d}" / "out"
        out.parent.mkdir(parents=True)
        cold = target == "detect_rephrases"
        if scenario == "same":
            shutil.copytree(ref, out, symlinks=True)
            if cold:
                shutil.rmtree(out / "embedding_cache")
        elif scenario == "previous":
            shutil.copytree(previous, out, symlinks=True)
        allowed = {"fresh": {None, ref_version}, "previous": {prev_version, ref_version},
                   "same": {ref_version}}[scenario]
        cache_args = [] if cold or scenario == "same" else ["--cache-dir", str(warm)]
        caches = [out / "embedding_cache"] + ([] if cache_args == [] else [warm])
        run_args = ["run", "--logs", str(logs), "--out", str(out), *cache_args, *QUALITY]
        rec = {"trial": i, "scenario": scenario, "cache": "cold" if cold else "warm", "target": target,
               "share": round(share, 3)}
        rec.update(killed_run(run_args, out.parent / "killed.log", target, share, stage_seconds, args.timeout))
        rec["phase"] = (export_phase(out, ref_version, scenario) if rec["stage"] == "export_dataset" else
                        f"cache:{cache_phase(out / 'embedding_cache')}" if rec["stage"] == "detect_rephrases" and cold
                        else "")
        seen, problems = reader_view(out, caches)
        if seen not in allowed:
            problems.append(f"reader sees {seen}, allowed {sorted(map(str, allowed))}")
        if seen == ref_version and not problems:
            ok, why = same_bytes(out, ref)
            if not ok:
                problems.append(f"visible version differs from the reference: {why}")
        rec["visible_version"], rec["visible_problems"] = seen, problems
        rec["visible_ok"] = not problems
        t_rerun = time.monotonic()
        try:
            with open(out.parent / "rerun.log", "w") as fh:
                rc = subprocess.run([MINING, *run_args], stdout=subprocess.DEVNULL, stderr=fh, env=child_env(),
                                    timeout=args.timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        rec["rerun_seconds"] = round(time.monotonic() - t_rerun, 1)
        for log in (out.parent / "killed.log", out.parent / "rerun.log"):
            note_durations(log, stage_seconds)
        after, rerun_problems = reader_view(out, caches) if rc == 0 else (None, [f"rerun exit {rc}"])
        if rc == 0 and after != ref_version:
            rerun_problems.append(f"rerun publishes {after}, reference {ref_version}")
        if rc == 0 and scenario == "previous" and not (out / "versions" / prev_version / "manifest.json").is_file():
            rerun_problems.append("previous version folder gone")
        rec["rerun_ok"], rec["rerun_problems"] = not rerun_problems, rerun_problems
        identical, why = same_bytes(out, ref) if not rerun_problems else (False, "no rerun")
        rec["identical"], rec["identical_detail"] = identical, why
        rec["survived"] = rec["visible_ok"] and rec["rerun_ok"] and identical
        records.append(rec)
        line = (f"{i:>5}  {scenario:<8}  {rec['cache']:<5}  {target:<16}  {rec['stage']:<16}  {rec['phase']:<14}  "
                f"{rec['seconds']:>7.1f}  {str(rec['visible_ok']).lower():<10}  {str(rec['rerun_ok']).lower():<8}  "
                f"{str(identical).lower():<9}")
        if len(lines) == 0:
            print(header, flush=True)
        lines.append(line)
        print(line, flush=True)
        for p in problems + rerun_problems + ([why] if why and not identical else []):
            print(f"       ! {p}", flush=True)
        if rec["survived"]:
            shutil.rmtree(out.parent, ignore_errors=True)   # keep failed trials for a look

    survived = sum(r["survived"] for r in records)
    per_stage = {s: sum(r["stage"] == s for r in records) for s in STAGES}
    others = sorted({r["stage"] for r in records} - set(STAGES))
    per_stage.update({o: sum(r["stage"] == o for r in records) for o in others})
    phases = {}
    for r in records:
        if r["phase"]:
            phases[r["phase"]] = phases.get(r["phase"], 0) + 1
    independent = [r for r in records if r["scenario"] == "fresh" and r["cache"] == "cold" and r["rerun_ok"]]
    print(f"kill points per stage: {', '.join(f'{k} {v}' for k, v in per_stage.items())}")
    print(f"phases: {', '.join(f'{k} {v}' for k, v in sorted(phases.items())) or '-'}")
    print(f"determinism: {sum(r['identical'] for r in records)}/{len(records)} reruns byte-identical to the "
          f"reference ({sum(r['identical'] for r in independent)}/{len(independent)} of them independent runs: "
          f"fresh OUT, cold cache)")
    print(f"trials survived: {survived}/{len(records)}  ({time.monotonic() - t_start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"reference": ref_version, "previous": prev_version,
                                         "ref_seconds": ref_seconds, "trials": records,
                                         "survived": survived, "per_stage": per_stage}, indent=2) + "\n")
    return 0 if survived == len(records) else 1


if __name__ == "__main__":
    # SIGTERM (timeout, CI cancel) unwinds like Ctrl-C, so the killed run's group goes too
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
