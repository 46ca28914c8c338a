"""Rephrase-detection benchmark: pair precision/recall by case, PR curve, baselines, scale.

    python bench/rephrase.py                      # HWU64 + SLURP quality (about 5 min)
    python bench/rephrase.py --scale-turns 10000000   # + wall time / peak RSS of detect

Quality: each corpus is simulated at a fixed *evaluation* seed (not the seed the packaged
model was fitted on, :data:`mining.fit.rephrase.FIT_SEED`), ``detect_rephrases`` runs with
the committed config, and every scored candidate is labeled with its gold case. Baselines
in the same run, replayed on the same candidates: the *naive rule* (a friction turn
inherits the next non-repeat successful turn within the window) and the *hand-set* scorer
of the walking skeleton (``bench/baseline_handset.toml``).

Scale: a separate process simulates HWU64 logs and runs ``mining detect-rephrases`` on
local[2]; wall time and the peak resident memory of the whole process tree (driver JVM,
Python workers) sampled every 0.5 s with psutil.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measure import run_measured  # noqa: E402  (bench/measure.py)
from mining.eval.evaluation import candidate_cases, pair_metrics  # noqa: E402
from mining.fit.rephrase import FIT_SEED, simulate_and_detect, with_background  # noqa: E402
from mining.core.rephrase_model import best_candidates, load_model, model_features, pr_curve  # noqa: E402

EVAL_SEEDS = {"hwu64": 7, "slurp": 5}
assert FIT_SEED not in EVAL_SEEDS.values()
CURVE = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]


def replay(pairs: pd.DataFrame, gold: pd.DataFrame, n_gold: int, score, threshold: float) -> dict:
    """Precision/recall of the pipeline's decision rule with another ``score`` per candidate."""
    best = best_candidates(candidate_cases(pairs, gold).assign(score=score))
    op = pr_curve(best, n_gold, [threshold]).iloc[0]
    return {"accepted": int(op["accepted"]), "precision": float(op["precision"]), "recall": float(op["recall"])}


def quality(turns: int, work: Path) -> dict:
    from mining.config import load_config
    from mining.spark.session import get_spark

    spark = get_spark("bench-rephrase")
    cfg = load_config("-", "-")
    handset = load_model(ROOT / "bench" / "baseline_handset.toml")
    out = {"model": cfg.rephrase.fitted.version, "threshold": cfg.rephrase.threshold, "corpora": {}}
    for corpus, seed in EVAL_SEEDS.items():
        run = simulate_and_detect(spark, corpus, turns, seed, work)
        m = pair_metrics(run.pairs, run.turns, run.gold, thresholds=CURVE + [cfg.rephrase.threshold])
        feats = model_features(with_background(run.pairs, run.background))
        # naive rule: the nearest eligible candidate, whatever it says
        naive = replay(run.pairs, run.gold, m["gold_sources"], -run.pairs["turn_distance"].to_numpy(), -np.inf)
        hand = replay(run.pairs, run.gold, m["gold_sources"], handset.score(feats), handset.threshold)
        out["corpora"][corpus] = {"seed": seed, "turns": int(len(run.turns)), "detect_s": round(run.detect_s, 1),
                                  **m, "baselines": {"naive_rule": naive, "handset_v0": hand}}
    return out


def scale(turns: int, work: Path) -> dict:
    """Simulate ``turns`` HWU64 turns, run detect-rephrases in a child process; wall + peak RSS."""
    base = work / f"scale-{turns}"
    logs, gold, out = base / "logs", base / "gold", base / "run"
    mining = str(Path(sys.executable).with_name("mining"))
    t0 = time.perf_counter()
    if not (gold / "simulation.json").exists():
        subprocess.run([mining, "simulate", "--corpus", "hwu64", "--turns", str(turns), "--days", "3",
                        "--seed", "7", "--logs", str(logs), "--gold", str(gold)],
                       check=True, stdout=subprocess.DEVNULL)
    sim_s = time.perf_counter() - t0
    cmd = [mining, "detect-rephrases", "--logs", str(logs), "--out", str(out)]
    wall, peak, stdout = run_measured(cmd, {"MINING_DEMO_MODE": "1"})
    stats = json.loads(stdout)["detect_rephrases"]
    n = stats["turns"]["turns"]
    return {"turns": n, "simulate_s": round(sim_s, 1), "detect_s": round(wall, 1),
            "turns_per_s": round(n / wall), "peak_rss_gib": round(peak / 2**30, 2),
            "candidates": stats["pairs"]["candidates"], "accepted_pairs": stats["pairs"]["accepted_pairs"],
            "command": " ".join(cmd)}


def print_quality(q: dict) -> None:
    print(f"\nrephrase model {q['model']}, threshold {q['threshold']:.2f}")
    print(f"\n{'corpus':<7} {'seed':>4} {'turns':>7} {'cands':>7} {'accepted':>8} {'precision':>9} "
          f"{'recall':>7}  {'naive P/R':>11}  {'hand-set P/R':>12}  {'detect s':>8}")
    for corpus, r in q["corpora"].items():
        nv, hs = r["baselines"]["naive_rule"], r["baselines"]["handset_v0"]
        print(f"{corpus:<7} {r['seed']:>4} {r['turns']:>7} {r['candidates']:>7} {r['accepted_pairs']:>8} "
              f"{r['pair_precision']:>9.3f} {r['pair_recall']:>7.3f}  {nv['precision']:.3f}/{nv['recall']:.3f}"
              f"  {hs['precision']:>6.3f}/{hs['recall']:.3f}  {r['detect_s']:>8.1f}")
    print("\nby gold case: candidates → accepted (true_rephrase: recall of candidates; others: leaks)")
    cases = list(next(iter(q["corpora"].values()))["pairs_by_case"])
    print(f"{'case':<18}" + "".join(f"{c:>22}" for c in q["corpora"]))
    for case in cases:
        cells = []
        for r in q["corpora"].values():
            v = r["pairs_by_case"][case]
            share = v["accepted"] / v["candidates"] if v["candidates"] else 0.0
            cells.append(f"{v['candidates']:>7} → {v['accepted']:>5} ({share:5.1%})")
        print(f"{case:<18}" + "".join(f"{c:>22}" for c in cells))
    print("\nrecall by source kind (gold sources → found)")
    for corpus, r in q["corpora"].items():
        for kind, v in r["recall_by_source_kind"].items():
            print(f"  {corpus:<6} {kind:<15} {v['gold_sources']:>6} → {v['found']:>6}  recall {v['recall']:.3f}")
    print("\nprecision-recall curve (best eligible candidate per source, score ≥ t)")
    print(f"{'t':>5}" + "".join(f"{c + ' P':>10}{c + ' R':>10}" for c in q["corpora"]))
    curves = {c: {p["threshold"]: p for p in r["pr_curve"]} for c, r in q["corpora"].items()}
    for t in sorted(next(iter(curves.values()))):
        mark = " ← default" if abs(t - q["threshold"]) < 1e-9 else ""
        print(f"{t:>5.2f}" + "".join(f"{curves[c][t]['precision']:>10.3f}{curves[c][t]['recall']:>10.3f}"
                                     for c in curves) + mark)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=40_000, help="simulated turns per corpus (quality)")
    ap.add_argument("--work", default=str(ROOT / "bench" / ".work"), help="simulated logs and runs (reused)")
    ap.add_argument("--scale-turns", type=int, default=0, help="also run detect on this many turns")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--json", help="write all figures as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    result = {}
    if not args.skip_quality:
        result["quality"] = quality(args.turns, work)
        print_quality(result["quality"])
    if args.scale_turns:
        result["scale"] = s = scale(args.scale_turns, work)
        print(f"\nscale: {s['turns']:,} turns, detect_rephrases on local[2]: {s['detect_s']:.0f} s "
              f"({s['turns_per_s']:,} turns/s), peak RSS {s['peak_rss_gib']:.2f} GiB "
              f"(simulation {s['simulate_s']:.0f} s); {s['candidates']:,} candidates, "
              f"{s['accepted_pairs']:,} accepted\n  {s['command']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
