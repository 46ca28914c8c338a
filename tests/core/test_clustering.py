import numpy as np
import pytest

from mining.core.clustering import clusters_from_knn, medoids
from mining.core.index import knn


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_knn_excludes_self_and_sorts_by_similarity():
    emb = _unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    sims, ids = knn(emb, k=2)
    assert ids.shape == (4, 2)
    assert (ids != np.arange(4)[:, None]).all()
    assert list(ids[:, 0]) == [1, 0, 3, 2]
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_knn_ivf_finds_the_exact_neighbours_on_separated_data():
    rng = np.random.default_rng(0)
    centers = _unit(rng.normal(size=(20, 16)))
    emb = _unit(np.repeat(centers, 60, axis=0) + 0.05 * rng.normal(size=(1200, 16)))
    _, exact = knn(emb, k=5, exact_max_n=10_000)
    _, approx = knn(emb, k=5, exact_max_n=100, nprobe=8)
    same_center = (approx // 60) == (np.arange(1200)[:, None] // 60)
    assert same_center.mean() > 0.99 and (exact // 60 == approx // 60).mean() > 0.99


def test_clusters_are_connected_components_above_min_sim():
    # two tight groups and one outlier
    emb = _unit([[1, 0, 0], [0.95, 0.05, 0], [0.9, 0.1, 0], [0, 1, 0], [0.05, 0.95, 0], [0, 0, 1]])
    sims, ids = knn(emb, k=3)
    labels = clusters_from_knn(sims, ids, min_sim=0.9, max_cluster_size=10)
    assert list(labels) == [0, 0, 0, 1, 1, 2]


def test_a_chain_of_near_neighbours_is_not_one_cluster():
    # points on an arc: each is close to its neighbours, the ends are unrelated (cos 0)
    angles = np.linspace(0, np.pi / 2, 40)
    emb = _unit(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    sims, ids = knn(emb, k=4)
    labels = clusters_from_knn(sims, ids, min_sim=0.95, max_cluster_size=1000)
    assert labels.max() > 0
    # every cluster is a star: all members within min_sim of its medoid (here its centre)
    med = medoids(emb, labels)
    assert (np.einsum("ij,ij->i", emb, emb[med[labels]]) >= 0.95).all()
    assert (np.bincount(labels)[labels] > 1).mean() > 0.9     # arcs, not singletons


def test_max_cluster_size_caps_what_a_centre_claims():
    rng = np.random.default_rng(1)
    emb = _unit(_unit(rng.normal(size=(1, 16))) + 0.05 * rng.normal(size=(200, 16)))
    sims, ids = knn(emb, k=199)
    labels = clusters_from_knn(sims, ids, min_sim=0.75, max_cluster_size=50)
    assert np.bincount(labels).max() == 50
    assert clusters_from_knn(sims, ids, min_sim=0.75, max_cluster_size=1000).max() == 0


def test_equals_community_detection_with_a_complete_graph():
    """With every neighbour listed (k = n - 1, exact search) the clusters are exactly the
    communities of sentence-transformers' community_detection (min_community_size 2)."""
    import torch
    from sentence_transformers.util import community_detection

    rng = np.random.default_rng(5)
    centers = _unit(rng.normal(size=(12, 24)))
    emb = _unit(np.repeat(centers, 25, axis=0) + 0.12 * rng.normal(size=(300, 24)))
    communities = community_detection(torch.from_numpy(emb), threshold=0.75, min_community_size=2)
    sims, ids = knn(emb, k=len(emb) - 1)
    labels = clusters_from_knn(sims, ids, min_sim=0.75, max_cluster_size=10_000)
    ours = {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}
    theirs = {frozenset(c) for c in communities}
    assert len(theirs) > 5 and any(len(c) > 2 for c in theirs)
    assert {c for c in ours if len(c) > 1} == theirs


def test_medoid_is_the_most_central_member():
    emb = _unit([[1, 0], [0.8, 0.2], [0.6, 0.4], [0, 1]])
    labels = np.array([0, 0, 0, 1])
    assert list(medoids(emb, labels)) == [1, 3]


@pytest.mark.parametrize("k", [1, 5])
def test_knn_on_tiny_inputs(k):
    sims, ids = knn(_unit([[1, 0]]), k=k)
    assert sims.shape == (1, 0)


def test_ivf_under_a_tiny_exact_max_n_keeps_one_cell():
    """n // 39 is 0 below 39 texts: the IVF index still gets a cell (FAISS refused nprobe 0)."""
    emb = _unit(np.random.default_rng(0).standard_normal((30, 8)))
    sims, ids = knn(emb, k=5, exact_max_n=10)
    assert ids.shape == (30, 5) and (ids >= 0).all()


def test_medoid_matches_the_quadratic_definition():
    rng = np.random.default_rng(2)
    emb = _unit(rng.normal(size=(200, 8)))
    labels = rng.integers(0, 7, size=200)
    labels = np.unique(labels, return_inverse=True)[1]
    got = medoids(emb, labels)
    for c in range(labels.max() + 1):
        members = np.flatnonzero(labels == c)
        sub = emb[members]
        assert got[c] == members[int(np.argmax((sub @ sub.T).sum(axis=1)))]


def test_labels_do_not_depend_on_input_ids_numbering():
    emb = _unit([[1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0.05, 0.95, 0]])
    sims, ids = knn(emb, k=1)
    assert list(clusters_from_knn(sims, ids, min_sim=0.9, max_cluster_size=10)) == [0, 0, 1, 1]


def test_recall_at_k_counts_found_exact_neighbours():
    from mining.core.index import recall_at_k

    exact = np.array([[1, 2], [0, 2], [0, -1]])
    approx = np.array([[2, 3], [0, 2], [1, -1]])
    assert recall_at_k(approx, exact) == pytest.approx(3 / 5)
    assert recall_at_k(exact, exact) == 1.0


def test_coarse_partition_keeps_separated_groups_together():
    from mining.core.index import coarse_cells, coarse_partition

    rng = np.random.default_rng(3)
    centers = _unit(rng.normal(size=(16, 16)))
    emb = _unit(np.repeat(centers, 250, axis=0) + 0.02 * rng.normal(size=(4000, 16)))
    assert coarse_cells(4000, 5000) == 1 and coarse_cells(4000, 2000) == 4
    assert (coarse_partition(emb, max_part=5000) == 0).all()
    part = coarse_partition(emb, max_part=2000, seed=0)
    # every tight group lands in one part, the parts are used, and the result is seeded
    assert all(len(np.unique(part[g * 250:(g + 1) * 250])) == 1 for g in range(16))
    assert len(np.unique(part)) > 1
    assert (part == coarse_partition(emb, max_part=2000, seed=0)).all()


def test_cluster_metrics_on_a_hand_computed_case():
    from mining.eval.evaluation import cluster_metrics

    # clusters {a,a,b} {b} {c,c}: purity (2+1+2)/6
    m = cluster_metrics(np.array([0, 0, 0, 1, 2, 2]), np.array(["a", "a", "b", "b", "c", "c"]))
    assert m["purity"] == pytest.approx(5 / 6)
    assert m["clusters"] == 3 and m["clustered_share"] == pytest.approx(5 / 6)
    assert m["pair_precision"] == pytest.approx(2 / 4)   # pairs: aa ab ab cc → 2 same
    perfect = cluster_metrics(np.array([0, 0, 1]), np.array(["x", "x", "y"]))
    assert perfect["ari"] == pytest.approx(1.0) and perfect["v_measure"] == pytest.approx(1.0)


def _faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


@pytest.mark.gpu
@pytest.mark.skipif(_faiss_gpus() == 0, reason="no faiss GPU (faiss-cpu or no CUDA device): GPU kNN path not tested here")
def test_gpu_knn_matches_cpu():
    rng = np.random.default_rng(4)
    emb = _unit(rng.normal(size=(5000, 64)))
    cpu_sims, cpu_ids = knn(emb, k=10, device="cpu")
    gpu_sims, gpu_ids = knn(emb, k=10, device="cuda")
    assert (cpu_ids == gpu_ids).mean() > 0.99
    assert np.allclose(cpu_sims, gpu_sims, atol=1e-4)
    # IVF on GPU: recall@10 against exact stays high
    from mining.core.index import recall_at_k

    _, ivf_ids = knn(emb, k=10, exact_max_n=100, nprobe=64, device="cuda")
    _, ivf_cpu = knn(emb, k=10, exact_max_n=100, nprobe=64, device="cpu")
    assert abs(recall_at_k(ivf_ids, cpu_ids) - recall_at_k(ivf_cpu, cpu_ids)) < 0.02


def _dense_groups(seed=5):
    rng = np.random.default_rng(seed)
    centers = _unit(rng.normal(size=(12, 24)))
    return _unit(np.repeat(centers, 25, axis=0) + 0.12 * rng.normal(size=(300, 24)))


def test_neighbour_graph_holds_every_pair_above_the_threshold_even_with_a_small_k():
    from mining.core.index import neighbour_graph

    emb = _dense_groups()
    graph = neighbour_graph(emb, k=3, min_sim=0.75)           # groups of 25: every list is cut at 3
    full = emb @ emb.T
    np.fill_diagonal(full, -1)
    want = full >= 0.75
    assert (graph.toarray() > 0).sum() == want.sum()
    assert ((graph.toarray() > 0) == want).all()
    assert np.allclose(graph.toarray()[want], full[want], atol=1e-5)


def test_graph_communities_equal_community_detection_with_a_small_k():
    import torch
    from sentence_transformers.util import community_detection

    from mining.core.clustering import clusters_from_graph
    from mining.core.index import neighbour_graph

    emb = _dense_groups()
    communities = community_detection(torch.from_numpy(emb), threshold=0.75, min_community_size=2)
    labels = clusters_from_graph(neighbour_graph(emb, k=4, min_sim=0.75), max_cluster_size=10_000)
    ours = {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}
    assert {c for c in ours if len(c) > 1} == {frozenset(c) for c in communities}


@pytest.mark.gpu
@pytest.mark.skipif(_faiss_gpus() == 0, reason="no faiss GPU (faiss-cpu or no CUDA device): GPU range-search fallback not tested here")
def test_gpu_neighbour_graph_matches_cpu():
    from mining.core.index import neighbour_graph

    emb = _dense_groups()
    cpu = neighbour_graph(emb, k=3, min_sim=0.75, device="cpu").toarray() > 0
    gpu = neighbour_graph(emb, k=3, min_sim=0.75, device="cuda").toarray() > 0
    assert (cpu == gpu).mean() > 0.999


def test_neighbour_graph_max_degree_keeps_the_most_similar():
    from mining.core.index import neighbour_graph

    emb = _dense_groups()
    full = neighbour_graph(emb, k=3, min_sim=0.75).toarray()
    capped = neighbour_graph(emb, k=3, min_sim=0.75, max_degree=5, batch=7).toarray()
    assert ((capped > 0) <= (full > 0)).all()            # a subset of the true edges
    for i in range(len(emb)):                              # each capped row kept its top 5 (or more via symmetry)
        top = np.sort(full[i][full[i] > 0])[::-1][:5]
        assert np.isin(np.round(top, 5), np.round(capped[i][capped[i] > 0], 5)).all()


def test_cluster_frame_groups_near_vectors_and_ignores_row_order():
    """Two tight pairs of 2-d unit vectors, far apart: two clusters of two, medoid per cluster,
    the same rows whatever order the texts arrive in (Spark gives no order)."""
    import pandas as pd

    from mining.core.clustering import cluster_frame

    angles = {"a1": 0.0, "a2": 0.05, "b1": 1.5, "b2": 1.55}
    pdf = pd.DataFrame({"locale": "xx-XX", "text_norm": list(angles),
                        "embedding": [np.array([np.cos(t), np.sin(t)], np.float32) for t in angles.values()]})
    kw = dict(k=3, min_sim=0.9, max_cluster_size=10, exact_max_n=100, nprobe=1, device="cpu", seed=0)
    out = cluster_frame(pdf, **kw)
    assert out["cluster_size"].tolist() == [2, 2, 2, 2] and out["is_medoid"].sum() == 2
    members = out.groupby("cluster_id")["text_norm"].apply(lambda s: "".join(sorted(s)))
    assert sorted(members) == ["a1a2", "b1b2"]
    assert (out["sim_to_medoid"] > 0.99).all()
    shuffled = cluster_frame(pdf.iloc[[3, 1, 0, 2]], **kw)
    pd.testing.assert_frame_equal(out, shuffled)


def test_symmetric_graph_keeps_each_directions_cosine_and_drops_non_edges():
    from mining.core.index import symmetric_graph

    # 0→1 and 1→0 found with different last bits; 2→0 one-sided; 3→3 self; 1→-1 none; 2→3 below
    src = np.array([0, 1, 2, 3, 1, 2])
    dst = np.array([1, 0, 0, 3, -1, 3])
    val = np.array([0.9, 0.9000001, 0.8, 1.0, 0.95, 0.5], dtype=np.float32)
    g = symmetric_graph(4, src, dst, val, min_sim=0.75)
    assert g.indices.dtype == np.int32 and g.has_sorted_indices
    dense = g.toarray()
    assert dense[0, 1] == np.float32(0.9) and dense[1, 0] == np.float32(0.9000001)
    assert dense[2, 0] == dense[0, 2] == np.float32(0.8)
    assert g.nnz == 4 and dense[3, 3] == 0 and dense[2, 3] == 0
    with pytest.raises(ValueError, match="listed twice"):
        symmetric_graph(3, np.array([0, 0]), np.array([1, 1]), np.array([0.9, 0.9], dtype=np.float32), 0.75)


def test_medoids_in_blocks_equal_medoids_in_one_block(monkeypatch):
    from mining.core import clustering

    rng = np.random.default_rng(4)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.integers(0, 40, size=500)
    labels = np.unique(labels, return_inverse=True)[1]
    whole = medoids(emb, labels)
    monkeypatch.setattr(clustering, "_BLOCK_ROWS", 7)       # smaller than most clusters
    assert np.array_equal(medoids(emb, labels), whole)
    monkeypatch.setattr(clustering, "_BLOCK_ROWS", 1)
    assert np.array_equal(medoids(emb, labels), whole)


def test_nearest_centroid_does_not_depend_on_the_rows_searched_with_it():
    """Found in review: FAISS's flat search rounds differently below and above 20 queries, so
    a row near two centroids changed part with the size of the batch Spark sent it in."""
    from mining.core.index import nearest_centroid

    rng = np.random.default_rng(0)
    cent = _unit(rng.normal(size=(40, 384)))
    a, b = rng.integers(0, 40, 2000), rng.integers(0, 40, 2000)
    emb = _unit(cent[a] + cent[b] + 1e-6 * rng.normal(size=(2000, 384)))      # near-ties
    whole = nearest_centroid(emb, cent)
    for size in (1, 7, 19, 20, 500):
        assert (np.concatenate([nearest_centroid(emb[i:i + size], cent) for i in range(0, 2000, size)])
                == whole).all(), size
    assert (nearest_centroid(emb, cent, chunk=300) == whole).all()
    assert set(whole) <= set(a) | set(b) and whole.dtype == np.int64
    exact = (emb.astype(np.float64)[:, None, :] * cent.astype(np.float64)[None]).sum(axis=2)
    assert (exact[np.arange(2000), whole] >= exact.max(axis=1) - 1e-9).all()     # the best, up to 1e-9


def test_gpu_fallback_never_asks_for_more_than_the_gpu_k_limit(monkeypatch):
    """A region denser than GPU_MAX_K on a GPU index (no range search): the widened searches
    stay within the GPU's k-selection limit, the row itself included. The GPU index is a
    stand-in here (its name and its limit); test_gpu_neighbour_graph_matches_cpu runs the
    real one where a GPU is present."""
    from mining.core import index

    asked = []

    class GpuIndexFlatIP:
        def __init__(self, cpu):
            self.cpu = cpu

        def add(self, x):
            self.cpu.add(x)

        def search(self, q, k):
            asked.append((len(q), k))
            if k > index.GPU_MAX_K:
                raise RuntimeError(f"GPU index only supports k up to {index.GPU_MAX_K} (requested {k})")
            return self.cpu.search(q, k)

    monkeypatch.setattr(index, "_to_gpu", GpuIndexFlatIP)
    rng = np.random.default_rng(0)
    emb = (np.eye(16, dtype=np.float32)[0] + 0.01 * rng.standard_normal((3000, 16))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    graph = index.neighbour_graph(emb, 64, 0.8, device="cuda", batch=1024)
    widened = asked[1:]                                   # asked[0]: the first kNN search of every row
    assert max(k for _, k in widened) == index.GPU_MAX_K
    # found in review: the widened searches ran all cut rows at once, and the search at the
    # limit twice; now ``batch`` rows at a time, once per k
    assert max(nq for nq, _ in widened) <= 1024 and len(widened) == len(set(enumerate(widened)))
    assert sum(nq for nq, k in widened if k == index.GPU_MAX_K) <= 3000
    assert graph.getnnz(axis=1).min() >= index.GPU_MAX_K - 1      # every row keeps the most it could
    # max_degree caps a widened row as the CPU's range search does: the same graph on both
    asked.clear()
    capped = index.neighbour_graph(emb, 64, 0.8, max_degree=50, device="cuda")
    assert max(k for _, k in asked[1:]) == 51              # no wider than what max_degree keeps
    cpu = index.neighbour_graph(emb, 64, 0.8, max_degree=50)
    # (kNN and range search round the cosines apart, so near-ties at the cap may swap)
    both = capped.multiply(cpu).nnz
    assert capped.nnz < graph.nnz / 10 and both > 0.99 * max(capped.nnz, cpu.nnz)


def test_a_capped_dense_region_keeps_each_rows_nearest_as_brute_force_does():
    """With max_degree, a row cut short by k keeps its max_degree most similar neighbours
    (a kNN search of max_degree + 1, bounded memory, not a range search listing the whole
    dense region): the graph equals brute force's top max_degree per row, symmetrized."""
    from scipy.sparse import csr_matrix

    from mining.core import index

    rng = np.random.default_rng(0)
    emb = (np.eye(16, dtype=np.float32)[0] + 0.05 * rng.standard_normal((1500, 16))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    graph = index.neighbour_graph(emb, 16, 0.8, max_degree=40)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -1)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :40]
    rows = np.repeat(np.arange(len(emb)), 40)
    keep = sims[rows, top.ravel()] >= 0.8
    brute = csr_matrix((np.ones(keep.sum()), (rows[keep], top.ravel()[keep])), shape=graph.shape)
    brute = ((brute + brute.T) > 0).astype(np.float64)
    both = graph.multiply(brute).nnz
    assert graph.nnz > 40 * len(emb) and both > 0.99 * max(graph.nnz, brute.nnz)

