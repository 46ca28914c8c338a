import pytest

from mining.core.text import char_sim, cue_language, normalize, text_hash, token_sim, tokens


@pytest.mark.parametrize("raw, norm", [
    ("What's the  weather?", "whats the weather"),
    ("Ｗａｋｅ ｍｅ ｕｐ", "wake me up"),            # NFKC folds full-width Latin
    ("明天天气怎么样？", "明天天气怎么样"),            # no spaces invented for Chinese
    ("ปิดไฟในห้องนอน", "ปิดไฟในห้องนอน"),              # Thai unchanged
    ("Schalte das Licht in der Küche AUS!", "schalte das licht in der küche aus"),
    ("Wie heiß ist es DRAUSSEN?", "wie heiss ist es draussen"),   # full case folding: ß → ss
    ("Allume l'éclairage du salon", "allume léclairage du salon"),  # apostrophe dropped, accents kept
    ("Включи СВЕТ на кухне", "включи свет на кухне"),             # Cyrillic has case
    ("ΆΝΑΨΕ ΤΑ ΦΩΤΑ ΣΤΟΥΣ", "άναψε τα φωτα στουσ"),          # Greek: Σ and final ς both fold to σ,
    ("άναψε τα φώτα στους", "άναψε τα φώτα στουσ"),          # so typed case never splits a text
    ("شغّل الضوء في المطبخ؟", "شغّل الضوء في المطبخ"),           # Arabic: no case, shadda kept, ؟ → space
    ("打开客厅的灯，谢谢", "打开客厅的灯 谢谢"),                 # full-width comma is punctuation
    ("เปิดไฟ ห้องนอน", "เปิดไฟ ห้องนอน"),                        # a space the user typed stays one
    ("", ""), (None, ""),
])
def test_normalize_per_script(raw, norm):
    assert normalize(raw) == norm


def test_char_sim_identity_symmetry_and_range():
    a, b = "set an alarm for seven", "wake me up at seven"
    assert char_sim(a, a) == pytest.approx(1.0)
    assert char_sim(a, b) == pytest.approx(char_sim(b, a))
    assert 0 < char_sim(a, b) < 1
    assert char_sim(a, "") == 0.0


def test_char_sim_works_without_spaces():
    # Japanese: a rephrase shares characters, an unrelated request does not
    assert char_sim("明日の天気は", "明日の天気を教えて") > char_sim("明日の天気は", "音楽をかけて")


def test_token_sim_counts_token_edits():
    assert token_sim("play some jazz", "play some jazz") == 1.0
    assert token_sim("play some jazz", "play jazz") == pytest.approx(2 / 3)
    assert token_sim("", "") == 1.0


def test_text_hash_is_sha256_hex():
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("text, toks", [
    ("iphone新しい", ["iphone", "新", "し", "い"]),                     # Latin run stays whole
    ("play some jazz", ["play", "some", "jazz"]),
    ("明日の天気 5時", ["明", "日", "の", "天", "気", "5", "時"]),
    ("ไม่ใช่", ["ไ", "ม่", "ใ", "ช่"]),                                 # tone marks stay on their consonant
    ("мой iphone", ["мой", "iphone"]),
    ("شغل الموسيقى", ["شغل", "الموسيقى"]),
    ("\u0301新x", ["\u0301新", "x"]),                                   # leading mark joins the next base
    ("", []),
])
def test_tokens_per_script(text, toks):
    assert tokens(text) == toks


def test_token_sim_without_spaces_is_graded():
    assert token_sim("明日の天気", "明日の天気は") == pytest.approx(5 / 6)
    assert token_sim("ปิดไฟ", "เปิดไฟ") == pytest.approx(4 / 5)        # ปิ ด ไ ฟ vs เ ปิ ด ไ ฟ: 1 insertion / 5
    assert token_sim("play jazz", "") == 0.0
    assert 0.0 <= token_sim("明日", "jazz") <= 1.0


@pytest.mark.parametrize("locale, lang", [
    ("en-US", "en"), ("zh-CN", "zh"), ("zh-Hans-CN", "zh"), ("DE", "de"), ("pt_BR", "pt"),
    ("", ""), (None, ""),
])
def test_cue_language(locale, lang):
    assert cue_language(locale) == lang


def test_char_sims_equals_char_sim_pair_by_pair():
    import math

    from mining.core.text import char_ngrams, char_sims, is_no_space_char

    texts = ["wake me up at seven", "wake me up", "", "a", "電気をつけて", "照明をオンにして", "turn on 電気",
             "pardon wake me up", "ab"]
    a = [x for x in texts for _ in texts]
    b = [y for _ in texts for y in texts]
    def reference(x, y, n):     # the cosine written out, one pair at a time
        if not x or not y:
            return 0.0
        n = 2 if n > 2 and any(is_no_space_char(ch) for ch in x + y) else n
        ca, cb = char_ngrams(x, n), char_ngrams(y, n)
        dot = sum(v * cb.get(g, 0) for g, v in ca.items())
        return dot / math.sqrt(sum(v * v for v in ca.values()) * sum(v * v for v in cb.values()))

    for n in (2, 3, 4):
        assert char_sims(a, b, n) == [reference(x, y, n) for x, y in zip(a, b)]
        assert [char_sim(x, y, n) for x, y in zip(a, b)] == char_sims(a, b, n)
    with pytest.raises(ValueError, match="differ in length"):
        char_sims(["a"], [], 3)


def test_normalize_drops_invisible_format_characters_but_not_zwnj():
    """A zero-width space or a bidi mark made a verbatim repeat look like a rephrase (another
    text_norm, no followed_by_repeat) and a second cache entry."""
    from mining.core.text import normalize

    assert normalize("play jazz\u200b") == normalize("\u200eplay\u00ad jazz\ufeff") == "play jazz"
    assert normalize("\u200fشغل الموسيقى") == normalize("شغل الموسيقى")
    assert normalize("می\u200cخواهم") == "می\u200cخواهم"          # Persian ZWNJ spells the word


def test_normalize_is_idempotent_and_nfkc_on_every_code_point():
    """casefold() and a dropped apostrophe can leave decomposed sequences ("Μαΐου",
    "l'\\u0301a"): text_norm must be NFKC and a fixed point, it is a join and cache key."""
    import sys
    import unicodedata

    from mining.core.text import normalize

    bad = []
    for cp in range(0x20, 0x30000):
        ch = chr(cp)
        if unicodedata.category(ch) in ("Cs", "Cn"):
            continue
        for text in (f"a{ch}b", f"l'{ch}a", f"{ch}\u0301", f"e\u00df{ch}"):
            once = normalize(text)
            if normalize(once) != once or not unicodedata.is_normalized("NFKC", once):
                bad.append(text)
    assert not bad, bad[:10]
    assert normalize("Μαΐου") == "μαΐου" and sys.maxunicode >= 0x30000


def test_repeated_keys_marks_later_rows_of_one_locale_and_normalized_text():
    from mining.core.text import repeated_keys

    assert repeated_keys(["en-US", "en-US", "en-GB", "en-US", "en-US"],
                         ["Wake me up!", "wake me up", "wake me up", None, ""]) == [False, True, False, False, True]
