"""Differential privacy mode (mining/privacy/dp.py, [privacy.dp]): properties that can fail.

Statistical tests use fixed keys (the keyed sampler is deterministic), so they do not
flake; their bounds are still what a correct mechanism must meet."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mining.privacy import dp
from mining.config import load_config, parse_set

KEY = b"k" * 32


def _counts(n_texts: int, n_users: int) -> pd.DataFrame:
    return pd.DataFrame({"locale": "en-US", "text_norm": [f"text {i}" for i in range(n_texts)],
                         "n_users": np.full(n_texts, n_users, dtype=np.int64)})


def _dlap_pmf(x: np.ndarray, scale: float) -> np.ndarray:
    a = math.exp(-1 / scale)
    return (1 - a) / (1 + a) * a ** np.abs(x)


# ---------------------------------------------------------------- calibration (OpenDP map)

@pytest.mark.parametrize("eps,delta,L", [(1.0, 1e-6, 4), (0.5, 1e-8, 1), (3.0, 1e-5, 10)])
def test_calibration_meets_the_budget_and_is_tight(eps, delta, L):
    cal = dp.calibrate(eps, delta, L)
    assert cal.epsilon <= eps and cal.delta <= delta
    assert cal.scale == pytest.approx(L / eps)
    # one step lower (true δ at T-1 is the map's δ at T-2, opendp/opendp#2922) breaks δ
    assert dp.measurement(cal.scale, cal.threshold - 2).map((L, L, 1))[1] > delta


def test_opendp_map_off_by_one_is_corrected():
    """The library's own map would allow threshold 3 at scale 1 for δ = 0.05; a one-user
    key is then released at P(Z >= 2) = 0.099 > δ. Our threshold is 4: P(Z >= 3) = 0.036."""
    assert dp.measurement(1.0, 3).map((1, 1, 1))[1] < 0.05
    cal = dp.calibrate(1.0, 0.05, 1)
    assert cal.threshold == 4
    assert cal.delta == pytest.approx(math.exp(-3) / (1 + math.exp(-1)))


# ---------------------------------------------------------------- contribution bounding

def _rows():
    rows = [("u1", "en-US", f"t{i}") for i in range(10) for _ in range(3)]   # 10 texts, said 3x each
    rows += [("u2", "en-US", "t0"), ("u2", "en-US", "t1"), ("u2", "de-DE", "t0")]
    return pd.DataFrame(rows, columns=["user_pseudonym", "locale", "text_norm"])


def test_contribution_bounding_caps_texts_per_user_and_counts_each_pair_once():
    kept = dp.bound_contributions(_rows(), 3, seed=0)
    assert kept.groupby("user_pseudonym").size().to_dict() == {"u1": 3, "u2": 3}
    assert not kept.duplicated().any()
    counts = dp.text_counts(_rows(), 3, seed=0)
    assert counts["n_users"].sum() == 6 and counts["n_users"].max() <= 2
    # a user's kept texts depend on that user alone (per-user transformation)
    other = pd.concat([_rows(), pd.DataFrame({"user_pseudonym": "u3", "locale": "en-US",
                                              "text_norm": [f"t{i}" for i in range(10)]})])
    again = dp.bound_contributions(other, 3, seed=0)
    assert set(again[again.user_pseudonym == "u1"].text_norm) == set(kept[kept.user_pseudonym == "u1"].text_norm)
    # the seed changes which texts a user over the bound keeps
    u1 = {seed: set(dp.bound_contributions(_rows(), 3, seed).query("user_pseudonym == 'u1'").text_norm)
          for seed in range(4)}
    assert len({frozenset(v) for v in u1.values()}) > 1


def test_spark_bounding_equals_the_pandas_reference(spark):
    rows = _rows()
    pdf = rows.rename(columns={"text_norm": "source_text_norm"})
    got = dp.spark_text_counts(spark.createDataFrame(pdf), 3, seed=5).toPandas()
    got = got.sort_values(["locale", "text_norm"]).reset_index(drop=True).astype({"n_users": "int64"})
    pd.testing.assert_frame_equal(got, dp.text_counts(rows, 3, seed=5))


# ---------------------------------------------------------------- the mechanism

@pytest.mark.parametrize("noise", ["keyed", "opendp"])
def test_one_user_texts_are_released_with_probability_at_most_delta(noise):
    cal = dp.calibrate(1.0, 0.05, 1)   # loose δ so the rate is measurable
    n = 4000
    out = dp.select_texts(_counts(n, 1), cal, KEY if noise == "keyed" else None)
    rate = out["dp_users"].notna().mean()
    assert rate <= cal.delta + 4 * math.sqrt(cal.delta * (1 - cal.delta) / n)
    assert rate > 0  # the bound is tight for one text per user: not trivially zero


def test_one_user_texts_are_never_released_at_the_defaults():
    c = load_config("l", "o", environ={}).privacy.dp
    out = dp.select_texts(_counts(5000, 1), dp.calibrate(c.epsilon, c.delta, c.max_texts_per_user), KEY)
    assert out["dp_users"].isna().all()


def test_released_counts_carry_discrete_laplace_noise_of_the_calibrated_scale():
    cal = dp.calibrate(1.0, 1e-6, 4)                  # scale 4
    out = dp.select_texts(_counts(20000, 500), cal, KEY)          # heavy tails: the variance needs n
    assert out["dp_users"].notna().all()              # 500 users ≫ threshold
    noise = (out["dp_users"].astype("int64") - 500).to_numpy()
    a = math.exp(-1 / cal.scale)
    var = 2 * a / (1 - a) ** 2
    assert abs(noise.mean()) < 4 * math.sqrt(var / len(noise))
    assert noise.var() == pytest.approx(var, rel=0.1)
    assert (noise != 0).mean() > 0.8


def test_keyed_sampler_and_opendp_draw_the_same_distribution():
    from scipy import stats

    import opendp.prelude as odp

    scale, n = 2.5, 6000
    keyed = np.array([dp.discrete_laplace(dp.KeyedStream(KEY, str(i)), scale) for i in range(n)])
    odp.enable_features("contrib")
    base = odp.m.make_laplace(odp.atom_domain(T="i64"), odp.absolute_distance(T="i64"), scale=scale)
    theirs = np.array([base(0) for _ in range(n)])
    edges = np.arange(-8, 9)
    probs = _dlap_pmf(edges, scale)
    probs = np.append(probs, 1 - probs.sum())         # tails |x| > 8 in one bin
    for sample in (keyed, theirs):
        obs = np.array([(sample == x).sum() for x in edges] + [(np.abs(sample) > 8).sum()])
        assert stats.chisquare(obs, probs * n).pvalue > 1e-4


def test_keyed_noise_is_reproducible_batch_independent_and_key_dependent():
    cal = dp.calibrate(2.0, 1e-6, 1)
    counts = _counts(300, 9)
    whole = dp.select_texts(counts, cal, KEY)
    parts = pd.concat([dp.select_texts(counts.iloc[:100], cal, KEY),
                       dp.select_texts(counts.iloc[100:], cal, KEY)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    pd.testing.assert_frame_equal(whole, dp.select_texts(counts, cal, KEY))
    other = dp.select_texts(counts, cal, dp.noise_key(KEY, "another run"))
    assert not whole["dp_users"].equals(other["dp_users"])


def test_a_changed_count_draws_fresh_noise_so_two_releases_cannot_be_differenced():
    """Same run fingerprint (a log rewritten to the same size keeps the listing), one user less
    per text: the released differences must not all equal the true change (-1)."""
    cal = dp.calibrate(1.0, 1e-6, 1)
    before = dp.select_texts(_counts(2000, 40), cal, KEY)
    after = dp.select_texts(_counts(2000, 39), cal, KEY)
    both = before["dp_users"].notna() & after["dp_users"].notna()
    diff = (after.loc[both, "dp_users"] - before.loc[both, "dp_users"]).astype("int64")
    assert both.sum() > 1900 and (diff != -1).mean() > 0.5


def test_the_counts_digest_changes_with_any_count_and_not_with_row_order(spark):
    """Found in review: with the same fingerprint, every text whose count was unchanged kept
    its noise, so comparing two releases told which counts changed. The digest of the whole
    counts table is in the noise's label: one changed count refreshes every text's noise."""
    rows = [("en-US", f"t{i}", 3 + i % 4) for i in range(50)]
    schema = "locale string, text_norm string, n_users long"
    digest = dp.spark_counts_digest(spark.createDataFrame(rows, schema))
    assert digest == dp.spark_counts_digest(spark.createDataFrame(rows[::-1], schema).repartition(3))
    changed = rows[:-1] + [("en-US", "t49", rows[-1][2] + 1)]
    assert digest != dp.spark_counts_digest(spark.createDataFrame(changed, schema))
    assert digest.startswith("50:") and dp.spark_counts_digest(spark.createDataFrame([], schema)) == "0:0"


# ---------------------------------------------------------------- config, export, manifest

@pytest.mark.parametrize("bad", ["privacy.dp.epsilon=0", "privacy.dp.epsilon=-1", "privacy.dp.epsilon=inf",
                                 "privacy.dp.delta=0", "privacy.dp.delta=1", "privacy.dp.delta=1.5",
                                 "privacy.dp.delta=-0.1", "privacy.dp.max_texts_per_user=0",
                                 "privacy.dp.noise=random", "privacy.dp.enabled=1", "privacy.dp.sigma=1"])
def test_config_rejects_bad_dp_settings(bad):
    with pytest.raises(ValueError, match="privacy.dp"):
        load_config("l", "o", overrides=parse_set([bad]), environ={})


def test_dp_is_off_by_default_and_set_by_flag_or_environment():
    assert load_config("l", "o", environ={}).privacy.dp.enabled is False
    cfg = load_config("l", "o", overrides=parse_set(["privacy.dp.enabled=true", "privacy.dp.epsilon=0.5"]),
                      environ={"MINING__PRIVACY__DP__DELTA": "1e-7"})
    assert (cfg.privacy.dp.enabled, cfg.privacy.dp.epsilon, cfg.privacy.dp.delta) == (True, 0.5, 1e-7)


def test_manifest_record_carries_the_configured_budget():
    dc = load_config("l", "o", overrides=parse_set(["privacy.dp.enabled=true", "privacy.dp.epsilon=0.7",
                                                    "privacy.dp.delta=1e-7"]), environ={}).privacy.dp
    cal = dp.calibrate(dc.epsilon, dc.delta, dc.max_texts_per_user)
    rec = dp.manifest_record(dc, cal, texts_considered=10, texts_selected=2)
    assert (rec["epsilon"], rec["delta"], rec["texts_considered"], rec["texts_selected"]) == (0.7, 1e-7, 10, 2)
    assert rec["library"].startswith("opendp ") and rec["mechanism"] == "laplace_threshold"
    assert rec["epsilon_certified"] <= 0.7 and rec["delta_certified"] <= 1e-7
    assert dp.manifest_record(load_config("l", "o", environ={}).privacy.dp) == {"enabled": False}


def test_finalize_labels_drops_unselected_texts_and_exports_noisy_counts():
    from mining.io.export import finalize_labels

    base = {"utterance": "play jazz", "slots": [], "locale": "en-US", "intent": "play_music",
            "confidence": 0.9, "support_users": 7, "support_events": 11, "evidence": "rephrase",
            "cluster_id": "c", "text_users": 9}
    labels = pd.DataFrame([{**base, "dp_users": 8.0}, {**base, "utterance": "play rock", "dp_users": np.nan},
                           {**base, "utterance": "play pop", "text_users": 1, "dp_users": np.nan},
                           {**base, "utterance": "play soul", "text_users": 1, "dp_users": 3.0},
                           {**base, "utterance": "play funk", "text_users": 9, "dp_users": 1.0}])
    out = finalize_labels(labels, 2, "v1", dp=True)
    # under DP the k-anonymity gate reads the noisy count only (post-processing), never the exact one
    assert out["drop_reason"].tolist() == [None, "dp_not_selected", "dp_not_selected", None, "below_min_users"]
    assert (out.loc[0, "support_users"], out.loc[0, "support_events"]) == (8, 8)
    plain = finalize_labels(labels.drop(columns="dp_users"), 2, "v1")
    assert plain["drop_reason"].tolist() == [None, None, "below_min_users", "below_min_users", None]
    assert plain.loc[0, "support_users"] == 7 and plain.loc[0, "support_events"] == 11


# ---------------------------------------------------------------- end to end (Spark)

@pytest.mark.slow
def test_end_to_end_export_with_dp(spark, small_sim, tmp_path):
    from mining.stages import runner, stage_fn
    out = tmp_path / "out"
    off = load_config(str(small_sim["logs"]), str(out), environ={})
    runner.run_all(spark, off, progress=False)
    man_off = json.loads((out / "manifest.json").read_text())
    assert man_off["dp"] == {"enabled": False}
    rows_off = pd.read_parquet(out / "training_set")

    on = load_config(str(small_sim["logs"]), str(out), environ={}, overrides=parse_set(
        ["privacy.dp.enabled=true", "privacy.dp.epsilon=4", "privacy.dp.delta=1e-3",
         "privacy.dp.max_texts_per_user=2", "quality.max_row_change=1000"]))
    first = stage_fn("export_dataset")(spark, on)
    man = json.loads((out / "manifest.json").read_text())
    d = man["dp"]
    assert (d["enabled"], d["epsilon"], d["delta"], d["max_texts_per_user"]) == (True, 4, 1e-3, 2)
    assert d["library"].startswith("opendp ") and d["delta_certified"] <= 1e-3
    assert 0 < d["texts_selected"] <= d["texts_considered"]
    assert d["labels_released"] == man["rows"] <= man_off["rows"]
    assert man["drops"].get("dp_not_selected", 0) == d["labels_not_selected"]
    # no rewrite is released under DP (their support counts have no DP release), without DP some are
    assert man["rewrites"] == {"rows": 0, "released": False, "drops": {}} and man_off["rewrites"]["rows"] > 0
    rows = pd.read_parquet(out / "training_set")
    assert (rows["support_users"] >= d["threshold"]).all()
    assert (rows["support_events"] == rows["support_users"]).all()
    released = set(zip(rows["utterance"], rows["intent"]))
    assert released <= set(zip(rows_off["utterance"], rows_off["intent"]))
    # dp settings are part of the version; rerunning the same config gives the same bytes
    assert first["dataset_version"] != man_off["dataset_version"]
    again = stage_fn("export_dataset")(spark, on)
    assert again["dataset_version"] == first["dataset_version"]
    assert json.loads((out / "manifest.json").read_text())["checksums"] == man["checksums"]
    # with dp off again, the version (and its bytes) are those of before
    assert stage_fn("export_dataset")(spark, off)["dataset_version"] == man_off["dataset_version"]
