"""Variant clusters from a kNN graph (pure numpy/scipy; no Spark, no model).

Edges join utterances whose cosine ≥ ``min_sim``; clusters are the connected components
of that undirected graph (``scipy.sparse.csgraph.connected_components``).

Guard against chaining (A~B~C~… joining unrelated requests through a path of near
neighbours into one giant component): every cluster must be a *star* around its medoid,
as the communities of sentence-transformers' ``community_detection`` are (each member
within ``medoid_min_sim`` cosine of the centre), and hold at most ``max_cluster_size``
texts. A component that breaks either rule is peeled: the members within reach of its
medoid form a cluster, the rest splits into its own connected components, and so on.
(Raising the edge threshold instead, as the skeleton did, shatters a uniformly dense
component into singletons: all its edges cross any threshold at once.)

The medoid of a cluster is the member with the highest mean cosine to the others. For
L2-normalized rows that is the member with the largest dot product with the cluster's sum
vector (Σ_j x_i·x_j = x_i·Σ_j x_j), so it costs O(s·d), not O(s²·d).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def medoids(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 (C,) row index of each cluster's medoid; ties → the lowest index.

    ``emb``: float32 (n, d) L2-normalized rows; ``labels``: int (n,) in 0..C-1, every
    label used. Time O(n·d), memory O(C·d)."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    n_clusters = int(labels.max()) + 1
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(n_clusters))
    sums = np.add.reduceat(emb[order].astype(np.float64), starts, axis=0)
    score = np.einsum("ij,ij->i", emb.astype(np.float64), sums[labels])
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


def _peel(members: np.ndarray, emb: np.ndarray, graph, medoid_min_sim: float, cap: int) -> list[np.ndarray]:
    """Split one component into stars: while a part is not a star around its medoid (or is
    larger than ``cap``), the members within ``medoid_min_sim`` of the medoid (at most
    ``cap``, the most similar first) become a cluster and the rest is split again into its
    connected components. Each round removes at least the medoid, so it terminates."""
    out, pending = [], [np.sort(members)]
    while pending:
        part = pending.pop()
        if len(part) == 1:
            out.append(part)
            continue
        sub = emb[part].astype(np.float64)
        centre = int(np.argmax(sub @ sub.sum(axis=0)))
        sim = sub @ sub[centre]
        inside = sim >= medoid_min_sim - 1e-6
        inside[centre] = True
        if inside.all() and len(part) <= cap:
            out.append(part)
            continue
        if inside.sum() > cap:
            ranked = np.lexsort((np.arange(len(part)), -sim))
            inside[:] = False
            inside[ranked[:cap]] = True
        out.append(part[inside])
        rest = part[~inside]
        if len(rest):
            sub_labels = connected_components(graph[rest][:, rest], directed=False)[1]
            order = np.argsort(sub_labels, kind="stable")
            bounds = np.flatnonzero(np.diff(sub_labels[order])) + 1
            pending.extend(rest[g] for g in np.split(order, bounds))
    return out


def clusters_from_knn(sims: np.ndarray, ids: np.ndarray, emb: np.ndarray, min_sim: float,
                      max_cluster_size: int, medoid_min_sim: float | None = None) -> np.ndarray:
    """int64 (n,) cluster labels, 0..C-1, numbered by first member (deterministic).

    ``sims``/``ids``: float32/int64 (n, k) from :func:`mining.index.knn` (id -1 = none);
    ``emb``: float32 (n, d) L2-normalized rows (for medoids). Components that are not a star
    within ``medoid_min_sim`` (default ``min_sim``) of their medoid, or hold more than
    ``max_cluster_size`` texts, are peeled into stars (module docstring). Time
    O(n·k + n·d) plus O(s·d) per peeling round of a broken component of size s."""
    n = len(sims)
    radius = min_sim if medoid_min_sim is None else medoid_min_sim
    rows = np.repeat(np.arange(n), sims.shape[1])
    cols, w = ids.ravel(), sims.ravel()
    ok = (cols >= 0) & (w >= min_sim)
    graph = coo_matrix((np.ones(int(ok.sum()), dtype=np.int8), (rows[ok], cols[ok])), shape=(n, n)).tocsr()
    labels = connected_components(graph, directed=False)[1]
    sizes = np.bincount(labels)
    multi = sizes[labels] > 1
    bad = sizes > max_cluster_size
    if multi.any():
        med = medoids(emb, labels)
        sim = np.einsum("ij,ij->i", emb, emb[med[labels]])
        worst = np.full(len(sizes), np.inf)
        np.minimum.at(worst, labels[multi], sim[multi])
        bad |= worst < radius - 1e-6
    next_label = len(sizes)
    for c in np.flatnonzero(bad):
        for part in _peel(np.flatnonzero(labels == c), emb, graph, radius, max_cluster_size)[1:]:
            labels[part] = next_label
            next_label += 1
    return _renumber(labels)
