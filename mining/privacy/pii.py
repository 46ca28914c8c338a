"""Privacy: keyed pseudonymization of ids, PII scrubbing of utterances and slot values.

PII is scrubbed at ingest (:func:`scrub_pii` and :func:`scrub_slot_lists` in
:func:`mining.spark.sessions.turn_text_udf`, for :func:`mining.spark.sessions.prepare_turns`), so
no stage under OUT stores it, and again at export (defence in depth, :func:`scrub_pii`).

Pseudonyms are HMAC-SHA256 (RFC 2104) of the raw id under a secret key, hex encoded
(64 chars). The Spark version is built from Spark's own ``sha2``/``concat``/``unhex``
expressions, so it runs in the JVM with no Python UDF; a unit test proves it equals
Python's ``hmac`` module byte for byte.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from functools import lru_cache

import pandas as pd  # module level: pandas UDF type hints resolve against these globals

from mining import env
from mining.core.text import NO_SPACE_RANGES
from mining.errors import PrivacyError  # noqa: F401  (raised here; importers catch it from here too)

log = logging.getLogger(__name__)

KEY_ENV = env.KEY_ENV
DEMO_ENV = env.DEMO_ENV
#: Built-in key for demos and tests ONLY. Runs refuse it unless MINING_DEMO_MODE=1.
DEMO_KEY = b"DEMO-KEY-public-not-secret-never-use-on-real-logs"
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


demo_mode = env.demo_mode


def resolve_key() -> bytes:
    """The pseudonymization key from ``$MINING_PSEUDONYM_KEY`` (UTF-8), or ``DEMO_KEY``
    when ``$MINING_DEMO_MODE=1`` and no key is set.

    Raises ``PrivacyError`` when no key is set outside demo mode, when the key is the demo
    key outside demo mode, or when it is shorter than 16 bytes."""
    raw = env.pseudonym_key()
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


def derive_key(key: bytes, purpose: str) -> bytes:
    """A sub-key of the pseudonymization ``key`` for one ``purpose`` (domain separation):
    HMAC-SHA256(key, "mining/" + purpose), 32 bytes. What it keys reveals nothing about
    ``key`` or the pseudonyms, even where the sub-key reaches Python workers."""
    return hmac.new(key, f"mining/{purpose}".encode("utf-8"), hashlib.sha256).digest()


def opaque_cluster_id(cluster_id: str | None, key: bytes) -> str | None:
    """The exported form of a ``cluster_id`` (``<locale>:<12 hex of sha256(medoid text)>``,
    :func:`mining.core.clustering.cluster_frame`): ``<locale>:`` + 16 hex of HMAC-SHA256
    under ``key`` (:func:`derive_key` ``"cluster_id"``). The internal id is an unkeyed hash of
    the medoid's text, which need not be k-anonymous: anyone could test a guessed text
    against it. Same key and cluster → same id (stable across nights); None stays None."""
    if cluster_id is None or cluster_id != cluster_id:
        return None
    locale = cluster_id.split(":", 1)[0]
    return f"{locale}:{hmac.new(key, cluster_id.encode('utf-8'), hashlib.sha256).hexdigest()[:16]}"


#: The columns :func:`with_hmac_key` adds and :func:`spark_pseudonymize` reads.
HMAC_KEY_COLUMNS = ("_hmac_ipad", "_hmac_opad")


def with_hmac_key(df, key: bytes):
    """``df`` with the HMAC key pads of ``key`` as two binary columns
    (:data:`HMAC_KEY_COLUMNS`), from a one-row broadcast cross join; drop them once
    :func:`spark_pseudonymize` has used them.

    The key enters the query as data, never as a literal: a literal is printed in every
    query plan (``explain``, the Spark UI's SQL tab, the event log and history server, plans
    quoted in errors), and K' ⊕ 0x36 gives the key back. A local relation's row is not
    printed (checked on Spark 4.2: neither the plan string nor the event log holds it)."""
    from pyspark.sql import functions as F

    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    pads = df.sparkSession.createDataFrame([(bytearray(b ^ 0x36 for b in key), bytearray(b ^ 0x5C for b in key))],
                                           " binary, ".join(HMAC_KEY_COLUMNS) + " binary")
    return df.crossJoin(F.broadcast(pads))


def spark_pseudonymize(col):
    """Spark Column equal to :func:`pseudonymize` of a string column (JVM-only), on a
    DataFrame that :func:`with_hmac_key` gave the key pads.

    HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)), K' = K zero-padded to 64 bytes
    (K hashed first when longer than 64), RFC 2104. The message is the string's bytes as
    stored (a cast, not ``encode``, which fails on invalid UTF-8): for a valid string its
    UTF-8 encoding, for a raw line of invalid bytes those bytes."""
    from pyspark.sql import functions as F

    ipad, opad = (F.col(c) for c in HMAC_KEY_COLUMNS)
    inner = F.unhex(F.sha2(F.concat(ipad, col.cast("binary")), 256))
    return F.sha2(F.concat(opad, inner), 256)


# --- PII scrubbing ---------------------------------------------------------------------
#
# Detectors run in this order on a "shadow" of the text: every non-ASCII character whose
# NFKC form (UAX #15) is one character is replaced by that form, and every Unicode decimal
# digit (category Nd: Arabic-Indic ٠-٩, Devanagari ०-९, full-width ０-９, ...) by its ASCII
# digit. The shadow has the text's length, so a span found in it is the same span of the
# original, which is what gets replaced (the exported text keeps its script otherwise).
# A detector never sees what an earlier one replaced.
#
#   kind            how                                                           token
#   email           regex local@domain.tld (Unicode letters allowed, IDN), with   <email>
#                   no Han/kana/Hangul/Thai/... letters (scripts written without
#                   spaces run into the address: "メールはtaro@example.jpです");
#                   TLD: >= 2 letters or punycode ``xn--...``; the local part may
#                   hold RFC 5322's specials ("sean.o'connor@", "a&b@")
#   iban            IBAN-shaped candidate (groups split by spaces or commas),     <iban>
#                   ISO 13616 mod-97 + country length
#                   (python-stdnum ``stdnum.iban.is_valid``)
#   card_number     13-19 digits, runs of spaces/dashes/commas allowed (not       <card>
#                   thousands separators "34,000,…"), Luhn
#                   (python-stdnum ``stdnum.luhn.is_valid``)
#   phone_number    ``phonenumbers.PhoneNumberMatcher`` (Google libphonenumber     <phone>
#                   port) with the region of the utterance's locale, leniency
#                   POSSIBLE; kept: >= 7 digits, or 5-6 digits that the region's
#                   plan calls valid; dates ("12.05.2026") are not; groups split
#                   by ", " (dictated: "415, 555, 2671") when their digits joined
#                   are a valid number of the region
#   long_digit_run  what is left: a run of >= 5 digits, or >= 7 digits written    <number>
#                   in two or more groups split by single spaces/dashes/dots
#                   ("5 5 5 1 2 3 4", "1234 5678"), dates excepted
#   (long_digit_run) >= 5 tokens in a row, each a digit word or a numeral of      <number>
#                   1-4 digits, split by spaces/commas/dashes ("five five five
#                   one two", "555-one-two-three-four"), for en, de, fr, es, it,
#                   nl, pt (other languages: not detected)
#
# A date is Y-M-D (4-digit year) or D-M-Y / M-D-Y (2- or 4-digit year) with one separator
# kind (``.``, ``/``, ``-``, or single spaces for D M Y), month 1-12 and day 1-31
# (:func:`_is_date`): "123-45-6789" and "1234.56.7890" are not dates.
#
# Times ("7:30"), dates ("june 21 2026", "21.06.2026"), years and small numbers ("set an
# alarm for 6 am", "3 minutes") survive. Texts with fewer than 5 digits and no "@" skip the
# detectors (the common case costs one regex search).

_TOKENS = {"email": "<email>", "iban": "<iban>", "card_number": "<card>", "phone_number": "<phone>",
           "long_digit_run": "<number>", "spoken_digits": "<number>"}
#: Kinds of PII that :func:`scrub_pii` counts, in application order (spoken digit runs are
#: counted as ``long_digit_run``: they share its placeholder).
PII_KINDS = tuple(k for k in _TOKENS if k != "spoken_digits")
#: The placeholder each kind is replaced with.
PII_TOKENS = dict(_TOKENS)

_MASK = "\0"
_TRIGGER = re.compile(r"[@\uff20\ufe6b]|(?:\d\D{0,3}){5}")
#: Letters of scripts written without spaces (:data:`mining.core.text.NO_SPACE_RANGES`) and
#: Hangul (Korean attaches particles to a word): never part of an email address, as a regex
#: class body.
_NO_ADDR = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in NO_SPACE_RANGES + (
    (0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xFFA0, 0xFFDC)))
_ADDR_WORD = rf"[^\W{_NO_ADDR}]"                     # \w less _NO_ADDR
# one character per alternation step, disjoint classes: no catastrophic backtracking; the
# lookbehinds start a match only at the start of the local part (not once per character)
# (domain labels may be in any script, "info@例え.jp"; only the local part and the TLD, where
# the address runs into the sentence, leave the no-space scripts out)
#: the local part's other characters (RFC 5322 atext, and ".": "sean.o'connor", "a&b", "x=y")
_ADDR_SPECIAL = r"[.+\-!#$%&'*/=?^`{|}~]"
_EMAIL = re.compile(rf"(?<!{_ADDR_SPECIAL})(?<!{_ADDR_WORD})(?:{_ADDR_WORD}|{_ADDR_SPECIAL})+@[\w-]+"
                    rf"(?:\.[\w-]+)*\.(?:xn--[A-Za-z0-9-]*[A-Za-z0-9]|[^\W\d_{_NO_ADDR}]{{2,}})")
#: What ``_EMAIL`` leaves: a local part or TLD in a no-space script ("张三@例子.中国"). The
#: whole whitespace-delimited token goes (privacy first); "田中@東京に行きます" (no dot) stays.
_EMAIL_FALLBACK = re.compile(r"[^\s@\0]+@[^\s@.\0]+(?:\.[^\s@.\0]+)+")
# groups split by spaces, dashes or commas (ASR punctuation of dictated numbers: "4111, 1111, …")
_IBAN_CANDIDATE = re.compile(r"(?<![\w])[A-Za-z]{2} *\d *\d(?:,? *[A-Za-z0-9]){10,30}")   # "DE 89 3704  0044"
_CARD_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ ,-]*\d){12,18}(?![\d])")
_DATE = re.compile(r"\s*(?:(\d{4})([./-])(\d{1,2})\2(\d{1,2})"
                   r"|(\d{1,2})([./-])(\d{1,2})\6(?:\d{4}|\d{2})"
                   r"|(\d{1,2}) (\d{1,2}) (?:\d{4}|\d{2}))\s*")
# not the decimals of a number ("pi 3.14159", "2,71828"): an identifier has no decimal point
_DIGIT_RUN = re.compile(r"(?<!\d[.,])\d{5,}")
#: Two years 1900-2099 ("songs from 1990-1999", "the 2019 2020 season"): no number to scrub.
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d[ .-](?:19|20)\d\d")
# not inside a longer number: no digit, nor a digit then ":", "." or "," ("10:30", "1,5"), either
# side; punctuation before a space or the end ("123-45-6789, thanks", "ssn:123-45-6789") is no digit
_DIGIT_GROUPS = re.compile(r"(?<!\d)(?<!\d[:.,])\d+(?:[ .-]\d+)+(?!\d|[:.,]\d)")
#: the same with ", " between groups too ("call 415, 555, 2671": ASR punctuation of a dictated
#: number); a phone number only when its digits joined are one the region's plan calls valid
#: (:func:`_comma_phones`), so lists, years and dates with commas stay
_DIGIT_GROUPS_COMMA = re.compile(r"(?<!\d)(?<!\d[:.,])\d+(?:(?:, |[ .-])\d+)+(?!\d|[:.,]\d)")
_SPOKEN = {
    "en": "zero oh o one two three four five six seven eight nine double triple",
    "de": "null eins zwei drei vier fünf fuenf sechs sieben acht neun",
    "fr": "zéro zero un une deux trois quatre cinq six sept huit neuf",
    "es": "cero uno una dos tres cuatro cinco seis siete ocho nueve",
    "it": "zero uno due tre quattro cinque sei sette otto nove",
    "nl": "nul een één twee drie vier vijf zes zeven acht negen",
    "pt": "zero um uma dois duas três tres quatro cinco seis sete oito nove",
}
#: Number words of two digits (teens and tens): "five five five twelve thirty four", French
#: digit pairs ("zéro six douze trente-quatre"). Each counts two digits.
_SPOKEN_PAIRS = {
    "en": "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty "
          "forty fifty sixty seventy eighty ninety",
    "de": "zehn elf zwölf zwoelf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn zwanzig "
          "dreißig dreissig vierzig fünfzig sechzig siebzig achtzig neunzig",
    "fr": "dix onze douze treize quatorze quinze seize vingt trente quarante cinquante soixante",
    "es": "diez once doce trece catorce quince dieciséis veinte treinta cuarenta cincuenta sesenta setenta "
          "ochenta noventa",
    "it": "dieci undici dodici tredici quattordici quindici sedici venti trenta quaranta cinquanta sessanta "
          "settanta ottanta novanta",
    "nl": "tien elf twaalf dertien veertien vijftien zestien twintig dertig veertig vijftig zestig zeventig "
          "tachtig negentig",
    "pt": "dez onze doze treze catorze quinze dezesseis vinte trinta quarenta cinquenta sessenta setenta "
          "oitenta noventa",
}
# a run of number tokens split by spaces, commas, dashes or full stops; what ends a sentence may follow
_SPOKEN_RE = {lang: re.compile(r"(?<!\w)(?:(?:%s|\d{1,4})(?:[ ,.-]+|[.?!]?$)){3,}" % "|".join(
                  sorted({*words.split(), *_SPOKEN_PAIRS.get(lang, "").split()}, key=len, reverse=True)),
                               re.IGNORECASE)
              for lang, words in _SPOKEN.items()}
_SPOKEN_PAIR_SETS = {lang: frozenset(w.casefold() for w in words.split()) for lang, words in _SPOKEN_PAIRS.items()}
#: Region used for phone numbers when a locale names none (``en`` → US); unknown → none,
#: then only numbers written with ``+`` and a country code are recognized as phone numbers.
DEFAULT_REGIONS = {"en": "US", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL", "pt": "BR",
                   "ja": "JP", "zh": "CN", "ko": "KR", "ru": "RU", "pl": "PL", "tr": "TR", "ar": "SA",
                   "hi": "IN", "sv": "SE", "da": "DK", "nb": "NO", "fi": "FI", "cs": "CZ", "he": "IL",
                   "th": "TH", "vi": "VN", "id": "ID", "uk": "UA", "el": "GR", "hu": "HU", "ro": "RO"}


def locale_region(locale: str | None) -> str | None:
    """ISO 3166 region of a BCP-47 locale (``en-US``, ``de_DE``, ``zh-Hans-CN`` → US, DE,
    CN), else :data:`DEFAULT_REGIONS` of its language, else None."""
    if not locale:
        return None
    parts = locale.replace("_", "-").split("-")
    for sub in parts[1:]:
        if len(sub) == 2 and sub.isalpha():
            return sub.upper()
    return DEFAULT_REGIONS.get(parts[0].lower())


@lru_cache(maxsize=4096)
def _shadow_char(ch: str) -> str:
    if unicodedata.category(ch) == "Nd":
        return str(unicodedata.digit(ch))
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def _shadow(text: str) -> str:
    """Same-length copy of ``text`` with ASCII digits and single-character NFKC forms."""
    return text if text.isascii() else "".join(_shadow_char(c) if not c.isascii() else c for c in text)


def _ibans(shadow: str):
    from stdnum import iban

    pos = 0
    while m := _IBAN_CANDIDATE.search(shadow, pos):
        # the candidate may run into the next word: the longest valid prefix wins; none valid,
        # the next candidate may start inside this one ("am 12 juni an DE89 3704 …")
        raw = m.group()
        ends = [i + 1 for i, ch in enumerate(raw) if ch not in " ,"]
        valid = next((end for end in reversed(ends[14:])           # IBANs have 15 to 34 characters
                      if iban.is_valid(raw[:end].replace(",", "").upper())), 0)
        if valid:
            yield m.start(), m.start() + valid
        pos = m.start() + (valid or 1)


def _cards(shadow: str):
    from stdnum import luhn

    for m in _CARD_CANDIDATE.finditer(shadow):
        digits = re.sub(r"\D", "", m.group())   # thousands separators ("34,000,…"): an amount
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and not re.fullmatch(r"\d{1,3}(?:,\d{3})+", m.group()):
            yield m.span()


def _is_date(s: str) -> bool:
    """True if ``s`` (surrounding whitespace allowed) is a date: Y-M-D with a 4-digit year,
    or D-M-Y / M-D-Y with a 2- or 4-digit year, one separator kind (``.``, ``/``, ``-``;
    single spaces for D M Y), month 1-12, day 1-31 and a 4-digit year in 1500-2099."""
    m = _DATE.fullmatch(s)
    if not m:
        return False
    years = [g for g in re.findall(r"\d+", s) if len(g) == 4]
    if years and not 1500 <= int(years[0]) <= 2099:     # "call 12 05 1234": no year, a number
        return False
    if m[1]:
        return 1 <= int(m[3]) <= 12 and 1 <= int(m[4]) <= 31
    a, b = (int(m[5]), int(m[7])) if m[5] else (int(m[8]), int(m[9]))
    return 1 <= min(a, b) <= 12 and max(a, b) <= 31


def _phones(shadow: str, region: str | None):
    import phonenumbers

    matcher = phonenumbers.PhoneNumberMatcher(shadow, region or "ZZ", leniency=phonenumbers.Leniency.POSSIBLE)
    for m in matcher:
        digits = sum(ch.isdigit() for ch in m.raw_string)
        # POSSIBLE alone accepts "14" in "um 14:30" (short numbers): at least 7 digits, or
        # 5-6 digits that the region's plan calls a valid number; dates are not numbers
        if (digits >= 7 or (digits >= 5 and phonenumbers.is_valid_number(m.number))) \
                and not _is_date(m.raw_string):
            yield m.start, m.end


def _comma_phones(shadow: str, region: str | None):
    """Dictated phone numbers with commas between their groups, which ``PhoneNumberMatcher``
    does not read as one number: at least 7 digits that, joined, the region's plan calls a
    valid number ("415, 555, 2671", "1, 800, 273, 8255" in the US; "06, 12, 34, 56, 78" in
    France), shaped like one: groups all of one digit; or, after up to two leading one-digit
    groups (the first "0" or the region's country code), groups of 2+ digits with a lead, a
    trunk 0 first or a group of 3+ (lists such as lottery numbers or temperatures stay)."""
    import phonenumbers

    code = str(phonenumbers.country_code_for_region(region or "ZZ"))
    for m in _DIGIT_GROUPS_COMMA.finditer(shadow):
        groups = re.findall(r"\d+", m.group())
        digits, lead = "".join(groups), next((i for i, g in enumerate(groups[:2]) if len(g) > 1), min(2, len(groups)))
        rest = groups[lead:]
        shaped = (all(len(g) == 1 for g in groups)
                  or (rest and all(len(g) > 1 for g in rest) and (not lead or groups[0] in ("0", code))
                      and (lead or digits.startswith("0") or max(map(len, rest)) >= 3)))
        if ", " not in m.group() or len(digits) < 7 or not shaped:
            continue
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, region or "ZZ")):
                yield m.span()
        except phonenumbers.NumberParseException:
            continue


def _digit_runs(shadow: str):
    # groups first: "98765 4321" is one number, not "98765" and a leftover "4321"
    for m in _DIGIT_GROUPS.finditer(shadow):
        if sum(ch.isdigit() for ch in m.group()) >= 7 and not _is_date(m.group()) \
                and not _YEAR_RANGE.fullmatch(m.group()):
            yield m.span()
    for m in _DIGIT_RUN.finditer(shadow):
        yield m.span()


def _spoken(shadow: str, locale: str | None):
    """Spans of spoken digit sequences: at least 5 single-digit tokens (digit words, 1-digit
    numerals), or 7 digits (a phone number's shortest: a numeral counts its digits, a teen or
    tens word two) in a run with 4 single-digit tokens or a numeral of 3+ digits. So "call
    five five five 1234" and "five five five twelve thirty four" go, while clock times
    ("six forty five, seven fifteen"), scores ("twenty one, nineteen") and "twenty five
    minutes" stay; numerals alone are a list ("top 10, 20, 30, 40, 50 songs") unless all
    single digits."""
    lang = (locale or "en").replace("_", "-").split("-")[0].lower()
    pattern = _SPOKEN_RE.get(lang)
    if pattern is None:
        return
    pairs = _SPOKEN_PAIR_SETS.get(lang, frozenset())
    for m in pattern.finditer(shadow):
        tokens = re.split(r"[ ,.-]+", m.group().strip(" ,.-?!"))
        if all(t.isdigit() for t in tokens) and any(len(t) > 1 for t in tokens):
            continue
        single = sum(len(t) == 1 if t.isdigit() else t.casefold() not in pairs for t in tokens)
        digits = sum(len(t) if t.isdigit() else 2 if t.casefold() in pairs else 1 for t in tokens)
        if single >= 5 or (digits >= 7 and (single >= 4 or any(t.isdigit() and len(t) >= 3 for t in tokens))):
            yield m.start(), m.start() + len(m.group().rstrip(" ,.-?!"))


def scrub_pii(text: str, locale: str | None = None) -> tuple[str, dict[str, int]]:
    """Replace emails, IBANs, payment card numbers, phone numbers, long digit runs and
    spoken digit sequences in ``text`` with the placeholders of :data:`PII_TOKENS`.

    ``locale`` (BCP-47, e.g. ``de-DE``) picks the phone numbering plan
    (:func:`locale_region`) and the digit words; None → US plan, English words.
    Returns (scrubbed text, counts by kind; kinds with no match omitted).

    Sources: phone numbers by ``phonenumbers`` (Python port of Google's libphonenumber,
    ``PhoneNumberMatcher``); IBAN (ISO 13616, mod 97-10 of ISO 7064 and per-country
    length) and Luhn (ISO/IEC 7812-1) checks by ``python-stdnum``."""
    if not text:
        return text, {}
    shadow = _shadow(text)
    has_at = "@" in shadow
    if not has_at and not _TRIGGER.search(shadow) and not _maybe_spoken(shadow):
        return text, {}
    spans: list[tuple[int, int, str]] = []

    def take(kind, found):
        nonlocal shadow
        for start, end in list(found):
            if any(start < e and s < end for s, e, _ in spans):
                continue
            spans.append((start, end, kind))
            shadow = shadow[:start] + _MASK * (end - start) + shadow[end:]

    if has_at:
        take("email", (m.span() for m in _EMAIL.finditer(shadow)))
        take("email", (m.span() for m in _EMAIL_FALLBACK.finditer(shadow)))
    if sum(ch.isdigit() for ch in shadow) >= 5:
        take("iban", _ibans(shadow))
        take("card_number", _cards(shadow))
        region = locale_region(locale) if locale else "US"
        take("phone_number", _phones(shadow, region))
        take("phone_number", _comma_phones(shadow, region))
        take("long_digit_run", _digit_runs(shadow))
    take("spoken_digits", _spoken(shadow, locale))
    if not spans:
        return text, {}
    counts: dict[str, int] = {}
    out, pos = [], 0
    for start, end, kind in sorted(spans):
        out += [text[pos:start], _TOKENS[kind]]
        pos = end
        kind = "long_digit_run" if kind == "spoken_digits" else kind
        counts[kind] = counts.get(kind, 0) + 1
    out.append(text[pos:])
    return "".join(out), counts


def _maybe_spoken(shadow: str) -> bool:
    """Cheap pre-check: at least 2 separators (a spoken digit sequence has >= 3 tokens
    split by spaces, commas, dashes or full stops)."""
    return shadow.count(" ") + shadow.count(",") + shadow.count("-") + shadow.count(".") >= 2


def placeholder_counts(text: str | None) -> dict[str, int]:
    """Placeholders of :data:`PII_TOKENS` in an (already scrubbed) text, by kind; a
    ``<number>`` counts as ``long_digit_run`` (spoken digit runs share its token)."""
    counts: dict[str, int] = {}
    if text and "<" in text:
        for kind, token in _TOKENS.items():
            if kind == "spoken_digits":
                continue
            n = text.count(token)
            if n:
                counts[kind] = n
    return counts


def scrub_udfs():
    """Two vectorized pandas UDFs for Spark, each called as ``udf(col, locale_col)``:
    :func:`scrub_pii` of a string column, and of the ``value`` of every element of an
    ``array<struct<name, value>>`` slot column (nulls kept)."""
    from pyspark.sql.functions import pandas_udf

    from mining.core.unique import map_unique

    @pandas_udf("string")
    def scrub_text(texts: pd.Series, locales: pd.Series) -> pd.Series:
        return map_unique(lambda t, loc: None if t is None else scrub_pii(t, loc)[0], texts, locales)

    @pandas_udf("array<struct<name:string,value:string>>")
    def scrub_slots(slots: pd.Series, locales: pd.Series) -> pd.Series:
        return scrub_slot_lists(slots, locales)

    return scrub_text, scrub_slots


def scrub_slot_lists(slots: pd.Series, locales: pd.Series) -> pd.Series:
    """:func:`scrub_pii` of the ``value`` of every slot of aligned Series of slot lists
    (each None or a sequence of mappings with ``name`` and ``value``) and locales: an object
    Series of lists of ``{"name", "value"}`` dicts, with the index of ``slots``; null lists
    and values stay null. Each distinct (value, locale) is scrubbed once."""
    memo: dict = {}             # (value, locale) → scrubbed: slot values repeat like texts

    def value(v, loc):
        if (v, loc) not in memo:
            memo[v, loc] = scrub_pii(v, loc)[0]
        return memo[v, loc]

    return pd.Series([None if s is None else
                      [{"name": x["name"], "value": None if x["value"] is None else value(x["value"], loc)}
                       for x in s] for s, loc in zip(slots, locales)], index=slots.index, dtype=object)


def spark_placeholder_counts(col) -> dict:
    """{kind: Spark aggregate Column} counting :func:`placeholder_counts` placeholders of a
    scrubbed string column, computed in the JVM (``long_digit_run`` includes spoken digits)."""
    from pyspark.sql import functions as F

    return {kind: F.coalesce(F.sum(F.size(F.split(F.coalesce(col, F.lit("")), re.escape(token))) - 1),
                             F.lit(0))
            for kind, token in _TOKENS.items() if kind != "spoken_digits"}
