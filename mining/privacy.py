"""Privacy: keyed pseudonymization of ids, PII scrubbing of exported text, k-anonymity.

Pseudonyms are HMAC-SHA256 (RFC 2104) of the raw id under a secret key, hex encoded
(64 chars). The Spark version is built from Spark's own ``sha2``/``concat``/``unhex``
expressions, so it runs in the JVM with no Python UDF; a unit test proves it equals
Python's ``hmac`` module byte for byte.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re

log = logging.getLogger(__name__)

KEY_ENV = "MINING_PSEUDONYM_KEY"
DEMO_ENV = "MINING_DEMO_MODE"
#: Built-in key for demos and tests ONLY. Runs refuse it unless MINING_DEMO_MODE=1.
DEMO_KEY = b"DEMO-KEY-public-not-secret-never-use-on-real-logs"
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


class PrivacyError(RuntimeError):
    """A privacy precondition failed (missing key, demo key outside demo mode)."""


def demo_mode() -> bool:
    return os.environ.get(DEMO_ENV, "") in ("1", "true", "yes")


def resolve_key() -> bytes:
    """The pseudonymization key from ``$MINING_PSEUDONYM_KEY`` (UTF-8), or ``DEMO_KEY``
    when ``$MINING_DEMO_MODE=1`` and no key is set.

    Raises ``PrivacyError`` when no key is set outside demo mode, when the key is the demo
    key outside demo mode, or when it is shorter than 16 bytes."""
    raw = os.environ.get(KEY_ENV)
    if raw:
        key = raw.encode("utf-8")
        if key == DEMO_KEY and not demo_mode():
            raise PrivacyError(f"{KEY_ENV} is the public demo key; set a secret key or {DEMO_ENV}=1")
        if len(key) < 16:
            raise PrivacyError(f"{KEY_ENV} must be at least 16 bytes")
        return key
    if demo_mode():
        log.warning("DEMO MODE: pseudonymizing with the public demo key; never use on real logs")
        return DEMO_KEY
    raise PrivacyError(f"set {KEY_ENV} (secret HMAC key) or {DEMO_ENV}=1 for the demo key")


def pseudonymize(value: str, key: bytes) -> str:
    """HMAC-SHA256(key, value) as 64 lowercase hex chars (reference implementation)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def spark_pseudonymize(col, key: bytes):
    """Spark Column equal to :func:`pseudonymize` of a string column (JVM-only).

    HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)), K' = K zero-padded to 64 bytes
    (K hashed first when longer than 64)."""
    from pyspark.sql import functions as F

    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


# First version of PII scrubbing: regular expressions, applied to exported text only.
# Order matters: specific patterns first. Replacement tokens keep the sentence readable.
_PII_PATTERNS = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b"), "<email>"),
    ("iban", re.compile(r"\b[a-zA-Z]{2}\d{2}(?:\s?[a-zA-Z0-9]{4}){3,7}(?:\s?[a-zA-Z0-9]{1,3})?\b"), "<iban>"),
    ("card_number", re.compile(r"\b(?:\d[ -]?){13,19}\b"), "<card>"),
    ("phone_number", re.compile(r"(?<!\w)\+?\d[\d\s().-]{7,}\d(?!\w)"), "<phone>"),
    ("long_digit_run", re.compile(r"\d{5,}"), "<number>"),
]


def scrub_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace emails, IBAN-, card- and phone-like numbers and digit runs ≥ 5 with tokens.

    Returns (scrubbed text, counts by kind; kinds with no match omitted)."""
    counts: dict[str, int] = {}
    for kind, pattern, token in _PII_PATTERNS:
        text, n = pattern.subn(token, text)
        if n:
            counts[kind] = counts.get(kind, 0) + n
    return text, counts

#: Kinds of PII that :func:`scrub_pii` counts, in application order.
PII_KINDS = tuple(kind for kind, _, _ in _PII_PATTERNS)
