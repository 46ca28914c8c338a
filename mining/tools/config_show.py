"""``mining config show``: the effective configuration as TOML, each value set above the
defaults commented with where it came from (:func:`mining.config.resolve_sections`)."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    """``value`` as an inline TOML value (arrays on one line, as in defaults.toml)."""
    import tomli_w

    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return tomli_w.dumps({"v": value})[len("v = "):].rstrip("\n")


def format_toml(sections: dict, origins: Mapping[str, str] | None = None) -> str:
    """``sections`` as TOML, each value set above the defaults followed by ``# <origin>``
    (:func:`resolve_sections`). ``tomllib.loads`` of the result gives ``sections`` back."""
    origins = origins or {}
    lines: list[str] = []

    def table(prefix: str, values: dict) -> None:
        lines.append(f"[{prefix}]")
        for key, value in values.items():
            if not isinstance(value, dict):
                note = origins.get(f"{prefix}.{key}")
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}" + (f"  # {note}" if note else ""))
        lines.append("")
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{prefix}.{_toml_key(key)}", value)

    for name, values in sections.items():
        table(_toml_key(name), values)
    return "\n".join(lines)
