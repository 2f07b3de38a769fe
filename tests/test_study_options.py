"""Typed options of the study-level stages (normalisation, differential): config words, schema defaults."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd
import pytest
import yaml

from ctc_qpcr import differential as de
from ctc_qpcr.errors import ConfigError
from ctc_qpcr.normalise import normalise_study
from ctc_qpcr.options import SCHEMA_PATH
from ctc_qpcr.study_options import (
    DifferentialOptions,
    NormalisationOptions,
    differential_options,
    normalisation_options,
)
from test_differential import SPEC, make_cohort
from test_normalise import make_study

SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))["properties"]
CONFIG = yaml.safe_load((SCHEMA_PATH.parents[2] / "config" / "config.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("cls", "name"), [(NormalisationOptions, "normalisation"), (DifferentialOptions, "differential")]
)
def test_field_names_are_the_config_words(cls, name):
    assert {f.name for f in fields(cls)} == set(SCHEMA[name]["properties"])
    assert set(CONFIG[name]) <= {f.name for f in fields(cls)}


def test_defaults_come_from_the_schema():
    n = normalisation_options()
    spec = SCHEMA["normalisation"]["properties"]
    assert n.strategies == tuple(spec["strategies"]["default"])
    assert (n.v_cutoff, n.normfinder_group, n.min_reference_genes) == (0.15, "response", 1)
    d = differential_options()
    props = SCHEMA["differential"]["properties"]
    assert (d.min_per_group, d.min_detected, d.trim, d.off_z) == tuple(
        props[k]["default"] for k in ("min_per_group", "min_detected", "trim", "off_z")
    )
    assert d.comparisons == ()


def test_the_shipped_config_parses_and_specs_are_checked_once():
    d = differential_options(CONFIG["differential"])
    assert [c["name"] for c in d.comparisons] == [c["name"] for c in CONFIG["differential"]["comparisons"]]
    assert all(c["pool"] in ("none", "patient") and c["test"] for c in d.comparisons)
    n = normalisation_options(CONFIG["normalisation"])
    assert n.strategies == tuple(CONFIG["normalisation"]["strategies"])


@pytest.mark.parametrize(
    ("section", "given", "words"),
    [
        ("normalisation", {"candidates": "targets"}, "normalisation.candidates"),
        ("normalisation", {"v_cutof": 0.2}, "normalisation.v_cutof"),
        ("normalisation", {"strategies": ["reference", "median"]}, "normalisation.strategies[1]"),
        ("differential", {"min_detected": 1}, "differential.min_detected"),
        ("differential", {"off_z": "high"}, "differential.off_z"),
        ("differential", {"comparisons": [{"name": "x", "type": "two_group", "column": "r"}]}, "'levels'"),
    ],
)
def test_a_bad_setting_names_the_key_as_written(section, given, words):
    parse = normalisation_options if section == "normalisation" else differential_options
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse(given)


def test_normalise_study_options_object_equals_its_words():
    cells, samples, assays = make_study()
    words = {"strategies": ("reference", "none"), "reference_genes": None, "normfinder_group": None}
    by_words = normalise_study(cells, samples, assays, **words)
    by_object = normalise_study(cells, samples, assays, normalisation_options(**words))
    assert list(by_object["matrices"]) == ["reference", "none"]
    for strategy in ("reference", "none"):
        pd.testing.assert_frame_equal(by_words["normalised"][strategy], by_object["normalised"][strategy])
    pd.testing.assert_frame_equal(by_words["chosen"], by_object["chosen"])
    with pytest.raises(ConfigError, match="normalisation.min_reference_genes"):
        normalise_study(cells, samples, assays, normalisation_options(), min_reference_genes=0)


def test_run_comparison_options_object_equals_its_words():
    import numpy as np

    norm, samples = make_cohort(np.random.default_rng(3), n_genes=6)
    opts = differential_options({"min_detected": 4, "off_z": 0})
    by_object, notes_object = de.run_comparison(norm, samples, SPEC, opts)
    by_words, notes_words = de.run_comparison(norm, samples, SPEC, min_detected=4, off_z=None)
    pd.testing.assert_frame_equal(by_object, by_words)
    assert notes_object == notes_words
    default, _ = de.run_comparison(norm, samples, SPEC)
    assert not default.equals(by_object)  # min_detected 4 and no off calls change some rows
