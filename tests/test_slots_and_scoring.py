import numpy as np
import pandas as pd
import pytest

from mining.config import load_config
from mining.rephrase import lexical_features
from mining.rephrase_model import FEATURES
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


def test_score_is_the_model_files_logistic_combination():
    m = load_config("l", "o").rephrase.fitted
    feats = pd.DataFrame({f: [0.5, 0.0] for f in FEATURES})
    s = m.score(feats)
    z0 = m.intercept + sum(m.weights[k] * 0.5 for k in m.weights)
    assert s[0] == pytest.approx(1 / (1 + np.exp(-z0)))
    assert s[1] == pytest.approx(1 / (1 + np.exp(-m.intercept)))


def test_lexical_features_align_with_the_index():
    src = pd.Series(["set an alarm", "play jazz"], index=[5, 9])
    tgt = pd.Series(["set alarm", "play jazz"], index=[5, 9])
    f = lexical_features(src, tgt)
    assert list(f.index) == [5, 9] and f.loc[9, "char_sim"] == pytest.approx(1.0)
