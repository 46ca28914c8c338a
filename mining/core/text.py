"""Text normalization, script-aware tokenization and lexical similarity (pure functions, no Spark).

Normalization: Unicode NFKC (UAX #15), full case folding (``str.casefold``; a no-op for
scripts without case), apostrophes dropped, other punctuation (Unicode category P*) replaced
by spaces, whitespace collapsed. No step assumes that words are separated by spaces, so
Chinese, Japanese and Thai text normalize correctly.

Tokenization (:func:`tokens`): whitespace first; inside a whitespace chunk, every base
character of a script written without word spaces (Han, Hiragana, Katakana, Thai, Lao,
Khmer, Myanmar; see :data:`NO_SPACE_RANGES`) is a token of its own, carrying the combining
marks (Unicode categories Mn/Mc/Me) that follow it; runs of any other script (Latin,
Cyrillic, Greek, Arabic, Hebrew, Devanagari, digits, ...) stay whole tokens. Splitting
space-less scripts into characters is the usual dictionary-free fallback (BERT's
BasicTokenizer and sacreBLEU's ``zh`` tokenizer do it for Han ideographs; here it is
extended to kana and the Southeast Asian scripts, with combining marks kept on their base
character as in Unicode grapheme clusters, UAX #29); it needs no word segmenter and makes
token edit distance meaningful in every script. Script membership is decided by code-point
ranges of Unicode blocks (:data:`NO_SPACE_RANGES`), standard library only.

Similarities, all in [0, 1] (1 = identical):

- :func:`char_sim`: cosine of character n-gram count vectors (:func:`char_sims` for many pairs);
- :func:`token_sim`: normalized Levenshtein similarity over :func:`tokens` sequences
  (rapidfuzz ``Levenshtein.normalized_similarity``: 1 - distance / max(len_a, len_b)).

Correction cues: :func:`cue_language` maps a locale to the key of a per-language cue table,
:func:`leading_cue` finds the cue a normalized turn starts with.
"""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

_APOSTROPHES = frozenset("'’ʼ")

#: Inclusive code-point ranges of scripts written without spaces between words (Unicode
#: block boundaries from the UCD file Blocks.txt), sorted and non-overlapping.
NO_SPACE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0E7F),    # Thai
    (0x0E80, 0x0EFF),    # Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x19E0, 0x19FF),    # Khmer Symbols
    (0x2E80, 0x2EFF),    # CJK Radicals Supplement
    (0x2F00, 0x2FDF),    # Kangxi Radicals
    (0x2FF0, 0x2FFF),    # Ideographic Description Characters
    (0x3000, 0x303F),    # CJK Symbols and Punctuation (々 〆 〇 ...; punctuation is removed by normalize)
    (0x3040, 0x309F),    # Hiragana
    (0x30A0, 0x30FF),    # Katakana (incl. ー prolonged sound mark)
    (0x3100, 0x312F),    # Bopomofo
    (0x3190, 0x319F),    # Kanbun
    (0x31A0, 0x31BF),    # Bopomofo Extended
    (0x31C0, 0x31EF),    # CJK Strokes
    (0x31F0, 0x31FF),    # Katakana Phonetic Extensions
    (0x3400, 0x4DBF),    # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),    # CJK Unified Ideographs
    (0xA9E0, 0xA9FF),    # Myanmar Extended-B
    (0xAA60, 0xAA7F),    # Myanmar Extended-A
    (0xF900, 0xFAFF),    # CJK Compatibility Ideographs
    (0xFF65, 0xFF9F),    # Halfwidth Katakana (in Halfwidth and Fullwidth Forms; NFKC widens them)
    (0x116D0, 0x116FF),  # Myanmar Extended-C
    (0x1AFF0, 0x1B16F),  # Kana Extended-B, Kana Supplement, Kana Extended-A, Small Kana Extension
    (0x20000, 0x3FFFF),  # Supplementary Ideographic Plane + Tertiary Ideographic Plane (CJK Ext. B-I, compat.)
)
_RANGE_STARTS = tuple(lo for lo, _ in NO_SPACE_RANGES)
_FIRST_NO_SPACE = chr(NO_SPACE_RANGES[0][0])
#: Any character of :data:`NO_SPACE_RANGES` (the regex engine scans a text in C, where
#: :func:`is_no_space_char` per character costs a bisect: 30% of :func:`char_sims` on 10k pairs)
_NO_SPACE_RE = re.compile("[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
                                        for lo, hi in NO_SPACE_RANGES) + "]")


def is_no_space_char(ch: str) -> bool:
    """True if the single character ``ch`` belongs to a script written without word spaces
    (a code point in :data:`NO_SPACE_RANGES`)."""
    cp = ord(ch)
    i = bisect_right(_RANGE_STARTS, cp) - 1
    return i >= 0 and cp <= NO_SPACE_RANGES[i][1]


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


_OTHER, _NO_SPACE, _MARK = 0, 1, 2


@lru_cache(maxsize=1 << 16)
def _char_kind(ch: str) -> int:
    """_MARK (category Mn/Mc/Me), _NO_SPACE (:func:`is_no_space_char`) or _OTHER."""
    return _MARK if _is_mark(ch) else _NO_SPACE if is_no_space_char(ch) else _OTHER


#: Format characters (category Cf) that :func:`normalize` keeps: the zero-width non-joiner
#: and joiner spell words in Persian and Indic scripts ("می‌خواهم").
_KEPT_FORMAT = frozenset("\u200c\u200d")


def _drop_or_space(ch: str) -> str:
    if ch in _APOSTROPHES:
        return ""
    cat = unicodedata.category(ch)
    return " " if cat[0] == "P" else "" if cat == "Cf" and ch not in _KEPT_FORMAT else ch


def normalize(text: str | None) -> str:
    """NFKC + casefold + apostrophes dropped ("what's" → "whats") + invisible format
    characters dropped (category Cf: zero-width space, bidi marks, BOM, soft hyphen; not
    ZWNJ/ZWJ) + other punctuation → space + NFKC again + collapsed whitespace. ``None`` →
    ``""``. The second NFKC composes what casefolding or a dropped character left
    decomposed ("Μαΐου", "l'\u0301a"), so the result is NFKC and ``normalize`` idempotent:
    ``text_norm`` is a join and cache key."""
    if not text:
        return ""
    text = "".join(map(_drop_or_space, unicodedata.normalize("NFKC", text).casefold()))
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


def repeated_keys(locales: Sequence[str], texts: Sequence[str | None]) -> list[bool]:
    """Per row, whether an earlier row has its key (locale, :func:`normalize` of the text):
    the key of a label in ``labels/``, retention, the quality gate and ``mining merge``."""
    seen: set[tuple[str, str]] = set()
    out = []
    for key in zip(locales, (normalize(t or "") for t in texts)):
        out.append(key in seen)
        seen.add(key)
    return out


def tokens(text_norm: str) -> list[str]:
    """Script-aware tokens of a (normalized) text, in order; ``""`` → ``[]``.

    Whitespace separates tokens. Inside a whitespace chunk, each base character of a
    no-space script (:func:`is_no_space_char`: Han, kana, Thai, Lao, Khmer, Myanmar) is one
    token together with the combining marks (category Mn/Mc/Me) that follow it, so Thai
    vowel and tone marks never form tokens of their own; maximal runs of other characters
    (Latin, Arabic, Cyrillic, digits, ...) are one token each:
    ``tokens("iphone新しい") == ["iphone", "新", "し", "い"]``. Marks at the very start of
    a chunk attach to the following character; a chunk made only of marks is one token.
    Concatenating the tokens of a chunk gives the chunk back.
    """
    out: list[str] = []
    for chunk in text_norm.split():
        if max(chunk) < _FIRST_NO_SPACE:      # fast path: no no-space script in this chunk
            out.append(chunk)
            continue
        buf = ""            # current token
        buf_kind = _MARK    # kind of buf's base characters; _MARK while buf has none yet
        for ch in chunk:
            kind = _char_kind(ch)
            if kind == _MARK:
                buf += ch                      # marks stay with their base (or lead the next one)
            elif buf_kind == _MARK:            # buf empty or only leading marks
                buf += ch
                buf_kind = kind
            elif kind == _OTHER and buf_kind == _OTHER:
                buf += ch                      # extend an other-script run
            else:                              # script change or a no-space character: new token
                out.append(buf)
                buf, buf_kind = ch, kind
        if buf:
            out.append(buf)
    return out


def text_hash(text_norm: str) -> str:
    """sha256 hex digest (64 chars) of the UTF-8 normalized text: the embedding cache key."""
    return hashlib.sha256(text_norm.encode("utf-8")).hexdigest()


def char_ngrams(text: str, n: int = 3) -> Counter:
    """Counts of character n-grams of ``text`` padded with one space each side.

    Spaces inside the text are kept, so word boundaries count where a script has them."""
    padded = f" {text} "
    if len(padded) < n:
        return Counter([padded])
    return Counter([padded[i:i + n] for i in range(len(padded) - n + 1)])


def char_sim(a: str, b: str, n: int = 3) -> float:
    """Cosine similarity of character n-gram count vectors, in [0, 1]; 0 if either is empty.

    When either text has a character of a script written without spaces (Han, kana, Thai…)
    ``n`` is capped at 2: a CJK character carries about as much as a short word, so
    character bigrams are the usual unit there (Kwok, "Comparing representations in
    Chinese information retrieval", SIGIR 1997); trigrams of short Japanese requests that
    mean the same often share none."""
    return char_sims([a], [b], n)[0]


def char_sims(a: Sequence[str], b: Sequence[str], n: int = 3) -> list[float]:
    """:func:`char_sim` of each aligned pair ``(a[i], b[i])``, with each distinct text's
    n-gram counts built once: rephrase candidates repeat the same requests (246,294
    distinct text pairs over 19,541 texts on 1M simulated HWU64 turns), and building
    the counts is most of :func:`char_sim`'s time. Raises ``ValueError`` when the lengths differ."""
    if len(a) != len(b):
        raise ValueError("char_sims: sequences differ in length")
    profiles: dict[tuple[str, int], tuple[Counter, int]] = {}
    no_space: dict[str, bool] = {}

    def profile(t: str, k: int) -> tuple[Counter, int]:
        if (t, k) not in profiles:
            c = char_ngrams(t, k)
            profiles[t, k] = (c, sum(v * v for v in c.values()))
        return profiles[t, k]

    def has_no_space(t: str) -> bool:
        if t not in no_space:
            no_space[t] = _NO_SPACE_RE.search(t) is not None
        return no_space[t]

    out = []
    for x, y in zip(a, b):
        if not x or not y:
            out.append(0.0)
            continue
        k = 2 if n > 2 and (has_no_space(x) or has_no_space(y)) else n
        (ca, sa), (cb, sb) = profile(x, k), profile(y, k)
        if len(cb) < len(ca):
            ca, cb = cb, ca
        dot = sum(v * cb[g] for g, v in ca.items() if g in cb)
        norm = math.sqrt(sa * sb)
        out.append(dot / norm if norm else 0.0)
    return out


def token_sim(a: str, b: str) -> float:
    """Normalized Levenshtein similarity of the :func:`tokens` sequences of two normalized
    texts (rapidfuzz; 1 - token edit distance / max token count), in [0, 1].

    Both empty → 1.0; exactly one empty → 0.0. Works for scripts without word spaces,
    where each character is a token (``token_sim("明日の天気", "明日の天気は") == 5/6``)."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return float(Levenshtein.normalized_similarity(tokens(a), tokens(b)))


def cue_language(locale: str | None) -> str:
    """Primary language subtag of a BCP-47 locale, lower-cased: "en-US" → "en",
    "zh-Hans-CN" → "zh", "pt_BR" → "pt" (POSIX "_" is accepted too); ``""``/``None`` → ``""``."""
    if not locale:
        return ""
    return locale.strip().replace("_", "-").split("-", 1)[0].lower()


def leading_cue(text_norm: str, cues: tuple[str, ...]) -> str | None:
    """The longest cue in ``cues`` that ``text_norm`` starts with at a token boundary, else None.

    Both the text and the cues must already be normalized (:func:`normalize`). A prefix
    match counts when the text ends right after the cue, or the next character is a space,
    or the cue's last base character or the next character belongs to a no-space script
    (:func:`is_no_space_char`: ja/zh/th, where characters are tokens) — i.e. where
    :func:`tokens` would split — and never when the next character is a combining mark
    (that would cut a character cluster). So with cues ("no", "no i said"):
    "no i said play jazz" → "no i said", "nothing on" → None; with ("いいえ",):
    "いいえ電気をつけて" → "いいえ". Empty cues are ignored. O(total cue length).
    """
    best: str | None = None
    n = len(text_norm)
    for cue in cues:
        k = len(cue)
        if not k or k > n or (best is not None and k <= len(best)) or not text_norm.startswith(cue):
            continue
        if k < n:
            nxt = text_norm[k]
            nxt_kind = _char_kind(nxt)
            if nxt_kind == _MARK:
                continue
            if not (nxt == " " or nxt_kind == _NO_SPACE or _last_base_no_space(cue)):
                continue
        best = cue
    return best


def _last_base_no_space(cue: str) -> bool:
    for ch in reversed(cue):
        kind = _char_kind(ch)
        if kind != _MARK:
            return kind == _NO_SPACE
    return False
