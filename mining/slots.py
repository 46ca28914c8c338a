"""Slot projection: carry the successful turn's slots onto the failed turn's words.

First version: a slot is kept when its value occurs in the source utterance
(case-insensitive, non-overlapping, leftmost occurrence); the span's own characters
become the value. Others are dropped and counted as ``slot_value_not_in_source``
(issue 5 replaces this with a fuzzy word alignment). ``annot_utt`` uses the MASSIVE /
SLURP inline format ``[slot_name : value]``.
"""
from __future__ import annotations

import re


def project_slots(utterance: str, slots) -> tuple[list[dict], str, int]:
    """(kept slots ``[{"name", "value"}]`` in utterance order, annot_utt, n_dropped).

    ``slots``: a sequence (list or numpy array, as Arrow hands it over) of name/value
    mappings, or None."""
    spans: list[tuple[int, int, str]] = []
    dropped = 0
    for slot in ([] if slots is None else list(slots)):
        value = (slot.get("value") or "").strip()
        match = None
        if value:
            for m in re.finditer(re.escape(value), utterance, flags=re.IGNORECASE):
                if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                    match = m
                    break
        if match is None:
            dropped += 1
            continue
        spans.append((match.start(), match.end(), slot["name"]))
    spans.sort()
    parts, pos = [], 0
    for start, end, name in spans:
        parts.append(utterance[pos:start])
        parts.append(f"[{name} : {utterance[start:end]}]")
        pos = end
    parts.append(utterance[pos:])
    kept = [{"name": name, "value": utterance[s:e]} for s, e, name in spans]
    return kept, "".join(parts), dropped
