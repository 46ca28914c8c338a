"""Utterance corpora in eight non-English locales, generated with hassil from the sentence
templates of the ``home-assistant-intents`` package.

No public corpus of assistant requests with shared intent names covers many languages
offline, but Home Assistant's voice intents do: one set of intent names (``HassTurnOn``,
``HassGetWeather``, ``HassStartTimer``, ...) with hand-written sentence templates per
language, expanded here by ``hassil.sample.sample_sentence`` (the library Home Assistant
uses to match them). Attribution: the upstream templates are CC BY 4.0
(https://github.com/OHF-Voice/intents, LICENSE.md); the PyPI package
``home-assistant-intents`` 2026.10.27 that ships them declares Apache-2.0. Nothing is
copied into this repository: sentences are generated at run time from the installed
package. The slot values that Home Assistant fills from a user's home at run time (device
``name``, ``area``, ``floor``) are ours, a few per language (:data:`HOME_VALUES`).

Sampling is deterministic (no random draw): per template, the first
:data:`EXPANSIONS_PER_TEMPLATE` expansions in hassil's order, with every numeric range
list narrowed to three values (start, middle, end - 1); then per intent the distinct
sentences by normalized text (:func:`mining.core.text.normalize`), ordered by a keyed hash of
that text (stable, independent of template order), the first
:data:`MAX_SENTENCES_PER_INTENT` kept. Templates that need a free-text wildcard (shopping
list items, messages, search queries, timer names) are skipped, and intents left with fewer
than :data:`MIN_SENTENCES_PER_INTENT` sentences are dropped: a weak NLU needs several
utterances of an intent to be seeded and tested.

The rows have :data:`mining.sim.corpora.COLUMNS`. Slots are not annotated (``annot_utt`` is
the plain text, ``slots`` empty): hassil's sampler does not report spans, so exported
labels in these locales carry intents only.
"""
from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

import pandas as pd

from mining.errors import ConfigError

#: locale (BCP-47) → home-assistant-intents language code.
LOCALES: dict[str, str] = {
    "de-DE": "de", "fr-FR": "fr", "es-ES": "es", "ru-RU": "ru",
    "zh-CN": "zh-CN", "th-TH": "th", "ar-SA": "ar", "el-GR": "el",
}
EXPANSIONS_PER_TEMPLATE = 6
MAX_SENTENCES_PER_INTENT = 160
MIN_SENTENCES_PER_INTENT = 12

# Device names, areas and floors of a home: Home Assistant fills {name}, {area} and {floor}
# from the user's configuration, so a corpus needs some. The templates add articles and
# suffixes themselves (German "…geschoss", Arabic "ال", Chinese "…楼").
HOME_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "de": {"name": ("Deckenlampe", "Stehlampe", "Ventilator"), "area": ("Wohnzimmer", "Küche", "Schlafzimmer"),
           "floor": ("Dach", "Erd")},
    "fr": {"name": ("plafonnier", "lampadaire", "ventilateur"), "area": ("salon", "cuisine", "chambre"),
           "floor": ("rez-de-chaussée", "premier étage")},
    "es": {"name": ("lámpara de techo", "lámpara de pie", "ventilador"), "area": ("salón", "cocina", "dormitorio"),
           "floor": ("planta baja", "primer piso")},
    "ru": {"name": ("люстра", "торшер", "вентилятор"), "area": ("гостиная", "кухня", "спальня"),
           "floor": ("первый этаж", "второй этаж")},
    "zh-CN": {"name": ("吊灯", "落地灯", "风扇"), "area": ("客厅", "厨房", "卧室"), "floor": ("一", "二")},
    "th": {"name": ("ไฟ", "โคมไฟตั้งพื้น", "พัดลม"), "area": ("ห้องนั่งเล่น", "ห้องครัว", "ห้องนอน"),
           "floor": ("ชั้นหนึ่ง", "ชั้นสอง")},
    "ar": {"name": ("مصباح", "مروحة", "ثريا"), "area": ("مطبخ", "غرفة النوم", "صالة"), "floor": ("الأول", "الثاني")},
    "el": {"name": ("φωτιστικό", "ανεμιστήρας", "πορτατίφ"), "area": ("σαλόνι", "κουζίνα", "υπνοδωμάτιο"),
           "floor": ("ισόγειο", "πρώτος όροφος")},
}


def _order_key(text_norm: str) -> str:
    return hashlib.sha256(("hassil-corpus\x00" + text_norm).encode("utf-8")).hexdigest()


def all_locales() -> dict[str, str]:
    """The development :data:`LOCALES` and the held-out ones of
    :data:`mining.sim.hassil_locales.HELD_OUT_LOCALES` (locale → language code)."""
    from mining.sim.hassil_locales import HELD_OUT_LOCALES

    return {**LOCALES, **HELD_OUT_LOCALES}


def load_hassil_corpus(locale: str) -> pd.DataFrame:
    """The generated corpus of ``locale`` (a key of :func:`all_locales`) with
    :data:`mining.sim.corpora.COLUMNS`: ``utt_id`` (``"hassil:<locale>:<n>"``), ``text`` (as
    hassil expanded it, unnormalized), ``intent`` (Home Assistant intent name),
    ``annot_utt`` (= text), ``slots`` (empty lists), ``locale``. Row order: intent, then
    the keyed-hash order above; a fresh RangeIndex. Each call returns a new copy.
    Raises ``ConfigError`` for a locale outside :func:`all_locales`."""
    if locale not in all_locales():
        raise ConfigError(f"no hassil corpus for locale {locale!r}; known: {', '.join(all_locales())}")
    return _generate(locale).copy()


def expand_intents(intents, intent_names, lists: dict, language: str, per_template: int) -> dict[str, dict[str, str]]:
    """intent name → {normalized text: its first raw expansion} for ``intent_names`` of a
    hassil ``Intents``: the first ``per_template`` expansions of every template (hassil's
    ``sample_sentence`` order, deterministic) with the slot ``lists`` filled in, whitespace
    collapsed. Templates that need a wildcard list (free text) are skipped; texts that
    normalize to ``""`` are dropped. Raises ``KeyError`` for an intent ``intents`` lacks."""
    from hassil.sample import sample_sentence

    from mining.core.text import normalize

    out: dict[str, dict[str, str]] = {}
    for intent_name in intent_names:
        by_norm = out.setdefault(intent_name, {})
        for data in intents.intents[intent_name].data:
            rules = {**intents.expansion_rules, **data.expansion_rules}
            for template in data.sentences:
                if any(name in data.wildcard_list_names for name in template.list_names(rules)):
                    continue
                for text in itertools.islice(sample_sentence(template, lists, rules, language=language),
                                             per_template):
                    text = " ".join(text.split())
                    norm = normalize(text)
                    if norm:
                        by_norm.setdefault(norm, text)
    return out


@lru_cache(maxsize=None)
def _generate(locale: str) -> pd.DataFrame:
    import home_assistant_intents as hai
    from hassil.intents import Intents, RangeSlotList, TextSlotList

    from mining.sim.hassil_locales import HELD_OUT_HOME_VALUES

    language = all_locales()[locale]
    intents = Intents.from_dict(hai.get_intents(language))
    lists = dict(intents.slot_lists)
    for name, slot_list in intents.slot_lists.items():
        if isinstance(slot_list, RangeSlotList):
            values = sorted({slot_list.start, (slot_list.start + slot_list.stop) // 2, slot_list.stop - 1})
            lists[name] = TextSlotList.from_strings([str(v) for v in values], name=name)
    for name, values in {**HOME_VALUES, **HELD_OUT_HOME_VALUES}[language].items():
        lists[name] = TextSlotList.from_strings(list(values), name=name)
    rows = []
    for intent_name, by_norm in expand_intents(intents, sorted(intents.intents), lists, language,
                                               EXPANSIONS_PER_TEMPLATE).items():
        if len(by_norm) < MIN_SENTENCES_PER_INTENT:
            continue
        keep = sorted(by_norm, key=_order_key)[:MAX_SENTENCES_PER_INTENT]
        rows += [(intent_name, by_norm[n]) for n in keep]
    frame = pd.DataFrame(rows, columns=["intent", "text"])
    frame["utt_id"] = [f"hassil:{locale}:{i}" for i in range(len(frame))]
    frame["annot_utt"] = frame["text"]
    frame["slots"] = [[] for _ in range(len(frame))]
    frame["locale"] = locale
    return frame[["utt_id", "text", "intent", "annot_utt", "slots", "locale"]]
