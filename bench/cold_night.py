"""A realistic first night: many turns carrying as many distinct texts as real traffic,
mined with an empty embedding cache (cold), then the same night again with the cache the
cold run filled (warm). Issue 21, deliverable 4.

    python bench/cold_night.py --turns 10000000 --traffic-utterances 2000000 --zipf 0.9
    python bench/cold_night.py --turns 200000 --traffic-utterances 100000    # quick look

Logs: ``mining simulate --corpus hwu64 --days 3 --seed 5 --turns N --traffic-utterances U
--utterance-zipf-s S``: HWU64's traffic split grown to U distinct utterances
(:mod:`mining.sim.growth`: slot swaps, carrier phrases, ASR-like noise), drawn with Zipf
popularity S within an intent. The scale benchmark (``bench/scale.py``) replays HWU64's
11k utterances, so its 10M turns hold only 34,752 distinct texts; real traffic of 10M turns
carries on the order of a million. Kept under ``bench/.work/cold`` and reused.

Each night runs the five stages as the nightly DAG does, one child process each (``mining
<stage>``, its own Spark session on local[2]), with the configured encoder and backend
(``mining/defaults.toml`` ``[embedding]``). Wall time per stage includes its Spark start;
peak RSS is the whole process tree's (driver JVM + Python workers), sampled every 0.5 s
(``bench/measure.py``). Targets: cold ≤ 60 min, warm ≤ 15 min, peak RSS ≤ 12 GiB.

Prints a table and puts it, between two marker lines, into ``bench/RESULTS.md``
(``--results``; ``bench/scale.py`` keeps the section when it rewrites the file).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from measure import run_measured  # noqa: E402  (bench/measure.py)
from scale import MINING, STAGES, _env, machine, put_section, run_stage  # noqa: E402

WORK = ROOT / "bench" / ".work" / "cold"
SEED, DAYS = 5, 3
MARK = "<!-- bench/cold_night.py -->"
log = logging.getLogger("bench.cold_night")


def simulate(turns: int, utterances: int, zipf: float) -> tuple[Path, dict | None]:
    """The log root (simulated once per (turns, utterances, zipf); reused when complete)
    and the simulator's summary (None when reused)."""
    name = f"{turns}-{utterances}-{zipf:g}"
    logs, gold = WORK / f"logs-{name}", WORK / f"gold-{name}"
    if (logs / "_SUCCESS").exists():
        return logs, None
    shutil.rmtree(logs, ignore_errors=True)
    shutil.rmtree(gold, ignore_errors=True)
    wall, rss, stdout = run_measured(
        [*MINING, "simulate", "--corpus", "hwu64", "--turns", str(turns), "--days", str(DAYS),
         "--seed", str(SEED), "--traffic-utterances", str(utterances), "--utterance-zipf-s", f"{zipf:g}",
         "--logs", str(logs), "--gold", str(gold)], _env())
    return logs, {"wall_s": wall, "rss_gib": rss / 2**30, **json.loads(stdout)}


def night(logs: Path, out: Path, cache: Path) -> dict:
    """The five stages over ``logs`` into ``out`` (emptied first), caching vectors in ``cache``."""
    shutil.rmtree(out, ignore_errors=True)
    stages = {}
    for stage in STAGES:
        log.info("%s: %s", out.name, stage)
        stages[stage] = run_stage(stage, logs, out, cache)
    pairs = stages["detect_rephrases"]["stats"]["pairs"]["embedding"]
    return {"stages": stages,
            "encoded": pairs["encoded"] + stages["embed_utterances"]["stats"].get("encoded", 0),
            "distinct_texts": stages["embed_utterances"]["stats"]["distinct_texts"],
            "input_rows": stages["detect_rephrases"]["stats"]["validation"]["input"],
            "labels": stages["export_dataset"]["stats"]["rows"],
            "total_s": sum(s["wall_s"] for s in stages.values()),
            "peak_rss_gib": max(s["rss_gib"] for s in stages.values())}


def render(res: dict) -> str:
    cold, warm = res["cold"], res["warm"]
    head = ["night", *STAGES, "total (min)", "peak RSS (GiB)", "texts encoded"]
    rows = []
    for name, n in (("cold", cold), ("warm", warm)):
        cells = [f"{n['stages'][s]['wall_s']:.1f} ({n['stages'][s]['rss_gib']:.1f})" for s in STAGES]
        rows.append([name, *cells, f"{n['total_s'] / 60:.1f}", f"{n['peak_rss_gib']:.1f}", f"{n['encoded']:,}"])
    a = res["args"]
    lines = [MARK, "", "## A cold night with realistic distinct texts (`bench/cold_night.py`)", "",
             f"One run of `python bench/cold_night.py --turns {a['turns']} --traffic-utterances "
             f"{a['traffic_utterances']} --zipf {a['zipf']:g}` ({res['started']}, commit `{res['machine']['commit']}`).",
             f"Logs: `mining simulate --corpus hwu64 --days {DAYS} --seed {SEED} --turns {a['turns']} "
             f"--traffic-utterances {a['traffic_utterances']} --utterance-zipf-s {a['zipf']:g}`: "
             f"{cold['input_rows']:,} turns, **{cold['distinct_texts']:,} distinct texts**.",
             f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores; encoder and backend as configured "
             f"in `mining/defaults.toml`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             *["| " + " | ".join(r) + " |" for r in rows], "",
             "Each stage cell: wall time (s) of its process, Spark start included, and in parentheses its peak RSS "
             "(GiB, process tree). Cold: empty embedding cache; warm: the same logs again into a new output, "
             "with the cache the cold night filled. "
             f"Targets: cold ≤ 60 min ({cold['total_s'] / 60:.1f}), warm ≤ 15 min ({warm['total_s'] / 60:.1f}), "
             f"peak RSS ≤ 12 GiB ({max(cold['peak_rss_gib'], warm['peak_rss_gib']):.1f}). "
             f"Labels exported: {cold['labels']:,} (cold), {warm['labels']:,} (warm).", "", MARK]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=10_000_000)
    ap.add_argument("--traffic-utterances", type=int, default=2_000_000)
    ap.add_argument("--zipf", type=float, default=0.9, help="utterance Zipf exponent (default 0.9)")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    WORK.mkdir(parents=True, exist_ok=True)
    res = {"started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "args": {"turns": args.turns, "traffic_utterances": args.traffic_utterances,
                                          "zipf": args.zipf}}
    logs, res["simulate"] = simulate(args.turns, args.traffic_utterances, args.zipf)
    cache = WORK / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    res["cold"] = night(logs, WORK / "run-cold", cache)
    res["warm"] = night(logs, WORK / "run-warm", cache)
    text = render(res)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    put_section(args.results, MARK, text)


if __name__ == "__main__":
    main()
