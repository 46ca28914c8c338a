"""mining.core.unique.map_unique: same result as a row-by-row map, fn called once per distinct row."""
import pandas as pd
import pytest

from mining.core.unique import map_unique


def test_single_column_matches_map_and_calls_once_per_distinct_value():
    calls = []

    def fn(v):
        calls.append(v)
        return None if v is None else v.upper()

    s = pd.Series(["a", "b", None, "a", "b", "a", None], index=[10, 11, 12, 13, 14, 15, 16])
    out = map_unique(fn, s)
    assert out.tolist() == ["A", "B", None, "A", "B", "A", None]
    assert out.index.tolist() == s.index.tolist()
    assert len(calls) == 3 and set(calls) == {"a", "b", None}


def test_two_columns_key_on_the_pair():
    texts = pd.Series(["x", "x", "y", "x"])
    locales = pd.Series(["en-US", "de-DE", "en-US", "en-US"])
    calls = []

    def fn(t, loc):
        calls.append((t, loc))
        return f"{loc}:{t}"

    assert map_unique(fn, texts, locales).tolist() == ["en-US:x", "de-DE:x", "en-US:y", "en-US:x"]
    assert len(calls) == 3


def test_empty_and_mismatched_inputs():
    assert map_unique(str.upper, pd.Series([], dtype=object)).tolist() == []
    with pytest.raises(ValueError, match="differ in length"):
        map_unique(lambda a, b: a, pd.Series(["a"]), pd.Series(["a", "b"]))
    with pytest.raises(ValueError, match="at least one column"):
        map_unique(str.upper)
