"""Helpers for the bodies of Spark pandas UDFs (pure pandas, no Spark)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd


def map_unique(fn: Callable[..., Any], *columns: pd.Series) -> pd.Series:
    """``fn(*values)`` once per distinct row of the aligned ``columns``, broadcast back.

    Returns an object Series with the index of ``columns[0]``; ``result[i] ==
    fn(columns[0][i], columns[1][i], ...)`` for every row, nulls included (``fn`` gets None
    for a null of a single column, NaN or None as the column holds it with several).
    Interaction logs repeat the same requests (utterance popularity is Zipfian), so a
    batch of turns holds far fewer distinct texts than rows: on simulated HWU64 logs 4,551
    distinct of 20,000 (``bench/scale.py`` shows what it saves per stage). ``fn`` must be
    pure. Raises whatever ``fn`` raises; ``ValueError`` when the columns differ in length."""
    if not columns:
        raise ValueError("map_unique needs at least one column")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("map_unique: columns differ in length")
    values = [c.to_numpy(dtype=object) for c in columns]
    keys = values[0] if len(values) == 1 else pd.Series(list(zip(*values)), dtype=object).to_numpy()
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    out = np.empty(len(uniques) + 1, dtype=object)
    for i, key in enumerate(uniques):
        out[i] = fn(key) if len(values) == 1 else fn(*key)
    if (codes < 0).any():            # a null key (single column only): fn(None)
        out[-1] = fn(None)
    return pd.Series(out[codes], index=columns[0].index, dtype=object)
