"""Hot-spot fixes, before and after: one stage of two commits on the same logs, back to back.

    python bench/before_after.py --before e742019              # detect_rephrases, 1M turns
    python bench/before_after.py --before e742019 --turns 100000 --stage detect_rephrases

Checks out ``--before`` (default: the commit before the hot-spot fixes) into a git
worktree under ``bench/.work``, then runs ``mining <stage>`` of that tree and of this one
(``--after``, default the working tree) on ``bench/.work/scale/logs-<turns>`` (made by
``bench/scale.py``) with the same warm embedding cache, each with Spark's event log on
(``bench/spark_profile.py``), alternating before/after ``--repeats`` times. Prints, and
writes into ``bench/RESULTS.md`` between ``<!-- before-after -->`` markers, the wall times,
where each spent its time (SQL executions by call site) and whether the two first runs'
outputs hold the same rows (:func:`same_rows`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import spark_profile  # noqa: E402  (bench/spark_profile.py)

WORK = ROOT / "bench" / ".work"
MARK = "<!-- before-after -->"


def worktree(rev: str) -> Path:
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                         check=True).stdout.strip()
    path = WORK / f"rev-{sha}"
    if not (path / "mining").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), sha],
                       check=True, capture_output=True)
    return path


def run_once(tree: Path, stage: str, logs: Path, cache: Path, tag: str) -> dict:
    out = WORK / "before-after" / tag
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "MINING_DEMO_MODE": "1"}
    # the stages after detect need its outputs: copy them from the scale run
    for name in ("turns", "rephrase_pairs", "rejects", "embeddings", "clusters", "labels"):
        src = logs.parent / f"run-{logs.name.split('-')[1]}" / name
        if stage != "detect_rephrases" and src.exists():
            shutil.copytree(src, out / name)
    cmd = [sys.executable, "-c", "import mining, sys; from mining.cli import main; "
           "print(mining.__file__, file=sys.stderr); sys.exit(main())",
           stage.replace("_", "-"), "--logs", str(logs), "--out", str(out), "--cache-dir", str(cache)]
    events = WORK / "events" / tag
    shutil.rmtree(events, ignore_errors=True)
    t0 = time.perf_counter()
    # cwd = the tree: ``python -c`` puts the working folder first on sys.path, ahead of
    # PYTHONPATH and of this checkout's editable install
    logs_written = spark_profile.run(cmd, events, env, cwd=tree)
    wall = time.perf_counter() - t0
    prof = spark_profile.profile(logs_written[0])
    # a timed run that encoded texts paid for the cache the other runs then read: not comparable
    stats = {"detect_rephrases": out / "rephrase_pairs" / "_stats.json",
             "embed_utterances": out / "embeddings" / "_stats.json"}.get(stage)
    doc = json.loads(stats.read_text()) if stats is not None and stats.exists() else {}
    encoded = doc.get("embedding", doc).get("encoded", 0)
    if encoded:
        raise SystemExit(f"{tag}: {stage} encoded {encoded:,} texts: the shared cache {cache} lacked them, so "
                         f"the runs are not comparable; warm it first (python bench/scale.py --sizes N)")
    return {"wall_s": wall, "profile": prof}


def same_rows(a: Path, b: Path) -> str:
    """Whether the Parquet folders ``a`` and ``b`` hold the same rows, as multisets (any
    order, duplicates counted): ``"equal (N rows)"`` or what differs, ``DIFFER`` also when
    only one of them is a committed folder (``_SUCCESS``). Each row is compared whole, as
    its JSON record (floats to the last bit, list and struct columns included);
    ``_stats.json`` is not compared (it carries timings and run ids). Holds every row as a
    string in memory: fine at 1M turns (2 min for a run's three outputs), not at 10M."""
    from collections import Counter

    import pyarrow.parquet as pq

    missing = [name for name, d in (("before", a), ("after", b)) if not (d / "_SUCCESS").exists()]
    if missing:
        return f"DIFFER: no committed folder {' or '.join(missing)}"

    def records(path: Path) -> Counter:        # Python's float repr round-trips every bit
        table = pq.read_table(path)
        return Counter(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())

    ra, rb = records(a), records(b)
    if ra == rb:
        return f"equal ({ra.total():,} rows)"
    return (f"DIFFER: {ra.total():,} vs {rb.total():,} rows, {(ra - rb).total():,} only before, "
            f"{(rb - ra).total():,} only after")


def _check_tree(tree: Path) -> None:
    """``SystemExit`` unless a child started as in :func:`run_once` imports ``mining`` from ``tree``."""
    got = subprocess.run([sys.executable, "-c", "import mining; print(mining.__file__)"], cwd=tree, text=True,
                         capture_output=True, env={**os.environ, "PYTHONPATH": str(tree)}).stdout.strip()
    if Path(got).resolve().parent.parent != tree.resolve():
        raise SystemExit(f"a child in {tree} imports mining from {got}")


def render(res: dict) -> str:
    b, a = res["before"], res["after"]
    lines = [MARK, "## Hot spots: before and after", "",
             f"`{res['command']}`: `{res['stage']}` on the {res['turns']:,}-turn logs with the same warm "
             f"embedding cache, before = commit `{res['before_rev']}`, after = `{res['after_rev']}`, "
             f"alternating, {res['repeats']} run(s) each; process wall time (Spark start included).", "",
             "| | wall (s) | SQL executions (s) |", "|---|---|---|"]
    for name, runs in (("before", b), ("after", a)):
        lines.append(f"| {name} | " + " / ".join(f"{r['wall_s']:.1f}" for r in runs) + " | "
                     + " / ".join(f"{r['profile']['sql_s']:.1f}" for r in runs) + " |")
    best_b, best_a = min(r["wall_s"] for r in b), min(r["wall_s"] for r in a)
    lines += ["", f"Best of each: {best_b:.1f} s → {best_a:.1f} s (**{best_b / best_a:.2f}x**).", "",
              "Where the time went (first run of each; SQL executions grouped by call site: wall "
              "seconds, and the shuffle bytes their tasks wrote, steadier than the wall time but not exact "
              "(a recomputed cached DataFrame adds some); `bench/spark_profile.py`):", "",
              "| call site | before s | after s | before shuffle MB | after shuffle MB |", "|---|---|---|---|---|"]
    sites_b = {s: t for s, _, t in b[0]["profile"]["by_site"]}
    sites_a = {s: t for s, _, t in a[0]["profile"]["by_site"]}
    mb_b, mb_a = ({s: m["shuffle_write_mb"] for s, m in r[0]["profile"].get("tasks", {}).items()} for r in (b, a))
    for site in sorted(set(sites_b) | set(sites_a), key=lambda s: -max(sites_b.get(s, 0), sites_a.get(s, 0)))[:10]:
        lines.append(f"| `{site}` | {sites_b.get(site, 0):.1f} | {sites_a.get(site, 0):.1f} "
                     f"| {mb_b.get(site, 0):,.0f} | {mb_a.get(site, 0):,.0f} |")
    lines += ["", "Call sites are lines of the code of each commit, so a moved line shows as two rows."]
    if res.get("same_rows"):
        lines += ["", "Outputs of the first runs, before against after: "
                  + "; ".join(f"`{k}/` {v}" for k, v in res["same_rows"].items()) + "."]
    lines.append(MARK)
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="e742019", help="commit before the fixes (default e742019)")
    ap.add_argument("--after", default="", help="commit after (default: this working tree)")
    ap.add_argument("--stage", default="detect_rephrases")
    ap.add_argument("--turns", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    logs = WORK / "scale" / f"logs-{args.turns}"
    if not (logs / "_SUCCESS").exists():
        raise SystemExit(f"{logs} missing: run `python bench/scale.py --sizes {args.turns}` first")
    cache = WORK / "scale" / "cache"
    before = worktree(args.before)
    after = worktree(args.after) if args.after else ROOT
    rev = lambda t: subprocess.run(["git", "-C", str(t), "rev-parse", "--short", "HEAD"],  # noqa: E731
                                   capture_output=True, text=True).stdout.strip()
    res = {"command": "python bench/before_after.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "stage": args.stage, "turns": args.turns, "repeats": args.repeats, "before_rev": rev(before),
           "after_rev": rev(after) + ("" if args.after else " (working tree)"), "before": [], "after": []}
    for tree in (before, after):
        _check_tree(tree)
    for i in range(args.repeats):   # ABBA: neither tree always runs first (page cache, JIT)
        pair = (("before", before), ("after", after))
        for name, tree in (pair if i % 2 == 0 else pair[::-1]):
            res[name].append(run_once(tree, args.stage, logs, cache, f"{name}-{i}"))
            print(f"{name} {i}: {res[name][-1]['wall_s']:.1f} s", flush=True)
    from mining.stages import get

    # the stage's own Parquet outputs (not the inputs copied in, nor export's versions/)
    outs = [WORK / "before-after" / f"{name}-0" for name in ("before", "after")]
    res["same_rows"] = {name: same_rows(outs[0] / name, outs[1] / name) for name in get(args.stage).outputs
                        if any((o / name / "_SUCCESS").exists() for o in outs)}
    (WORK / "before-after.json").write_text(json.dumps(res, indent=1))
    text = render(res)
    print(text)
    if args.results.exists():
        body = args.results.read_text()
        if MARK in body:
            head, _, rest = body.partition(MARK)
            body = head + rest.partition(MARK)[2].lstrip("\n")
        args.results.write_text(body.rstrip("\n") + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
