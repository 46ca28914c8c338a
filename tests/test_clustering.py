import numpy as np
import pytest

from mining.clustering import clusters_from_knn, medoids
from mining.index import knn


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


def test_chaining_guard_splits_a_giant_component():
    # points on an arc: each is close to its neighbours, the ends are unrelated
    angles = np.linspace(0, np.pi / 2, 40)
    emb = _unit(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    sims, ids = knn(emb, k=2)
    loose = clusters_from_knn(sims, ids, min_sim=0.95, max_cluster_size=1000)
    guarded = clusters_from_knn(sims, ids, min_sim=0.95, max_cluster_size=10)
    assert loose.max() == 0                      # one chained component
    assert np.bincount(guarded).max() <= 10


def test_medoid_is_the_most_central_member():
    emb = _unit([[1, 0], [0.8, 0.2], [0.6, 0.4], [0, 1]])
    labels = np.array([0, 0, 0, 1])
    assert list(medoids(emb, labels)) == [1, 3]


@pytest.mark.parametrize("k", [1, 5])
def test_knn_on_tiny_inputs(k):
    sims, ids = knn(_unit([[1, 0]]), k=k)
    assert sims.shape == (1, 0)
