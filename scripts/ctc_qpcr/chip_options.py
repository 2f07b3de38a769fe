"""Chip-level settings, parsed once into small typed objects (docs/methods.md §1–§3).

The field names are the words of ``config/config.yaml`` (``activate``, ``apply``,
``calibrators``, ``on_missing``, ...), so every message names a key the user
wrote. The defaults live in one place: ``workflow/schemas/config.schema.yaml``.
Snakemake's ``validate`` fills them in for the workflow; :func:`chip_options`
does the same for a library caller that passes only some keys (or none), with
the checks of :mod:`ctc_qpcr.options`.
Library functions take these objects (or plain arguments), never config dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .options import schema_default, section

#: Config sections of the chip-level stage, in the order of config/config.yaml.
SECTIONS = ("validprime", "ipc", "replicates", "detection", "efficiency")
ON_MISSING = ("stop", "exclude", "uncalibrated")


@dataclass(frozen=True)
class ValidPrimeOptions:
    """``validprime:`` (methods §1)."""

    activate: bool
    mode: str  # per_replicate | averaged
    sd_max: float
    min_gdna: int
    loo: bool
    loo_sd: float
    grade_a: float
    grade_b: float
    grade_c: float
    correct_a: bool
    vpa_noamp_upper_bound: bool


@dataclass(frozen=True)
class IpcOptions:
    """``ipc:`` (methods §2). ``calibrators`` non-empty = per-assay calibration (§2.2)."""

    activate: bool
    reference: float | None
    max_sd: float
    max_offset: float
    min_replicates: int
    calibrators: tuple[str, ...]
    on_missing: str  # stop | exclude | uncalibrated


@dataclass(frozen=True)
class ReplicateOptions:
    """``replicates:`` (methods §3.2)."""

    max_delta: float
    max_sd: float
    outliers: str  # none | grubbs | median
    expected: int | None = None  # replicate wells per sample × assay; None = the plate's most common count
    on_extra: str = "stop"  # stop | flag (more wells than expected: two samples under one name)


@dataclass(frozen=True)
class DetectionOptions:
    """``detection:`` (methods §3.3). ``min_detected``: "all" or a number of replicates."""

    min_detected: str | int
    ntc_margin: float | None


@dataclass(frozen=True)
class EfficiencyOptions:
    """``efficiency:`` (methods §3.4)."""

    apply: bool
    from_standards: bool


@dataclass(frozen=True)
class ChipOptions:
    """Every setting of one batch's chip-level stage."""

    lod: float
    validprime: ValidPrimeOptions
    ipc: IpcOptions
    replicates: ReplicateOptions
    detection: DetectionOptions
    efficiency: EfficiencyOptions


_CLASSES = {
    "validprime": ValidPrimeOptions,
    "ipc": IpcOptions,
    "replicates": ReplicateOptions,
    "detection": DetectionOptions,
    "efficiency": EfficiencyOptions,
}


def chip_options(config: dict | None = None) -> ChipOptions:
    """Parse the chip-level keys of a config (``lod`` and the five sections) into :class:`ChipOptions`.

    Missing keys take the schema's defaults. ``detection.min_detected`` must be
    ``all`` or a positive whole number; ``ipc.on_missing`` one of stop, exclude,
    uncalibrated (the schema's types, ranges and enums are checked too).
    """
    config = config or {}
    parts = {name: section(name, config.get(name), _CLASSES[name]) for name in SECTIONS}
    ipc = parts["ipc"]
    ipc["calibrators"] = tuple(str(c) for c in (ipc["calibrators"] or ()))
    ipc["reference"] = None if ipc["reference"] is None else float(ipc["reference"])
    k = parts["detection"]["min_detected"]
    if k != "all" and not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        raise ConfigError(f"config detection.min_detected: {k!r} must be 'all' or a whole number ≥ 1")
    lod = config.get("lod", schema_default("lod"))
    if lod is None:
        raise ConfigError("config key lod is not set — set it (cycles)")
    return ChipOptions(lod=float(lod), **{name: _CLASSES[name](**parts[name]) for name in SECTIONS})
