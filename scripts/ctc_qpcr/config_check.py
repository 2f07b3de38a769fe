"""Plain-language checks of config/config.yaml before schema validation.

The JSON schema refuses unknown keys, but its message is a long schema dump.
This check walks the schema and names the full path of an unknown key, with
the closest allowed key ("did you mean"), so a misspelling is fixed in seconds.
"""

from __future__ import annotations

import difflib

from .errors import ConfigError


def unknown_keys(config: dict, schema: dict, path: str = "") -> list[str]:
    """Return one message per key of ``config`` that ``schema`` does not allow."""
    problems = []
    if not isinstance(config, dict) or schema.get("type") != "object":
        return problems
    allowed = schema.get("properties", {})
    closed = schema.get("additionalProperties", True) is False
    for key, value in config.items():
        where = f"{path}.{key}" if path else str(key)
        if key in allowed:
            problems += unknown_keys(value, allowed[key], where)
        elif closed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            hint = f" — did you mean '{(path + '.') if path else ''}{close[0]}'?" if close else ""
            problems.append(f"unknown config key '{where}'{hint} (allowed here: {', '.join(sorted(allowed))})")
        elif isinstance(schema.get("additionalProperties"), dict):
            problems += unknown_keys(value, schema["additionalProperties"], where)
    return problems


def check_config(config: dict, schema: dict, source: str = "config/config.yaml") -> None:
    """Raise :class:`ConfigError` listing every unknown key of ``config``."""
    problems = unknown_keys(config, schema)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems) + " — fix the spelling (see the comments in config/config.yaml)")
