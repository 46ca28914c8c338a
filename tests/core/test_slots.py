"""mining.core.slots.project_slots: fuzzy span alignment of a rephrase's slots onto the source.

No Spark. The non-Latin sentences are ours (simple alarm/weather requests)."""
from __future__ import annotations

import random
import string
from collections import Counter

import numpy as np
import pytest

from mining.sim.corpora import load_corpus, parse_annot_utt
from mining.core.slots import DROP_REASONS, _tokenize, _tokenize_general, project_slots


def S(*pairs: tuple[str, str | None]) -> list[dict]:
    return [{"name": n, "value": v} for n, v in pairs]


def check_round_trip(text: str, kept: list[dict], annot: str) -> None:
    assert parse_annot_utt(annot) == (text, kept)


# --- matching ---------------------------------------------------------------------------

def test_exact_match():
    text = "wake me at seven am please"
    kept, annot, dropped = project_slots(text, S(("time", "seven am")))
    assert kept == [{"name": "time", "value": "seven am"}]
    assert annot == "wake me at [time : seven am] please"
    assert dropped == {}
    check_round_trip(text, kept, annot)


def test_case_difference_keeps_the_sources_case():
    kept, annot, dropped = project_slots("Wake me at Seven AM please", S(("time", "seven am")))
    assert kept == [{"name": "time", "value": "Seven AM"}]
    assert annot == "Wake me at [time : Seven AM] please" and dropped == {}


def test_typo_aligns_and_keeps_the_sources_spelling():
    text = "wake me up tomorow at six"
    kept, annot, dropped = project_slots(text, S(("date", "tomorrow"), ("time", "six")))
    assert kept == [{"name": "date", "value": "tomorow"}, {"name": "time", "value": "six"}]
    assert annot == "wake me up [date : tomorow] at [time : six]" and dropped == {}
    check_round_trip(text, kept, annot)


def test_spacing_and_dots_variant_aligns():
    kept, _, dropped = project_slots("set an alarm for 7 p.m. tonight", S(("time", "7 pm")))
    assert dropped == {} and kept[0]["value"].startswith("7 p.m")


def test_the_best_scoring_span_wins_over_a_weaker_one():
    kept, _, _ = project_slots("today or tomorow or tomorrow", S(("date", "tomorrow")))
    assert kept == [{"name": "date", "value": "tomorrow"}]   # the exact one, not the leftmost fuzzy one


def test_equal_scores_prefer_the_exact_case_then_the_leftmost():
    _, annot, _ = project_slots("text john then John", S(("person", "John")))
    assert annot == "text john then [person : John]"
    _, annot, _ = project_slots("text john then john", S(("person", "JOHN")))
    assert annot == "text [person : john] then john"


def test_threshold_is_applied():
    text = "wake me up tomorow"
    assert project_slots(text, S(("date", "tomorrow")), min_similarity=1.0)[2] == {"slot_not_aligned": 1}
    assert project_slots(text, S(("date", "tomorrow")), min_similarity=0.9)[0] != []
    with pytest.raises(ValueError):
        project_slots(text, S(("date", "tomorrow")), min_similarity=1.5)
    with pytest.raises(ValueError):
        project_slots(text, S(("date", "tomorrow")), min_similarity=float("nan"))


def test_different_words_do_not_align():
    text = "set an alarm for nine pm on monday"
    kept, annot, dropped = project_slots(text, S(("time", "five"), ("time", "9"), ("date", "sunday")))
    assert kept == [] and annot == text
    assert dropped == {"slot_not_aligned": 3}


# --- drops ------------------------------------------------------------------------------

def test_value_not_in_the_source_is_dropped_with_a_reason():
    slots = S(("time", "Seven AM"), ("date", "tomorrow"))
    kept, annot, dropped = project_slots("wake me at seven am please", slots)
    assert kept == [{"name": "time", "value": "seven am"}]
    assert annot == "wake me at [time : seven am] please"
    assert dropped == {"slot_not_aligned": 1}


@pytest.mark.parametrize("value", [None, "", "   ", "?!", float("nan"), 5])
def test_missing_values(value):
    kept, _, dropped = project_slots("play jazz", S(("genre", "jazz"), ("x", value)))
    assert kept == [{"name": "genre", "value": "jazz"}]
    assert dropped == {"slot_value_missing": 1}


@pytest.mark.parametrize("name", [None, "", "  ", "a:b", "x[y]"])
def test_invalid_names(name):
    kept, annot, dropped = project_slots("play jazz", S((name, "jazz")))
    assert kept == [] and annot == "play jazz" and dropped == {"slot_name_invalid": 1}


def test_nothing_to_project():
    for slots in (None, [], np.array([], dtype=object), float("nan")):
        assert project_slots("play jazz", slots) == ([], "play jazz", {})
    assert project_slots(None, S(("a", "x"))) == ([], "", {"slot_not_aligned": 1})
    assert project_slots("  ...  ", S(("a", "x"))) == ([], "  ...  ", {"slot_not_aligned": 1})


def test_bad_input_types_raise():
    with pytest.raises(TypeError):
        project_slots(42, S(("a", "x")))
    with pytest.raises(TypeError):
        project_slots("play jazz", ["jazz"])


# --- several slots ----------------------------------------------------------------------

def test_spans_are_ordered_and_never_overlap():
    slots = S(("b", "jazz"), ("a", "play"), ("c", "play jazz"))
    kept, annot, dropped = project_slots("play jazz", slots)
    assert annot == "[a : play] [b : jazz]"
    assert kept == [{"name": "a", "value": "play"}, {"name": "b", "value": "jazz"}]
    assert dropped == {"slot_overlaps": 1}


def test_the_most_constrained_slot_goes_first():
    text = "order a double bacon cheeseburger with bacon"
    _, annot, dropped = project_slots(text, S(("food", "bacon cheeseburger"), ("food", "bacon")))
    assert annot == "order a double [food : bacon cheeseburger] with [food : bacon]" and dropped == {}
    _, annot, dropped = project_slots(text, S(("food", "bacon"), ("food", "bacon cheeseburger")))
    assert annot == "order a double [food : bacon cheeseburger] with [food : bacon]" and dropped == {}


def test_a_duplicate_slot_without_a_second_occurrence_overlaps():
    kept, _, dropped = project_slots("play jazz", S(("genre", "jazz"), ("genre", "jazz")))
    assert kept == [{"name": "genre", "value": "jazz"}] and dropped == {"slot_overlaps": 1}


def test_two_slots_with_the_same_value_get_two_occurrences_leftmost_first():
    text = "book a flight from paris to paris texas"
    _, annot, dropped = project_slots(text, S(("fromloc", "paris"), ("toloc", "Paris")))
    assert annot == "book a flight from [fromloc : paris] to [toloc : paris] texas" and dropped == {}
    _, annot, _ = project_slots(text, S(("toloc", "paris"), ("fromloc", "paris")))
    assert annot == "book a flight from [toloc : paris] to [fromloc : paris] texas"


def test_one_slot_with_a_repeated_value_takes_the_leftmost_occurrence():
    _, annot, _ = project_slots("play jazz and more jazz", S(("genre", "jazz")))
    assert annot == "play [genre : jazz] and more jazz"


def test_multi_word_values():
    text = "remind me to call mom next friday evening at half past seven"
    slots = S(("time", "half past seven"), ("date", "next friday evening"), ("person", "mom"))
    kept, annot, dropped = project_slots(text, slots)
    assert annot == ("remind me to call [person : mom] [date : next friday evening] at "
                     "[time : half past seven]")
    assert dropped == {}
    check_round_trip(text, kept, annot)


# --- punctuation ------------------------------------------------------------------------

def test_adjacent_punctuation_stays_outside_the_span():
    text = "wake me at 7pm, please"
    _, annot, dropped = project_slots(text, S(("time", "7pm")))
    assert annot == "wake me at [time : 7pm], please" and dropped == {}
    _, annot, _ = project_slots("is it (really) raining?", S(("weather", "raining"), ("x", "really")))
    assert annot == "is it ([x : really]) [weather : raining]?"


def test_punctuation_inside_the_value_is_kept():
    text = "wake me at seven a.m. please"
    kept, annot, _ = project_slots(text, S(("time", "seven a.m.")))
    assert annot == "wake me at [time : seven a.m.] please"
    check_round_trip(text, kept, annot)
    _, annot, _ = project_slots("what's next week's weather", S(("date", "next weeks")))
    assert annot == "what's [date : next week's] weather"
    _, annot, _ = project_slots("call o'brien at 10:30", S(("person", "O'Brien"), ("time", "10:30")))
    assert annot == "call [person : o'brien] at [time : 10:30]"


# --- scripts ----------------------------------------------------------------------------

def test_russian_with_case():
    text = "Разбуди меня Завтра в семь утра"
    kept, annot, dropped = project_slots(text, S(("date", "завтра"), ("time", "СЕМЬ УТРА")), locale="ru-RU")
    assert kept == [{"name": "date", "value": "Завтра"}, {"name": "time", "value": "семь утра"}]
    assert dropped == {}
    check_round_trip(text, kept, annot)


def test_arabic():
    text = "ذكرني غدا في الساعة السابعة"
    kept, annot, dropped = project_slots(text, S(("time", "الساعة السابعة"), ("date", "غدا")), locale="ar")
    assert annot == "ذكرني [date : غدا] في [time : الساعة السابعة]" and dropped == {}
    check_round_trip(text, kept, annot)


def test_greek_with_case_and_accents():
    text = "Ξύπνα με αύριο στις επτά"
    kept, annot, dropped = project_slots(text, S(("date", "ΑΎΡΙΟ"), ("time", "επτά")), locale="el")
    assert kept == [{"name": "date", "value": "αύριο"}, {"name": "time", "value": "επτά"}]
    assert dropped == {}
    check_round_trip(text, kept, annot)


def test_chinese_without_spaces():
    text = "明天早上七点叫醒我"
    kept, annot, dropped = project_slots(text, S(("time", "早上七点"), ("date", "明天")), locale="zh-CN")
    assert annot == "[date : 明天][time : 早上七点]叫醒我" and dropped == {}
    check_round_trip(text, kept, annot)
    # a character-level near miss still aligns (one character dropped by the recognizer)
    kept, _, _ = project_slots("明天早上七点半叫醒我", S(("time", "早上七点")), locale="zh-CN")
    assert kept == [{"name": "time", "value": "早上七点"}]
    kept, _, dropped = project_slots(text, S(("time", "晚上九点")), locale="zh-CN")
    assert kept == [] and dropped == {"slot_not_aligned": 1}


def test_japanese_mixed_scripts():
    text = "明日の朝7時に起こして"
    _, annot, dropped = project_slots(text, S(("time", "朝７時"), ("date", "明日")), locale="ja-JP")
    assert annot == "[date : 明日]の[time : 朝7時]に起こして" and dropped == {}   # NFKC: ７ = 7


def test_thai_without_spaces_keeps_combining_marks():
    text = "ตั้งปลุกพรุ่งนี้ตอนเจ็ดโมงเช้า"
    slots = S(("time", "เจ็ดโมงเช้า"), ("date", "พรุ่งนี้"))
    kept, annot, dropped = project_slots(text, slots, locale="th-TH")
    assert annot == "ตั้งปลุก[date : พรุ่งนี้]ตอน[time : เจ็ดโมงเช้า]" and dropped == {}
    check_round_trip(text, kept, annot)
    # value without its tone mark: still aligned, and the source's cluster is kept whole
    kept, _, _ = project_slots(text, S(("date", "พรุงนี้")), locale="th-TH")
    assert kept == [{"name": "date", "value": "พรุ่งนี้"}]


def test_turkish_locale_folds_dotted_i():
    text = "İSTANBUL'da hava nasıl"
    assert project_slots(text, S(("place", "istanbul")), locale="tr-TR", min_similarity=1.0)[0] == \
        [{"name": "place", "value": "İSTANBUL"}]
    assert project_slots(text, S(("place", "istanbul")), min_similarity=1.0)[0] == []


# --- input shapes and invariants ----------------------------------------------------------

def test_numpy_array_input():
    slots = np.array([{"name": "time", "value": "seven am"}, {"name": "date", "value": None}], dtype=object)
    kept, annot, dropped = project_slots("wake me at seven am", slots)
    assert kept == [{"name": "time", "value": "seven am"}]
    assert annot == "wake me at [time : seven am]" and dropped == {"slot_value_missing": 1}


def test_deterministic_and_counts_add_up():
    text = "from paris to paris at seven am or seven pm tomorow"
    slots = S(("a", "paris"), ("b", "paris"), ("c", "seven am"), ("d", "tomorrow"), ("e", "rome"),
              ("f", None), ("g", "paris"), ("h", "seven am"))
    first = project_slots(text, slots)
    assert all(project_slots(text, list(slots)) == first for _ in range(3))
    kept, annot, dropped = first
    assert set(dropped) <= set(DROP_REASONS)
    assert len(kept) + sum(dropped.values()) == len(slots)
    check_round_trip(text, kept, annot)


def test_ascii_fast_path_tokenizes_like_the_general_path():
    rng = random.Random(7)
    for _ in range(3000):
        t = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 25)))
        assert _tokenize(t) == _tokenize_general(t)


# --- gold ---------------------------------------------------------------------------------

def test_hwu64_gold_slots_project_onto_their_own_text():
    df = load_corpus("hwu64")
    total = recovered = 0
    for text, slots in zip(df["text"], df["slots"]):
        if not len(slots):
            continue
        kept, annot, dropped = project_slots(text, slots, locale="en-US")
        gold = Counter((s["name"], s["value"]) for s in slots)
        got = Counter((s["name"], s["value"]) for s in kept)
        total += len(slots)
        assert len(kept) + sum(dropped.values()) == len(slots)
        recovered += sum((gold & got).values())
        assert parse_annot_utt(annot) == (text, kept)
    assert total > 9000
    assert recovered / total >= 0.99


def test_fuzzy_match_never_changes_a_short_word():
    # whole-value similarity would pass both (0.875 and 0.8); a short word differs
    assert project_slots("wake me at seven pm", S(("time", "seven am")))[2] == {"slot_not_aligned": 1}
    assert project_slots("find my wife", S(("relation", "friend")))[2] == {"slot_not_aligned": 1}
    assert project_slots("set it for 8 pm", S(("time", "9 pm")))[2] == {"slot_not_aligned": 1}
    # a long word may still differ by a letter while the short ones match
    kept, _, _ = project_slots("remind me tomorow at 7", S(("date", "tomorrow at 7")))
    assert kept == [{"name": "date", "value": "tomorow at 7"}]


def test_a_token_that_normalizes_to_nothing_is_counted_not_a_crash():
    """U+02BC (ʼ) is a word character to the tokenizer and removed by normalize(): a lone one
    made an empty word and an IndexError that stopped the export."""
    from mining.core.slots import project_slots

    assert project_slots("play rock ʼ roll", [{"name": "genre", "value": "rock and roll"}], "en-US") == \
        ([], "play rock ʼ roll", {"slot_not_aligned": 1})
    assert project_slots("play rock roll", [{"name": "genre", "value": "ʼ"}], "en-US")[2] == \
        {"slot_value_missing": 1}
    assert project_slots("play rock ʼn roll", [{"name": "genre", "value": "rock ʼn roll"}], "en-US")[0] == \
        [{"name": "genre", "value": "rock ʼn roll"}]


def test_an_utterance_with_brackets_keeps_no_slot_and_its_annotation_reads_back_as_no_slot():
    from mining.sim.corpora import parse_annot_utt

    kept, annot, dropped = project_slots("play [live] by u2", [{"name": "album", "value": "live"}])
    assert (kept, annot, dropped) == ([], "play (live) by u2", {"utterance_has_brackets": 1})
    # without slots too: "[x : y]" in the words must not read back as a slot x = y
    kept, annot, dropped = project_slots("play the [x : y] song", [])
    assert (kept, dropped) == ([], {}) and parse_annot_utt(annot)[1] == []
