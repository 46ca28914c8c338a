import numpy as np
import pandas as pd
import pytest

from mining.config import load_config
from mining.spark.rephrase import lexical_features
from mining.core.rephrase_model import FEATURES


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
