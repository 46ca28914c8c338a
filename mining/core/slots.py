"""Slot projection: carry the successful turn's slots onto the failed turn's words.

In a rephrase pair the user's first request (the *source*) failed and the rephrase (the
*target*) succeeded; the NLU slots of the target (``{"name", "value"}``) are projected onto
the source by a word alignment that tolerates small spelling differences, so that ASR-ish
variants still align ("tomorow" / "tomorrow", "seven a.m." / "seven am", "Завтра" /
"завтра") while values that are not in the source are dropped with a reason. Number words
versus digits ("5" / "five") or synonyms do not align; such slots are dropped.

Method
------
1. **Tokens with offsets.** The source is split into tokens with character offsets:
   whitespace separates tokens; every punctuation character (Unicode category P*) and every
   symbol (S*) is a token of its own; each base character of a script written without word
   spaces (Han, kana, Thai, Lao, Khmer, Myanmar: :func:`mining.core.text.is_no_space_char`) is a
   token together with the combining marks that follow it (grapheme-like units, as in
   :func:`mining.core.text.tokens`); runs of other characters (Latin, Cyrillic, Greek, Arabic,
   digits, ...) are one token. Punctuation tokens only ever sit at the edge of a span:
   spans are anchored on *word* tokens (all non-punctuation tokens), and span lengths
   count word tokens.
2. **Candidates.** For a slot value of ``k`` word tokens (same tokenizer), every contiguous
   run of ``L`` word tokens of the source with ``max(1, k - 2) <= L <= k + 2``
   (:data:`MAX_LEN_DELTA`) is a candidate span. When the value itself starts (ends) with
   punctuation ("a.m."), the span may also take in up to :data:`MAX_EDGE_PUNCT`
   punctuation characters attached to its first (last) word ("seven a.m." keeps its
   final dot).
3. **Score.** The score of a span is the Indel normalized similarity (rapidfuzz
   ``Indel.normalized_similarity``, equal to ``fuzz.ratio / 100``:
   ``1 - (insertions + deletions) / (len_a + len_b)``, in [0, 1]) between the value and the
   span text, both normalized like :func:`mining.core.text.normalize` (NFKC, full case folding,
   apostrophes dropped, other punctuation as spaces, whitespace collapsed; for Turkish and
   Azerbaijani locales dotted/dotless i are folded the Turkic way first). Scores are
   rounded to 9 decimals so that float noise cannot break ties. A span is acceptable when
   its score is ``>= min_similarity``.
4. **Choice and tie-break.** Candidates are ordered by: higher score; then higher
   similarity of the texts with case and punctuation kept (NFKC only: prefers "7pm" to
   "7pm," and "John" to "john" when both fit); then span length (word tokens) closest to
   the value's; then leftmost start; then shorter span. For one slot this is the whole
   order; its best candidate is the span it gets unless another slot takes it.
5. **Several slots.** All (slot, span) pairs are taken greedily, best first: a pair is
   taken when its slot has no span yet and its span overlaps no span already taken. Across
   slots, pairs of equal score and exact-form similarity are ordered first by how many
   spans that good the slot has (the most constrained slot first: in "double bacon
   cheeseburger with bacon" the slot "bacon cheeseburger", with one exact span, goes before
   "bacon", with two), then by the order of step 4, then by the slot's position in the
   input. The order is total, so the result is deterministic. Two slots with the same value
   get two different occurrences, the earlier slot the leftmost one; a value that occurs
   twice with one slot gets its leftmost occurrence.

The kept value is the source's own substring (original case and characters: the typo
"tomorow" stays "tomorow"), so the annotation describes the words the user actually said.
A value without trailing punctuation stops before an attached dot: "seven am" on "seven
a.m. please" keeps "seven a.m", because a sentence-final "." cannot be told from an
abbreviation's. ``annot_utt`` is the source with each kept span bracketed in the MASSIVE /
SLURP inline format ``[slot_name : value]``; :func:`mining.sim.corpora.parse_annot_utt` turns
it back into (source text with whitespace collapsed, kept slots); a source with ``[`` or
``]`` keeps no slot (``utterance_has_brackets`` below).

Dropped slots are counted by reason (:data:`DROP_REASONS`):

- ``slot_name_invalid``: the name is not a string, is empty, or contains ``[``, ``]`` or
  ``:`` (it could not be written into ``annot_utt``);
- ``slot_value_missing``: the value is None, not a string (NaN, pd.NA, numbers), or empty
  after normalization (only spaces/punctuation);
- ``slot_not_aligned``: no candidate span reaches ``min_similarity``;
- ``slot_overlaps``: some span reaches it, but all such spans overlap spans taken by
  better-scoring slots (or by an earlier duplicate of the same slot);
- ``utterance_has_brackets``: the utterance holds ``[`` or ``]``, which the inline format
  cannot escape (a reader would take "play the [x : y] song" for a slot): every slot is
  dropped and ``annot_utt`` writes the brackets as parentheses.

Threshold
---------
The default ``min_similarity`` of 0.8 allows an Indel distance of at most a fifth of the
two lengths together: one inserted or dropped letter in a 3-letter word and up to one
substitution plus one insertion in an 8-letter one ("tomorow" / "tomorrow" 0.93, "seven
am" / "seven a.m." 0.94, "ساعة" / "الساعة" 0.8), but no substitution in words of up to four
letters ("five" / "nine" 0.5, "am" / "pm" 0.5, "monday" / "sunday" 0.67). Because the score
is over the whole value, a multi-word value could still pass with one short word changed
("seven am" / "seven pm" 0.875) and a short word could pass against a longer one ("find" /
"friend" 0.8): so in a fuzzy match (score < 1) the *short words* (at most
:data:`SHORT_WORD_CHARS` characters, or containing a digit) of the value and of the span
must be the same set, unless the two differ only in spaces ("7 p.m." / "7 pm"). Found on
the HWU64 benchmark run (``bench/labels.py``). The one-character units of scripts without
word spaces are exempt (a Thai value without its tone mark still aligns). Indel rather than
Levenshtein because a substitution costs two edits there: changed letters usually mean a
different word, inserted or dropped ones usually a spelling/ASR variant. Values whose
spelling matches exactly always win over fuzzy ones (score 1.0).

Complexity
----------
With ``n`` word tokens in the source, ``S`` slots and values of about ``m`` characters:
``O(n)`` tokenization, ``O(S * n * (2 * MAX_LEN_DELTA + 1))`` similarity evaluations (one
``rapidfuzz.process.extract`` call per slot, so the loop runs in C), each bit-parallel
(``O(ceil(m / 64) * m)``), plus an ``O(C log C)`` sort of the ``C`` accepted candidates
and an ``O(C * S)`` overlap check. Requests are short (a few to
~40 tokens, 1-3 slots): about 50-65 us per call on HWU64 requests, about 0.3 ms for a
32-word request with 5 slots (one CPU core).

Prior art
---------
Creating annotations for failed utterances from the user's successful paraphrase, with the
paraphrase's slot labels projected onto the failed utterance through an alignment of the
two token sequences, is MARUPA (Falke, Boese, Sorokin, Tirkaz, Lehnen: "Leveraging User
Paraphrasing Behavior In Dialog Systems To Automatically Collect Annotations For Long-Tail
Utterances", COLING 2020, Industry Track, pp. 21-32, doi:10.18653/v1/2020.coling-industry.3).
Here the alignment is reduced to a per-slot span search under fuzzy string similarity,
which needs no trained aligner and works for scripts without word spaces.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import Indel

from mining.core.text import cue_language, is_no_space_char, normalize
from mining.errors import ConfigError

#: Reasons a slot can be dropped, in the order they are checked.
DROP_REASONS: tuple[str, ...] = ("slot_name_invalid", "slot_value_missing", "slot_not_aligned",
                                 "slot_overlaps", "utterance_has_brackets")
_BRACKETS = frozenset("[]")
_BRACKETS_AS_PARENS = str.maketrans("[]", "()")
#: Default threshold on the normalized Indel similarity (see the module docstring).
DEFAULT_MIN_SIMILARITY = 0.8
#: Candidate spans have the value's word-token count ± this many word tokens (at least 1).
MAX_LEN_DELTA = 2
#: At most this many attached punctuation characters may extend a span at each edge.
MAX_EDGE_PUNCT = 3
#: Words of at most this many characters (and words with a digit) only match exactly: in a
#: fuzzy match, every such word of the value must be a word of the span and vice versa.
SHORT_WORD_CHARS = 4

_TURKIC = frozenset({"tr", "az"})
_APOSTROPHES = frozenset("'’ʼ")     # the set mining.core.text.normalize drops
_BAD_NAME_CHARS = frozenset("[]:")
_ROUND = 9

_SPACE, _WORD, _NO_SPACE, _PUNCT, _SYMBOL, _MARK = range(6)
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


@lru_cache(maxsize=1 << 16)
def _kind(ch: str) -> int:
    if ch.isspace():
        return _SPACE
    cat = unicodedata.category(ch)
    if cat[0] == "M" or cat == "Cf":        # combining marks, ZWJ/ZWNJ: stay with their base
        return _MARK
    if cat[0] == "P":
        return _PUNCT
    if cat[0] == "S" or cat == "Cc":
        return _SYMBOL
    return _NO_SPACE if is_no_space_char(ch) else _WORD


def _tokenize(text: str) -> list[tuple[int, int, bool]]:
    """``[(start, end, is_punct)]`` in text order (see step 1 of the module docstring)."""
    if text.isascii():
        return [(m.start(), m.end(), m.end() - m.start() == 1 and _kind(m.group()) == _PUNCT)
                for m in _ASCII_TOKEN.finditer(text)]
    return _tokenize_general(text)


def _tokenize_general(text: str) -> list[tuple[int, int, bool]]:
    toks: list[tuple[int, int, bool]] = []
    start, cur = -1, _MARK          # start of the open token (-1: none) and its kind
    for i, ch in enumerate(text):
        kind = _kind(ch)
        if kind == _SPACE:
            if start >= 0:
                toks.append((start, i, cur == _PUNCT))
                start = -1
            continue
        if start < 0:
            start, cur = i, kind
        elif kind == _MARK:
            pass                                    # marks join the open token
        elif cur == _MARK:
            cur = kind                              # leading marks join the next base character
        elif kind == _WORD and cur == _WORD:
            pass                                    # extend a run of other-script letters/digits
        else:
            toks.append((start, i, cur == _PUNCT))
            start, cur = i, kind
    if start >= 0:
        toks.append((start, len(text), cur == _PUNCT))
    return toks


def _turkic_fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("I", "ı").replace("İ", "i")


@lru_cache(maxsize=1 << 16)
def _fold_word(token: str, turkic: bool) -> str:
    """normalize() of one word token (no punctuation inside)."""
    return normalize(_turkic_fold(token) if turkic else token)


def _exact_form(text: str) -> str:
    """NFKC with whitespace collapsed; case and punctuation kept (the tie-break text)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _short_words(words) -> frozenset[str]:
    """The normalized words that must match exactly: at most :data:`SHORT_WORD_CHARS`
    characters or with a digit; not the one-character units of scripts without spaces. An
    empty word (a token that normalizes to nothing, e.g. a lone U+02BC ʼ) is none of them."""
    return frozenset(w for w in words if w and (len(w) <= SHORT_WORD_CHARS or any(ch.isdigit() for ch in w))
                     and not is_no_space_char(w[0]))


@lru_cache(maxsize=1 << 16)
def _value_info(value: str, turkic: bool) -> tuple[str, int, bool, bool, str, frozenset[str]]:
    """(normalized value, word-token count, starts with punctuation, ends with
    punctuation, exact form, short words)."""
    key = normalize(_turkic_fold(value) if turkic else value)
    toks = _tokenize(value)
    words = [_fold_word(value[s:e], turkic) for s, e, p in toks if not p]
    exact = _exact_form(value)
    lead = bool(exact) and unicodedata.category(exact[0])[0] == "P"
    trail = bool(exact) and unicodedata.category(exact[-1])[0] == "P"
    return key, len(words), lead, trail, exact, _short_words(words)


def _slot_fields(slot) -> tuple[object, object]:
    if not isinstance(slot, Mapping):
        raise TypeError(f"a slot must be a mapping with 'name' and 'value', got {type(slot).__name__}")
    return slot.get("name"), slot.get("value")


def project_slots(utterance: str | None, slots, locale: str | None = None,
                  min_similarity: float = DEFAULT_MIN_SIMILARITY,
                  ) -> tuple[list[dict[str, str]], str, dict[str, int]]:
    """Project ``slots`` onto the words of ``utterance`` (see the module docstring).

    Args:
        utterance: the source text; ``None`` is treated as ``""``.
        slots: ``None`` (or a float NaN, as pandas fills a missing cell) or an iterable (list, tuple, numpy object array as Arrow/pandas hand
            it over) of mappings with keys ``"name"`` (str) and ``"value"`` (str or None).
        locale: BCP-47 locale of the utterance (``"tr-TR"``); only its language subtag is
            used, to fold dotted/dotless i the Turkic way for ``tr`` and ``az``. Tokenization
            depends on the script, not on the locale.
        min_similarity: threshold in [0, 1] on the normalized Indel similarity of a slot
            value and a span of the utterance (default :data:`DEFAULT_MIN_SIMILARITY`).

    Returns:
        ``(kept, annot_utt, dropped)``:

        - ``kept``: ``[{"name": str, "value": str}]`` in utterance order, non-overlapping;
          each value is the utterance's own substring ``utterance[start:end]``, the slot
          name stripped of surrounding whitespace;
        - ``annot_utt``: ``utterance`` with every kept span written as ``[name : value]``;
          with no kept slot, ``utterance`` itself, but for ``[``/``]`` written as ``(``/``)``;
        - ``dropped``: ``{reason: count}`` for the reasons of :data:`DROP_REASONS` that
          occurred (counts >= 1; ``{}`` when nothing was dropped).
          ``len(kept) + sum(dropped.values())`` is the number of input slots.

    Raises:
        TypeError: ``utterance`` is neither a str nor None, or a slot is not a mapping.
        ConfigError: ``min_similarity`` is outside [0, 1] (or NaN).
    """
    if utterance is None:
        utterance = ""
    if not isinstance(utterance, str):
        raise TypeError(f"utterance must be a str or None, got {type(utterance).__name__}")
    if not (0.0 <= min_similarity <= 1.0):
        raise ConfigError(f"min_similarity must be in [0, 1], got {min_similarity!r}")
    threshold = round(float(min_similarity), _ROUND)
    turkic = cue_language(locale) in _TURKIC
    dropped: dict[str, int] = {}

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    # Validate the slots first; only valid ones go on to the alignment.
    todo: list[tuple[str, str]] = []               # (name, value) of the valid slots
    if slots is None or (isinstance(slots, float) and math.isnan(slots)):
        slots = ()
    for slot in slots:
        name, value = _slot_fields(slot)
        if not isinstance(name, str) or not name.strip() or _BAD_NAME_CHARS.intersection(name):
            drop("slot_name_invalid")
        elif not isinstance(value, str) or not _value_info(value, turkic)[0]:
            drop("slot_value_missing")
        else:
            todo.append((name.strip(), value))
    if _BRACKETS.intersection(utterance):   # MASSIVE's inline format has no escape for them
        for _ in todo:
            drop("utterance_has_brackets")
        return [], utterance.translate(_BRACKETS_AS_PARENS), dropped
    if not todo:
        return [], utterance, dropped

    toks = _tokenize(utterance)
    word_idx = [i for i, (_, _, p) in enumerate(toks) if not p]
    n = len(word_idx)
    starts = [toks[i][0] for i in word_idx]
    ends = [toks[i][1] for i in word_idx]
    norms = [_fold_word(utterance[s:e], turkic) for s, e in zip(starts, ends)]
    # normalize() joins two words without a space only when nothing but apostrophes is between.
    seps = [""] + ["" if all(ch in _APOSTROPHES for ch in utterance[ends[j - 1]:starts[j]]) else " "
                   for j in range(1, n)]

    # Normalized text of every run of word tokens a..b up to the longest length any slot needs.
    infos = [_value_info(value, turkic) for _, value in todo]
    max_len = max(info[1] for info in infos) + MAX_LEN_DELTA
    span_keys: list[list[str]] = []                # span_keys[a][L - 1]: words a..a+L-1
    for a in range(n):
        key, keys = norms[a], [norms[a]]
        for b in range(a + 1, min(n, a + max_len)):
            key = key + seps[b] + norms[b]
            keys.append(key)
        span_keys.append(keys)

    cutoff = max(0.0, threshold - 1e-6)            # exact comparison after rounding below
    per_slot: list[list[tuple[float, float, int, int, int]]] = []
    for vkey, k, lead, trail, vexact, vshort in infos:
        lo, hi = max(1, k - MAX_LEN_DELTA), k + MAX_LEN_DELTA
        spans = [(a, L) for a in range(n) for L in range(lo, min(hi, n - a) + 1)]
        choices = [span_keys[a][L - 1] for a, L in spans]
        mine: list[tuple[float, float, int, int, int]] = []
        for _, raw_score, i in process.extract(vkey, choices, scorer=Indel.normalized_similarity,
                                               score_cutoff=cutoff, limit=None):
            score = round(raw_score, _ROUND)
            if score < threshold:
                continue
            a, L = spans[i]
            if score < 1.0 and _short_words(norms[a:a + L]) != vshort \
                    and choices[i].replace(" ", "") != vkey.replace(" ", ""):
                continue                           # "seven am" / "seven pm", "find" / "friend"
            s, e = _best_edges(utterance, toks, word_idx[a], word_idx[a + L - 1], lead, trail, vexact)
            exact = round(Indel.normalized_similarity(vexact, _exact_form(utterance[s:e])), _ROUND)
            mine.append((-score, -exact, abs(L - k), s, e))
        per_slot.append(mine)

    # One ordering for all (slot, span) pairs: score, exact-form similarity, then the number
    # of spans the slot has that are that good (the most constrained slot first, so that
    # "bacon cheeseburger" gets its only span before "bacon" takes the leftmost of two),
    # then length difference, leftmost start, shorter span, input position.
    cands: list[tuple[float, float, int, int, int, int, int]] = []
    for pos, mine in enumerate(per_slot):
        mine.sort()
        for i, (neg_score, neg_exact, dlen, s, e) in enumerate(mine):
            alts = i + 1
            while alts < len(mine) and mine[alts][:2] == (neg_score, neg_exact):
                alts += 1
            cands.append((neg_score, neg_exact, alts, dlen, s, e, pos))
    cands.sort()

    chosen: dict[int, tuple[int, int]] = {}
    for *_, s, e, pos in cands:
        if pos in chosen or any(s < ce and cs < e for cs, ce in chosen.values()):
            continue
        chosen[pos] = (s, e)
    for pos in range(len(todo)):
        if pos not in chosen:
            drop("slot_overlaps" if per_slot[pos] else "slot_not_aligned")

    spans = sorted((s, e, todo[pos][0]) for pos, (s, e) in chosen.items())
    parts, cursor = [], 0
    for s, e, name in spans:
        parts.append(utterance[cursor:s])
        parts.append(f"[{name} : {utterance[s:e]}]")
        cursor = e
    parts.append(utterance[cursor:])
    kept = [{"name": name, "value": utterance[s:e]} for s, e, name in spans]
    return kept, "".join(parts), dropped


def _best_edges(text: str, toks: list[tuple[int, int, bool]], first: int, last: int,
                lead: bool, trail: bool, vexact: str) -> tuple[int, int]:
    """Character span of tokens ``first..last``, extended by attached punctuation at an edge
    where the value has punctuation too, whichever extension is closest to the value's exact
    form (ties: the shorter span)."""
    s, e = toks[first][0], toks[last][1]
    if not (lead or trail):
        return s, e
    starts, ends = [s], [e]
    if lead:
        i = first - 1
        while i >= 0 and len(starts) <= MAX_EDGE_PUNCT and toks[i][2] and toks[i][1] == starts[-1]:
            starts.append(toks[i][0])
            i -= 1
    if trail:
        i = last + 1
        while i < len(toks) and len(ends) <= MAX_EDGE_PUNCT and toks[i][2] and toks[i][0] == ends[-1]:
            ends.append(toks[i][1])
            i += 1
    best = max((Indel.normalized_similarity(vexact, _exact_form(text[cs:ce])), -(ce - cs), cs, ce)
                for cs in starts for ce in ends)
    return best[2], best[3]


__all__ = ["DEFAULT_MIN_SIMILARITY", "DROP_REASONS", "MAX_EDGE_PUNCT", "MAX_LEN_DELTA", "SHORT_WORD_CHARS",
           "project_slots"]
