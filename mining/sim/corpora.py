"""Real labeled utterance corpora shipped in ``mining/sim/data/`` (CC BY 4.0, see ``NOTICE.md``).

They are the raw material of the log simulator and the gold that mined labels are scored
against. Both corpora are loaded into one frame layout:

=========  ==========================================================================
column     meaning
=========  ==========================================================================
utt_id     ``"<corpus>:<id>"``, unique: HWU64 0-based data-row number in ``hwu64.csv``,
           SLURP ``slurp_id``
text       the utterance: HWU64 ``answer_from_anno``, SLURP ``sentence`` (lower-case)
intent     HWU64 ``scenario + "_" + intent`` (e.g. ``alarm_set``), SLURP ``intent``
annot_utt  MASSIVE-style inline annotation, ``wake me up at [time : five am]``
slots      ``list[{"name": str, "value": str}]`` parsed from ``annot_utt``, in text order
locale     ``"en-US"`` (both corpora are US English)
=========  ==========================================================================

Sources: HWU64, Liu et al. 2019 (github xliuhw/NLU-Evaluation-Data); SLURP, Bastianelli
et al., EMNLP 2020 (github pswietojanski/slurp).

The three HINT3 corpora (``hint3-curekart``, ``hint3-powerplay11``, ``hint3-sofmattress``;
Arora et al. 2020, ODbL 1.0, see ``NOTICE.md``) are real users' queries to three Indian
single-domain chatbots: dozens of near-synonymous intents, typos, code-mixing, no slots.
They load into the same layout: ``utt_id`` ``"<corpus>:<train|test>:<data row>"``,
``text`` the ``sentence`` as typed (case kept), ``intent`` the ``label``, ``annot_utt`` =
text, ``slots`` empty, ``locale`` ``"en-IN"``. The train and test files are pooled (the
simulator makes its own seed / test / traffic split). Test rows labelled
``NO_NODES_DETECTED`` (out of scope: 532 curekart, 674 powerplay11, 144 sofmattress) are
left out: the simulator's users pursue goals the assistant can serve, and an out-of-scope
request has no right interpretation to mine (:data:`HINT3_OUT_OF_SCOPE`).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mining.errors import ConfigError

DATA_DIR = Path(__file__).parent / "data"
KNOWN_CORPORA = ("hwu64", "slurp")
#: HINT3 corpora (``mining/sim/data/hint3/<bot>_{train,test}.csv``), real chatbot queries.
HINT3_CORPORA = ("hint3-curekart", "hint3-powerplay11", "hint3-sofmattress")
HINT3_PREFIX = "hint3-"
HINT3_LOCALE = "en-IN"
#: The HINT3 label of out-of-scope queries (test files only); such rows are not loaded.
HINT3_OUT_OF_SCOPE = "NO_NODES_DETECTED"
#: Generated non-English corpora: ``"hassil-<locale>"`` (:mod:`mining.sim.hassil_corpus`).
HASSIL_PREFIX = "hassil-"
COLUMNS = ["utt_id", "text", "intent", "annot_utt", "slots", "locale"]
LOCALE = "en-US"
# CC BY 4.0 requires attribution wherever data derived from a corpus is shared.
CORPUS_ATTRIBUTION = {
    "hwu64": "HWU64: Liu, Eshghi, Swietojanski, Rieser (2019), Benchmarking Natural Language "
             "Understanding Services for building Conversational Agents; "
             "github.com/xliuhw/NLU-Evaluation-Data; CC BY 4.0",
    "slurp": "SLURP: Bastianelli, Vanzo, Swietojanski, Rieser (EMNLP 2020), SLURP: A Spoken "
             "Language Understanding Resource Package; github.com/pswietojanski/slurp; "
             "CC BY 4.0",
    "hassil": "Home Assistant voice intents (Open Home Foundation), sentence templates of the "
              "home-assistant-intents package expanded with hassil; github.com/OHF-Voice/intents; "
              "CC BY 4.0 (templates), Apache-2.0 (package)",
    "hint3": "HINT3: Arora, Jain, Chaturvedi, Modi (2020), HINT3: Raising the bar for Intent "
             "Detection in the Wild, Insights from Negative Results in NLP (EMNLP 2020 workshop); "
             "github.com/hellohaptik/HINT3 (dataset/v2); Open Database License 1.0, contents "
             "under the Database Contents License 1.0",
}


def corpus_names() -> tuple[str, ...]:
    """Every name :func:`load_corpus` accepts: :data:`KNOWN_CORPORA`, :data:`HINT3_CORPORA`
    and one ``hassil-<locale>`` per locale of :func:`mining.sim.hassil_corpus.all_locales`
    (development locales first, then the held-out ones)."""
    from mining.sim.hassil_corpus import all_locales

    return KNOWN_CORPORA + HINT3_CORPORA + tuple(HASSIL_PREFIX + loc for loc in all_locales())


def attribution(name: str) -> str:
    """The attribution line of corpus ``name`` (any of :func:`corpus_names`)."""
    if name.startswith(HASSIL_PREFIX):
        return CORPUS_ATTRIBUTION["hassil"]
    return CORPUS_ATTRIBUTION["hint3" if name.startswith(HINT3_PREFIX) else name]

# "[slot_name : value]": the name has no brackets or colon; the value has no brackets
# (it may contain a colon, "[time : 10:30]"); spaces around both are optional.
_SLOT_RE = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")
_SPACES_RE = re.compile(r"\s+")


def parse_annot_utt(annot: str) -> tuple[str, list[dict[str, str]]]:
    """Split an inline annotation into plain text and slots.

    ``"wake me up at [time : five am] [date : today]"`` →
    ``("wake me up at five am today", [{"name": "time", "value": "five am"},
    {"name": "date", "value": "today"}])``. Slots are in text order; whitespace in the
    plain text is collapsed to single spaces and stripped. The format is the one of HWU64,
    SLURP and MASSIVE. Raises ``ValueError`` when a ``[`` or ``]`` is left that is not part
    of a well-formed ``[name : value]`` span (nested or unbalanced brackets)."""
    slots = [{"name": m.group(1), "value": m.group(2)} for m in _SLOT_RE.finditer(annot)]
    text = _SLOT_RE.sub(lambda m: m.group(2), annot)
    if "[" in text or "]" in text:
        raise ValueError(f"malformed slot annotation: {annot!r}")
    return _SPACES_RE.sub(" ", text).strip(), slots


def load_corpus(name: str) -> pd.DataFrame:
    """The corpus ``name`` (``"hwu64"``, ``"slurp"``, one of :data:`HINT3_CORPORA` or
    ``"hassil-<locale>"``, see :mod:`mining.sim.hassil_corpus`) as a frame with :data:`COLUMNS`.

    Rows with an empty text are dropped; of exact duplicate (text, intent) rows the first in
    file order is kept. Row order is file order (SLURP: ``devel`` then ``test``); the index
    is a fresh ``RangeIndex``. HWU64: 11,036 rows, 64 intents; SLURP: 5,005 rows, 81 intents;
    HINT3 (train + in-scope test): curekart 1,049 rows / 28 intents, powerplay11 773 / 57,
    sofmattress 577 / 21 (counts after de-duplication, pinned by tests/sim/test_corpora.py).
    Each call returns a new copy. Raises ``ValueError`` for an unknown name."""
    if name.startswith(HASSIL_PREFIX) and name in corpus_names():
        from mining.sim.hassil_corpus import load_hassil_corpus

        return load_hassil_corpus(name[len(HASSIL_PREFIX):])
    if name not in KNOWN_CORPORA + HINT3_CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(corpus_names())}")
    return _load_cached(name).copy()


@lru_cache(maxsize=None)
def _load_cached(name: str) -> pd.DataFrame:
    if name.startswith(HINT3_PREFIX):
        raw = _read_hint3(name[len(HINT3_PREFIX):])
    else:
        raw = _read_hwu64() if name == "hwu64" else _read_slurp()
    raw["text"] = raw["text"].str.strip()
    raw = raw[raw["text"] != ""]
    raw = raw.drop_duplicates(subset=["text", "intent"], keep="first")
    if name.startswith(HINT3_PREFIX):   # no slot annotation: the text itself (may hold brackets)
        raw["annot_utt"] = raw["text"]
        raw["slots"] = [[] for _ in range(len(raw))]
    else:
        raw["slots"] = [parse_annot_utt(a)[1] for a in raw["annot_utt"]]
    raw["locale"] = HINT3_LOCALE if name.startswith(HINT3_PREFIX) else LOCALE
    frame = raw[COLUMNS].reset_index(drop=True)
    if not frame["utt_id"].is_unique:
        raise ValueError(f"corpus {name}: utt_id is not unique")
    return frame


def _read_hwu64() -> pd.DataFrame:
    """``hwu64.csv``: ``;``-separated, every field a string (``keep_default_na=False`` so
    that an utterance such as ``none`` is not read as missing)."""
    df = pd.read_csv(DATA_DIR / "hwu64" / "hwu64.csv", sep=";", dtype=str,
                     keep_default_na=False)
    return pd.DataFrame({
        "utt_id": [f"hwu64:{i}" for i in range(len(df))],
        "text": df["answer_from_anno"],
        "intent": df["scenario"].str.strip() + "_" + df["intent"].str.strip(),
        "annot_utt": df["answer_annotation"].str.strip(),
    })


def _read_slurp() -> pd.DataFrame:
    """``devel.jsonl`` + ``test.jsonl``. ``sentence`` is lower-case in SLURP while
    ``sentence_annotation`` keeps the speaker's case, so the annotation is lower-cased to
    match (slot names are lower-case already). 16 of 5,007 annotations also differ in
    spelling from the sentence (``rihana`` / ``rihanna``); they are kept as they are."""
    records = []
    for split in ("devel", "test"):
        with open(DATA_DIR / "slurp" / f"{split}.jsonl", encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return pd.DataFrame({
        "utt_id": [f"slurp:{r['slurp_id']}" for r in records],
        "text": [r["sentence"] for r in records],
        "intent": [r["intent"] for r in records],
        "annot_utt": [r["sentence_annotation"].strip().lower() for r in records],
    })


def _read_hint3(bot: str) -> pd.DataFrame:
    """``hint3/<bot>_train.csv`` then ``<bot>_test.csv`` (header ``sentence,label``; every
    field a string, ``keep_default_na=False``). ``powerplay11_train.csv`` has a third,
    unnamed column of curator comments ("Earlier was WITHDRAWAL_INTRO") on 19 rows: only
    ``sentence`` and ``label`` are read. Rows labelled :data:`HINT3_OUT_OF_SCOPE` are left
    out. Raises ``ValueError`` when a file lacks those columns or has an empty label."""
    parts = []
    for split in ("train", "test"):
        df = pd.read_csv(DATA_DIR / "hint3" / f"{bot}_{split}.csv", dtype=str, keep_default_na=False)
        if not {"sentence", "label"} <= set(df.columns):
            raise ValueError(f"hint3/{bot}_{split}.csv: expected columns sentence,label, got {list(df.columns)}")
        if (df["label"].str.strip() == "").any():
            raise ValueError(f"hint3/{bot}_{split}.csv: {int((df['label'].str.strip() == '').sum())} rows "
                             "without a label")
        parts.append(pd.DataFrame({"utt_id": [f"{HINT3_PREFIX}{bot}:{split}:{i}" for i in range(len(df))],
                                   "text": df["sentence"], "intent": df["label"].str.strip()}))
    raw = pd.concat(parts, ignore_index=True)
    return raw[raw["intent"] != HINT3_OUT_OF_SCOPE].assign(annot_utt="")
