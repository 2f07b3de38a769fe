"""CTC counts (CellSearch) and outcome (docs/methods.md §8), one module per job.

* :mod:`.inputs` — the count and clinical tables, checked with file, line and column;
  landmark times from draw dates.
* :mod:`.dynamics` — status per draw and threshold, change between draws, positivity
  rates with exact CIs.
* :mod:`.analyses` — KM, log-rank, Cox (univariate, multivariable), landmarks, subgroups.
* :mod:`.associations` — baseline positivity against characteristics, conversion by arm,
  persistence against response.
* :mod:`.expression` — the join with a qPCR study (expression Cox, qPCR positivity).
* :mod:`.options` — the ``outcome:`` settings, parsed once (:func:`outcome_options`).
* :mod:`.run` — :func:`run_outcome`, the stage in order.

All tables are sorted deterministically. Input problems raise
:class:`~ctc_qpcr.errors.InputError` naming file, line (row index + 2), column and
what to do.
"""

# Names resolved on first use (PEP 562), so that a job importing one submodule (the
# figures job imports .dynamics) does not load every analysis and scipy.stats with it.
_SOURCES = {
    "analyses": (
        "COX_COLUMNS",
        "COX_MODEL_COLUMNS",
        "KM_COLUMNS",
        "LOGRANK_COLUMNS",
        "MEDIAN_COLUMNS",
        "SUBGROUP_COLUMNS",
        "interaction_test",
        "landmark_cohort",
    ),
    "associations": ("ASSOC_COLUMNS", "associations_table", "cochran_armitage"),
    "dynamics": (
        "CHANGE_CATEGORIES",
        "RATE_COLUMNS",
        "change_category",
        "clopper_pearson",
        "dynamics_table",
        "positivity_rates",
    ),
    "expression": ("EXPR_COLUMNS", "expression_cox"),
    "inputs": (
        "RESPONSES",
        "STANDARD_VOLUME_ML",
        "landmark_times",
        "match_patients",
        "validate_clinical",
        "validate_counts",
    ),
    "options": ("OutcomeOptions", "outcome_options"),
    "run": ("check_outcome_inputs", "run_outcome"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "ASSOC_COLUMNS",
    "CHANGE_CATEGORIES",
    "COX_COLUMNS",
    "COX_MODEL_COLUMNS",
    "EXPR_COLUMNS",
    "KM_COLUMNS",
    "LOGRANK_COLUMNS",
    "MEDIAN_COLUMNS",
    "OutcomeOptions",
    "RATE_COLUMNS",
    "RESPONSES",
    "STANDARD_VOLUME_ML",
    "SUBGROUP_COLUMNS",
    "associations_table",
    "change_category",
    "check_outcome_inputs",
    "clopper_pearson",
    "cochran_armitage",
    "dynamics_table",
    "expression_cox",
    "interaction_test",
    "landmark_cohort",
    "landmark_times",
    "match_patients",
    "outcome_options",
    "positivity_rates",
    "run_outcome",
    "simulate_outcome",
    "validate_clinical",
    "validate_counts",
]


def __getattr__(name):
    if name in _MODULE_OF:
        import importlib

        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
        globals()[name] = value
        return value
    # the example cohort's simulator lives with the simulators (ctc_qpcr.simulate_counts);
    # kept importable from here for callers written before the split
    if name == "simulate_outcome":
        from ..simulate_counts import simulate_outcome

        return simulate_outcome
    raise AttributeError(name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
