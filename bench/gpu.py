"""The GPU path against the CPU, in one run: MiniLM encoding and the kNN graph.

    python bench/gpu.py --json OUT.json            # on a CUDA machine (and anywhere: CPU rows only)
    python bench/gpu.py --render OUT.json          # → bench/GPU.md

Encoding: :class:`mining.core.encoders.SentenceTransformerEncoder` (the pipeline's encoder, fp16 on
CUDA) on the distinct texts of HWU64 + SLURP (real utterances, ~16k), after one warm-up pass;
the best of ``--repeats`` passes, sentences/s. The CPU row encodes a seeded sample of the same
texts with every core. Published anchor: all-MiniLM-L6-v2 ~14,200 sentences/s on a V100
(sbert.net, "Pretrained Models", speed column).

kNN graph: k = 64 exact inner-product neighbours of every one of ``--knn-n`` seeded random unit
vectors (384-d; exact search costs the same whatever the data), vectors/s = queries per
second. On CUDA with faiss-gpu: ``mining.core.index.build_index`` (``IndexFlatIP`` moved to the GPU). Without
faiss-gpu on the GPU machine, the same exact search as blocked ``torch`` matrix products +
``topk`` (labelled so). CPU: the same ``build_index`` when faiss is installed, else the same
torch code, on a seeded sample of ``--cpu-queries`` queries against all vectors. Published
anchor: Johnson, Douze, Jégou, "Billion-scale similarity search with GPUs" (2019): a k-NN
graph of 95M vectors in 35 min on 4 Maxwell Titan X (~45,000 vectors/s, approximate IVF).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

K = 64
DIM = 384


def _texts() -> list[str]:
    from mining.sim.corpora import load_corpus

    return sorted({t for name in ("hwu64", "slurp") for t in load_corpus(name)["text"]})


def _best(fn, repeats: int) -> float:
    fn()                                     # warm-up: kernels, allocator, tokenizer caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_encode(model_path: str, device: str, texts: list[str], batch_size: int, repeats: int) -> dict:
    """Sentences/s of the pipeline's encoder on ``texts`` (``device`` "cuda" runs fp16)."""
    import torch

    from mining.core.encoders import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(model_path, device=device)
    if device == "cpu":
        enc.model.float()                    # a carried fp16 checkpoint loads as fp16: run the CPU in fp32
        enc.set_num_threads(os.cpu_count() or 1)

    def run():
        enc.encode(texts, batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
    s = _best(run, repeats)
    return {"what": "encode", "device": device, "dtype": "fp16" if device == "cuda" else "fp32",
            "batch_size": batch_size, "n": len(texts), "seconds": s, "per_s": len(texts) / s}


def _torch_knn(x, queries, k: int, block: int) -> None:
    import torch

    for i in range(0, queries.shape[0], block):
        sims = queries[i:i + block] @ x.T
        torch.topk(sims, k + 1, dim=1)       # +1: the query itself


def bench_knn(n: int, device: str, cpu_queries: int, seed: int) -> dict:
    """Vectors/s of an exact k-NN graph (k = :data:`K`) over ``n`` seeded unit vectors."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, DIM), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    nq = n if device == "cuda" else min(n, cpu_queries)
    q = emb[np.sort(rng.choice(n, nq, replace=False))] if nq < n else emb
    try:
        from mining.core.index import build_index, gpu_available
        has_gpu = gpu_available()                      # imports faiss: ImportError when it is missing
    except ImportError:
        has_gpu, build_index = False, None
    if build_index is not None and (device == "cpu" or has_gpu):
        index = build_index(emb, exact_max_n=n, device=device)   # the pipeline's exact index
        s = _best(lambda: index.search(q, K + 1), 1)
        how = f"faiss {'GPU' if device == 'cuda' else 'CPU'} IndexFlatIP (mining.core.index)"
    else:
        import torch

        if device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        dt = torch.float16 if device == "cuda" else torch.float32
        x = torch.from_numpy(emb).to(device=device, dtype=dt)
        qt = torch.from_numpy(q).to(device=device, dtype=dt)

        def run():
            _torch_knn(x, qt, K, 8192 if device == "cuda" else 1024)
            if device == "cuda":
                torch.cuda.synchronize()
        s = _best(run, 1)
        how = f"torch matmul + topk ({'fp16' if device == 'cuda' else 'fp32'}; faiss-gpu not installed)" \
            if device == "cuda" else "torch matmul + topk (fp32; faiss not installed)"
    return {"what": "knn", "device": device, "how": how, "n": n, "queries": nq, "seconds": s, "per_s": nq / s}


def machine() -> dict:
    import torch

    d = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
         "torch": torch.__version__}
    if torch.cuda.is_available():
        d["gpu"] = torch.cuda.get_device_name(0)
    try:
        import sentence_transformers
        d["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return d


def render(doc: dict) -> str:
    rows = doc["rows"]
    lines = ["# GPU path against the CPU", "",
             f"One run of `{doc['command']}` on {doc['machine'].get('gpu', 'no GPU')}, "
             f"{doc['machine']['cpus']} CPU cores (torch {doc['machine']['torch']}, sentence-transformers "
             f"{doc['machine'].get('sentence_transformers', '?')}, Python {doc['machine']['python']}).", "",
             "| what | device | how | items | seconds | per second | vs CPU |", "|---|---|---|---|---|---|---|"]
    cpu = {r["what"]: r["per_s"] for r in rows if r["device"] == "cpu"}
    for r in rows:
        how = r.get("how") or f"`SentenceTransformerEncoder` {r['dtype']}, batch {r['batch_size']}"
        items = f"{r['n']:,} texts" if r["what"] == "encode" else f"{r['queries']:,} of {r['n']:,} vectors, k={K}"
        ratio = f"{r['per_s'] / cpu[r['what']]:.1f}x" if r["what"] in cpu else ""
        lines.append(f"| {r['what']} | {r['device']} | {how} | {items} | {r['seconds']:.2f} | "
                     f"{r['per_s']:,.0f} | {ratio} |")
    lines += ["", "Anchors: all-MiniLM-L6-v2 ~14,200 sentences/s on a V100 (sbert.net); FAISS k-NN graph "
              "of 95M vectors in 35 min on 4 Maxwell Titan X, ~45,000 vectors/s (Johnson et al. 2019).", ""]
    if any("faiss-gpu not installed" in r.get("how", "") for r in rows):
        lines += ["faiss-gpu was not installed on the GPU machine, so the kNN rows are the same exact "
                  "search (every query against every vector, k + 1 best) written as torch matrix products "
                  "and `topk` on both devices, not `mining.core.index` on faiss-gpu.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-path", default="", help="sentence-transformers folder (default: the packaged MiniLM)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-texts", type=int, default=4000, help="texts encoded on the CPU (a seeded sample)")
    ap.add_argument("--knn-n", type=int, default=1_000_000)
    ap.add_argument("--cpu-queries", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--render", type=Path, help="write bench/GPU.md from this --json file and stop")
    args = ap.parse_args(argv)
    if args.render:
        text = render(json.loads(args.render.read_text()))
        (ROOT / "bench" / "GPU.md").write_text(text)
        print(text)
        return
    import torch

    texts = _texts()
    sample = sorted(np.random.default_rng(args.seed).choice(texts, min(args.cpu_texts, len(texts)), replace=False))
    rows = []
    if torch.cuda.is_available():
        for bs in (128, 1024):
            rows.append(bench_encode(args.model_path, "cuda", texts, bs, args.repeats))
            print(rows[-1], flush=True)
    rows.append(bench_encode(args.model_path, "cpu", list(sample), 128, 1))
    print(rows[-1], flush=True)
    if torch.cuda.is_available():
        rows.append(bench_knn(args.knn_n, "cuda", args.cpu_queries, args.seed))
        print(rows[-1], flush=True)
    rows.append(bench_knn(args.knn_n, "cpu", args.cpu_queries, args.seed))
    print(rows[-1], flush=True)
    doc = {"command": "python bench/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "machine": machine(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    print(render(doc))


if __name__ == "__main__":
    main()
