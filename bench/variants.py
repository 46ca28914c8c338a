"""Variant-clustering benchmark: our FAISS kNN graph against sentence-transformers'
``util.community_detection`` on the same real-utterance embeddings, plus scale and cache.

    python bench/variants.py                       # 20k, 100k, 200k vs the peer; 1M; 2nd night
    python bench/variants.py --sizes 20000 --skip-million --skip-nights   # quick look

Texts: HWU64 utterances grown to size by :func:`mining.sim.growth.grow_utterances` (slot-value
swaps, carrier phrases, light ASR-like noise; gold intents kept), normalized as the pipeline
does, embedded once with the packaged all-MiniLM-L6-v2 and kept under ``bench/.work``.
Every size is a prefix of one seeded shuffle of the 1M texts.

Per size, in the same process and on the same vectors:

* **ours**: :func:`mining.core.index.knn` (exact ``IndexFlatIP`` up to ``cluster.exact_max_n``,
  else IVF trained on a sample) → :func:`mining.core.index.neighbour_graph` (kNN +
  range search for dense rows) → :func:`mining.core.clustering.clusters_from_graph` (star
  communities at ``min_sim``) → medoids, with the committed config;
* **peer**: ``community_detection(threshold=min_sim, min_community_size=2)`` (every
  community of at least two texts: variants come in pairs too);
* **recall of its pairs**: of the (centre, member) pairs the peer reports, the share that
  our clusters also put together; and the same for all same-community pairs;
* **recall@10** of the approximate index against exact search on 2,000 sampled queries;
* **split loss**: the recall of its pairs when the texts are first split into 4 coarse
  k-means cells and each is clustered alone (as a locale above ``max_task_texts`` is);
* **quality** against gold intents, for both: purity, adjusted Rand index, V-measure.

1M: the real ``cluster_variants`` Spark stage (coarse k-means split, one task per part) on
local[2] in a child process; wall time and the peak RSS of the whole process tree.

Second night: two nights of the nightly DAG's default 3-day lookback over 4 days of
simulated HWU64 logs (20k turns a day; dt 11-01..11-03, then 11-02..11-04) through
``detect_rephrases`` + ``embed_utterances`` with one shared cache: the share of the second
night's distinct texts that had to be encoded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measure import run_measured  # noqa: E402  (bench/measure.py)
from mining.core.clustering import clusters_from_graph, medoids  # noqa: E402
from mining.config import load_config  # noqa: E402
from mining.eval.evaluation import cluster_metrics  # noqa: E402
from mining.core.index import neighbour_graph, recall_at_k  # noqa: E402

WORK = ROOT / "bench" / ".work" / "variants"
SEED = 11
MAX_N = 1_000_000
log = logging.getLogger("bench.variants")


CHUNK = 50_000


def text_set() -> str:
    """Names the grown text set in cache file names: its size, seed and the growth version."""
    from mining.sim.growth import VERSION

    return f"{MAX_N}-s{SEED}-g{VERSION}"


def grown_texts() -> pd.DataFrame:
    """texts[text_norm, intent]: MAX_N distinct normalized grown HWU64 texts, one seeded
    shuffle (cached under ``bench/.work``)."""
    from mining.sim.growth import grow_utterances
    from mining.core.text import normalize

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"texts-{text_set()}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    grown = grow_utterances("hwu64", int(MAX_N * 1.15), SEED)
    texts = (pd.DataFrame({"text_norm": grown["text"].map(normalize), "intent": grown["intent"]})
             .drop_duplicates("text_norm").query("text_norm != ''"))
    if len(texts) < MAX_N:
        raise SystemExit(f"only {len(texts)} distinct normalized texts grown, {MAX_N} wanted")
    texts = texts.sample(n=MAX_N, random_state=SEED).reset_index(drop=True)
    texts.to_parquet(path)
    return texts


def corpus_vectors(n: int, encoder=None) -> tuple[pd.DataFrame, np.ndarray]:
    """(texts, float32 (n, 384)): the first ``n`` grown texts and their all-MiniLM-L6-v2
    vectors (torch fp32, or ``encoder``'s: a :class:`mining.core.encoders.Encoder`, whose
    ``model_id`` then names the files), encoded once in chunks of 50k and cached under
    ``bench/.work``."""
    from mining.core.encoders import load_encoder

    texts = grown_texts()
    suffix = f"-{encoder.model_id}" if encoder is not None else ""
    chunks, enc, t0, done = [], encoder, time.perf_counter(), 0
    for c in range(0, n, CHUNK):
        path = WORK / f"emb-{text_set()}-{c // CHUNK:03d}{suffix}.npy"   # vectors of this text set
        if not path.exists():
            enc = enc or load_encoder("sentence-transformers", "", "cpu")
            vecs = enc.encode(texts["text_norm"].iloc[c:c + CHUNK].tolist(), 128)
            np.save(path, vecs.astype(np.float32))
            done += len(vecs)
            log.info("encoded %d texts (%.0f texts/s)", c + len(vecs), done / (time.perf_counter() - t0))
        chunks.append(np.load(path))
    vecs = np.concatenate(chunks)[:n]
    if len(vecs) != min(n, len(texts)):
        raise SystemExit(f"{len(vecs)} cached vectors for {min(n, len(texts))} texts under {WORK}: remove the emb-* files")
    return texts.iloc[:n], vecs


def ours(emb: np.ndarray, cc) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    graph = neighbour_graph(emb, cc.k, cc.min_sim, max_degree=cc.max_cluster_size, exact_max_n=cc.exact_max_n,
                            nprobe=cc.ivf_nprobe, device="cpu", seed=cc.seed)
    labels = clusters_from_graph(graph, cc.max_cluster_size)
    medoids(emb, labels)
    return labels, time.perf_counter() - t0


def ours_split(emb: np.ndarray, cc, max_part: int) -> tuple[np.ndarray, int]:
    """Our clusters when the texts are split by coarse k-means into parts of about
    ``max_part / 2`` and each part is clustered alone (what ``cluster_variants`` does for a
    locale above ``cluster.max_task_texts``)."""
    from mining.core.index import coarse_partition

    part = coarse_partition(emb, max_part, seed=cc.seed)
    labels = np.empty(len(emb), dtype=np.int64)
    offset = 0
    for p in np.unique(part):
        rows = np.flatnonzero(part == p)
        graph = neighbour_graph(emb[rows], cc.k, cc.min_sim, max_degree=cc.max_cluster_size,
                                exact_max_n=cc.exact_max_n, nprobe=cc.ivf_nprobe, device="cpu", seed=cc.seed)
        sub = clusters_from_graph(graph, cc.max_cluster_size)
        labels[rows] = sub + offset
        offset += sub.max() + 1
    return labels, len(np.unique(part))


def peer(emb: np.ndarray, threshold: float, vectors: str = "") -> tuple[list[list[int]], float, bool]:
    """community_detection's communities, wall time and whether both came from the cache under
    ``bench/.work`` (per text set, n, threshold and ``vectors``, the encoder's id): the peer's
    result does not depend on our code, and it is the slow part. A cached time was measured in
    an earlier run, perhaps on another machine: :func:`print_table` marks its speed-up, and
    ``bench/quick.py`` removes the cache to time the peer afresh."""
    import torch
    from sentence_transformers.util import community_detection

    path = WORK / f"peer-{text_set()}-{len(emb)}-t{threshold}{'-' + vectors if vectors else ''}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        return cached["communities"], cached["seconds"], True
    t0 = time.perf_counter()
    communities = community_detection(torch.from_numpy(np.ascontiguousarray(emb)), threshold=threshold,
                                      min_community_size=2, batch_size=1024)
    seconds = time.perf_counter() - t0
    path.write_text(json.dumps({"seconds": seconds, "communities": [[int(i) for i in c] for c in communities]}))
    return communities, seconds, False


def peer_labels(communities: list[list[int]], n: int) -> np.ndarray:
    labels = np.arange(len(communities), len(communities) + n)   # unassigned → own singleton
    for c, members in enumerate(communities):
        labels[members] = c
    return labels


def pair_recall(communities: list[list[int]], labels: np.ndarray) -> tuple[float, float]:
    """(centre-member pair recall, all same-community pair recall) of ``labels``."""
    star_hit = star_all = pair_hit = pair_all = 0
    for members in communities:
        m = np.asarray(members)
        star_hit += int((labels[m[1:]] == labels[m[0]]).sum())
        star_all += len(m) - 1
        counts = np.unique(labels[m], return_counts=True)[1]
        pair_hit += int((counts * (counts - 1) // 2).sum())
        pair_all += len(m) * (len(m) - 1) // 2
    return (star_hit / star_all if star_all else 1.0), (pair_hit / pair_all if pair_all else 1.0)


def sampled_recall_at_10(emb: np.ndarray, cc, queries: int = 2000) -> float:
    """recall@10 of the index ``cluster_variants`` builds (same config) against exact
    search, on ``queries`` seeded rows."""
    import faiss

    from mining.core.index import build_index

    rng = np.random.default_rng(SEED)
    q = np.sort(rng.choice(len(emb), size=min(queries, len(emb)), replace=False))

    def others(index):
        _, found = index.search(np.ascontiguousarray(emb[q]), 11)
        return np.array([[j for j in row if j != i][:10] for i, row in zip(q, found)])

    flat = faiss.IndexFlatIP(emb.shape[1])
    flat.add(np.ascontiguousarray(emb))
    approx = build_index(np.ascontiguousarray(emb), exact_max_n=cc.exact_max_n, nprobe=cc.ivf_nprobe,
                         device="cpu", seed=cc.seed)
    return recall_at_k(others(approx), others(flat))


def compare(sizes: list[int], texts: pd.DataFrame, emb_all: np.ndarray, cc, vectors: str = "") -> list[dict]:
    rows = []
    for n in sizes:
        emb = np.ascontiguousarray(emb_all[:n], dtype=np.float32)
        gold = texts["intent"].to_numpy()[:n]
        labels, t_ours = ours(emb, cc)
        communities, t_peer, peer_cached = peer(emb, cc.min_sim, vectors)
        star, pairs = pair_recall(communities, labels)
        q_ours = cluster_metrics(labels, gold)
        q_peer = cluster_metrics(peer_labels(communities, n), gold)
        split, cells = ours_split(emb, cc, max(1000, n // 2))
        row = {"n": n, "ours_s": t_ours, "peer_s": t_peer, "speedup": t_peer / t_ours, "peer_cached": peer_cached,
               "split_cells": cells, "split_star_pair_recall": pair_recall(communities, split)[0],
               "star_pair_recall": star, "community_pair_recall": pairs,
               "recall_at_10": sampled_recall_at_10(emb, cc),
               "index": "flat" if n <= cc.exact_max_n else f"ivf nprobe={cc.ivf_nprobe}",
               "ours": q_ours, "peer": q_peer, "peer_communities": len(communities)}
        rows.append(row)
        log.info("n=%d: %s", n, json.dumps(row))
    return rows


def million(texts: pd.DataFrame, emb_all: np.ndarray) -> dict:
    """The ``cluster_variants`` stage on all 1M vectors (one locale) in a child process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mining.core.text import text_hash

    out = WORK / "run-1m"
    emb_dir = out / "embeddings"
    if not (emb_dir / "_SUCCESS").exists():
        emb_dir.mkdir(parents=True, exist_ok=True)
        for i in range(0, len(texts), 100_000):
            chunk = texts.iloc[i:i + 100_000]
            vecs = np.asarray(emb_all[i:i + 100_000], dtype=np.float32)
            table = pa.table({"locale": ["en-US"] * len(chunk), "text_norm": chunk["text_norm"],
                              "text_hash": [text_hash(t) for t in chunk["text_norm"]],
                              "embedding": pa.FixedSizeListArray.from_arrays(vecs.ravel(), vecs.shape[1])
                              .cast(pa.list_(pa.float32()))})
            pq.write_table(table, emb_dir / f"part-{i // 100_000:05d}.parquet")
        (emb_dir / "_SUCCESS").touch()
    # cluster_variants reads the night's derived edge cosines from rephrase_pairs/: an empty
    # one (no background: the configured cluster.min_sim), as before it required the stage
    pairs = out / "rephrase_pairs"
    if not (pairs / "_SUCCESS").exists():
        pairs.mkdir(parents=True, exist_ok=True)
        (pairs / "_stats.json").write_text(json.dumps({"background": {}}))
        (pairs / "_SUCCESS").touch()
    cmd = [str(Path(sys.executable).with_name("mining")), "cluster-variants", "--logs", str(WORK), "--out", str(out)]
    wall, peak, _ = run_measured(cmd, {"MINING_DEMO_MODE": "1"})
    stats = json.loads((out / "clusters" / "_stats.json").read_text())
    return {"n": len(texts), "wall_s": wall, "peak_rss_gib": peak / 2**30, **stats}


def nights() -> dict:
    """Two overlapping nights through detect + embed with one embedding cache."""
    cmd = [sys.executable, str(Path(__file__)), "--nights-child"]
    _, _, stdout = run_measured(cmd, {"MINING_DEMO_MODE": "1"})
    return json.loads(stdout.strip().splitlines()[-1])


def nights_child() -> None:
    from mining.stages import stage_fn
    from mining.sim.simulation import SimulationConfig, simulate
    from mining.spark.session import get_spark

    work = WORK / "nights"
    logs, gold = work / "logs", work / "gold"
    if not logs.exists():
        simulate(SimulationConfig(corpus="hwu64", n_turns=80_000, days=4, seed=7), logs, gold, overwrite=True)
    spark = get_spark("bench-variants-nights")
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    result = {}
    for night, (start, end) in enumerate([("2026-11-01", "2026-11-03"), ("2026-11-02", "2026-11-04")], 1):
        out = work / f"night{night}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = load_config(str(logs), str(out), start_date=dt.date.fromisoformat(start),
                          end_date=dt.date.fromisoformat(end),
                          overrides={"embedding": {"cache_dir": str(cache)}})
        stage_fn("detect_rephrases")(spark, cfg)
        emb = stage_fn("embed_utterances")(spark, cfg)
        # what this night needed that the cache did not hold, detect included
        pairs = json.loads((out / "rephrase_pairs" / "_stats.json").read_text())["embedding"]
        result[f"night{night}"] = {"dates": f"{start}..{end}", "distinct_texts": pairs["distinct_texts"],
                                   "encoded": pairs["encoded"], "embed_stage_encoded": emb["encoded"]}
    n2 = result["night2"]
    result["reembedded_share"] = n2["encoded"] / n2["distinct_texts"]
    print(json.dumps(result))


def print_table(rows: list[dict], m: dict | None, n: dict | None, cc) -> None:
    print(f"\nVariant clustering, HWU64 grown, all-MiniLM-L6-v2 vectors, local CPU "
          f"({os.cpu_count()} cores); min_sim {cc.min_sim}, k {cc.k}, max_cluster_size {cc.max_cluster_size}")
    print("| texts | index | ours (s) | community_detection (s) | speed-up | recall of its centre-member "
          "pairs | of its same-community pairs | recall@10 vs exact |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cached = " (peer timed in an earlier run)" if r.get("peer_cached") else ""
        print(f"| {r['n']:,} | {r['index']} | {r['ours_s']:.1f} | {r['peer_s']:.1f}{cached} | {r['speedup']:.1f}x | "
              f"{r['star_pair_recall']:.3f} | {r['community_pair_recall']:.3f} | {r['recall_at_10']:.3f} |")
    for r in rows:
        print(f"Split into {r['split_cells']} coarse k-means cells and clustered per cell, {r['n']:,} texts: "
              f"recall of its centre-member pairs {r['split_star_pair_recall']:.3f}")
    print("\nQuality against gold intents (ours / community_detection)")
    print("| texts | clusters | clustered share | purity | ARI | V-measure | same-cluster pair precision |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        o, p = r["ours"], r["peer"]
        print(f"| {r['n']:,} | {o['clusters']:,} / {p['clusters']:,} | {o['clustered_share']:.3f} / "
              f"{p['clustered_share']:.3f} | {o['purity']:.3f} / {p['purity']:.3f} | {o['ari']:.3f} / "
              f"{p['ari']:.3f} | {o['v_measure']:.3f} / {p['v_measure']:.3f} | {o['pair_precision']:.3f} / "
              f"{p['pair_precision']:.3f} |")
    if m:
        print(f"\n1M: cluster_variants on local[2]: {m['n']:,} texts in {m['wall_s']:.0f} s, peak RSS "
              f"{m['peak_rss_gib']:.1f} GiB, coarse parts {m['coarse_parts']}, {m['clusters']:,} clusters "
              f"({m['multi_member_clusters']:,} with 2+ texts), largest {m['largest_cluster']}")
    if n:
        print(f"\nSecond night: {n['night2']['encoded']:,} of {n['night2']['distinct_texts']:,} distinct texts "
              f"encoded again ({n['reembedded_share']:.1%}); first night encoded {n['night1']['encoded']:,}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 200_000])
    ap.add_argument("--skip-million", action="store_true")
    ap.add_argument("--skip-nights", action="store_true")
    ap.add_argument("--nights-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.nights_child:
        return nights_child()
    cc = load_config("-", "-").cluster
    texts, emb_all = corpus_vectors(max(args.sizes) if args.skip_million else MAX_N)
    rows = compare(args.sizes, texts, emb_all, cc, vectors="all-MiniLM-L6-v2")
    m = None if args.skip_million else million(texts, emb_all)
    n = None if args.skip_nights else nights()
    print_table(rows, m, n, cc)
    if args.json:
        args.json.write_text(json.dumps({"compare": rows, "million": m, "nights": n}, indent=1, default=float))


if __name__ == "__main__":
    main()
