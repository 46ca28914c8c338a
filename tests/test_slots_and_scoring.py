import numpy as np
import pandas as pd
import pytest

from mining.config import load_config
from mining.rephrase import lexical_features, score
from mining.slots import project_slots


def test_project_slots_keeps_values_found_in_the_source():
    slots = [{"name": "time", "value": "Seven AM"}, {"name": "date", "value": "tomorrow"}]
    kept, annot, dropped = project_slots("wake me at seven am please", slots)
    assert kept == [{"name": "time", "value": "seven am"}]
    assert annot == "wake me at [time : seven am] please"
    assert dropped == 1


def test_project_slots_orders_spans_and_never_overlaps():
    slots = [{"name": "b", "value": "jazz"}, {"name": "a", "value": "play"}, {"name": "c", "value": "play jazz"}]
    kept, annot, dropped = project_slots("play jazz", slots)
    assert annot == "[a : play] [b : jazz]" and dropped == 1


def test_score_is_the_configured_logistic_combination():
    rc = load_config("l", "o").rephrase
    feats = pd.DataFrame({"embedding_cos": [0.9, 0.1], "char_sim": [0.5, 0.0], "token_sim": [0.4, 0.0],
                          "interpretation_changed": [1.0, 1.0], "gap_norm": [0.1, 0.5]})
    s = score(feats, rc.weights, rc.intercept)
    z0 = rc.intercept + sum(rc.weights[k] * feats[k][0] for k in rc.weights)
    assert s[0] == pytest.approx(1 / (1 + np.exp(-z0)))
    assert s[0] > rc.threshold > s[1]


def test_lexical_features_align_with_the_index():
    src = pd.Series(["set an alarm", "play jazz"], index=[5, 9])
    tgt = pd.Series(["set alarm", "play jazz"], index=[5, 9])
    f = lexical_features(src, tgt)
    assert list(f.index) == [5, 9] and f.loc[9, "char_sim"] == pytest.approx(1.0)
