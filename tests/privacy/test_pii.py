import hashlib
import hmac

import pytest

from mining.privacy import pii as privacy
def test_pseudonymize_is_keyed_hmac_sha256():
    key = b"k" * 32
    assert privacy.pseudonymize("acct-1", key) == hmac.new(key, b"acct-1", hashlib.sha256).hexdigest()
    assert privacy.pseudonymize("acct-1", key) != privacy.pseudonymize("acct-1", b"j" * 32)


@pytest.mark.parametrize("key", [b"0123456789abcdef", b"x" * 64, b"long-key-" * 20])
def test_spark_pseudonymize_equals_python_hmac(spark, key):
    from pyspark.sql import functions as F

    ids = ["acct-0001", "ünïcødé-用户", ""]
    df = spark.createDataFrame([(i,) for i in ids], "user_id string")
    keyed = privacy.with_hmac_key(df, key)
    got = [r[0] for r in keyed.select(privacy.spark_pseudonymize(F.col("user_id"))).collect()]
    assert got == [privacy.pseudonymize(i, key) for i in ids]
    # the key is data, never a plan literal: K' xor 0x36 would give it back
    plan = keyed.select(privacy.spark_pseudonymize(F.col("user_id")))._jdf.queryExecution().toString().lower()
    padded = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    for pad in (0x36, 0x5C):
        assert bytes(b ^ pad for b in padded)[:16].hex() not in plan


def test_resolve_key_requires_a_key_outside_demo_mode(monkeypatch):
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    monkeypatch.delenv(privacy.DEMO_ENV, raising=False)
    with pytest.raises(privacy.PrivacyError, match="MINING_PSEUDONYM_KEY"):
        privacy.resolve_key()
    monkeypatch.setenv(privacy.KEY_ENV, privacy.DEMO_KEY.decode())
    with pytest.raises(privacy.PrivacyError, match="demo key"):
        privacy.resolve_key()
    monkeypatch.setenv(privacy.KEY_ENV, "short")
    with pytest.raises(privacy.PrivacyError, match="16 bytes"):
        privacy.resolve_key()


def test_resolve_key_uses_env_key_or_demo_key(monkeypatch):
    monkeypatch.setenv(privacy.KEY_ENV, "a-real-secret-key-123")
    assert privacy.resolve_key() == b"a-real-secret-key-123"
    monkeypatch.delenv(privacy.KEY_ENV)
    monkeypatch.setenv(privacy.DEMO_ENV, "1")
    assert privacy.resolve_key() == privacy.DEMO_KEY


@pytest.mark.parametrize("text, locale, kind, expected", [
    # emails, incl. a full-width one (not NFKC-normalized before export) and an IDN domain
    ("email me at jane.doe@example.com please", "en-US", "email", "email me at <email> please"),
    ("schick es an max.mustermann+shop@gmx.de", "de-DE", "email", "schick es an <email>"),
    ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ にメールして", "ja-JP", "email", "<email> にメールして"),
    ("écris à rené@exemple.fr", "fr-FR", "email", "écris à <email>"),
    # phone numbers, by the locale's numbering plan (phonenumbers)
    ("call +1 415 555 0134 now", "en-US", "phone_number", "call <phone> now"),
    ("call (415) 555-0134", "en-US", "phone_number", "call <phone>"),
    ("ring 020 7946 0958 please", "en-GB", "phone_number", "ring <phone> please"),
    ("ruf 030 12345678 an", "de-DE", "phone_number", "ruf <phone> an"),
    ("sms an 0151 23456789", "de-DE", "phone_number", "sms an <phone>"),
    ("appelle le 06 12 34 56 78", "fr-FR", "phone_number", "appelle le <phone>"),
    ("llama al 612 345 678", "es-ES", "phone_number", "llama al <phone>"),
    ("０９０－１２３４－５６７８に電話", "ja-JP", "phone_number", "<phone>に電話"),
    ("बुलाओ ९८७६५४३२१० पर", "hi-IN", "phone_number", "बुलाओ <phone> पर"),
    ("call 5 5 5 1 2 3 4", "en-US", "phone_number", "call <phone>"),
    # payment cards: Luhn-valid only (python-stdnum)
    ("pay with 4111 1111 1111 1111", "en-US", "card_number", "pay with <card>"),
    ("card 5500-0055-5555-5559 please", "en-US", "card_number", "card <card> please"),
    # IBANs: mod-97 and country length (python-stdnum), spaced or not, next word kept
    ("transfer to DE89 3704 0044 0532 0130 00 please", "de-DE", "iban", "transfer to <iban> please"),
    ("iban GB82WEST12345698765432", "en-GB", "iban", "iban <iban>"),
    ("virement FR14 2004 1010 0505 0001 3M02 606", "fr-FR", "iban", "virement <iban>"),
    # what is left: digit runs (any script) and spoken digit sequences
    ("my code is 884213", "en-US", "long_digit_run", "my code is <number>"),
    ("رمز ٧٣٩١٨٤٦٢", "ar-SA", "long_digit_run", "رمز <number>"),
    ("order ４４８２９１ status", "en-US", "long_digit_run", "order <number> status"),
    ("call five five five one two three four", "en-US", "long_digit_run", "call <number>"),
    ("my pin is seven three nine one eight four", "en-US", "long_digit_run", "my pin is <number>"),
    ("ruf null eins fünf eins zwei drei vier an", "de-DE", "long_digit_run", "ruf <number> an"),
])
def test_scrub_pii_replaces_and_counts(text, locale, kind, expected):
    scrubbed, counts = privacy.scrub_pii(text, locale)
    assert scrubbed == expected
    assert counts == {kind: 1}
    assert privacy.placeholder_counts(scrubbed) == {kind: 1}


def test_scrub_pii_invalid_checksums_fall_back_to_other_kinds():
    """A card number failing Luhn, or an IBAN failing mod-97, is not counted as a card/IBAN,
    yet its digits do not survive (phone or digit-run rules take them)."""
    for text, locale, gone in [("pay with 4111 1111 1111 1112", "en-US", "1112"),
                               ("to DE00 3704 0044 0532 0130 00", "de-DE", "0532")]:
        scrubbed, counts = privacy.scrub_pii(text, locale)
        assert counts and not counts.keys() & {"card_number", "iban"}, counts
        assert gone not in scrubbed


def test_scrub_pii_counts_several_kinds_in_one_text():
    text = "mail bob@example.com or call +44 20 7946 0958 about card 4111-1111-1111-1111"
    scrubbed, counts = privacy.scrub_pii(text, "en-GB")
    assert scrubbed == "mail <email> or call <phone> about card <card>"
    assert counts == {"email": 1, "phone_number": 1, "card_number": 1}


@pytest.mark.parametrize("text, locale", [
    ("set an alarm for 6 am", "en-US"),
    ("set an alarm for 7:30", "en-US"),
    ("set an alarm for 7 am on june 21 2026", "en-US"),
    ("wake me at 06 30 on 12 05 2026", "en-US"),
    ("remind me on 2026-06-21 at 14:45", "en-US"),
    ("erinnere mich am 12.05.2026 um 14:30", "de-DE"),
    ("réveille-moi à 7h30 le 21/06/2026", "fr-FR"),
    ("the meeting is from 9 to 10 30 tomorrow and 11 45", "en-US"),
    ("set a timer for 1 hour 20 minutes 30 seconds", "en-US"),
    ("play the top 100 songs of 2024", "en-US"),
    ("set the temperature to 21.5 degrees", "en-US"),
    ("it costs 1,299.99 dollars", "en-US"),
    ("turn the volume to 5", "en-US"),
    ("call 911", "en-US"),
    ("my pin is 1234", "en-US"),
    ("what is 2 plus 2", "en-US"),
    ("play 99 luftballons", "de-DE"),
    ("午後7時30分にアラームをセットして", "ja-JP"),
    ("اضبط المنبه على ٧:٣٠", "ar-SA"),
    ("one two", "en-US"),
    ("email", "en-US"),
    ("", "en-US"),
])
def test_scrub_pii_keeps_times_dates_and_small_numbers(text, locale):
    assert privacy.scrub_pii(text, locale) == (text, {})


def test_scrub_pii_finds_no_pii_in_the_shipped_corpora():
    """No false positives on the 16k real utterances of HWU64 and SLURP."""
    from mining.sim.corpora import load_corpus

    for name in ("hwu64", "slurp"):
        df = load_corpus(name)
        hits = [t for t, loc in zip(df["text"], df["locale"]) if privacy.scrub_pii(t, loc)[1]]
        assert hits == [], (name, hits[:5])


@pytest.mark.parametrize("locale, region", [
    ("en-US", "US"), ("de_DE", "DE"), ("zh-Hans-CN", "CN"), ("en", "US"), ("pt", "BR"),
    ("es-419", "ES"), ("xx", None), (None, None),
])
def test_locale_region(locale, region):
    assert privacy.locale_region(locale) == region


def test_without_a_region_only_international_numbers_are_phone_numbers():
    assert privacy.scrub_pii("call +49 30 12345678", "xx")[1] == {"phone_number": 1}
    assert privacy.scrub_pii("call 030 12345678", "xx")[1] == {"long_digit_run": 1}


def test_turn_text_udf_scrubs_the_utterance_and_the_slot_values_in_one_pass(spark):
    """prepare_turns' one UDF: scrubbed utterance, its text_norm and the slots scrubbed like
    scrub_udfs' scrub_slots (nulls and empty lists kept)."""
    from mining.core import text
    from mining.spark.sessions import turn_text_udf

    df = spark.createDataFrame(
        [("call 030 12345678", "de-DE", [("phone", "030 12345678"), ("x", None)]),
         (None, "en-US", None), ("hi", "en-US", [])],
        "utterance string, locale string, slots array<struct<name:string,value:string>>")
    out = df.select(turn_text_udf(None)("utterance", "locale", "slots").alias("t")).select("t.*").collect()
    assert [(r["utterance"], r["cue"], None if r["nlu_slots"] is None else [tuple(x) for x in r["nlu_slots"]])
            for r in out] == [("call <phone>", None, [("phone", "<phone>"), ("x", None)]), (None, None, None),
                              ("hi", None, [])]
    assert [r["text_norm"] for r in out] == [text.normalize(r["utterance"]) for r in out]


def test_scrub_udfs_scrub_text_and_slot_values_in_spark(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame(
        [("call 030 12345678", "de-DE", [("phone", "030 12345678"), ("x", None)]),
         (None, "en-US", None), ("hi", "en-US", [])],
        "utterance string, locale string, slots array<struct<name:string,value:string>>")
    scrub_text, scrub_slots = privacy.scrub_udfs()
    out = df.select(scrub_text("utterance", "locale").alias("u"), scrub_slots("slots", "locale").alias("s"))
    rows = [(r["u"], None if r["s"] is None else [tuple(x) for x in r["s"]]) for r in out.collect()]
    assert rows == [("call <phone>", [("phone", "<phone>"), ("x", None)]), (None, None), ("hi", [])]
    counts = out.agg(*[c.alias(k) for k, c in privacy.spark_placeholder_counts(F.col("u")).items()]).first()
    assert counts.asDict() == {"email": 0, "iban": 0, "card_number": 0, "phone_number": 1, "long_digit_run": 0}
