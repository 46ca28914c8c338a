import hashlib
import hmac

import pytest

from mining import privacy


def test_pseudonymize_is_keyed_hmac_sha256():
    key = b"k" * 32
    assert privacy.pseudonymize("acct-1", key) == hmac.new(key, b"acct-1", hashlib.sha256).hexdigest()
    assert privacy.pseudonymize("acct-1", key) != privacy.pseudonymize("acct-1", b"j" * 32)


@pytest.mark.parametrize("key", [b"0123456789abcdef", b"x" * 64, b"long-key-" * 20])
def test_spark_pseudonymize_equals_python_hmac(spark, key):
    from pyspark.sql import functions as F

    ids = ["acct-0001", "ünïcødé-用户", ""]
    df = spark.createDataFrame([(i,) for i in ids], "user_id string")
    got = [r[0] for r in df.select(privacy.spark_pseudonymize(F.col("user_id"), key)).collect()]
    assert got == [privacy.pseudonymize(i, key) for i in ids]


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


@pytest.mark.parametrize("text, kind", [
    ("email me at jane.doe@example.com please", "email"),
    ("call +1 415 555 0134 now", "phone_number"),
    ("pay with 4111 1111 1111 1111", "card_number"),
    ("transfer to DE89 3704 0044 0532 0130 00", "iban"),
    ("my code is 884213", "long_digit_run"),
])
def test_scrub_pii_replaces_and_counts(text, kind):
    scrubbed, counts = privacy.scrub_pii(text)
    assert counts.get(kind) == 1
    assert not any(ch.isdigit() for ch in scrubbed)
    assert "@example.com" not in scrubbed


def test_scrub_pii_leaves_ordinary_requests_alone():
    text = "set an alarm for 7 am on june 21 2026"
    assert privacy.scrub_pii(text) == (text, {})
