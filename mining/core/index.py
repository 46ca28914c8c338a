"""FAISS k-nearest-neighbour search, with the index and the device chosen once, here.

Exact inner-product search (``IndexFlatIP``) up to ``exact_max_n`` vectors; above it an
inverted file (IVF, Jégou, Douze, Schmid 2011; Johnson, Douze, Jégou 2019, "Billion-scale
similarity search with GPUs") with ``nlist = min(4·√n, n // 39)`` cells (the FAISS guideline's
low end, at least 39 training points per cell),
its coarse quantizer trained on a seeded sample of 64 vectors per cell, and vectors stored
as fp16 (``IndexIVFScalarQuantizer``, QT_fp16): half the memory of float32 and, measured
at 200k MiniLM vectors on 2 cores, about a third less search time than ``IndexIVFFlat`` at
the same recall@10 (0.975 at nprobe 16; ``bench/variants.py``). On a machine with a GPU and
``faiss-gpu-cu12`` installed, the index is moved to the GPU; GPU calls live only inside
:func:`_to_gpu`, so this module imports and runs on CPU-only machines.
"""
from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)


def _faiss():
    try:
        import faiss
    except ImportError as e:  # faiss is an extra: cpu or gpu, never both
        raise ImportError("FAISS is missing: pip install 'utterance-mining[cpu]' (or [gpu] on CUDA 12)") from e
    return faiss


def gpu_available() -> bool:
    faiss = _faiss()

    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def _to_gpu(index):
    import faiss

    res = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(res, 0, index)


def build_index(emb: np.ndarray, exact_max_n: int = 20_000, nprobe: int = 16,
                device: str = "auto", seed: int = 0):
    """A searchable FAISS index over ``emb`` (float32 (n, d), L2-normalized rows): exact
    ``IndexFlatIP`` for n ≤ ``exact_max_n``, else IVF-fp16 searching ``nprobe`` cells.

    Memory: 4·n·d bytes (exact) or 2·n·d bytes (IVF) for the vectors, logged before
    allocating. ``device``: ``cpu``, ``cuda`` or ``auto`` (GPU when faiss sees one)."""
    faiss = _faiss()

    n, d = emb.shape
    if n <= exact_max_n:
        log.info("faiss IndexFlatIP over %d x %d vectors: ~%.3f GiB", n, d, 4 * n * d / 2**30)
        index = faiss.IndexFlatIP(d)
    else:
        nlist = max(1, int(min(4 * math.sqrt(n), n // 39)))   # ≥ 1 cell under a tiny exact_max_n
        log.info("faiss IVF%d,SQfp16 over %d x %d vectors (nprobe %d): ~%.3f GiB", nlist, n, d, nprobe,
                 2 * n * d / 2**30)
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = emb[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
        index.train(sample)
        index.nprobe = nprobe
    use_gpu = device == "cuda" or (device == "auto" and gpu_available())
    if use_gpu:
        index = _to_gpu(index)
    index.add(emb)
    return index


def _drop_self(sims: np.ndarray, ids: np.ndarray, first: int, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a k+1 search of rows ``first…`` against the whole set → their k others."""
    n = len(ids)
    self_hit = ids == np.arange(first, first + n)[:, None]
    # drop the self match where it was found, otherwise the last (weakest) neighbour
    drop = np.where(self_hit.any(axis=1), self_hit.argmax(axis=1), kk)
    keep = np.ones_like(ids, dtype=bool)
    keep[np.arange(n), drop] = False
    sims = sims[keep].reshape(n, kk)
    ids = ids[keep].reshape(n, kk)
    sims[ids < 0] = -np.inf
    return sims, ids


def knn(emb: np.ndarray, k: int, **index_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """All-vs-all k nearest neighbours (self excluded when found).

    Returns (sims float32 (n, k'), ids int64 (n, k')) with k' = min(k, n-1); missing
    neighbours have id -1 and sim -inf. Rows sorted by decreasing similarity."""
    sims, ids, _ = _search(emb, k, **index_kwargs)
    return sims, ids


def _search(emb: np.ndarray, k: int, **index_kwargs):
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    kk = min(k, n - 1)
    if kk <= 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64), None
    index = build_index(emb, **index_kwargs)
    sims, ids = index.search(emb, kk + 1)
    sims, ids = _drop_self(sims, ids, 0, kk)
    return sims, ids, index


def _top_per_row(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, cap: int):
    """Keep each row's ``cap`` largest ``vals`` (ties → lower column)."""
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = np.arange(len(rows)) - starts < cap
    return rows[keep], cols[keep], vals[keep]


#: The most results a FAISS GPU index returns per query ("GPU index only supports min/max-K
#: selection up to 2048", faiss/gpu/utils/DeviceDefs.cuh ``GPU_MAX_SELECTION_K``).
GPU_MAX_K = 2048


def neighbour_graph(emb: np.ndarray, k: int, min_sim: float, max_degree: int | None = None,
                    batch: int = 4096, **index_kwargs):
    """Every pair of rows with cosine ≥ ``min_sim``, as a symmetric scipy CSR matrix
    (n, n) of float32 cosines, self excluded, each row sorted by column.

    A k-nearest-neighbour search finds most rows' neighbours; a row whose k-th neighbour is
    still ≥ ``min_sim`` (its list was cut short: a dense region) is searched again with a
    FAISS range search at ``min_sim``, so no row's neighbourhood is truncated, as
    sentence-transformers' community_detection grows its top-k until it passes the
    threshold. GPU indexes have no range search: there the cut rows are searched again
    with k doubled up to :data:`GPU_MAX_K` results, the row itself included. ``max_degree``
    keeps only a cut row's ``max_degree`` most similar neighbours (a cluster centre claims at
    most ``cluster.max_cluster_size`` texts anyway): on CPU a kNN search of ``max_degree + 1``
    then, not a range search, so memory stays O(batch · max_degree) however dense the region.
    Searches run ``batch`` rows at a time. ``emb``: float32
    (n, d) L2-normalized. Memory O(n·k + edges)."""
    n = len(emb)
    sims, ids, index = _search(emb, k, **index_kwargs)
    kk = sims.shape[1]
    cut = np.flatnonzero(sims[:, -1] >= min_sim) if kk and kk < n - 1 else np.zeros(0, np.int64)
    # only the hits above the threshold, as row-index dtype (int32 below 2^31 rows): in dense
    # regions the hits are most of the memory (bench/cold_night.py: 29M in a 177k-text part)
    above = sims >= min_sim
    above[cut] = False                 # cut rows: the range search below lists their neighbours
    r, c = np.nonzero(above)
    del above
    itype = _row_dtype(n)
    src, dst, val = [r.astype(itype)], [ids[r, c].astype(itype)], [sims[r, c]]
    del r, c, sims, ids
    n_cut = len(cut)
    if n_cut:
        q = np.ascontiguousarray(emb[cut], dtype=np.float32)
        if max_degree and not type(index).__name__.startswith("Gpu"):
            # capped: the max_degree + 1 nearest (the row itself may be one) are what a range
            # search then a cap would keep, in O(batch · max_degree) memory: a range search
            # lists every hit of a dense region first (4096 rows × 100k near-duplicates = 400M)
            m = min(max_degree + 1, n)
            for b in range(0, len(cut), batch):
                d, i = index.search(q[b:b + batch], m)
                hit = (d >= min_sim) & (i >= 0)
                src.append(np.repeat(cut[b:b + batch].astype(itype), hit.sum(axis=1)))
                dst.append(i[hit].astype(itype))
                val.append(d[hit].astype(np.float32))
        elif hasattr(index, "range_search") and not type(index).__name__.startswith("Gpu"):
            for b in range(0, len(cut), batch):
                lims, dist, found = index.range_search(q[b:b + batch], float(min_sim))
                counts = np.diff(lims.astype(np.int64))
                part = (np.repeat(cut[b:b + batch].astype(itype), counts), found.astype(itype),
                        dist.astype(np.float32))
                if max_degree and counts.max(initial=0) > max_degree + 1:
                    # + 1: the row itself may be among them; only the long rows are sorted
                    long_rows = np.repeat(counts > max_degree + 1, counts)
                    top = _top_per_row(*(a[long_rows] for a in part), max_degree + 1)
                    part = tuple(np.concatenate([a[~long_rows], t]) for a, t in zip(part, top))
                src.append(part[0])
                dst.append(part[1])
                val.append(part[2])
        else:
            # widened k for the rows still cut, doubling, up to the GPU's limit (or max_degree:
            # no more is kept), ``batch`` rows at a time: host memory O(batch · k)
            top = min(GPU_MAX_K - 1, n - 1, max_degree or n)      # + 1 below: the row itself

            def keep(rows, d, i):      # a row's hits come most similar first: max_degree as on CPU
                m = d.shape[1] if not max_degree else min(d.shape[1], max_degree + 1)
                src.append(np.repeat(rows, m))
                dst.append(i[:, :m].ravel())
                val.append(d[:, :m].ravel())

            for b in range(0, len(cut), batch):
                rows, qb, kq = cut[b:b + batch], q[b:b + batch], kk
                while len(rows):
                    kq = min(2 * kq, top)
                    d, i = index.search(qb, kq + 1)
                    done = (d[:, -1] < min_sim) | (kq >= top)     # at the limit: keep what it found
                    keep(rows[done], d[done], i[done])
                    rows, qb = rows[~done], qb[~done]
        log.info("neighbour graph: %d rows had more than %d neighbours above %.2f", n_cut, kk, min_sim)
    del index                          # its copy of the vectors is not needed for the graph
    src, dst, val = (np.concatenate(a) for a in (src, dst, val))
    return symmetric_graph(n, src, dst, val, min_sim)


def _row_dtype(n: int):
    """The smallest integer dtype that holds row indices 0..n-1 (and -1): int32 or int64."""
    return np.int32 if n < 2**31 else np.int64


def symmetric_graph(n: int, src: np.ndarray, dst: np.ndarray, val: np.ndarray, min_sim: float):
    """Directed search hits (row ``src`` found ``dst`` at cosine ``val``; ``dst`` -1 = none)
    → symmetric scipy CSR (n, n) of the pairs with cosine ≥ ``min_sim``, no self loops, each
    row sorted by column. A pair found from both ends keeps each direction's own cosine (the
    two searches may differ in the last bits); a pair found from one end gets that cosine in
    both directions. Indices int32 below 2^31 rows. Memory about 3x the symmetric entries'
    (12 bytes each), built with scipy's sparse operations, not by sorting pair keys.

    :raises ValueError: a directed pair is listed twice (a search lists a neighbour once)."""
    from scipy.sparse import csr_matrix

    itype = _row_dtype(n)
    ok = (dst >= 0) & (val >= min_sim) & (dst != src)
    direct = csr_matrix((val[ok].astype(np.float32, copy=False),
                         (src[ok].astype(itype, copy=False), dst[ok].astype(itype, copy=False))), shape=(n, n))
    if direct.nnz != int(ok.sum()):
        raise ValueError("a directed pair is listed twice")
    del ok
    reverse = direct.T.tocsr()         # (j, i) for every hit i → j
    # the reverse entries that no hit found directly: the positions of the others are marked
    position = csr_matrix((np.arange(1, reverse.nnz + 1, dtype=np.float64), reverse.indices, reverse.indptr),
                          shape=(n, n))
    found = position.multiply(direct.astype(bool)).tocsr().data.astype(np.int64) - 1
    del position
    only = np.ones(reverse.nnz, dtype=bool)
    only[found] = False
    rows = np.repeat(np.arange(n, dtype=itype), np.diff(reverse.indptr))[only]
    reverse = csr_matrix((reverse.data[only], (rows, reverse.indices[only])), shape=(n, n))
    del rows, only
    graph = (direct + reverse).tocsr()
    graph.sort_indices()
    return graph


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean share of each row's exact k neighbours that the approximate search found.

    ``approx_ids``/``exact_ids``: int64 (n, k) from :func:`knn` with the same k (id -1 =
    none; exact rows with fewer than k neighbours count only the ones they have). Returns
    a float in 0..1 (recall@k as in Johnson et al. 2019, averaged over queries)."""
    if exact_ids.size == 0:
        return 1.0
    found = 0
    total = 0
    for a, e in zip(approx_ids, exact_ids):
        e = e[e >= 0]
        found += np.isin(e, a[a >= 0]).sum()
        total += len(e)
    return float(found / total) if total else 1.0


def coarse_cells(n: int, max_part: int) -> int:
    """How many coarse k-means cells split ``n`` texts into parts of about ``max_part / 2``:
    ``2 · ceil(n / max_part)`` (twice what is strictly needed, so that uneven cells still
    stay under ``max_part`` most of the time); 1 when n ≤ ``max_part``."""
    return 1 if n <= max_part else 2 * math.ceil(n / max_part)


def coarse_centroids(train: np.ndarray, cells: int, seed: int = 0) -> np.ndarray:
    """float32 (cells, d) spherical k-means centroids of ``train`` (float32 (m, d),
    L2-normalized, m ≥ cells), trained with ``faiss.Kmeans`` (20 iterations, seeded)."""
    faiss = _faiss()
    train = np.ascontiguousarray(train, dtype=np.float32)
    km = faiss.Kmeans(train.shape[1], cells, niter=20, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=max(39, len(train) // cells + 1))
    km.train(train)
    return km.centroids.copy()


def nearest_centroid(emb: np.ndarray, centroids: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """int64 (n,) index of the centroid with the largest inner product with each row of
    ``emb`` (float (n, d)), the lowest index on a tie; ``centroids`` float (c, d).

    A row's answer never depends on the other rows searched with it (Spark sends the rows
    of a locale in batches of any size): float32 products round differently by batch
    shape (FAISS's flat search switches from SIMD to BLAS at 20 queries; measured on rows
    near two centroids: 189 of 2,000 changed part between one batch and single rows). So
    scores are float64, and a row whose two best lie within 1e-9 is rescored with a
    fixed-order sum of its own products. Memory O(chunk · (d + c)) float64."""
    c = np.asarray(centroids, dtype=np.float64)
    part = np.empty(len(emb), dtype=np.int64)
    for b in range(0, len(emb), chunk):
        e = np.asarray(emb[b:b + chunk], dtype=np.float64)
        scores = e @ c.T
        part[b:b + chunk] = scores.argmax(axis=1)
        if c.shape[0] > 1:
            top2 = np.partition(scores, -2, axis=1)[:, -2:]
            for rows in np.array_split(np.flatnonzero(top2[:, 1] - top2[:, 0] < 1e-9), 1 + len(e) // 256):
                if len(rows):    # elementwise products, summed along d in numpy's fixed order
                    part[b + rows] = (e[rows, None, :] * c[None, :, :]).sum(axis=2).argmax(axis=1)
    return part


def coarse_partition(emb: np.ndarray, max_part: int, seed: int = 0, sample: int = 100_000) -> np.ndarray:
    """int64 (n,) coarse part of each row, for a locale too large for one task.

    Parts are clustered independently: variants lie near each other, so they fall in the
    same k-means cell far more often than not (pairs cut at a cell border are lost; the
    variant benchmark measures how many). Centroids (:func:`coarse_centroids`, one per
    :func:`coarse_cells`) are trained on at most ``sample`` seeded rows. ``emb``: float32
    (n, d) L2-normalized. Returns zeros when n ≤ ``max_part``."""
    n = len(emb)
    cells = coarse_cells(n, max_part)
    if cells == 1:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train = emb[np.sort(rng.choice(n, size=min(n, sample), replace=False))]
    return nearest_centroid(emb, coarse_centroids(train, cells, seed))
