"""WeakNLU: weak but better than chance, deterministic, probabilities as confidence."""
import numpy as np
import pytest

from mining.sim.corpora import load_corpus
from mining.sim.weak_nlu import WeakNLU, train_and_score
from mining.sim.simulation import split_corpus

# tiny hand-made training set: two intents, clearly separable words
TEXTS = ["turn on the lights", "switch the light on", "lights on please",
         "what is the weather", "weather tomorrow", "is it going to rain"]
INTENTS = ["iot_on", "iot_on", "iot_on", "weather", "weather", "weather"]


@pytest.fixture(scope="module")
def hwu64_split():
    corpus = load_corpus("hwu64")
    corpus["split"] = split_corpus(corpus, seed_per_intent=8, test_share=0.2, seed=7)
    return corpus


@pytest.fixture(scope="module")
def seed_nlu(hwu64_split):
    seed = hwu64_split[hwu64_split["split"] == "seed"]
    return WeakNLU().fit(seed["text"], seed["intent"])


def test_weak_nlu_predict_shapes_types_and_range():
    intents, confidence = WeakNLU().fit(TEXTS, INTENTS).predict(
        ["lights on", "rain tomorrow?", "xyzzy"])
    assert intents.tolist()[:2] == ["iot_on", "weather"]
    assert confidence.dtype == np.float64 and confidence.shape == (3,)
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_weak_nlu_predict_empty_input():
    intents, confidence = WeakNLU().fit(TEXTS, INTENTS).predict([])
    assert intents.shape == (0,) and confidence.shape == (0,)


def test_weak_nlu_is_deterministic():
    a = WeakNLU().fit(TEXTS, INTENTS).predict(TEXTS)
    b = WeakNLU().fit(TEXTS, INTENTS).predict(TEXTS)
    assert a[0].tolist() == b[0].tolist() and np.array_equal(a[1], b[1])


def test_weak_nlu_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        WeakNLU().predict(["hello"])
    with pytest.raises(ValueError, match="two distinct intents"):
        WeakNLU().fit(["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="texts but"):
        WeakNLU().fit(["a", "b"], ["x"])


def test_weak_nlu_on_hwu64_seed_is_weak_but_far_better_than_chance(seed_nlu, hwu64_split):
    test = hwu64_split[hwu64_split["split"] == "test"]
    predicted, confidence = seed_nlu.predict(test["text"])
    accuracy = np.mean(predicted == test["intent"].to_numpy(str))
    assert 0.5 < accuracy < 0.85  # chance is 1/64; 8 examples per intent keep it weak
    right = predicted == test["intent"].to_numpy(str)
    assert confidence[right].mean() > confidence[~right].mean() + 0.2  # informative
    assert 0.05 < np.mean(confidence < 0.2) < 0.4  # the simulator's default reject share


def test_train_and_score_more_data_lifts_accuracy(hwu64_split):
    # 8 intents keep the fits fast; 8 vs 40 training utterances per intent
    corpus = hwu64_split[hwu64_split["intent"].isin(sorted(hwu64_split["intent"].unique())[:8])]
    test = corpus[corpus["split"] == "test"]
    traffic = corpus[corpus["split"] == "traffic"]
    seed = corpus[corpus["split"] == "seed"]
    more = traffic.groupby("intent").head(32)
    base = train_and_score(seed["text"], seed["intent"], test["text"], test["intent"])
    lifted = train_and_score(list(seed["text"]) + list(more["text"]),
                             list(seed["intent"]) + list(more["intent"]),
                             test["text"], test["intent"])
    assert 0.0 <= base < lifted <= 1.0
    assert lifted - base > 0.05


def test_train_and_score_unseen_test_intent_counts_as_error():
    score = train_and_score(TEXTS, INTENTS, ["lights on", "play jazz"], ["iot_on", "music"])
    assert score == 0.5
    with pytest.raises(ValueError, match="empty test set"):
        train_and_score(TEXTS, INTENTS, [], [])
