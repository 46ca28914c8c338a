"""Scale benchmark: the whole pipeline on local[2] from 1e4 to 1e7 turns, each stage as a
ratio to a floor measured in the same run.

    make bench                                      # 1e4 1e5 1e6 1e7 → bench/RESULTS.md
    python bench/scale.py --sizes 10000 100000      # quick look (writes RESULTS.md too)

Logs: ``mining simulate --corpus hwu64 --days 3 --seed 5 --turns N`` (simulated from the
HWU64 corpus; kept under ``bench/.work/scale`` and reused). Every size runs the five stages
as the nightly DAG does, one child process each (``mining <stage>``, its own Spark session
on local[2], as ``spark-submit`` starts one per task), in ascending size order with one
shared embedding cache, emptied at the start: the first size encodes everything it sees, a
later one only the texts the smaller ones did not have (the "encoded" column).

Floors, each in a child process in the same run, on the same data:

* **scan** (Spark stages): read the size's logs, one window over sessions (row number and
  the next turn's text and time by ``session_id`` ordered by ``ts``), write to Spark's
  ``noop`` sink. ``detect_rephrases``, ``aggregate_labels`` and ``export_dataset`` are each
  reported as a ratio to it (target ≤ 3x for the Spark stages).
* **encode** (embedding): the distinct normalized texts of the ``--embed-size`` run's
  ``turns/``; ``model.encode`` of the packaged all-MiniLM-L6-v2 (batch size from config,
  model loaded before the clock starts) against :func:`mining.spark.embedding.ensure_embeddings`
  (Spark distinct, cache lookup, encoding in Python workers, cache write) with an empty
  cache on the same texts. Target: pipeline throughput ≥ 0.9x raw.
* **community_detection** (clustering): sentence-transformers'
  ``util.community_detection(min_community_size=2)`` on the size's ``embeddings/``, at the
  edge cosine the ``cluster_variants`` stage used (``clusters/_stats.json``), against that stage.

Also: the second night over overlapping logs (``bench/variants.py``'s two nights, 80k turns
over 4 days, lookback 3 days; target < 10% of the second night's texts encoded), and the
exponent of total pipeline wall time against turns (least squares on log-log over the sizes,
``scipy.stats.linregress``; about 1 = linear). Wall times include each child's Spark start.
Peak RSS is the whole process tree's (driver JVM + Python workers), sampled every 0.5 s
(``bench/measure.py``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from measure import run_measured  # noqa: E402  (bench/measure.py)

WORK = ROOT / "bench" / ".work" / "scale"
SIZES = [10_000, 100_000, 1_000_000, 10_000_000]
SEED, DAYS = 5, 3
from mining.stages import STAGE_NAMES as STAGES  # noqa: E402  (the registry)
from mining.io import storage  # noqa: E402  (atomic writes)
SPARK_STAGES = ("detect_rephrases", "aggregate_labels", "export_dataset")
MINING = [sys.executable, "-m", "mining.cli"]
log = logging.getLogger("bench.scale")


def _env() -> dict:
    return {"MINING_DEMO_MODE": "1", "PYTHONPATH": str(ROOT)}


def simulate(n: int) -> tuple[Path, float | None]:
    """Log root of size ``n`` (simulated once; None seconds when reused)."""
    logs = WORK / f"logs-{n}"
    if (logs / "_SUCCESS").exists():
        return logs, None
    shutil.rmtree(logs, ignore_errors=True)
    seconds, _, _ = run_measured([*MINING, "simulate", "--corpus", "hwu64", "--turns", str(n), "--days", str(DAYS),
                                  "--seed", str(SEED), "--logs", str(logs), "--gold", str(WORK / f"gold-{n}")], _env())
    return logs, seconds


def run_stage(stage: str, logs: Path, out: Path, cache: Path) -> dict:
    cmd = [*MINING, stage.replace("_", "-"), "--logs", str(logs), "--out", str(out), "--cache-dir", str(cache)]
    wall, rss, stdout = run_measured(cmd, _env())
    stats = json.loads(stdout)[stage]
    return {"wall_s": wall, "rss_gib": rss / 2**30, "stage_s": stats.get("seconds"), "stats": stats}


def child(kind: str, *args: str) -> dict:
    wall, rss, stdout = run_measured([sys.executable, __file__, "--child", kind, *args], _env())
    return {"wall_s": wall, "rss_gib": rss / 2**30, **json.loads(stdout.strip().splitlines()[-1])}


# ---- floors (each runs in its own child process) ----

def floor_scan(logs: str) -> dict:
    """Bare Spark: read the logs, one window over sessions, write to the noop sink."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from mining.spark.session import get_spark

    spark = get_spark("bench-floor-scan")
    t0 = time.perf_counter()
    w = Window.partitionBy("session_id").orderBy("ts")
    df = (spark.read.parquet(logs)
          .withColumn("turn_index", F.row_number().over(w))
          .withColumn("next_utterance", F.lead("utterance").over(w))
          .withColumn("next_ts", F.lead("ts").over(w)))
    df.write.format("noop").mode("overwrite").save()
    return {"spark_s": time.perf_counter() - t0}


def floor_encode(run: str, work: str) -> dict:
    """ensure_embeddings with an empty cache vs raw ``encode`` of the same encoder (the
    configured ``embedding.backend`` on CPU; raw on all cores), same distinct texts. A runtime
    other than torch is exported before either clock starts (as on every night but the first).
    ``pipeline_s`` is the first call of the Spark application, ``pipeline_warm_s`` a second
    call into another empty cache."""
    from mining.spark import embedding
    from mining.config import load_config
    from mining.core.encoders import CALIBRATION_TEXTS, export_model, load_encoder
    from mining.core.text import text_hash
    from mining.spark.session import get_spark

    spark = get_spark("bench-floor-encode")
    turns = spark.read.parquet(str(Path(run) / "turns"))
    texts = sorted(r["text_norm"] for r in turns.where("text_norm != ''").select("text_norm").distinct().collect())
    cache = Path(work) / "encode-floor-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cfg = load_config(run, str(Path(work) / "encode-floor-out"), overrides={"embedding": {"cache_dir": str(cache)}})
    spec = embedding.encoder_spec("en-US", cfg.embedding, "cpu")
    export_dir = embedding._export_dir(spec, cache / spec.model_id)
    if export_dir:   # calibrated as ensure_embeddings would: the first texts by text_hash
        export_model(spec.model_path, spec.runtime, export_dir, sorted(texts, key=text_hash)[:CALIBRATION_TEXTS])
    t0 = time.perf_counter()
    # `embedded`, as the stages call it: the distinct texts it persists are released after, so
    # the second call reads and hashes them again instead of finding them in Spark's memory
    with embedding.embedded(spark, turns, cfg.embedding, "benchfloor", out=cfg.out) as (_, stats):
        pipeline_s = time.perf_counter() - t0
    # the same call again in this Spark application, into an empty cache (the exported model
    # copied): what is left once the JVM's first-job costs (class loading, code generation,
    # Python worker start-up) are paid
    again = Path(work) / "encode-floor-cache-again"
    shutil.rmtree(again, ignore_errors=True)
    if export_dir:
        shutil.copytree(export_dir, embedding._export_dir(spec, again / spec.model_id))
    cfg2 = load_config(run, str(Path(work) / "encode-floor-out"), overrides={"embedding": {"cache_dir": str(again)}})
    t0 = time.perf_counter()
    with embedding.embedded(spark, turns, cfg2.embedding, "benchfloor2", out=cfg2.out):
        warm_s = time.perf_counter() - t0
    shutil.rmtree(again, ignore_errors=True)
    spark.stop()
    enc = load_encoder(spec.backend, spec.model_path, "cpu", spec.runtime, export_dir)
    enc.set_num_threads(os.cpu_count())
    enc.encode(texts[:256], cfg.embedding.batch_size)    # warm-up: first-call allocations
    t0 = time.perf_counter()
    enc.encode(texts, cfg.embedding.batch_size)
    raw_s = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    return {"texts": len(texts), "encoded": stats["encoded"], "pipeline_s": pipeline_s, "raw_s": raw_s,
            "pipeline_warm_s": warm_s, "model_id": spec.model_id}


def floor_community(run: str) -> dict:
    """community_detection on the run's embeddings (the clustering peer), at the edge cosine
    ``cluster_variants`` used on them (``clusters/_stats.json``: derived per locale from the
    night's background; the configured fallback only when the run recorded none or several)."""
    import numpy as np
    import pandas as pd
    import torch
    from sentence_transformers.util import community_detection

    from mining.config import load_config

    emb = pd.read_parquet(Path(run) / "embeddings", columns=["embedding"])["embedding"]
    vecs = torch.from_numpy(np.ascontiguousarray(np.stack(emb.to_numpy()), dtype=np.float32))
    from mining.io.storage import read_stats

    used = set(read_stats(run, "clusters").get("min_sim_by_locale", {}).values())
    threshold = used.pop() if len(used) == 1 else load_config("-", "-").cluster.min_sim
    t0 = time.perf_counter()
    communities = community_detection(vecs, threshold=threshold, min_community_size=2, batch_size=1024)
    return {"texts": len(vecs), "communities": len(communities), "peer_s": time.perf_counter() - t0,
            "threshold": threshold}


def run_child(kind: str, args: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)
    result = {"scan": floor_scan, "encode": floor_encode, "community": floor_community}[kind](*args)
    print(json.dumps(result))


# ---- the run ----

def bench_size(n: int, cache: Path) -> dict:
    logs, sim_s = simulate(n)
    out = WORK / f"run-{n}"
    shutil.rmtree(out, ignore_errors=True)
    row: dict = {"turns": n, "simulate_s": sim_s, "stages": {}}
    for stage in STAGES:
        log.info("%d turns: %s", n, stage)
        row["stages"][stage] = run_stage(stage, logs, out, cache)
    st = row["stages"]
    row["input_rows"] = st["detect_rephrases"]["stats"]["validation"]["input"]
    row["encoded"] = st["detect_rephrases"]["stats"]["pairs"]["embedding"]["encoded"]
    row["distinct_texts"] = st["embed_utterances"]["stats"]["distinct_texts"]
    row["labels"] = st["export_dataset"]["stats"]["rows"]
    row["total_s"] = sum(s["wall_s"] for s in st.values())
    row["peak_rss_gib"] = max(s["rss_gib"] for s in st.values())
    log.info("%d turns: floors", n)
    row["scan"] = child("scan", str(logs))
    row["community"] = child("community", str(out))
    return row


def machine() -> dict:
    import psutil

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {}
    for mod in ("pyspark", "torch", "faiss", "sentence_transformers", "pandas", "pyarrow"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 (reported as missing)
            versions[mod] = "missing"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    from mining.core.encoders import cpu_capabilities

    # whether bf16 is native decides what the default openvino-bf16 encoder is worth
    return {"cpu": cpu, "cpu_capabilities": ", ".join(cpu_capabilities()), "cores": os.cpu_count(),
            "ram_gib": psutil.virtual_memory().total / 2**30,
            "os": platform.platform(), "python": platform.python_version(), "java": java[0] if java else "?",
            "versions": versions, "commit": rev.stdout.strip() + ("+dirty" if dirty else ""),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def exponent(rows: list[dict]) -> float | None:
    from math import log as ln

    from scipy.stats import linregress

    pts = [(ln(r["turns"]), ln(r["total_s"])) for r in rows]
    return None if len(pts) < 2 else float(linregress(*zip(*pts)).slope)


def _slope(two: list[dict], what: str) -> float:
    """log-log slope of ``what`` (total_s or a stage's wall_s) between two sizes."""
    from math import log as ln

    a, b = ({"total_s": r["total_s"]}.get(what) or r["stages"][what]["wall_s"] for r in two)
    return ln(b / a) / ln(two[1]["turns"] / two[0]["turns"])


def render(res: dict) -> str:
    m, rows, enc, nights = res["machine"], res["sizes"], res.get("encode"), res.get("nights")
    lines = ["# Scale benchmark results", "",
             f"One run of `{res['command']}` ({m['date']}, commit `{m['commit']}`, {res['wall_min']:.0f} min).", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.0f} GiB RAM, no GPU; {m['os']}; "
             f"Python {m['python']}; {m['java']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
             "Spark: local[2], driver memory 4g (`mining.spark.session.get_spark`), one child process per stage.",
             "", "Logs: `mining simulate --corpus hwu64 --days 3 --seed 5 --turns N` (HWU64, CC BY 4.0).", "",
             "## Per-stage wall time (s) and peak RSS (GiB)", "",
             "| turns | input rows | " + " | ".join(STAGES) + " | total | turns/s | peak RSS | texts (encoded) | labels |",
             "|" + "---|" * (len(STAGES) + 7)]
    for r in rows:
        st = r["stages"]
        lines.append(f"| {r['turns']:,} | {r['input_rows']:,} | " +
                     " | ".join(f"{st[s]['wall_s']:.1f} ({st[s]['rss_gib']:.1f})" for s in STAGES) +
                     f" | {r['total_s']:.0f} | {r['input_rows'] / r['total_s']:,.0f} | {r['peak_rss_gib']:.1f} | "
                     f"{r['distinct_texts']:,} ({r['encoded']:,}) | {r['labels']:,} |")
    lines += ["", "Each cell: wall time of the stage's process (Spark start included), in parentheses its "
              "peak RSS. `texts (encoded)`: distinct texts of the run and how many the shared cache lacked.",
              "", "## Ratios to the same-run floors", "",
              "| turns | scan floor (s) | detect / scan | aggregate / scan | export / scan | "
              "community_detection (s) | cluster / community_detection |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        st, scan, cd = r["stages"], r["scan"]["wall_s"], r["community"]
        lines.append(f"| {r['turns']:,} | {scan:.1f} | " +
                     " | ".join(f"{st[s]['wall_s'] / scan:.2f}x" for s in SPARK_STAGES) +
                     f" | {cd['wall_s']:.1f} ({cd['texts']:,} texts) | "
                     f"{st['cluster_variants']['wall_s'] / cd['wall_s']:.2f}x |")
    lines += ["", "Floors are child processes like the stages. The scan floor includes a Spark start as "
              "the stages do; community_detection's child starts Python and torch only, so the "
              "cluster ratio carries a Spark start on our side (most of it at small sizes). The smallest size's "
              "detect_rephrases also exports a runtime other than torch once (the cache is emptied at the start, "
              "as before a first night). The scan floor's Spark time alone is "
              + ", ".join(f"{r['scan']['spark_s']:.1f} s" for r in rows) + " and community_detection's own "
              "time " + ", ".join(f"{r['community']['peer_s']:.1f} s" for r in rows) + "."]
    if enc:
        ratio = enc["raw_s"] / enc["pipeline_s"]
        lines += ["", "## Embedding against raw `model.encode`", "",
                  f"{enc['texts']:,} distinct texts of the {enc['turns']:,}-turn run, "
                  f"{enc.get('model_id', 'all-MiniLM-L6-v2')} on CPU: "
                  f"raw `model.encode` {enc['texts'] / enc['raw_s']:,.0f} texts/s ({enc['raw_s']:.1f} s); "
                  f"`ensure_embeddings` with an empty cache {enc['encoded'] / enc['pipeline_s']:,.0f} texts/s "
                  f"({enc['pipeline_s']:.1f} s): **{ratio:.2f}x** raw throughput (target ≥ 0.9x)."]
    if nights:
        n2 = nights["night2"]
        lines += ["", "## Second night", "",
                  f"Two nights of the 3-day lookback over 4 days of simulated logs (80k turns): night 1 encoded "
                  f"{nights['night1']['encoded']:,} texts; night 2 {n2['encoded']:,} of {n2['distinct_texts']:,} "
                  f"distinct (**{nights['reembedded_share']:.1%}**, target < 10%)."]
        if "never_seen" in nights:
            said = ("night 2 encoded exactly those, so no text seen before was encoded again"
                    if nights["never_seen"] == n2["encoded"] else
                    f"night 2 encoded {n2['encoded']:,}, so {n2['encoded'] - nights['never_seen']:+,} against those")
            lines += ["", f"Of night 2's distinct texts, {nights['never_seen']:,} were not in night 1's logs at all "
                      f"(the new day's novel requests): {said}."]
    k = res.get("exponent")
    top = sorted(rows, key=lambda r: r["turns"])[-2:]
    big = max(rows, key=lambda r: r["turns"])
    sizes = ", ".join(f"{r['turns']:,}" for r in rows)
    lines += ["", "## Targets", "",
              f"- Fitted exponent of total wall time against turns ({sizes}): **{k:.2f}** (1 = linear)"
              if k is not None else "- Fitted exponent: needs two sizes.",
              *([f"- Between the two largest sizes alone (the fixed cost of ~20 s per stage process matters "
                 f"less there): total {_slope(top, 'total_s'):.2f}, detect_rephrases "
                 f"{_slope(top, 'detect_rephrases'):.2f}, aggregate_labels {_slope(top, 'aggregate_labels'):.2f}"]
                if len(top) == 2 else []),
              f"- Largest size, {big['turns']:,} turns end to end: **{big['total_s'] / 60:.1f} min** "
              f"({big['encoded']:,} texts encoded; target ≤ 30 min at 10M with a warm cache)."]
    for s in SPARK_STAGES:
        worst = max(r["stages"][s]["wall_s"] / r["scan"]["wall_s"] for r in rows)
        lines.append(f"- {s}: worst ratio to the scan floor {worst:.2f}x (target ≤ 3x).")
    lines += ["", "## Commands", "", "```", res["command"], "```", "",
              "Per size, the children it ran (`$W` = `bench/.work/scale`):", "", "```",
              f"mining simulate --corpus hwu64 --turns N --days {DAYS} --seed {SEED} --logs $W/logs-N --gold $W/gold-N",
              *[f"MINING_DEMO_MODE=1 mining {s.replace('_', '-')} --logs $W/logs-N --out $W/run-N --cache-dir $W/cache"
                for s in STAGES],
              "python bench/scale.py --child scan $W/logs-N", "python bench/scale.py --child community $W/run-N",
              "```", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=SIZES, help="turns per size (default 1e4 1e5 1e6 1e7)")
    ap.add_argument("--embed-size", type=float, default=1e6,
                    help="the size whose distinct texts the encode floor uses (default 1e6; must be in --sizes)")
    ap.add_argument("--skip-nights", action="store_true", help="skip the second-night measurement")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                    help="only rewrite --results from a results.json of an earlier run")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return run_child(args.child[0], args.child[1:])
    if args.render:
        return write_results(json.loads(args.render.read_text()), args.results)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = sorted(int(s) for s in args.sizes)
    embed_size = int(args.embed_size) if int(args.embed_size) in sizes else max(s for s in sizes if s <= 1_000_000) \
        if any(s <= 1_000_000 for s in sizes) else sizes[0]
    WORK.mkdir(parents=True, exist_ok=True)
    cache = WORK / "cache"
    # emptied, exported runtime models too (a kept export would be reused unchecked, whatever
    # built it): the first size's detect_rephrases pays the one-off export of a runtime other
    # than torch, as a first night does (the table's note says so)
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    res = {"command": "python bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv), "sizes": []}
    for n in sizes:
        res["sizes"].append(bench_size(n, cache))
        (WORK / "results.json").write_text(json.dumps(res, indent=1))
    log.info("encode floor on the %d-turn run", embed_size)
    res["encode"] = {"turns": embed_size, **child("encode", str(WORK / f"run-{embed_size}"), str(WORK))}
    if not args.skip_nights:
        from variants import nights

        log.info("second night")
        res["nights"] = nights()
        import pandas as pd

        seen = [set(pd.read_parquet(ROOT / "bench" / ".work" / "variants" / "nights" / f"night{i}" / "turns",
                                    columns=["text_norm"])["text_norm"]) - {""} for i in (1, 2)]
        res["nights"]["never_seen"] = len(seen[1] - seen[0])
    res["exponent"] = exponent(res["sizes"])
    res["machine"] = machine()
    res["wall_min"] = (time.perf_counter() - t0) / 60
    (WORK / "results.json").write_text(json.dumps(res, indent=1))
    write_results(res, args.results)


#: Sections of RESULTS.md that other scripts write between a pair of these markers, kept.
KEPT_SECTIONS = ("<!-- profile-notes -->", "<!-- encode-backends -->", "<!-- encode-backends-no-bf16 -->",
                 "<!-- embed-sizes -->", "<!-- bench/cold_night.py -->", "<!-- before-after -->",
                 "<!-- round-notes -->")
#  (profile-notes and round-notes: hand-written notes on measurements, kept across reruns)


def put_section(path: Path, mark: str, text: str) -> None:
    """Append ``text`` (which starts and ends with a ``mark`` line) to ``path``, removing an
    earlier section between two ``mark`` lines first; :func:`write_results` keeps such sections."""
    body = path.read_text() if path.exists() else ""
    if body.count(mark) == 2:
        head, _, rest = body.partition(mark)
        body = head.rstrip("\n") + "\n\n" + rest.partition(mark)[2].lstrip("\n")
    storage.write_text(path, body.rstrip("\n") + "\n\n" + text + "\n")


def write_results(res: dict, path: Path) -> None:
    """Write :func:`render` to ``path``, keeping the sections of :data:`KEPT_SECTIONS` it holds
    (``bench/before_after.py``, ``bench/encode_backends.py``, ``bench/embed_sizes.py``)."""
    text = render(res)
    old = path.read_text() if path.exists() else ""
    for mark in KEPT_SECTIONS:
        if old.count(mark) == 2:
            text = text.rstrip("\n") + "\n\n" + mark + old.split(mark)[1] + mark + "\n"
    storage.write_text(path, text)
    print(text)


if __name__ == "__main__":
    main()
