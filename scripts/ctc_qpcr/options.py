"""Config sections parsed once into small typed objects (docs/methods.md §12).

Every stage's Snakemake adapter turns its config section into a frozen
dataclass whose field names are the words of ``config/config.yaml``; library
functions take that object (or plain arguments), never a config dict. The
defaults live in one place, ``workflow/schemas/config.schema.yaml``:
Snakemake's ``validate`` fills them in for the workflow, and
:func:`from_config` does the same for a library caller that passes only some
keys (or none).

API (small and stable)::

    from ctc_qpcr.options import from_config, schema_default

    @dataclass(frozen=True)
    class PositivityOptions:
        markers: tuple[str, ...]
        rule: str
        ...

    opts = from_config(PositivityOptions, "positivity", config.get("positivity"))
    lod = schema_default("lod")

* :func:`from_config` — user keys over the schema's defaults; a key the class
  does not have, a value of the wrong type, outside its range or not one of
  its choices raises :class:`~ctc_qpcr.errors.ConfigError` naming the key as
  the user wrote it (``positivity.rule``). Lists (or tuples) become tuples.
* :func:`section` — the same checks, returning a plain dict (for a stage that
  converts some values itself before building its object).
* :func:`schema_default` — the default of a top-level key (``lod``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import jsonschema

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

T = TypeVar("T")

# a library caller may give a tuple where the config has a list
_VALIDATOR = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "array", lambda _checker, value: isinstance(value, list | tuple)
    ),
)


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The ``properties`` of the config schema ({} when the package runs without its workflow)."""
    if not SCHEMA_PATH.is_file():
        return {}
    from .config_check import load_schema  # the C parser when PyYAML has it

    return load_schema(SCHEMA_PATH)["properties"]


def schema_default(key: str) -> Any:
    """The schema's default of the top-level key ``key`` (None when it has none)."""
    return copy.deepcopy(schema().get(key, {}).get("default"))


def _checked(name: str, key: str, value: Any, spec: dict) -> Any:
    """``value`` if it satisfies the key's schema (type, range, choices); else a ConfigError."""
    error = jsonschema.exceptions.best_match(_VALIDATOR(spec).iter_errors(value))
    if error is None:
        return value
    where = "".join(f"[{p}]" for p in error.absolute_path)
    raise ConfigError(
        f"config {name}.{key}{where}: {error.instance!r} {_reason(error)} — correct it in the config"
    )


def _reason(error) -> str:
    schema_ = error.schema
    if error.validator == "enum":
        return "is not one of " + ", ".join(map(str, schema_["enum"]))
    if error.validator == "type":
        types = schema_["type"]
        return "must be of type " + (types if isinstance(types, str) else " or ".join(types))
    return error.message.replace(repr(error.instance), "").strip() or error.message


def section(name: str, given: dict | None, keys) -> dict[str, Any]:
    """The user's ``keys`` of config section ``name`` over the schema's defaults, checked.

    ``keys``: the field names wanted (or a dataclass, whose field names are used).
    """
    wanted = [f.name for f in fields(keys)] if isinstance(keys, type) else list(keys)
    spec = schema().get(name, {}).get("properties", {})
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"config {name}: {given!r} is not a section of keys — correct it in the config")
    given = dict(given or {})
    unknown = sorted(set(given) - set(wanted))
    if unknown:
        raise ConfigError(
            f"config key(s) {', '.join(f'{name}.{k}' for k in unknown)} unknown "
            f"(allowed in '{name}': {', '.join(wanted)})"
        )
    out = {}
    for key in wanted:
        if key in given:
            out[key] = _checked(name, key, given[key], spec.get(key, {}))
        elif "default" in spec.get(key, {}):
            out[key] = copy.deepcopy(spec[key]["default"])
        else:
            raise ConfigError(
                f"config key {name}.{key} is not set and has no default ({SCHEMA_PATH} not found) — set it"
            )
    return out


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def from_config(cls: type[T], name: str, given: dict | None, **overrides: Any) -> T:
    """``cls`` (a frozen dataclass) from config section ``name``: see :func:`section`.

    ``overrides`` replace values after the checks (e.g. a converted value).
    """
    values = {k: _frozen(v) for k, v in section(name, given, cls).items()}
    return cls(**{**values, **overrides})
