import numpy as np
import pandas as pd
import pytest

from mining.core import confident_learning as cl


def _blobs(n_per=40, classes=("alarm", "music", "weather"), dim=8, seed=0):
    """Well-separated unit vectors per class: class i around basis vector e_i."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i, c in enumerate(classes):
        centre = np.zeros(dim)
        centre[i] = 1.0
        x = centre + 0.15 * rng.standard_normal((n_per, dim))
        xs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        ys += [c] * n_per
    return np.vstack(xs), np.array(ys, dtype=object)


def _near(i, dim=8):
    v = np.full(dim, 0.02)
    v[i] = 1.0
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def clf():
    x, y = _blobs()
    return cl.fit(x, y, folds=5, min_texts=20, seed=3)


def test_fit_gives_cleanlabs_per_class_thresholds(clf):
    assert clf.status == "fitted" and list(clf.classes) == ["alarm", "music", "weather"]
    assert clf.thresholds.shape == (3,) and ((clf.thresholds > 1 / 3) & (clf.thresholds <= 1)).all()
    assert clf.oof_accuracy > 0.95 and clf.n_train == 120 and clf.n_rare == 0


def test_planted_contradiction_is_caught_and_agreement_confirmed(clf):
    x = np.vstack([_near(0), _near(0), _near(1)])
    status, intent, prob = cl.check(clf, x, np.array(["weather", "alarm", "music"]),
                                    np.array(["music", "music", None], dtype=object))
    assert list(status) == ["contradicted", "confirmed", "confirmed"]
    assert list(intent) == ["alarm", "alarm", "music"]
    assert prob[0] < clf.thresholds[2] and prob[1] >= clf.thresholds[0]


def test_agreeing_with_the_rejected_interpretation_is_no_evidence(clf):
    # the logs point to "alarm", but "alarm" is what the NLU said on the text's failing turns
    status, _, _ = cl.check(clf, _near(0)[None, :], np.array(["weather"]), np.array(["alarm"], dtype=object))
    assert list(status) == ["uninformative"]


def test_unknown_candidate_intent_is_not_judged(clf):
    status, _, prob = cl.check(clf, _near(0)[None, :], np.array(["timer"]), np.array([None], dtype=object))
    assert list(status) == ["unknown_intent"] and np.isnan(prob[0])


def test_too_little_data_skips_with_a_named_reason():
    x, y = _blobs(n_per=6)
    few = cl.fit(x, y, folds=5, min_texts=100)
    assert few.status == "skipped_too_few_texts" and few.model is None
    status, intent, _ = cl.check(few, x[:2], y[:2], np.array([None, None], dtype=object))
    assert list(status) == ["skipped_too_few_texts"] * 2 and list(intent) == [None, None]
    one = cl.fit(x[:6], y[:6], folds=5, min_texts=2)
    assert one.status == "skipped_too_few_classes"
    # an intent with fewer texts than folds is left out and counted, not silently used
    rare = cl.fit(x[:14], y[:14], folds=5, min_texts=2)
    assert rare.n_rare == 2 and list(rare.classes) == ["alarm", "music"]


def test_fit_and_check_are_deterministic():
    x, y = _blobs(seed=1)
    a, b = cl.fit(x, y, min_texts=20, seed=5), cl.fit(x, y, min_texts=20, seed=5)
    assert np.array_equal(a.thresholds, b.thresholds)
    probe = np.vstack([_near(0), _near(2)])
    intents, rejected = np.array(["music", "weather"]), np.array([None, None], dtype=object)
    assert np.array_equal(cl.check(a, probe, intents, rejected)[2], cl.check(b, probe, intents, rejected)[2])
    assert np.array_equal(cl.subsample(1000, 10, 7), cl.subsample(1000, 10, 7))
    assert len(cl.subsample(1000, 10, 7)) == 10 and list(cl.subsample(5, 10, 7)) == [0, 1, 2, 3, 4]


def test_bad_input_raises():
    x, y = _blobs(n_per=5)
    with pytest.raises(ValueError, match="n = len"):
        cl.fit(x[:3], y, min_texts=2)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        cl.fit(bad, y, min_texts=2)
    with pytest.raises(ValueError, match="null intent"):
        cl.fit(x, np.array([None, *y[1:]], dtype=object), min_texts=2)
    with pytest.raises(ValueError, match="folds"):
        cl.fit(x, y, folds=1)
    with pytest.raises(ValueError, match="cap"):
        cl.subsample(10, 0, 1)


def test_check_labels_on_frames():
    x, y = _blobs()
    texts = pd.DataFrame({"text_norm": [f"t{i:03d}" for i in range(len(y))], "n_friction": 0,
                          "accepted_intent": y, "embedding": list(x)})
    # a failing text is never fitted on, whatever its accepted intent
    texts.loc[0, "n_friction"] = 1
    cands = pd.DataFrame({"candidate_intent": ["weather", "alarm", "music"],
                          "rejected_intent": ["music", None, None],
                          "embedding": [_near(0), _near(0), None]}, index=[10, 11, 12])
    out, clf = cl.check_labels(texts, cands, max_texts=1000, min_texts=20, folds=5, seed=3)
    assert clf.n_train == len(y) - 1
    assert list(out.index) == [10, 11, 12]
    assert list(out["logs_check"]) == ["contradicted", "confirmed", "no_embedding"]
    capped, small = cl.check_labels(texts, cands, max_texts=30, min_texts=20, folds=5, seed=3)
    assert small.n_train + small.n_rare == 30
    with pytest.raises(ValueError, match="rejected_intent"):
        cl.check_labels(texts, cands.drop(columns="rejected_intent"), max_texts=10, min_texts=2, folds=2, seed=0)
