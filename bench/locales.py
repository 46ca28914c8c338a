"""Per-locale quality and parity: one mixed multilingual log, one pipeline run, one table.

    python bench/locales.py                          # 9 locales, 360k turns, seed 13 → bench/LOCALES.md
    python bench/locales.py --turns 45000 --locales en-US,de-DE,zh-CN
    python bench/locales.py --seed 7 --fit           # per-locale override tables fitted on gold (TOML)

The per-locale tables of ``mining/defaults.toml`` ship empty since issue 19: thresholds are
derived per run from each locale's own background (:mod:`mining.core.background`). ``--fit``
prints what a table fitted on this run's gold labels would be: an override knob for a
locale with labelled development logs, and a comparison for the derived values; a run
fitted on is not evidence. The scorer and calibration were fitted on seed-101 logs of these
development locales, seed 7 is the demo's; the default seed 13 draws other users, sessions
and splits. (Seed 11 shaped the min_events rule.)
The held-out benchmark across 24 other languages and HINT3 is ``bench/leaveout.py``.

Logs: ``mining simulate --locales ... --turns N --days 3 --seed S`` (en-US from HWU64, the
others generated with hassil from home-assistant-intents; each locale its own seed split,
weak NLU and users, mixed in every partition: :mod:`mining.sim.locales`). Then
``mining run`` on local[2] with the committed config (English by all-MiniLM-L6-v2, every
other locale by the multilingual encoder), then ``mining evaluate``, whose per-locale
figures (each locale's NLU retrained on its own seed split for the lift) are printed with
the best-to-worst gaps and written to ``bench/LOCALES.md`` with the machine and commands.
Targets (issue 9): label precision ≥ 0.90 in every locale; best-to-worst gap ≤ 5 points.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.eval.evaluation import format_locale_table  # noqa: E402
from mining.sim.locales import DEFAULT_LOCALES  # noqa: E402

WORK = ROOT / "bench" / ".work" / "locales"
MINING = [sys.executable, "-m", "mining.cli"]


def _run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, "MINING_DEMO_MODE": "1", "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0, done.stdout


def fit_thresholds(out: Path, gold: Path, target: float = 0.95) -> dict[str, float]:
    """Per non-English locale: the lowest rephrase threshold of 0.82, 0.83, ..., 0.98 at
    which the pairs the pipeline would accept (eligible candidates at or above it, the best
    per source) reach pair precision ``target`` against gold (the highest when none does),
    from a run's scored candidates: a rerun of the scorer is not needed. For
    ``[rephrase.threshold_by_locale]``; fit on development logs, measured on others."""

    from mining.eval.evaluation import _read, candidate_cases

    cases = candidate_cases(_read(out / "rephrase_pairs"), _read(gold / "turns"))
    elig = cases[~cases["is_repeat"] & cases["target_succeeded"]]
    fitted = {}
    for locale, g in sorted(elig.groupby("locale")):
        if locale.startswith("en"):
            continue
        grid = [round(t, 2) for t in np.arange(0.82, 0.985, 0.01)]
        for t in grid:
            best = (g[g["score"] >= t].sort_values(["source_turn_id", "score", "turn_distance"],
                                                   ascending=[True, False, True]).drop_duplicates("source_turn_id"))
            if len(best) and best["positive"].mean() >= target:
                break
        fitted[locale] = float(t)
    return fitted


def edge_precision(out: Path, gold: Path, k: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per locale: (cosine float32 (m,), same gold intent bool (m,)) of every text's ``k``
    nearest neighbours among the run's embeddings of that locale (``mining.core.index.knn``,
    exact below 20,000 texts), texts without gold left out."""
    from mining.eval.evaluation import _read, gold_intents_for_run
    from mining.core.index import knn

    gold_intents = gold_intents_for_run(gold, out)
    emb = _read(out / "embeddings", ["locale", "text_norm", "embedding"])
    edges = {}
    for locale, g in sorted(emb.groupby("locale")):
        g = g[g["text_norm"].isin(gold_intents.keys())]
        sims, ids = knn(np.stack(g["embedding"].to_numpy()).astype(np.float32), k)
        intents = [gold_intents[t] for t in g["text_norm"]]
        ok = ids >= 0
        src = np.nonzero(ok)[0]
        edges[locale] = (sims[ok], np.array([bool(intents[a] & intents[b]) for a, b in zip(src, ids[ok])]))
    return edges


def fit_similarity_thresholds(out: Path, gold: Path, cluster_min_sim: float = 0.75,
                              variant_min_sim: float = 0.8) -> tuple[dict[str, float], dict[str, float]]:
    """Per non-English locale, ``cluster.min_sim`` and ``aggregation.variant_min_sim`` on its
    encoder's cosine scale: the lowest of 0.75, 0.76, ..., 0.99 at which its 10-NN edges
    reach the share of same-intent pairs that en-US's edges have at the global
    ``cluster_min_sim`` / ``variant_min_sim`` in the same run (0.99 when none does).

    Why: the multilingual encoder (multilingual-e5-small, 4-bit) puts nearly every pair of a
    locale's requests above 0.9 (e5 cosines are compressed high; template-generated
    requests share most words), so MiniLM's 0.75 let every non-English cluster grow to
    ``cluster.max_cluster_size`` and variant labels were mostly wrong (seed 7, 360k turns:
    10-NN edges ≥ 0.75 were 0.72..0.90 same-intent against en-US's 0.92)."""
    edges = edge_precision(out, gold)
    en = next(v for loc, v in edges.items() if loc.startswith("en"))
    grid = [round(t, 2) for t in np.arange(0.75, 0.995, 0.01)]

    def fit(sims, pos, target):
        return float(next((t for t in grid if (sims >= t).any() and pos[sims >= t].mean() >= target), grid[-1]))

    targets = {name: float(en[1][en[0] >= t].mean()) for name, t in (("cluster", cluster_min_sim),
                                                                    ("variant", variant_min_sim))}
    cluster = {loc: fit(*v, targets["cluster"]) for loc, v in edges.items() if not loc.startswith("en")}
    variant = {loc: fit(*v, targets["variant"]) for loc, v in edges.items() if not loc.startswith("en")}
    return cluster, variant


def fit_min_events(out: Path, gold: Path, target: float = 0.90, most: int = 3) -> dict[str, int]:
    """Per non-English locale: the smallest ``aggregation.min_events`` m of 1..``most`` whose
    own stratum of rephrase labels (exactly m accepted events; ``most`` or more for the last)
    reaches label precision ``target`` against gold (``most`` when none does); only the
    locales above the global 1 are returned. A marginal rule: no stratum is exported that
    would on its own fall below the per-locale floor of issue 9 (0.90). The run must have
    used min_events 1 in every locale (``main`` sets it under ``--fit``). For
    ``[aggregation.min_events_by_locale]``.

    Why: a label from one rephrase event inherits its target turn's interpretation, and a
    silent NLU error there (the weak per-locale NLUs of the hassil locales make more) gives a
    confident wrong label. Measured on seed 11 (360k turns) with a cumulative rule fitted on
    seed 7, one-event labels had precision 0.81 (el-GR) .. 0.92 (ar-SA), en-US 0.92, and
    labels of two or more events 0.91 .. 1.0."""
    from mining.eval.evaluation import _read, gold_intents_for_run, label_correct

    train = _read(out / "training_set")
    train = train[train["evidence"] == "rephrase"].copy()   # the gate applies to rephrase labels only
    train["correct"] = label_correct(train, gold_intents_for_run(gold, out))
    train["stratum"] = train["support_events"].clip(upper=most)
    fitted = {}
    for locale, g in sorted(train.groupby("locale")):
        if locale.startswith("en"):
            continue
        by_stratum = g.groupby("stratum")["correct"].mean()
        m = next((int(k) for k, p in by_stratum.items() if p >= target), most)
        if m > 1:
            fitted[locale] = m
    return fitted


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=360_000, help="turns in all (split evenly over the locales)")
    ap.add_argument("--locales", default=",".join(DEFAULT_LOCALES))
    ap.add_argument("--seed", type=int, default=13,
                    help="simulation seed (7 = the development logs the thresholds were fitted on)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to mining run --set")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "LOCALES.md")
    ap.add_argument("--fit", action="store_true",
                    help="instead of the table, print per-locale rephrase thresholds (pair precision 0.95) "
                         "and the other per-locale tables fitted on this run (TOML)")
    args = ap.parse_args(argv)
    logs, gold, out = WORK / f"logs-{args.turns}-s{args.seed}", WORK / f"gold-{args.turns}-s{args.seed}", WORK / "run"
    sim_s = None
    if not (logs / "_SUCCESS").exists() or json.loads((gold / "simulation.json").read_text())["locales"].keys() \
            != set(args.locales.split(",")):
        shutil.rmtree(logs, ignore_errors=True)
        shutil.rmtree(gold, ignore_errors=True)
        sim_s, _ = _run([*MINING, "simulate", "--locales", args.locales, "--turns", str(args.turns), "--days", "3",
                         "--seed", str(args.seed), "--logs", str(logs), "--gold", str(gold)])
    shutil.rmtree(out, ignore_errors=True)
    if args.fit:   # fit min_events on every label a single event would give
        args.set += [f"aggregation.min_events_by_locale.{loc}=1" for loc in args.locales.split(",")]
    sets = [x for kv in args.set for x in ("--set", kv)]
    run_s, _ = _run([*MINING, "run", "--logs", str(logs), "--out", str(out), *sets])
    eval_s, _ = _run([*MINING, "evaluate", "--gold", str(gold), "--out", str(out), "--json", str(WORK / "eval.json")])
    report = json.loads((WORK / "eval.json").read_text())
    table = format_locale_table(report)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    worst = report["locale_parity"]["label_precision"]
    verdict = (f"label precision ≥ 0.90 in every locale: **{'yes' if worst['worst'] >= 0.90 else 'no'}** "
               f"(worst {worst['worst_locale']} {worst['worst']:.3f}); best-to-worst gap ≤ 5 points: "
               f"**{'yes' if worst['gap_points'] <= 5 else 'no'}** ({worst['gap_points']:.1f})")
    text = "\n".join([
        "# Per-locale quality and parity", "",
        f"One run of `python bench/locales.py {' '.join(sys.argv[1:] if argv is None else argv)}` "
        f"(commit `{rev.stdout.strip()}{'+dirty' if dirty else ''}`; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"no GPU; simulate {sim_s or 0:.0f} s (0 = reused), `mining run` {run_s:.0f} s, evaluate {eval_s:.0f} s).", "",
        f"{report['turns']:,} turns in {len(report['by_locale'])} locales, mixed in one log; "
        f"overall label precision {report['label_precision']:.3f} over {report['labels']:,} labels.", "",
        table, "", "Targets: " + verdict + ".", "",
        "The per-locale tables of `mining/defaults.toml` ship empty: cluster edges and variant "
        "gates are derived per run from each locale's background (`mining/core/background.py`). "
        "The rephrase scorer and the calibration were fitted on seed-101 logs, seed 7 is the demo's; "
        + ("this run uses a development seed, so it is not held out." if args.seed in (7, 101) else
           f"this run (seed {args.seed}) is held out from those fits; its locales are not "
           "(they are the development locales; `bench/leaveout.py` holds out 24 other languages)."), "",
        "Commands:", "", "```",
        f"mining simulate --locales {args.locales} --turns {args.turns} --days 3 --seed {args.seed} --logs L --gold G",
        "MINING_DEMO_MODE=1 mining run --logs L --out O " + " ".join(sets),
        "mining evaluate --gold G --out O", "```", ""])
    if args.fit:
        fitted = fit_thresholds(out, gold)
        print("[rephrase.threshold_by_locale]\n" + "\n".join(f'"{k}" = {v}' for k, v in fitted.items()))
        events = fit_min_events(out, gold)
        print("\n[aggregation.min_events_by_locale]\n" + "\n".join(f'"{k}" = {v}' for k, v in events.items()))
        cluster, variant = fit_similarity_thresholds(out, gold)
        print("\n[cluster.min_sim_by_locale]\n" + "\n".join(f'"{k}" = {v}' for k, v in cluster.items()))
        print("\n[aggregation.variant_min_sim_by_locale]\n" + "\n".join(f'"{k}" = {v}' for k, v in variant.items()))
        return
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
