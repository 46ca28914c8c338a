"""Per-locale background of the similarity scale (mining/core/background.py)."""
from __future__ import annotations

import numpy as np
import pytest

from mining.core import background as bgm
from mining.core.background import Background, derive_thresholds, locale_backgrounds, random_pairs


def unit_rows(n, d=16, seed=0, offset=0.0):
    """n random L2-normalized rows; ``offset`` adds a shared direction (a compressed scale)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[:, 0] += offset
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_random_pairs_are_distinct_seeded_and_need_two_texts():
    i, j = random_pairs(5, 1000, seed=3)
    assert (i != j).all() and i.min() >= 0 and max(i.max(), j.max()) <= 4
    i2, j2 = random_pairs(5, 1000, seed=3)
    assert (i == i2).all() and (j == j2).all()
    assert set(j[i == 0]) == {1, 2, 3, 4}          # every other text is drawn
    with pytest.raises(ValueError, match="at least 2"):
        random_pairs(1, 10, seed=0)


def test_background_matches_the_exact_mean_of_all_pairs():
    x = unit_rows(200)
    bg = bgm.background("xx", x, n_pairs=50_000, seed=1)
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    off = s[~np.eye(len(x), dtype=bool)]
    assert bg.mean == pytest.approx(off.mean(), abs=0.005)
    assert bg.std == pytest.approx(off.std(), rel=0.05)
    assert bg.source == "own" and bg.n_texts == 200 and bg.q50 <= bg.q99
    with pytest.raises(ValueError, match="at least 2 rows"):
        bgm.background("xx", x[:1])


def test_relative_cosine_maps_two_encoder_scales_onto_one():
    """The same geometry under a shared offset direction (an e5-like compressed scale): raw
    cosines differ a lot; one relative threshold gives each its own cosine."""
    plain, compressed = unit_rows(400, offset=0.0), unit_rows(400, offset=6.0)
    bp, bc = bgm.background("a", plain, seed=0), bgm.background("b", compressed, seed=0)
    assert bc.mean > bp.mean + 0.5               # compressed: random pairs near 1
    assert bc.cosine_at(0.8) > bp.cosine_at(0.8)
    assert bp.relative(bp.cosine_at(0.6)) == pytest.approx(0.6)
    assert bp.relative(bp.mean) == pytest.approx(0.0) and bp.relative(1.0) == pytest.approx(1.0)
    assert bgm.Background("x", "own", 2, 1, 0.9, 0.05, 0.9, 0.99).cosine_at(2.0) == 1.0   # clipped


def test_small_locales_borrow_a_pooled_background_and_say_so():
    samples = {"de-DE": unit_rows(100, seed=1), "fr-FR": unit_rows(10, seed=2), "en-US": unit_rows(60, seed=3),
               "xx-XX": unit_rows(5, seed=4)}
    groups = {"de-DE": "e5", "fr-FR": "e5", "en-US": "minilm", "xx-XX": "other"}
    out = locale_backgrounds(samples, groups, seed=0)
    assert out["de-DE"].source == "own" and out["en-US"].source == "own"
    assert out["fr-FR"].source == "pooled:e5" and out["fr-FR"].n_texts == 110
    # alone on its encoder with 5 texts: its own encoder's pool, never the other encoders'
    assert out["xx-XX"].source == "pooled:other" and out["xx-XX"].n_texts == 5
    assert locale_backgrounds(samples, groups, seed=0) == out                  # deterministic
    # one text on a 768-d encoder beside 384-d ones: no background, not a concatenation error
    wide = {**samples, "ja-JP": unit_rows(1, d=768, seed=5)}
    assert locale_backgrounds(wide, {**groups, "ja-JP": "wide"}, seed=0)["ja-JP"].source == "none"
    assert locale_backgrounds({"a": unit_rows(1)}, {}, seed=0)["a"].source == "none"


def test_a_pooled_background_pairs_texts_of_one_locale_not_two_languages():
    """Under a multilingual encoder two languages' texts sit apart: cross-locale pairs would
    pull a small locale's pooled mean (and its derived edge) far below any locale's own."""
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(64)

    def lang(n, seed):
        own = np.random.default_rng(seed).standard_normal(64)
        x = 2.0 * shared + 2.0 * own + np.random.default_rng(seed + 100).standard_normal((n, 64))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    samples = {"de-DE": lang(2000, 1), "fr-FR": lang(2000, 2), "it-IT": lang(2000, 3), "sw-KE": lang(30, 4)}
    out = locale_backgrounds(samples, dict.fromkeys(samples, "e5"), seed=0)
    own = [out[k].mean for k in ("de-DE", "fr-FR", "it-IT")]
    assert out["sw-KE"].source == "pooled:e5" and out["sw-KE"].n_texts == 6030
    assert min(own) - 0.02 < out["sw-KE"].mean < max(own) + 0.02
    mixed = bgm.background("sw-KE", np.concatenate(list(samples.values())), seed=0)      # the old pool
    assert mixed.mean < min(own) - 0.1


def test_a_nan_embedding_is_refused_naming_the_locale():
    emb = unit_rows(200, seed=1)
    emb[7] = np.nan
    with pytest.raises(ValueError, match="de-DE: 1 embeddings hold NaN"):
        bgm.background("de-DE", emb)


def test_derived_thresholds_are_cosines_of_the_fitted_z_or_the_configured_fallback():
    bg = Background("de-DE", "own", 2000, 20000, mean=0.8, std=0.04, q50=0.8, q99=0.9)
    d = derive_thresholds(bg, cluster_rel=0.8, variant_rel=0.9, cluster_default=0.75, variant_default=0.8)
    assert d["cluster_min_sim"] == pytest.approx(0.96) and d["variant_min_sim"] == pytest.approx(0.98)
    assert d["source"] == "own" and d["n_texts"] == 2000
    none = derive_thresholds(bgm.none_background("yy"), cluster_rel=0.8, variant_rel=0.9, cluster_default=0.75,
                             variant_default=0.8)
    assert none["cluster_min_sim"] == 0.75 and none["variant_min_sim"] == 0.8 and none["source"] == "none"


def test_config_for_locale_prefers_override_then_derived_then_global():
    from mining.config import load_config

    c = load_config("-", "-", overrides={"cluster": {"min_sim_by_locale": {"zh-CN": 0.9}},
                                         "aggregation": {"variant_min_sim_by_locale": {"zh-CN": 0.95}}})
    derived = {"cluster_min_sim": 0.93, "variant_min_sim": 0.97}          # an older run: cosines only
    assert c.cluster.for_locale("zh-CN", derived).min_sim == 0.9
    assert c.cluster.for_locale("de-DE", derived).min_sim == 0.93
    assert c.cluster.for_locale("de-DE").min_sim == c.cluster.min_sim
    assert c.aggregation.for_locale("zh-CN", derived).variant_min_sim == 0.95
    assert c.aggregation.for_locale("de-DE", derived).variant_min_sim == 0.97
    assert c.aggregation.for_locale("de-DE").variant_min_sim == c.aggregation.variant_min_sim


def test_a_stage_rerun_with_another_relative_threshold_applies_it():
    """cluster_variants or aggregate_labels rerun with --set cluster.min_sim_rel=… on an OUT
    whose detect_rephrases stored the background: the new r applies, not the stored cosine."""
    from mining.config import load_config

    bg = Background("de-DE", "own", 2000, 20000, mean=0.85, std=0.04, q50=0.85, q99=0.95)
    stored = derive_thresholds(bg, cluster_rel=0.8, variant_rel=0.85, cluster_default=0.75, variant_default=0.8)
    same = load_config("-", "-", overrides={"cluster": {"min_sim_rel": 0.8}, "aggregation": {"variant_min_sim_rel": 0.85}})
    assert same.cluster.for_locale("de-DE", stored).min_sim == stored["cluster_min_sim"] == 0.97
    assert same.aggregation.for_locale("de-DE", stored).variant_min_sim == stored["variant_min_sim"]
    rerun = load_config("-", "-", overrides={"cluster": {"min_sim_rel": 0.5}, "aggregation": {"variant_min_sim_rel": 0.6}})
    assert rerun.cluster.for_locale("de-DE", stored).min_sim == pytest.approx(0.925)
    assert rerun.aggregation.for_locale("de-DE", stored).variant_min_sim == pytest.approx(0.94)
    none = derive_thresholds(bgm.none_background("yy"), cluster_rel=0.8, variant_rel=0.85, cluster_default=0.75,
                             variant_default=0.8)
    other = load_config("-", "-", overrides={"cluster": {"min_sim": 0.7}})
    assert other.cluster.for_locale("yy", none).min_sim == 0.7         # no background: this run's cosine


def test_default_config_ships_no_per_locale_table():
    from mining.config import load_config

    c = load_config("-", "-")
    assert c.rephrase.threshold_by_locale == {} and c.cluster.min_sim_by_locale == {}
    assert c.aggregation.variant_min_sim_by_locale == {} and c.aggregation.min_events_by_locale == {}


def test_read_derived_is_empty_without_a_run(tmp_path):
    assert bgm.read_derived(tmp_path) == {}


def test_scale_free_features_are_relative_cosines():
    from mining.core.rephrase_model import REL_CLIP, scale_free

    np.testing.assert_allclose(scale_free([0.85, 1.0, 0.9], [0.85, 0.85, 0.5]), [0.0, 1.0, 0.8])
    np.testing.assert_allclose(scale_free([0.03], [0.85], offset=False), [0.2])
    assert scale_free([-1.0], [0.99])[0] == -REL_CLIP
    with pytest.raises(ValueError, match="< 1"):
        scale_free([0.5], [1.0])
