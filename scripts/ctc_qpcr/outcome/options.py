"""The ``outcome:`` settings, parsed once (docs/methods.md §8).

:class:`OutcomeOptions` holds the config section in the config's own words
(defaults: the schema, through :func:`ctc_qpcr.options.from_config`);
:class:`Plan` is what one run of the stage uses, resolved from them: the
thresholds sorted with the main threshold included, the variables tested for
associations, the file names that messages cite.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import from_config

#: The survival endpoints of the clinical table (columns ``<ep>_months``, ``<ep>_event``).
ENDPOINTS = ("pfs", "os")


@dataclass(frozen=True)
class OutcomeOptions:
    """``outcome:`` (methods §8), field names and order as in the schema."""

    activate: bool
    ctc_counts: str
    clinical: str
    thresholds: tuple[float, ...]
    main_threshold: float
    baseline: str
    followups: tuple[str, ...]
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]
    arm_column: str
    landmark: bool
    on_unmatched: str  # error | exclude
    expression_timepoint: str  # "" = the baseline draw
    ordinal: tuple[str, ...]
    associations: tuple[str, ...] | None  # None = the covariates and the arm
    subgroups: tuple[str, ...]
    min_detected: int


def outcome_options(given: dict | None = None) -> OutcomeOptions:
    """The ``outcome:`` section (missing keys: the schema's defaults), checked."""
    return from_config(OutcomeOptions, "outcome", given)


@dataclass(frozen=True)
class Plan:
    """The settings one run of the stage uses (see :func:`plan`)."""

    counts_path: str
    clinical_path: str
    thresholds: tuple[float, ...]  # sorted, the main threshold included
    main_threshold: float
    baseline: str
    followups: tuple[str, ...]
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]
    ordinal: tuple[str, ...]
    variables: tuple[str, ...]  # tested against baseline positivity
    subgroups: tuple[str, ...]
    arm_column: str | None
    endpoints: tuple[str, ...]
    landmark: bool
    on_unmatched: str
    expression_timepoint: str
    min_detected: int


def plan(o: OutcomeOptions, counts_path: str | None = None, clinical_path: str | None = None) -> Plan:
    """Resolve ``o`` for one run. The tables' names in messages: the given paths, else the
    configured ones, else ``ctc_counts.tsv`` / ``clinical.tsv``."""
    main = float(o.main_threshold)
    arm = o.arm_column or None
    default_vars = [*o.covariates, *([arm] if arm else [])]
    return Plan(
        counts_path=counts_path or o.ctc_counts or "ctc_counts.tsv",
        clinical_path=clinical_path or o.clinical or "clinical.tsv",
        thresholds=tuple(sorted({float(t) for t in o.thresholds} | {main})),
        main_threshold=main,
        baseline=o.baseline,
        followups=tuple(o.followups),
        covariates=tuple(o.covariates),
        categorical=tuple(o.categorical),
        ordinal=tuple(o.ordinal),
        variables=tuple(dict.fromkeys(o.associations if o.associations is not None else default_vars)),
        subgroups=tuple(o.subgroups),
        arm_column=arm,
        endpoints=ENDPOINTS,
        landmark=o.landmark,
        on_unmatched=o.on_unmatched,
        expression_timepoint=o.expression_timepoint or o.baseline,
        min_detected=int(o.min_detected),
    )
