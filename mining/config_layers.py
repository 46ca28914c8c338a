"""Override layers of :mod:`mining.config`: parsing ``--set`` items and ``MINING__*``
environment variables into nested dicts, and merging a layer onto the defaults (recording
where each value came from). The layers' order and precedence: :mod:`mining.config`."""
from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from mining import env
from mining.errors import ConfigError

#: Environment variables ``MINING__<SECTION>__<KEY>`` override single values.
ENV_PREFIX = env.CONFIG_PREFIX
#: One override layer: (where it came from, nested {section: {key: value}}).
Layer = tuple[str, dict]

# Keys without a default in defaults.toml (their default comes from elsewhere, see the
# section's dataclass) that a config file or --set may still set.
OPTIONAL_KEYS = {"rephrase.threshold"}
# Tables whose keys are data (languages), not settings: an override replaces them per key.
OPEN_TABLES = {"friction.cues", "rephrase.threshold_by_locale", "cluster.min_sim_by_locale",
               "aggregation.variant_min_sim_by_locale", "aggregation.min_events_by_locale"}


def merge_layer(base: dict, override: dict, where: str, origins: dict[str, str] | None = None,
           origin: str = "") -> dict:
    """``base`` updated by ``override`` (a copy); records ``origins[dotted key] = origin``
    for every value set. ``ConfigError`` for a key ``base`` does not have."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out and f"{where}{key}" not in OPTIONAL_KEYS and where.rstrip(".") not in OPEN_TABLES:
            raise ConfigError(f"unknown config key {where}{key}")
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge_layer(out[key], value, f"{where}{key}.", origins, origin)
        else:
            out[key] = value
            if origins is not None:
                origins[f"{where}{key}"] = origin
    return out


def _parse_value(raw: str) -> Any:
    """A TOML value (``0.6``, ``true``, ``[1, 2]``, ``"x"``), else ``raw`` as a string."""
    if "\n" in raw:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_set(items: list[str]) -> dict:
    """``["rephrase.threshold=0.6", ...]`` → nested dict; values parsed as TOML scalars."""
    nested: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        *tables, name = key.split(".")  # privacy.dp.epsilon=1 sets a key of a nested table
        target = nested
        for table in tables:
            target = target.setdefault(table, {})
        target[name] = _parse_value(raw)
    return nested


def env_layers(environ: Mapping[str, str]) -> list[Layer]:
    """One layer per ``MINING__<SECTION>__<KEY>[__<SUBKEY>]`` variable, sorted by name:
    ``("env MINING__PRIVACY__MIN_USERS", {"privacy": {"min_users": 3}})``. Names are
    lower-cased into keys. ``ConfigError`` for a name with fewer than two parts."""
    layers = []
    for name in sorted(k for k in environ if k.upper().startswith(ENV_PREFIX)):
        path = name[len(ENV_PREFIX):].lower().split("__")
        if len(path) < 2 or not all(path):
            raise ConfigError(f"environment variable {name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        # names are lower-cased: a locale with a region ("de-DE") cannot be named; a bare
        # language ("en") can
        if (len(path) > 2 and ".".join(path[:2]) in OPEN_TABLES - {"friction.cues"}
                and not re.fullmatch(r"[a-z]{2,3}", path[2])):
            raise ConfigError(f"environment variable {name}: a locale key with a region (de-DE) cannot be set "
                              "from the environment; use a config file or --set")
        nested: Any = _parse_value(environ[name])
        for part in reversed(path):
            nested = {part: nested}
        layers.append((f"env {name}", nested))
    return layers
