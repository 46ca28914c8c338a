"""Embedding against raw ``encode`` at several sizes: where the pipeline's fixed cost stops
mattering (issue 21, deliverable 3: ``ensure_embeddings`` ≥ 0.9x raw encode).

    python bench/embed_sizes.py                                  # 20k 50k 100k texts, prints the table
    python bench/embed_sizes.py --sizes 20000 200000 --results bench/RESULTS.md

For each size, ``n`` distinct grown HWU64 texts (``bench/variants.py``; reused under
``bench/.work/quick``) are embedded in one child process by ``bench/scale.py``'s encode
floor: ``ensure_embeddings`` with an empty cache (local[2], two Python workers of one thread,
the texts hashed and counted by locale in one job, repartitioned, encoded in ``mapInArrow``,
written as a cache batch), the same call again in that Spark application into another empty
cache, then raw ``encode`` of the same encoder in that process on all cores, after a warm-up
(model loading excluded). The configured ``embedding.backend`` is used. Ratio = raw seconds /
pipeline seconds; gap = pipeline − raw seconds.

Where the first call's gap goes (measured once at 20k texts with timestamps in the driver
and the workers, 2026-12-05): the hash-and-count job 2.2 s (0.23 s in the second call), from
submitting the encode job to the Python workers' first batch 2.0 s (0.33 s), writing and
committing after the last batch 0.9 s (0.37 s); the workers' own model load and encode
(8.1–8.3 s) are the same in both calls. The difference is the JVM's and the Python worker
daemon's first-use cost (class loading, code generation, worker start-up), paid once per
Spark application, not per text or per partition.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import quick  # noqa: E402  (bench/quick.py: grown texts and the encode floor)

MARK = "<!-- embed-sizes -->"


def measure(sizes: list[int]) -> list[dict]:
    """One row per size: texts, pipeline_s, raw_s, ratio (raw/pipeline), gap_s, warm_s (the second
    call), warm_ratio (raw/warm_s), rss_gib, model_id."""
    quick.WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        texts, _ = quick.grown(n)
        e = quick.embed(texts)
        rows.append({"texts": len(texts), "pipeline_s": e["pipeline_s"], "raw_s": e["raw_s"],
                     "ratio": e["raw_s"] / e["pipeline_s"], "gap_s": e["pipeline_s"] - e["raw_s"],
                     "warm_s": e["pipeline_warm_s"], "warm_ratio": e["raw_s"] / e["pipeline_warm_s"],
                     "rss_gib": e["rss_gib"], "model_id": e["model_id"]})
        logging.getLogger("bench.embed_sizes").info("%s", rows[-1])
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| texts | `ensure_embeddings` s (first call) | raw `encode` s | raw / pipeline | pipeline − raw s "
             "| second call s | raw / second call | peak RSS GiB |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['texts']:,} | {r['pipeline_s']:.1f} | {r['raw_s']:.1f} | {r['ratio']:.2f}x | "
              f"{r['gap_s']:.1f} | {r['warm_s']:.1f} | {r['warm_ratio']:.2f}x | {r['rss_gib']:.2f} |" for r in rows]
    return "\n".join(lines)


def write_section(rows: list[dict], path: Path, command: str) -> None:
    """Put :func:`table` into ``path`` between two :data:`MARK` lines (replacing an earlier one;
    ``bench/scale.py`` keeps the section when it rewrites the file)."""
    from scale import machine, put_section   # bench/scale.py

    m = machine()
    text = "\n".join([MARK, "## Embedding against raw `encode`, by size", "",
                      f"`{command}` ({m['date']}, commit `{m['commit']}`; {m['cpu']}, {m['cores']} cores; "
                      f"encoder `{rows[0]['model_id'] if rows else '?'}`). All timings of a row come from "
                      "one process; compare the ratios.", "", table(rows), "", MARK])
    put_section(path, MARK, text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000])
    ap.add_argument("--results", type=Path, help="also put the table into this file (bench/RESULTS.md)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rows = measure(args.sizes)
    print(table(rows))
    if args.results:
        write_section(rows, args.results, "python bench/embed_sizes.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
