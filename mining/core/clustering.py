"""Variant clusters from a kNN graph (pure numpy/scipy; no Spark, no model).

The clusters are the communities of sentence-transformers' ``util.community_detection``
(Reimers & Gurevych; "fast community detection"), computed on the sparse kNN graph
instead of the dense n × n similarity matrix, so they cost O(n·k) after the FAISS search
instead of O(n²·d):

1. edges: every pair with cosine ≥ ``min_sim`` (:func:`mining.core.index.neighbour_graph`:
   kNN lists, and a range search for the texts whose k-th neighbour is still above the
   threshold); a text's *candidate community* is itself and its neighbours;
2. greedy: candidates are taken largest first (ties → lower index); each claims its
   still-unclaimed members (at most ``max_cluster_size``, the most similar first) and
   becomes a cluster when at least two texts remain; every other text is a singleton.

Every cluster is a *star*: each member is within ``min_sim`` of the cluster's centre, so
a path of near neighbours (A~B~C~…) can never chain unrelated requests into one giant
cluster, the failure of connected components on similarity graphs. Like the peer, no
candidate community is cut at k (the range search); what differs is the approximate index
(``bench/variants.py`` measures how many of the peer's pairs survive) and one memory bound:
a text with more than ``max_cluster_size`` neighbours keeps only its ``max_cluster_size``
most similar (:func:`mining.core.index.neighbour_graph`'s ``max_degree``). In a region that
dense, a text whose kept neighbours were all claimed by larger clusters stays a singleton
where the peer would have grouped it with the region's other leftovers. The greedy
step is the peer's own (sentence_transformers.util.community_detection, step 2); no graph
library offers it for a sparse graph, hence the twenty lines here.

The medoid of a cluster is the member with the highest mean cosine to the others. For
L2-normalized rows that is the member with the largest dot product with the cluster's sum
vector (Σ_j x_i·x_j = x_i·Σ_j x_j), so it costs O(s·d), not O(s²·d).
"""
from __future__ import annotations

import numpy as np


#: Rows per block of :func:`medoids`' float64 arithmetic (a block holds whole clusters).
_BLOCK_ROWS = 16_384


def medoids(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 (C,) row index of each cluster's medoid: the highest summed cosine to the
    members, its own included; equal scores → the lowest index. The own term is 1 only up
    to float32 rounding (about 1e-7), so in a cluster of two (whose members' cosines to each
    other are one number) that rounding, not the index, decides: deterministic all the same.
    Taking the term out changed 175 of the demo's 3,013 medoids, and with them which member
    of a pair is scored as the centre downstream, for no gain in quality: kept as it is.

    ``emb``: float32 (n, d) L2-normalized rows; ``labels``: int (n,) in 0..C-1, every
    label used. Time O(n·d), memory O(C·d) (float64 sums; rows in blocks of ``_BLOCK_ROWS``)."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    n_clusters = int(labels.max()) + 1
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(n_clusters))
    # float64 sums and scores, a block of rows at a time: no (n, d) float64 copy of ``emb``
    sums = np.empty((n_clusters, emb.shape[1]), dtype=np.float64)
    block = max(1, _BLOCK_ROWS)
    c0 = 0
    while c0 < n_clusters:                          # whole clusters, about ``block`` rows
        c1 = max(c0 + 1, int(np.searchsorted(starts, starts[c0] + block, side="right")) - 1)
        r0, r1 = starts[c0], (starts[c1] if c1 < n_clusters else len(labels))
        sums[c0:c1] = np.add.reduceat(emb[order[r0:r1]].astype(np.float64), starts[c0:c1] - r0, axis=0)
        c0 = c1
    score = np.concatenate([np.einsum("ij,ij->i", emb[i:i + block].astype(np.float64), sums[labels[i:i + block]])
                            for i in range(0, len(labels), block)])
    # per cluster: highest score, then lowest index
    best = np.lexsort((np.arange(len(labels)), -score, labels))
    first = np.searchsorted(labels[best], np.arange(n_clusters))
    return best[first].astype(np.int64)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0..C-1 numbered by first member, so they do not depend on scipy's numbering."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def clusters_from_knn(sims: np.ndarray, ids: np.ndarray, min_sim: float, max_cluster_size: int) -> np.ndarray:
    """:func:`clusters_from_graph` of kNN lists: ``sims``/``ids`` float32/int64 (n, k) from
    :func:`mining.core.index.knn` (id -1 = none), edges where the cosine is ≥ ``min_sim``."""
    from mining.core.index import symmetric_graph

    n = len(sims)
    graph = symmetric_graph(n, np.repeat(np.arange(n), sims.shape[1]), ids.ravel(), sims.ravel(), min_sim)
    return clusters_from_graph(graph, max_cluster_size)


def clusters_from_graph(graph, max_cluster_size: int) -> np.ndarray:
    """int64 (n,) cluster labels, 0..C-1, numbered by first member (deterministic).

    ``graph``: symmetric scipy CSR (n, n) of cosines, one entry per neighbour pair above
    the edge threshold, no self loops (:func:`mining.core.index.neighbour_graph`). Star
    communities, largest candidate first (module docstring); texts in no community of two
    or more are singletons. Time O(edges + n log n), memory O(edges)."""
    graph = graph.tocsr()
    n = graph.shape[0]
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    degree = np.diff(indptr)
    labels = np.full(n, -1, dtype=np.int64)
    claimed = np.zeros(n, dtype=bool)
    next_label = 0
    for centre in np.lexsort((np.arange(n), -degree)):
        if degree[centre] == 0:
            break                      # sorted by degree: only singletons remain
        if claimed[centre]:
            continue
        lo, hi = indptr[centre], indptr[centre + 1]
        members, weight = indices[lo:hi], data[lo:hi]
        free = ~claimed[members]
        members, weight = members[free], weight[free]
        if len(members) == 0:
            continue
        if len(members) >= max_cluster_size:
            keep = np.lexsort((members, -weight))[:max_cluster_size - 1]
            members = members[keep]
        labels[centre] = next_label
        labels[members] = next_label
        claimed[centre] = True
        claimed[members] = True
        next_label += 1
    single = labels < 0
    labels[single] = next_label + np.arange(int(single.sum()))
    return _renumber(labels)


def cluster_frame(pdf, *, k: int, min_sim: float, max_cluster_size: int, exact_max_n: int, nprobe: int,
                  device: str, seed: int):
    """One locale's (or coarse part's) texts → their ``clusters`` rows (schemas/clusters.v1).

    :param pdf: pandas DataFrame with ``locale`` (one value), ``text_norm`` (str, unique) and
        ``embedding`` (float32 (d,) L2-normalized, per row); any row order: rows are sorted by
        ``text_norm`` first, so the result does not depend on how Spark delivered them.
    :param k, min_sim: kNN graph of :func:`mining.core.index.neighbour_graph` (cosine edges
        ≥ ``min_sim``), degree capped at ``max_cluster_size``; ``exact_max_n``, ``nprobe``,
        ``device``, ``seed`` choose and seed the FAISS index there.
    :return: one row per text: ``locale``, ``cluster_id`` (``<locale>:<12 hex of the medoid's
        text hash>``), ``text_norm``, ``is_medoid``, ``cluster_size`` (int64), ``medoid_text``,
        ``sim_to_medoid`` (float64 cosine). Memory O(n·k) for the graph plus the n×d vectors.
    """
    import pandas as pd

    from mining.core import index
    from mining.core.text import text_hash

    pdf = pdf.sort_values("text_norm", kind="stable").reset_index(drop=True)
    emb = np.stack(pdf["embedding"].to_numpy()).astype(np.float32)
    graph = index.neighbour_graph(emb, k, min_sim, max_degree=max_cluster_size, exact_max_n=exact_max_n,
                                  nprobe=nprobe, device=device, seed=seed)
    labels = clusters_from_graph(graph, max_cluster_size)
    med_of = medoids(emb, labels)[labels]
    locale = pdf["locale"].iloc[0]
    medoid_text = pdf["text_norm"].to_numpy()[med_of]
    return pd.DataFrame({
        "locale": locale,
        "cluster_id": [f"{locale}:{text_hash(t)[:12]}" for t in medoid_text],
        "text_norm": pdf["text_norm"], "is_medoid": med_of == np.arange(len(pdf)),
        "cluster_size": np.bincount(labels)[labels].astype(np.int64),
        "medoid_text": medoid_text,
        "sim_to_medoid": np.einsum("ij,ij->i", emb, emb[med_of]).astype(np.float64)})
