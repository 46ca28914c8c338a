"""Text normalization and script-agnostic lexical similarity (pure functions, no Spark).

Normalization: Unicode NFKC (UAX #15), full case folding (``str.casefold``; a no-op for
scripts without case), punctuation (Unicode category P*) replaced by spaces, whitespace
collapsed. No step assumes that words are separated by spaces, so Chinese, Japanese and
Thai text normalize correctly.
"""
from __future__ import annotations

import hashlib
import math
import unicodedata
from collections import Counter

from rapidfuzz.distance import Levenshtein


_APOSTROPHES = frozenset("'’ʼ")


def normalize(text: str | None) -> str:
    """NFKC + casefold + apostrophes dropped ("what's" → "whats") + other punctuation →
    space + collapsed whitespace. ``None`` → ``""``."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join("" if ch in _APOSTROPHES else " " if unicodedata.category(ch).startswith("P") else ch
                   for ch in text)
    return " ".join(text.split())


def text_hash(text_norm: str) -> str:
    """sha256 hex digest (64 chars) of the UTF-8 normalized text: the embedding cache key."""
    return hashlib.sha256(text_norm.encode("utf-8")).hexdigest()


def char_ngrams(text: str, n: int = 3) -> Counter:
    """Counts of character n-grams of ``text`` padded with one space each side.

    Spaces inside the text are kept, so word boundaries count where a script has them."""
    padded = f" {text} "
    if len(padded) < n:
        return Counter([padded])
    return Counter(padded[i:i + n] for i in range(len(padded) - n + 1))


def char_sim(a: str, b: str, n: int = 3) -> float:
    """Cosine similarity of character n-gram count vectors, in [0, 1]; 0 if either is empty."""
    if not a or not b:
        return 0.0
    ca, cb = char_ngrams(a, n), char_ngrams(b, n)
    dot = sum(v * cb.get(g, 0) for g, v in ca.items())
    norm = math.sqrt(sum(v * v for v in ca.values()) * sum(v * v for v in cb.values()))
    return dot / norm if norm else 0.0


def token_sim(a: str, b: str) -> float:
    """Normalized Levenshtein similarity over whitespace tokens (rapidfuzz), in [0, 1].

    For scripts written without spaces the whole text is one token; char_sim then carries
    the lexical signal (issue 3 adds a script-aware tokenizer)."""
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a.split(), b.split()))
