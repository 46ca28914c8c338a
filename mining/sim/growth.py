"""Grow a small labeled corpus into many distinct, real-looking utterances with gold intents.

For scale benchmarks of the embedding and variant-clustering stages (20k ... 1M distinct
utterances): the real corpora (:mod:`mining.sim.corpora`) hold 11,036 (HWU64) and 5,005
(SLURP) utterances, and random vectors say nothing about how real text clusters. The log
simulator (:mod:`mining.sim.simulation`) replays corpus utterances verbatim, unless its
``traffic_utterances`` asks for more distinct requests than the corpus has: then its
traffic comes from here (``bench/cold_night.py``'s realistic night).

Every grown row is one corpus utterance (its ``origin_utt_id``) with a seeded random
combination of transforms that keep its meaning, so its gold ``intent`` is the origin's by
construction:

* ``slot_swap`` (the main source): one or more slot values of the MASSIVE-style annotation
  are replaced by other values of the same slot name seen in the corpus under the same
  intent, and the text is rendered from the annotation (``wake me up at [time : five am]`` →
  ``wake me up at half past seven``). Pools are per (intent, slot name) so that a value
  never moves an utterance to another intent (a ``media_type`` of ``audiobook`` would turn a
  ``play_music`` request into ``play_audiobook``).
* ``prefix``: a neutral carrier phrase in front (``hey assistant``, ``ok``); requests
  (``can you``, ``could you please``) and wishes (``i want to``) only before an utterance
  that starts with an imperative verb (``can you play jazz``, never ``can you what time is
  it``); no prefix on utterances that already start with a wake word or greeting.
* ``suffix``: ``please``, ``thanks``, ``now``, ``for me`` (the last after imperatives only),
  never one the utterance already has; put before trailing ``?``/``.``/``!``.
* light ASR-like noise, at most one per text and never on texts of 2 words or fewer:
  ``drop_word`` (one short function word dropped: ``set alarm for seven``), ``repeat_word``
  (a short word said twice: ``set the the alarm``) or ``filler`` (``um``/``uh`` inserted).

No negations, no word reordering. Whitespace is normalized (single spaces, stripped).

Sources: HWU64, Liu, Eshghi, Swietojanski, Rieser (2019), github xliuhw/NLU-Evaluation-Data;
SLURP, Bastianelli, Vanzo, Swietojanski, Rieser (EMNLP 2020), github pswietojanski/slurp;
both CC BY 4.0 (:data:`mining.sim.corpora.CORPUS_ATTRIBUTION`): attribute them wherever grown
data is shared.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mining.sim.corpora import _SLOT_RE, load_corpus
from mining.errors import ConfigError

COLUMNS = ["text", "intent", "origin_utt_id", "transform", "annot_utt"]

# Random-stream tags: default_rng([seed, tag]) keeps the streams independent.
_ORDER_STREAM, _GROWTH_STREAM = 0, 1
# Candidates drawn per batch. Fixed (not a function of n), so the growth stream and hence the
# output for n is a prefix of the output for any larger n with the same seed.
_BATCH = 65_536
# A batch that adds fewer new distinct texts than this share of _BATCH ends the growth with a
# ValueError: the transforms are (nearly) exhausted for this corpus.
_MIN_YIELD = 1e-3

# Probability of each transform on a candidate (slot_swap only where the row has a slot
# whose pool has another value). A candidate left without any transform gets one carrier,
# a prefix with P_FORCED_PREFIX, else a suffix (the other one where the drawn one does not
# fit), so that few draws are wasted on the original text.
P_SLOT_SWAP, P_PREFIX, P_SUFFIX, P_NOISE = 0.75, 0.3, 0.25, 0.2
P_FORCED_PREFIX = 0.5
P_SWAP_EACH_SLOT = 0.5  # with several swappable slots, each is swapped with this (>= 1 is)

NEUTRAL_PREFIXES = ("hey", "hey assistant", "hi assistant", "ok", "okay", "so")
REQUEST_PREFIXES = ("please", "can you", "could you", "could you please", "can you please",
                    "would you please")
WISH_PREFIXES = ("i want to", "i'd like to", "i need to")
SUFFIXES = ("please", "thanks", "thank you", "now", "right now")
IMPERATIVE_SUFFIXES = ("for me",)
FILLERS = ("um", "uh", "erm", "hmm")
# Short function words ASR may miss; dropping one leaves the request understandable.
#: Bumped whenever a change alters what :func:`grow_utterances` returns for the same
#: arguments: benchmarks key their cached grown texts (and vectors) by it.
VERSION = 2
# Not "on"/"off": in "turn on the light" they carry the intent (iot_wemo_on vs _off).
FUNCTION_WORDS = frozenset({"the", "a", "an", "to", "for", "of", "in", "at", "my",
                            "is", "are", "me", "some", "with", "from", "about", "that"})
NOISE_OPS = ("drop_word", "repeat_word", "filler")
# First words that make an utterance an imperative request ("can you <it>" reads well).
IMPERATIVE_VERBS = frozenset({
    "add", "book", "brighten", "buy", "calculate", "call", "cancel", "change", "check",
    "clean", "clear", "close", "confirm", "convert", "create", "decrease", "define", "delete",
    "describe", "dim", "disable", "email", "empty", "enable", "find", "get", "give", "go",
    "increase", "list", "locate", "look", "lower", "make", "mute", "open", "order", "pause",
    "play", "post", "put", "raise", "read", "recommend", "remind", "remove", "rename",
    "repeat", "reply", "reset", "resume", "save", "schedule", "search", "send", "set", "share",
    "show", "shuffle", "skip", "start", "stop", "suggest", "switch", "take", "tell", "text",
    "translate", "turn", "tweet", "unmute", "update", "vacuum"
})
# Verbs that read badly after "i want to" ("i want to tell me ..."); wishes skip them.
_NO_WISH_VERBS = frozenset({"tell", "show", "give", "let", "remind", "help", "email", "text"})
_NO_WISH_SECOND = frozenset({"me", "us", "myself"})
# Utterances opening with a wake word or greeting get no prefix ("hey olly ...").
_WAKE_LIKE = frozenset({"hey", "hi", "hello", "ok", "okay", "so", "olly", "alexa",
                        "assistant", "please"})
_TAIL_RE = re.compile(r"^(.*?)\s*([?.!]+)$")
_WORD_RE = re.compile(r"\S+")
_SHORT_WORD = 4  # repeat_word repeats a word of at most this many characters when there is one


@dataclass
class _Row:
    """One distinct corpus utterance, ready for growth."""

    utt_id: str
    intent: str
    text: str                          # whitespace-normalized corpus text
    literals: tuple[str, ...]          # annotation text around the slots (len = slots + 1)
    values: list[str]                  # slot values in text order
    names: list[str]                   # slot names, same order
    pools: list[tuple[str, ...]]       # per slot: sorted distinct values, same intent + name
    current: list[int]                 # per slot: index of its own value in its pool
    swappable: list[int]               # slots whose pool has another value


def normalize_whitespace(text: str) -> str:
    """``text`` with single spaces between words, stripped: how growth compares texts."""
    return " ".join(text.split())


def _template(annot: str) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """Literals and (name, value) slots of an inline annotation; no slots if malformed."""
    pieces = _SLOT_RE.split(annot)
    literals = tuple(pieces[0::3])
    if any("[" in lit or "]" in lit for lit in literals):
        return (annot,), []
    return literals, [(name, normalize_whitespace(value)) for name, value in zip(pieces[1::3],
                                                                       pieces[2::3])]


def _prepare(corpus: pd.DataFrame) -> list[_Row]:
    """Rows with distinct normalized text (first in corpus order kept) and slot pools."""
    missing = {"text", "intent"} - set(corpus.columns)
    if missing:
        raise ValueError(f"corpus frame lacks column(s) {sorted(missing)}")
    texts = [normalize_whitespace(str(t)) for t in corpus["text"]]
    utt_ids = ([str(u) for u in corpus["utt_id"]] if "utt_id" in corpus.columns
               else [str(i) for i in corpus.index])
    annots = (list(corpus["annot_utt"]) if "annot_utt" in corpus.columns
              else [None] * len(corpus))
    intents = [str(i) for i in corpus["intent"]]
    seen: set[str] = set()
    kept = []
    for utt_id, text, intent, annot in zip(utt_ids, texts, intents, annots):
        if not text or text in seen:
            continue
        seen.add(text)
        literals, slots = _template(annot) if isinstance(annot, str) and annot else ((text,), [])
        if any(not value for _, value in slots):
            literals, slots = (text,), []
        kept.append((utt_id, intent, text, literals, slots))
    values_by_key: dict[tuple[str, str], set[str]] = {}
    for _, intent, _, _, slots in kept:
        for name, value in slots:
            values_by_key.setdefault((intent, name), set()).add(value)
    pools = {key: tuple(sorted(values)) for key, values in values_by_key.items()}
    rows = []
    for utt_id, intent, text, literals, slots in kept:
        row_pools = [pools[(intent, name)] for name, _ in slots]
        current = [pool.index(value) for pool, (_, value) in zip(row_pools, slots)]
        rows.append(_Row(utt_id, intent, text, literals, [v for _, v in slots],
                         [name for name, _ in slots], row_pools,
                         current, [j for j, pool in enumerate(row_pools) if len(pool) > 1]))
    return rows


def _prefix_options(words: list[str]) -> tuple[str, ...]:
    first = words[0].lower()
    if first in _WAKE_LIKE:
        return ()
    if first not in IMPERATIVE_VERBS:
        return NEUTRAL_PREFIXES
    second = words[1].lower() if len(words) > 1 else ""
    if first in _NO_WISH_VERBS or second in _NO_WISH_SECOND:
        return NEUTRAL_PREFIXES + REQUEST_PREFIXES
    return NEUTRAL_PREFIXES + REQUEST_PREFIXES + WISH_PREFIXES


def _suffix_options(words: list[str], prefix: str) -> tuple[str, ...]:
    lowered = {w.lower() for w in words}
    imperative = words[0].lower() in IMPERATIVE_VERBS
    options = SUFFIXES + IMPERATIVE_SUFFIXES if imperative else SUFFIXES
    has_please = "please" in lowered or "please" in prefix
    has_thanks = bool(lowered & {"thanks", "thank", "thx"})
    has_now = "now" in lowered
    has_for = "for" in lowered
    return tuple(s for s in options
                 if not (s == "please" and has_please)
                 and not (s.startswith("thank") and has_thanks)
                 and not (s.endswith("now") and has_now)
                 and not (s == "for me" and has_for))


def _pick(options, u: float):
    return options[min(int(u * len(options)), len(options) - 1)]


def _grow_batch(rows: list[_Row], rng: np.random.Generator, max_slots: int):
    """One batch of candidates: yields (row index, text, transform)."""
    base = rng.integers(0, len(rows), _BATCH)
    u = rng.random((_BATCH, 9))
    su = rng.random((_BATCH, max_slots, 2))
    for i in range(_BATCH):
        row = rows[base[i]]
        ui = u[i]
        ops = []
        values = row.values
        if row.swappable and ui[0] < P_SLOT_SWAP:
            sui = su[i]
            chosen = [j for j in row.swappable if sui[j, 0] < P_SWAP_EACH_SLOT]
            if not chosen:
                chosen = [min(row.swappable, key=lambda j: sui[j, 0])]
            values = list(row.values)
            for j in chosen:
                pool = row.pools[j]
                k = min(int(sui[j, 1] * (len(pool) - 1)), len(pool) - 2)
                values[j] = pool[k + (k >= row.current[j])]
            ops.append("slot_swap")
        rendered = _render(row.literals, values)
        core = rendered if ops else row.text
        match = _TAIL_RE.match(core)
        core, tail = (match.group(1), match.group(2)) if match else (core, "")
        words, tags = _tagged_words(core, row.literals, values, rendered)
        if not words:
            continue
        prefix = suffix = ""
        noise = None
        if len(words) > 2 and ui[3] < P_NOISE:
            t = ui[6] * 3
            op = min(int(t), 2)
            if op == 0:
                positions = [k for k, w in enumerate(words) if w.lower() in FUNCTION_WORDS]
                if positions:
                    k = _pick(positions, ui[7])
                    del words[k], tags[k]
                    noise = "drop_word"
                else:
                    op = 2
            if op == 1:
                positions = [k for k, w in enumerate(words) if len(w) <= _SHORT_WORD]
                k = _pick(positions or range(len(words)), ui[7])
                words.insert(k, words[k])
                tags.insert(k, tags[k])
                noise = "repeat_word"
            elif op == 2:
                k = min(int(ui[7] * len(words)), len(words) - 1)
                words.insert(k, _pick(FILLERS, t - int(t)))
                tags.insert(k, tags[k] if k and tags[k - 1] == tags[k] else None)
                noise = "filler"
        want_prefix, want_suffix = ui[1] < P_PREFIX, ui[2] < P_SUFFIX
        forced = not (ops or noise or want_prefix or want_suffix)
        if forced:  # a carrier rather than the original text again
            want_prefix = ui[8] < P_FORCED_PREFIX
            want_suffix = not want_prefix
        prefixes = _prefix_options(words) if want_prefix else ()
        if prefixes:
            prefix = _pick(prefixes, ui[4])
            ops.append("prefix")
        suffixes = _suffix_options(words, prefix) if want_suffix or (forced and not prefix) else ()
        if suffixes:
            suffix = _pick(suffixes, ui[5])
            ops.append("suffix")
        if forced and not ops and not want_prefix:
            prefixes = _prefix_options(words)
            if prefixes:
                prefix = _pick(prefixes, ui[4])
                ops.append("prefix")
        if noise:
            ops.append(noise)
        if not ops:
            continue
        text = " ".join(words)
        if prefix:
            text = prefix + " " + text
        if suffix:
            text = text + " " + suffix
        annot = _annotate(words, tags, row.names)
        if prefix:
            annot = prefix + " " + annot
        if suffix:
            annot = annot + " " + suffix
        yield base[i], text + tail, "+".join(ops), annot + tail


def _render(literals: tuple[str, ...], values: list[str]) -> str:
    """The text of a template: ``literals`` with slot ``values`` between them."""
    return literals[0] + "".join(v + lit for v, lit in zip(values, literals[1:]))


def _tagged_words(core: str, literals: tuple[str, ...], values: list[str], rendered: str):
    """The words of ``core`` and per word the index of the slot value it overlaps, or None.

    ``rendered`` is :func:`_render` of ``literals`` and ``values``; ``core`` is that text
    whitespace normalized and perhaps cut before trailing punctuation, and the slot of each
    word is read off ``rendered``. Where the two do not line up word for word (a corpus
    text that is not its annotation's rendering), no word gets a slot."""
    spans, pos = [], len(literals[0])
    for value, literal in zip(values, literals[1:]):
        spans.append((pos, pos + len(value)))
        pos += len(value) + len(literal)
    words = core.split()
    tagged = [(m.group(), next((j for j, (a, b) in enumerate(spans) if m.start() < b and a < m.end()), None))
              for m in _WORD_RE.finditer(rendered)] if spans else []
    if len(tagged) >= len(words) and all(r.startswith(w) for (r, _), w in zip(tagged, words)):
        return words, [tag for _, tag in tagged[:len(words)]]
    return words, [None] * len(words)


def _annotate(words: list[str], tags: list, names: list[str]) -> str:
    """Words as a MASSIVE-style annotation: each run of words of one slot as
    ``[name : words]``. A word straddling a literal and a value (``tomorrow's``) counts as
    the value's, so the annotated value may carry such a suffix."""
    out, k = [], 0
    while k < len(words):
        tag = tags[k]
        end = k + 1
        while end < len(words) and tag is not None and tags[end] == tag:
            end += 1
        run = " ".join(words[k:end])
        out.append(run if tag is None else f"[{names[tag]} : {run}]")
        k = end
    return " ".join(out)


def grow_utterances(corpus: str | pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` distinct utterances grown from ``corpus`` with their gold intents.

    ``corpus``: a corpus name for :func:`mining.sim.corpora.load_corpus` (``"hwu64"``,
    ``"slurp"``) or a frame with ``text`` and ``intent`` (``utt_id`` and ``annot_utt``
    optional: without ``utt_id`` the index is the origin id, without ``annot_utt`` there are
    no slots to swap). Texts are whitespace-normalized; of rows with the same text the first
    is kept.

    Returns a frame of exactly ``n`` rows (``RangeIndex``) with string (object) columns
    ``text`` (all distinct), ``intent`` (the origin's), ``origin_utt_id`` and ``transform``
    (``"original"`` or the applied ops joined by ``+`` in the order
    slot_swap, prefix, suffix, noise, e.g. ``"slot_swap+prefix"``), and ``annot_utt``: the
    text as a MASSIVE-style annotation (``hey wake me up at [time : half past seven]``;
    plain text where the origin has no slots), whose plain text
    (:func:`mining.sim.corpora.parse_annot_utt`) is ``text``. The distinct corpus
    utterances come first in a seeded order (all of them when ``n`` is at least their
    number), then grown ones.

    Deterministic: the same (corpus, n, seed) gives the same bytes; the output for ``n`` is
    the first ``n`` rows of the output for any larger ``n`` with the same seed, so benchmark
    sizes are nested. Random streams: ``default_rng([seed, 0])`` orders the originals,
    ``default_rng([seed, 1])`` draws the transforms in fixed-size batches.

    Raises ``ValueError`` for ``n < 0``, a negative or non-int seed, an unknown corpus name,
    a frame lacking ``text`` / ``intent``, or when the transforms cannot reach ``n``
    distinct texts (the message says how many were reached)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n must be an int >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
    frame = load_corpus(corpus) if isinstance(corpus, str) else corpus
    rows = _prepare(frame)
    n, seed = int(n), int(seed)
    order = np.random.default_rng([seed, _ORDER_STREAM]).permutation(len(rows))[:n]
    texts = [rows[r].text for r in order]
    origins = [int(r) for r in order]
    transforms = ["original"] * len(texts)
    annots = [_annotate(*_tagged_words(rows[r].text, rows[r].literals, rows[r].values,
                                       _render(rows[r].literals, rows[r].values)), rows[r].names)
              for r in order]
    seen = set(texts)
    rng = np.random.default_rng([seed, _GROWTH_STREAM])
    max_slots = max([len(row.values) for row in rows] + [1])
    while len(texts) < n:
        before = len(texts)
        for r, text, transform, annot in _grow_batch(rows, rng, max_slots):
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            origins.append(int(r))
            transforms.append(transform)
            annots.append(annot)
            if len(texts) == n:
                break
        if len(texts) < n and len(texts) - before < _MIN_YIELD * _BATCH:
            raise ConfigError(
                f"the growth transforms reached only {len(texts):,} distinct texts from "
                f"{len(rows):,} distinct corpus utterances; {n:,} were asked for")
    del seen
    origin_ids = np.array([row.utt_id for row in rows], dtype=object)
    intents = np.array([row.intent for row in rows], dtype=object)
    origin_index = np.asarray(origins, dtype=np.int64)
    return pd.DataFrame({
        "text": np.array(texts, dtype=object),
        "intent": intents[origin_index],
        "origin_utt_id": origin_ids[origin_index],
        "transform": np.array(transforms, dtype=object),
        "annot_utt": np.array(annots, dtype=object),
    }, columns=COLUMNS)
