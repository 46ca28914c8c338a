import numpy as np
import pandas as pd
import pytest

from mining.core.target_failure import MIN_OTHER_TURNS, MIN_TARGETS, TargetFailureModel, fit_from_texts, fit_target_failure


def _mixture(n_texts=600, share=0.3, rate_ok=0.05, rate_failed=0.6, seed=0):
    """Target texts drawn from the model itself: each with 1-9 turns, the first its own
    (successful) target turn, the others failing at its kind's rate."""
    rng = np.random.default_rng(seed)
    failed = rng.random(n_texts) < share
    others = rng.integers(0, 9, n_texts)
    friction = rng.binomial(others, np.where(failed, rate_failed, rate_ok))
    return friction, others + 1, failed


def test_em_recovers_the_mixture_it_was_drawn_from():
    friction, turns, failed = _mixture()
    m = fit_target_failure(friction, turns)
    assert m.fitted and m.reason == "" and m.targets == 600 and m.informative == int((turns > 1).sum())
    assert m.share == pytest.approx(0.3, abs=0.06)
    assert m.rate_ok == pytest.approx(0.05, abs=0.03) and m.rate_failed == pytest.approx(0.6, abs=0.06)
    phi = m.p_failed(friction, turns)
    assert ((0 <= phi) & (phi <= 1)).all()
    # the posterior ranks the misread targets first (texts with other turns only)
    seen = turns > 1
    assert phi[seen & failed].mean() > 0.6 > 0.2 > phi[seen & ~failed].mean()


def test_a_target_said_nowhere_else_gets_the_locales_share_and_repeated_failures_approach_one():
    m = fit_target_failure(*_mixture()[:2])
    phi = m.p_failed(np.array([0, 0, 6, 1]), np.array([1, 9, 9, 9]))
    assert phi[0] == pytest.approx(m.share)              # no other turn: the prior
    assert phi[1] < 0.01 and phi[2] > 0.99               # 8 other turns, none / 6 failed
    assert phi[1] < phi[3] < phi[2]


def test_the_fit_is_deterministic_and_grouped_counts_equal_repeated_rows():
    friction, turns, _ = _mixture(seed=3)
    a, b = fit_target_failure(friction, turns), fit_target_failure(friction, turns)
    assert a == b
    grouped = (pd.DataFrame({"n_friction": friction, "n_turns": turns}).value_counts()
               .rename("count").reset_index())
    g = fit_from_texts(grouped)
    assert (g.share, g.rate_ok, g.rate_failed) == pytest.approx((a.share, a.rate_ok, a.rate_failed), abs=1e-8)
    assert g.targets == a.targets


def test_too_few_targets_keep_the_plain_defect_rate():
    friction, turns = np.array([1, 0, 2]), np.array([2, 3, 4])
    m = fit_target_failure(friction, turns)
    assert not m.fitted and "fewer than" in m.reason and m.informative == 3 < MIN_TARGETS
    np.testing.assert_allclose(m.p_failed(friction, turns), friction / turns)
    assert TargetFailureModel().p_failed(np.array([1]), np.array([4]))[0] == 0.25


def test_targets_whose_other_turns_never_fail_are_never_discounted():
    turns = np.full(20, 5)
    m = fit_target_failure(np.zeros(20, int), turns)
    assert m.fitted and m.share == 0.0 and "no other turn" in m.reason
    assert (m.p_failed(np.zeros(20, int), turns) == 0).all()


def test_one_failure_rate_for_all_targets_is_not_a_mixture():
    # every target fails exactly half of its other turns: nothing separates two kinds
    m = fit_target_failure(np.full(40, 2), np.full(40, 5))
    assert not m.fitted and "did not separate" in m.reason
    assert m.to_dict()["fitted"] is False


@pytest.mark.parametrize("friction, turns, count", [([1, 2], [2], None), ([3], [2], None), ([0], [0], None),
                                                    ([0], [1], [0])])
def test_bad_counts_raise(friction, turns, count):
    with pytest.raises(ValueError):
        fit_target_failure(np.array(friction), np.array(turns), None if count is None else np.array(count))


@pytest.mark.parametrize("max_other", [1, 2])
def test_texts_with_fewer_than_three_other_turns_do_not_identify_the_mixture(max_other):
    # Teicher 1963: a two-binomial mixture needs >= 3 trials; EM on 1-2 trials alone would
    # return an arbitrary split (all-or-nothing discounts) and report it as fitted
    rng = np.random.default_rng(1)
    others = rng.integers(1, max_other + 1, 400)
    friction = rng.binomial(others, np.where(rng.random(400) < 0.2, 0.6, 0.1))
    m = fit_target_failure(friction, others + 1)
    assert not m.fitted and "not identifiable" in m.reason and m.informative == 400
    np.testing.assert_allclose(m.p_failed(friction, others + 1), friction / (others + 1))


def test_min_targets_texts_with_three_other_turns_are_enough_to_identify_it():
    friction, turns, _ = _mixture()
    many = turns >= 1 + MIN_OTHER_TURNS

    def keep(n_identifying):
        return ~many | (np.cumsum(many) <= n_identifying)
    enough = fit_target_failure(friction[keep(MIN_TARGETS)], turns[keep(MIN_TARGETS)])
    assert enough.fitted and enough.informative > MIN_TARGETS
    short = fit_target_failure(friction[keep(MIN_TARGETS - 1)], turns[keep(MIN_TARGETS - 1)])
    assert not short.fitted and "not identifiable" in short.reason


def test_em_that_does_not_converge_is_not_reported_as_fitted(monkeypatch):
    import mining.core.target_failure as tf
    converged = tf.fit_target_failure(*_mixture()[:2])
    monkeypatch.setattr(tf, "MAX_ITER", 2)
    m = tf.fit_target_failure(*_mixture()[:2])
    assert not m.fitted and "did not converge" in m.reason and m.iterations == 2
    assert converged.fitted and converged.iterations > 2                     # the same data does converge


def test_targets_that_all_fail_at_one_noisy_rate_are_not_split_by_bic():
    # a single binomial rate with sampling noise: EM can still return two rates a hair apart
    # and an arbitrary share; BIC (Schwarz 1978) keeps the plain defect rate instead
    rng = np.random.default_rng(1)
    others = rng.integers(3, 9, 300)
    friction = rng.binomial(others, 0.05)
    m = fit_target_failure(friction, others + 1)
    assert not m.fitted and m.reason == "BIC prefers one failure rate for all targets"
    assert 0 < m.share < 1 and abs(m.rate_failed - m.rate_ok) < 0.5     # EM did return a split
    assert fit_target_failure(*_mixture()[:2]).fitted          # a real mixture passes
