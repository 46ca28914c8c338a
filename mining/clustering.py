"""Variant clusters from a kNN graph (pure numpy/scipy; no Spark, no model).

Edges join utterances whose cosine ≥ ``min_sim``; clusters are the connected components
of that undirected graph (``scipy.sparse.csgraph.connected_components``). Guard against
chaining (A~B~C~… joining unrelated requests into one giant component): a component
larger than ``max_cluster_size`` is re-split with its own edges at a threshold raised in
steps of ``step`` until every part fits (or the threshold reaches 1, leaving singletons).
The medoid of a cluster is the member with the highest mean cosine to the others.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def clusters_from_knn(sims: np.ndarray, ids: np.ndarray, min_sim: float,
                      max_cluster_size: int, step: float = 0.02) -> np.ndarray:
    """int64 (n,) cluster labels, 0..C-1, numbered by first member (deterministic).

    ``sims``/``ids``: (n, k) from :func:`mining.index.knn`."""
    n = len(sims)
    rows = np.repeat(np.arange(n), sims.shape[1])
    cols, w = ids.ravel(), sims.ravel()
    ok = (cols >= 0) & (w >= min_sim)
    rows, cols, w = rows[ok], cols[ok], w[ok]
    labels = _components(n, rows, cols)
    threshold = min_sim
    while threshold < 1.0:
        sizes = np.bincount(labels)
        big = np.flatnonzero(sizes > max_cluster_size)
        if len(big) == 0:
            break
        threshold += step
        in_big = np.isin(labels, big)
        keep = ~(in_big[rows]) | (w >= threshold)
        rows, cols, w = rows[keep], cols[keep], w[keep]
        labels = _components(n, rows, cols)
    # renumber by first occurrence so labels do not depend on scipy's numbering
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels].astype(np.int64)


def medoids(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 (C,) index of each cluster's medoid (ties → lowest index).

    Memory O(s²) per cluster of size s (bounded by ``max_cluster_size``)."""
    out = np.empty(labels.max() + 1 if len(labels) else 0, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(out) + 1))
    for c in range(len(out)):
        members = order[bounds[c]:bounds[c + 1]]
        if len(members) <= 2:
            out[c] = members[0]
            continue
        sub = emb[members]
        mean_sim = (sub @ sub.T).sum(axis=1)
        out[c] = members[int(np.argmax(mean_sim))]
    return out
