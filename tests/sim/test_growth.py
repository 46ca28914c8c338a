"""Corpus growth for scale benchmarks: size, distinctness, determinism, gold intents,
meaning-keeping transforms, errors."""
import re

import numpy as np
import pandas as pd
import pytest

from mining.sim.corpora import load_corpus
from mining.sim.growth import (
    COLUMNS,
    FILLERS,
    IMPERATIVE_SUFFIXES,
    NEUTRAL_PREFIXES,
    NOISE_OPS,
    REQUEST_PREFIXES,
    SUFFIXES,
    WISH_PREFIXES,
    grow_utterances,
)

N = 30_000


@pytest.fixture(scope="module")
def hwu():
    return load_corpus("hwu64")


@pytest.fixture(scope="module")
def grown():
    return grow_utterances("hwu64", N, seed=3)


def test_exactly_n_distinct_normalized_rows(grown):
    assert list(grown.columns) == COLUMNS
    assert len(grown) == N and grown.index.equals(pd.RangeIndex(N))
    assert grown["text"].is_unique
    assert all(t == " ".join(t.split()) and t for t in grown["text"])
    assert not grown.isna().any().any()


def test_deterministic_and_seeded(grown):
    pd.testing.assert_frame_equal(grown, grow_utterances("hwu64", N, seed=3))
    other = grow_utterances("hwu64", N, seed=4)
    assert len(other) == N and other["text"].is_unique
    assert not other["text"].equals(grown["text"])
    grown_only = grown[grown["transform"] != "original"]
    assert len(set(grown_only["text"]) & set(other["text"])) < 0.5 * len(grown_only)


def test_originals_first_then_growth(grown, hwu):
    k = len(hwu)
    assert (grown["transform"].iloc[:k] == "original").all()
    assert (grown["transform"].iloc[k:] != "original").all()
    assert set(grown["text"].iloc[:k]) == set(hwu["text"])
    originals = grown.iloc[:k].merge(hwu, left_on="origin_utt_id", right_on="utt_id")
    assert (originals["text_x"] == originals["text_y"]).all()


def test_intents_preserved(grown, hwu):
    gold = dict(zip(hwu["utt_id"], hwu["intent"]))
    assert (grown["intent"] == grown["origin_utt_id"].map(gold)).all()


def test_n_below_corpus_size_is_a_sample_and_sizes_are_nested(grown, hwu):
    small = grow_utterances("hwu64", 500, seed=3)
    assert len(small) == 500 and (small["transform"] == "original").all()
    assert small["text"].is_unique and set(small["text"]) <= set(hwu["text"])
    pd.testing.assert_frame_equal(small, grown.iloc[:500])
    assert not small["text"].equals(hwu["text"].iloc[:500])  # seeded, not file order
    assert grow_utterances("hwu64", 0, seed=3).columns.tolist() == COLUMNS


def test_transform_mix(grown):
    ops = grown["transform"].str.split("+")
    assert {op for row in ops for op in row} == {"original", "slot_swap", "prefix",
                                                     "suffix", *NOISE_OPS}
    assert (ops.map(lambda row: sum(op in NOISE_OPS for op in row)) <= 1).all()
    grown_only = grown.loc[grown["transform"] != "original", "transform"]
    assert grown_only.str.contains("slot_swap").mean() > 0.4  # the main source


def _slot_pattern(annot: str, pools) -> re.Pattern:
    """Full-match pattern of an annotation with every slot free to take any pool value."""
    parts, pos = [], 0
    for m in re.finditer(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]", annot):
        parts.append(re.escape(annot[pos:m.start()]))
        values = sorted(pools[m.group(1)], key=len, reverse=True)
        parts.append("(" + "|".join(re.escape(v) for v in values) + ")")
        pos = m.end()
    parts.append(re.escape(annot[pos:]))
    return re.compile(r"\s*".join(p for p in "".join(parts).split(r"\ ")))


def test_slot_swaps_use_values_of_the_same_slot_name(grown, hwu):
    pools: dict[tuple[str, str], set[str]] = {}
    for intent, slots in zip(hwu["intent"], hwu["slots"]):
        for s in slots:
            pools.setdefault((intent, s["name"]), set()).add(" ".join(s["value"].split()))
    by_id = hwu.set_index("utt_id")
    swapped = grown[grown["transform"] == "slot_swap"]
    assert len(swapped) > 1000
    for row in swapped.sample(400, random_state=0).itertuples():
        origin = by_id.loc[row.origin_utt_id]
        names = [s["name"] for s in origin["slots"]]
        pattern = _slot_pattern(origin["annot_utt"],
                                {name: pools[(origin["intent"], name)] for name in names})
        assert pattern.fullmatch(row.text), (row.text, origin["annot_utt"])
        assert row.text != origin["text"]


def test_carriers_and_noise_keep_the_words(grown, hwu):
    by_id = dict(zip(hwu["utt_id"], hwu["text"]))
    prefixes = NEUTRAL_PREFIXES + REQUEST_PREFIXES + WISH_PREFIXES
    suffixes = SUFFIXES + IMPERATIVE_SUFFIXES
    for row in grown[grown["transform"] == "prefix"].head(300).itertuples():
        origin = by_id[row.origin_utt_id]
        assert row.text.endswith(" " + origin) and row.text[:-len(origin) - 1] in prefixes
    for row in grown[grown["transform"] == "suffix"].head(300).itertuples():
        origin = by_id[row.origin_utt_id].rstrip("?.!")
        assert row.text.startswith(origin + " ")
        assert row.text[len(origin) + 1:].rstrip("?.!") in suffixes
    # no noise on texts of <= 2 words (a slot swap may lengthen a text before the noise)
    short = grown["origin_utt_id"].map(lambda u: len(by_id[u].split()) <= 2)
    unswapped = ~grown["transform"].str.contains("slot_swap")
    noisy = grown["transform"].str.contains("|".join(NOISE_OPS))
    assert (short & unswapped).sum() > 100 and not (short & unswapped & noisy).any()
    for op in NOISE_OPS:
        for row in grown[grown["transform"] == op].head(200).itertuples():
            before, after = (re.sub(r"\s*[?.!]+$", "", t).split()  # tail kept aside
                             for t in (by_id[row.origin_utt_id], row.text))
            if op == "drop_word":
                assert len(after) == len(before) - 1
            else:
                assert len(after) == len(before) + 1
                extra = [w for w in after if w in FILLERS and w not in before]
                assert len(extra) == (op == "filler")
            assert set(after) - set(before) <= set(FILLERS)
            assert "not" not in set(after) - set(before)


def test_impossible_n_raises_with_reached_count():
    tiny = pd.DataFrame({"utt_id": ["a", "b", "c"],
                         "text": ["yes", "set an alarm for seven am", "what time is it"],
                         "intent": ["general_affirm", "alarm_set", "datetime_query"],
                         "annot_utt": ["yes", "set an alarm for [time : seven am]",
                                       "what time is it"]})
    with pytest.raises(ValueError, match=r"reached only [\d,]+ distinct texts"):
        grow_utterances(tiny, 5000, seed=0)
    small = grow_utterances(tiny, 50, seed=0)
    assert len(small) == 50 and small["text"].is_unique
    assert set(small["intent"]) <= set(tiny["intent"])


@pytest.mark.parametrize("n, seed", [(-1, 0), (10, -1), (1.5, 0)])
def test_invalid_arguments(n, seed):
    with pytest.raises(ValueError):
        grow_utterances("hwu64", n, seed)


def test_each_annotation_renders_its_text_with_the_origins_slot_names(grown, hwu):
    from mining.sim.corpora import parse_annot_utt

    names_of = {u: {s["name"] for s in parse_annot_utt(a)[1]}
                for u, a in zip(hwu["utt_id"], hwu["annot_utt"])}
    slotted = 0
    for text, annot, origin in zip(grown["text"], grown["annot_utt"], grown["origin_utt_id"]):
        plain, slots = parse_annot_utt(annot)
        assert plain == text
        assert {s["name"] for s in slots} <= names_of[origin]
        slotted += bool(slots)
    # about as many grown texts carry a slot as corpus utterances do (58% of HWU64)
    assert slotted > 0.5 * len(grown)


def test_originals_keep_their_corpus_slots_and_swaps_change_a_value(grown, hwu):
    from mining.sim.corpora import parse_annot_utt

    corpus = dict(zip(hwu["utt_id"], hwu["annot_utt"]))
    originals = grown[grown["transform"] == "original"]
    same = [parse_annot_utt(a)[1] == parse_annot_utt(corpus[u])[1]
            for a, u in zip(originals["annot_utt"], originals["origin_utt_id"])]
    assert np.mean(same) > 0.99   # the rest: corpus texts that are not their annotation's rendering
    swapped = grown[grown["transform"] == "slot_swap"]
    changed = [parse_annot_utt(a)[1] != parse_annot_utt(corpus[u])[1]
               for a, u in zip(swapped["annot_utt"], swapped["origin_utt_id"])]
    assert all(changed)
