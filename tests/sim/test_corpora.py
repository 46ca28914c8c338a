"""Corpora shipped in mining/sim/data: row counts, ids, labels, annotation parsing."""
import pytest

from mining.sim.corpora import COLUMNS, DATA_DIR, load_corpus, parse_annot_utt


@pytest.fixture(scope="module")
def hwu64():
    return load_corpus("hwu64")


@pytest.fixture(scope="module")
def slurp():
    return load_corpus("slurp")


def test_load_corpus_hwu64_sizes_and_labels(hwu64):
    assert list(hwu64.columns) == COLUMNS
    assert len(hwu64) == 11_036  # every row of hwu64.csv is a distinct (text, intent)
    assert hwu64["intent"].nunique() == 64
    assert {"alarm_set", "weather_query", "iot_hue_lightoff"} <= set(hwu64["intent"])
    assert hwu64.loc[0, "utt_id"] == "hwu64:0"


def test_load_corpus_slurp_sizes_and_labels(slurp):
    assert list(slurp.columns) == COLUMNS
    assert len(slurp) == 5_005  # 5,007 lines, 2 exact (text, intent) duplicates
    assert slurp["intent"].nunique() == 81
    assert slurp["utt_id"].str.fullmatch(r"slurp:\d+").all()


@pytest.mark.parametrize("name", ["hwu64", "slurp"])
def test_load_corpus_ids_unique_texts_nonempty_locale(name):
    corpus = load_corpus(name)
    assert corpus["utt_id"].is_unique
    assert (corpus["text"].str.strip() != "").all()
    assert not corpus.duplicated(["text", "intent"]).any()
    assert (corpus["locale"] == "en-US").all()


def test_load_corpus_hwu64_annotation_matches_text(hwu64):
    # answer_annotation with the brackets removed is exactly answer_from_anno
    plain = [parse_annot_utt(a)[0] for a in hwu64["annot_utt"]]
    assert plain == hwu64["text"].tolist()
    assert sum(len(s) for s in hwu64["slots"]) > 5_000


def test_load_corpus_slots_column_is_parsed_annotation(slurp):
    row = slurp[slurp["utt_id"] == "slurp:13804"].iloc[0]
    assert row["text"] == "siri what is one american dollar in japanese yen"
    assert row["slots"] == [{"name": "currency_name", "value": "american dollar"},
                            {"name": "currency_name", "value": "japanese yen"}]
    # SLURP annotations are lower-cased to match the lower-case sentence
    assert (slurp["annot_utt"] == slurp["annot_utt"].str.lower()).all()


def test_load_corpus_returns_a_fresh_copy():
    first = load_corpus("slurp")
    first.loc[0, "text"] = "changed"
    assert load_corpus("slurp").loc[0, "text"] != "changed"


def test_load_corpus_unknown_name_lists_known():
    with pytest.raises(ValueError, match="hwu64, slurp"):
        load_corpus("atis")


def test_parse_annot_utt_plain_text_and_slots():
    text, slots = parse_annot_utt("wake me up at [time : five am]  [date : this week]")
    assert text == "wake me up at five am this week"
    assert slots == [{"name": "time", "value": "five am"},
                     {"name": "date", "value": "this week"}]


def test_parse_annot_utt_without_slots_and_with_colon_in_value():
    assert parse_annot_utt("did you get that correctly?") == ("did you get that correctly?", [])
    assert parse_annot_utt("set it to [time:10:30]") == (
        "set it to 10:30", [{"name": "time", "value": "10:30"}])


@pytest.mark.parametrize("bad", ["play [song_name : x", "play song_name : x]",
                                 "[a : [b : c]]"])
def test_parse_annot_utt_malformed_raises(bad):
    with pytest.raises(ValueError, match="malformed"):
        parse_annot_utt(bad)


def test_data_folder_ships_licenses_and_notice():
    for path in ("NOTICE.md", "hwu64/LICENSE", "slurp/LICENSE.txt"):
        assert (DATA_DIR / path).is_file(), path
    notice = (DATA_DIR / "NOTICE.md").read_text()
    assert "CC BY 4.0" in notice and "xliuhw/NLU-Evaluation-Data" in notice
    assert "pswietojanski/slurp" in notice
