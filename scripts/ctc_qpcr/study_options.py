"""Settings of the study-level stages (``normalisation:``, ``differential:``), parsed once.

Same pattern as the chip-level stage (:mod:`ctc_qpcr.chip_options`): frozen dataclasses whose
field names are the words of ``config/config.yaml``, defaults only in
``workflow/schemas/config.schema.yaml`` (read by :mod:`ctc_qpcr.options`), checks that name
the key as the user wrote it. The Snakemake adapters (``scripts/normalise.py``,
``scripts/differential.py``) build these objects; library functions take them (or the same
words as keywords, which go through the same checks), never a config dict.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import ConfigError
from .options import from_config, section


@dataclass(frozen=True)
class NormalisationOptions:
    """``normalisation:`` (docs/methods.md §4). ``reference_genes`` empty = the geNorm optimal set;
    ``normfinder_group`` empty = NormFinder with one group."""

    strategies: tuple[str, ...]
    default: str
    reference_genes: tuple[str, ...]
    candidates: str  # reference | reference+target
    normfinder_group: str
    v_cutoff: float
    min_reference_genes: int


@dataclass(frozen=True)
class DifferentialOptions:
    """``differential:`` (docs/methods.md §6). ``comparisons``: the checked comparison specs,
    defaults filled in (:func:`ctc_qpcr.differential.validate_spec`).
    ``nondetect_threshold`` is accepted for old configs and not used."""

    min_per_group: int
    min_site_patients: int
    nondetect_threshold: float
    min_detected: int
    trim: float
    off_z: float
    comparisons: tuple[dict, ...]


def normalisation_options(given: dict | None = None, **words: Any) -> NormalisationOptions:
    """The ``normalisation:`` section (missing keys: the schema's defaults), checked.

    ``words``: the same keys as keyword arguments, over ``given`` (a library caller's way).
    ``reference_genes=None`` means the geNorm set and ``normfinder_group=None`` one group,
    as the empty values of the config do.
    """
    merged = {**(given or {}), **words}
    if "reference_genes" in merged and merged["reference_genes"] is None:
        merged["reference_genes"] = []
    if "normfinder_group" in merged and merged["normfinder_group"] is None:
        merged["normfinder_group"] = ""
    for key in ("strategies", "reference_genes"):
        if isinstance(merged.get(key), tuple):
            merged[key] = list(merged[key])
    return from_config(NormalisationOptions, "normalisation", merged)


def differential_options(given: dict | None = None, **words: Any) -> DifferentialOptions:
    """The ``differential:`` section (missing keys: the schema's defaults), checked.

    ``words`` as in :func:`normalisation_options`. ``comparisons`` may be absent (a library
    caller that runs one comparison spec at a time); every spec given is checked here.
    """
    from .differential import validate_spec  # the specs' rules live with the comparisons

    merged = {**(given or {}), **words}
    specs = merged.pop("comparisons", None) or []
    if not isinstance(specs, (list, tuple)):
        raise ConfigError(f"config differential.comparisons: {specs!r} must be a list of comparisons")
    keys = [f.name for f in fields(DifferentialOptions) if f.name != "comparisons"]
    values = section("differential", merged, keys)
    return DifferentialOptions(**values, comparisons=tuple(validate_spec(s) for s in specs))


def with_words(options, build, words: dict[str, Any]):
    """``options`` with the config ``words`` given as keywords replaced (checked), or
    ``build(**words)`` when there is no options object."""
    if options is None:
        return build(**words)
    if not words:
        return options
    checked = build(**{**{f.name: getattr(options, f.name) for f in fields(options)}, **words})
    return replace(options, **{k: getattr(checked, k) for k in words})
