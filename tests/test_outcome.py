"""CTC counts and outcome stage (docs/methods.md §8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.errors import InputError
from ctc_qpcr.outcome import (
    COX_COLUMNS,
    landmark_cohort,
    outcome_options,
    run_outcome,
    simulate_outcome,
)
from ctc_qpcr.plots_outcome import at_risk_from_km, plot_all, plot_km


def opts(**settings):
    """``outcome:`` settings of these tests: the simulated cohort's two follow-up draws."""
    return outcome_options({"followups": ["cycle2", "cycle3"], "expression_timepoint": "", **settings})


@pytest.fixture(scope="module")
def cohort():
    return simulate_outcome(n_patients=267, seed=11)


@pytest.fixture(scope="module")
def result(cohort):
    counts, clinical = cohort
    return run_outcome(counts, clinical, opts(covariates=("subtype", "ecog"), categorical=("ecog",)))


def small():
    counts = pd.DataFrame(
        {
            "patient": [
                "P1",
                "P1",
                "P2",
                "P2",
                "P3",
                "P3",
                "P4",
                "P5",
                "P5",
                "P6",
                "P6",
            ],
            "timepoint": ["baseline", "cycle2"] * 3
            + ["baseline", "baseline", "cycle2", "baseline", "cycle2"],
            "ctc_count": [12, 0, 3, 1, 7, 9, 0, 20, 2, 0, 6],
        }
    )
    clinical = pd.DataFrame(
        {
            "patient": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "pfs_months": [5.0, 9.0, 2.0, 12.0, 3.0, 8.0],
            "pfs_event": [1, 0, 1, 1, 1, 1],
            "os_months": [10.0, 20.0, 6.0, 24.0, 9.0, 15.0],
            "os_event": [1, 0, 1, 0, 1, 1],
            "landmark_cycle2_months": [0.7, 0.8, 0.75, np.nan, 0.7, 0.8],
            "arm": ["A", "B", "A", "B", "A", "B"],
        }
    )
    return counts, clinical


# ---------------------------------------------------------------- simulator


def test_simulator_design(cohort):
    counts, clinical = cohort
    assert len(clinical) == 267 and clinical["patient"].is_unique
    base = counts[counts["timepoint"] == "baseline"]
    assert len(base) == 267
    assert 0.4 < (base["ctc_count"] >= 5).mean() < 0.62
    assert set(counts["timepoint"]) == {"baseline", "cycle2", "cycle3"}
    assert clinical["landmark_cycle2_months"].between(0.5, 1.0).all()
    assert clinical["landmark_cycle3_months"].between(2.0, 3.0).all()
    assert (clinical["os_months"] >= clinical["pfs_months"]).all()
    assert {"subtype", "ecog", "arm"} <= set(clinical.columns)
    assert 0 < clinical["pfs_event"].mean() < 1  # some censoring


def test_simulator_deterministic_and_ids():
    ids = [f"Q{i:02d}" for i in range(45)]
    a = simulate_outcome(n_patients=100, seed=5, patient_ids=ids)
    b = simulate_outcome(n_patients=100, seed=5, patient_ids=ids)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    assert list(a[1]["patient"][:45]) == ids and a[1]["patient"].is_unique


def test_baseline_hr_covers_truth(result):
    cox = result["cox"]
    row = cox[(cox["model"] == "univariate: baseline CTC>=5") & (cox["endpoint"] == "pfs")].iloc[0]
    assert row["ci_low"] < 2.0 < row["ci_high"]
    assert row["n"] == 267


def test_conversion_by_arm_reported(result):
    a = result["associations"]
    conv = a[a["ctc"].str.startswith("conversion high→low at cycle2")]
    assert len(conv) == 1 and "A:" in conv["table"].iloc[0] and "C:" in conv["table"].iloc[0]


# ---------------------------------------------------------------- tables


def test_table_columns_and_sorting(result):
    assert list(result["cox"].columns) == COX_COLUMNS
    assert list(result["km"].columns) == [
        "analysis",
        "endpoint",
        "group",
        "time",
        "n_at_risk",
        "n_events",
        "n_censored",
        "survival",
        "se",
        "ci_low",
        "ci_high",
    ]
    assert list(result["logrank"].columns) == [
        "analysis",
        "endpoint",
        "chi2",
        "df",
        "p",
        "n",
        "groups",
    ]
    assert list(result["medians"].columns) == [
        "analysis",
        "endpoint",
        "group",
        "median",
        "ci_low",
        "ci_high",
        "n",
    ]
    km = result["km"]
    assert km.equals(
        km.sort_values(["analysis", "endpoint", "group", "time"], kind="mergesort").reset_index(drop=True)
    )
    assert set(result["logrank"]["endpoint"]) == {"pfs", "os"}
    assert {"variable", "test", "statistic", "p"} <= set(result["associations"].columns)


def test_deterministic(cohort, result):
    counts, clinical = cohort
    again = run_outcome(
        counts.sample(frac=1, random_state=1),
        clinical.sample(frac=1, random_state=2),
        opts(covariates=("subtype", "ecog"), categorical=("ecog",)),
    )
    for key in result:
        pd.testing.assert_frame_equal(result[key], again[key], obj=key)


def test_dynamics_categories_and_normalisation():
    counts, clinical = small()
    counts["blood_volume_ml"] = [7.5] * 10 + [3.75]  # P6 cycle2: 6 cells in 3.75 ml = 12 / 7.5 ml
    r = run_outcome(counts, clinical, opts(followups=("cycle2",)))
    d = r["dynamics"].set_index(["patient", "timepoint"])
    assert d.loc[("P1", "cycle2"), "change"] == "high→low"
    assert d.loc[("P2", "cycle2"), "change"] == "low→low"
    assert d.loc[("P3", "cycle2"), "change"] == "high→high"
    assert d.loc[("P6", "cycle2"), "ctc_per_7_5ml"] == 12.0
    assert d.loc[("P6", "cycle2"), "change"] == "low→high"
    assert d.loc[("P1", "cycle2"), "log2_change"] == pytest.approx(np.log2(1 / 13))
    assert d.loc[("P1", "baseline"), "status_ge1"] == 1 and d.loc[("P4", "baseline"), "status_ge5"] == 0


def test_gastric_threshold():
    counts, clinical = small()
    r = run_outcome(counts, clinical, opts(thresholds=[4], main_threshold=4, followups=("cycle2",)))
    assert "status_ge4" in r["dynamics"].columns and "status_ge5" not in r["dynamics"].columns
    assert (r["logrank"]["analysis"] == "baseline CTC>=4").any()


# ---------------------------------------------------------------- landmark


def test_landmark_excludes_event_before_landmark():
    counts, clinical = small()
    # P5 progressed at 0.5 months, before its cycle-2 draw at 0.7 months, yet has a cycle-2 count
    clinical.loc[clinical["patient"] == "P5", "pfs_months"] = 0.5
    r = run_outcome(counts, clinical, opts(followups=("cycle2",)))
    lr = r["logrank"].set_index(["analysis", "endpoint"])
    # cycle-2 samples: P1, P2, P3, P5, P6; P5 excluded for PFS only
    assert lr.loc[("cycle2 CTC>=5 (landmark)", "pfs"), "n"] == 4
    assert lr.loc[("cycle2 CTC>=5 (landmark)", "os"), "n"] == 5
    assert lr.loc[("baseline CTC>=5", "pfs"), "n"] == 6  # baseline analysis keeps everyone
    assert any("event at or before the landmark: P5" in n for n in r["notes"]["note"])
    km = r["km"]
    lm = km[(km["analysis"] == "cycle2 CTC>=5 (landmark)") & (km["endpoint"] == "pfs")]
    # time zero at the draw: P1 5.0 − 0.7
    assert 4.3 in set(np.round(lm["time"], 10))
    # the "from baseline" variant keeps P5 and warns
    r2 = run_outcome(counts, clinical, opts(followups=("cycle2",), landmark=False))
    lr2 = r2["logrank"].set_index(["analysis", "endpoint"])
    assert lr2.loc[("cycle2 CTC>=5 (from baseline)", "pfs"), "n"] == 5
    assert any("guarantee-time bias" in n for n in r2["notes"]["note"])


def test_landmark_cohort_function():
    d = pd.DataFrame(
        {
            "patient": ["a", "b", "c", "d"],
            "pfs_months": [0.5, 0.7, 3.0, 2.0],
            "pfs_event": [1, 0, 1, 0],
            "lm": [0.7, 0.7, 0.7, np.nan],
        }
    )
    keep, why = landmark_cohort(d, "pfs", "lm")
    assert list(keep["patient"]) == ["c"] and keep["pfs_months"].iloc[0] == pytest.approx(2.3)
    assert len(why) == 3


def test_landmark_column_required():
    counts, clinical = small()
    with pytest.raises(InputError, match="landmark_cycle2_months"):
        run_outcome(
            counts,
            clinical.drop(columns="landmark_cycle2_months"),
            opts(followups=("cycle2",)),
        )


# ---------------------------------------------------------------- validation


def _err(counts, clinical, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        run_outcome(
            counts,
            clinical,
            opts(followups=("cycle2",), **kw),
            counts_path="counts.tsv",
            clinical_path="clinical.tsv",
        )
    return info.value


def test_negative_count_names_row():
    counts, clinical = small()
    counts.loc[3, "ctc_count"] = -1
    e = _err(counts, clinical)
    assert e.path == "counts.tsv" and e.line == 5 and e.column == "ctc_count"


def test_non_integer_count():
    counts, clinical = small()
    counts["ctc_count"] = counts["ctc_count"].astype(float)
    counts.loc[0, "ctc_count"] = 2.5
    e = _err(counts, clinical)
    assert e.line == 2 and "whole number" in e.problem


def test_duplicate_draw():
    counts, clinical = small()
    counts = pd.concat([counts, counts.iloc[[2]]], ignore_index=True)
    e = _err(counts, clinical)
    assert e.line == 13 and "P2" in e.problem and "lines 4, 13" in e.problem


def test_duplicate_clinical_patient():
    counts, clinical = small()
    clinical = pd.concat([clinical, clinical.iloc[[1]]], ignore_index=True)
    e = _err(counts, clinical)
    assert e.path == "clinical.tsv" and e.line == 8 and e.column == "patient"


@pytest.mark.parametrize(
    "col,value,line,text",
    [
        ("pfs_event", 2, 3, "not 0 or 1"),
        ("os_months", -1.0, 4, "negative"),
        ("pfs_months", 0.0, 2, "event at time 0"),
    ],
)
def test_bad_clinical_values(col, value, line, text):
    counts, clinical = small()
    clinical.loc[line - 2, col] = value
    e = _err(counts, clinical)
    assert e.path == "clinical.tsv" and e.line == line and e.column == col and text in e.problem


def test_bad_response():
    counts, clinical = small()
    clinical["best_response"] = ["PR", "SD", "XX", "PD", "CR", ""]
    e = _err(counts, clinical)
    assert e.line == 4 and e.column == "best_response"


def test_unmatched_listed_together_or_excluded():
    counts, clinical = small()
    counts = pd.concat(
        [
            counts,
            pd.DataFrame(
                {
                    "patient": ["P9", "P8"],
                    "timepoint": ["baseline"] * 2,
                    "ctc_count": [1, 2],
                }
            ),
        ],
        ignore_index=True,
    )
    clinical = clinical[clinical["patient"] != "P4"]
    e = _err(counts, clinical)
    assert "P8, P9" in e.problem and "P4" in e.problem
    r = run_outcome(counts, clinical, opts(followups=("cycle2",), on_unmatched="exclude"))
    note = " ".join(r["notes"]["note"])
    assert "P8, P9" in note and "P4" in note
    assert "P9" not in set(r["dynamics"]["patient"])


# ---------------------------------------------------------------- expression


def test_expression_join(cohort):
    counts, clinical = cohort
    ids = list(clinical["patient"][:45])
    rng = np.random.default_rng(3)
    samples = pd.DataFrame(
        {
            "sample": [f"S{i}" for i in range(45)],
            "patient": ids,
            "timepoint": "baseline",
        }
    )
    high = (
        counts.set_index(["patient", "timepoint"]).loc[[(p, "baseline") for p in ids], "ctc_count"].to_numpy()
        >= 5
    )
    rows = []
    for i in range(45):
        for gene in ("KRT19", "MUC1", "ERBB2"):
            dcq = rng.normal(5, 1) - (2.0 * high[i] if gene == "KRT19" else 0)
            rows.append((f"S{i}", gene, dcq, True))
    expr = pd.DataFrame(rows, columns=["sample", "gene", "dcq", "detected"])
    pos = pd.DataFrame({"sample": samples["sample"], "positive": high})
    r = run_outcome(counts, clinical, opts(), expression=expr, samples=samples, positivity=pos)
    ex = r["expression_cox"]
    assert len(ex) == 6 and list(ex["gene"].unique()) == ["ERBB2", "KRT19", "MUC1"]
    assert (ex["q"] >= ex["p"] - 1e-12).all() and (ex["n"] == 45).all()
    assert (r["logrank"]["analysis"] == "baseline qPCR positivity").sum() == 2
    assert (r["associations"]["variable"] == "baseline qPCR positivity").any()


# ---------------------------------------------------------------- plots


def test_km_plot_deterministic(tmp_path, result):
    a = plot_km(result["km"], "baseline CTC>=5", "pfs", tmp_path / "a.svg", logrank_p=0.001)
    b = plot_km(result["km"], "baseline CTC>=5", "pfs", tmp_path / "b.svg", logrank_p=0.001)
    assert a.read_bytes() == b.read_bytes()
    assert b"Number at risk" in a.read_bytes()


def test_at_risk_from_km_matches_raw(cohort, result):
    counts, clinical = cohort
    km = result["km"]
    g = km[(km["analysis"] == "baseline CTC>=5") & (km["endpoint"] == "pfs") & (km["group"] == "CTC>=5")]
    base = counts[counts["timepoint"] == "baseline"].merge(clinical, on="patient")
    t = base.loc[base["ctc_count"] >= 5, "pfs_months"].to_numpy()
    times = [0, 3, 6, 12, 100]
    assert at_risk_from_km(g, times) == [int((t >= u).sum()) for u in times]


def test_plot_all(tmp_path):
    counts, clinical = small()
    r = run_outcome(counts, clinical, opts(followups=("cycle2",)))
    paths = plot_all(r, tmp_path)
    assert len(paths) == r["km"][["analysis", "endpoint"]].drop_duplicates().shape[0]
    assert all(p.exists() for p in paths)


def test_figures_job_imports_no_analysis_module():
    """plot_outcome imports ctc_qpcr.outcome.dynamics and plots_outcome: the package's names
    load on first use, so the figures job pays for neither the analyses nor scipy.stats."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import ctc_qpcr

    code = (
        "import sys; from ctc_qpcr.outcome.dynamics import thr_label; import ctc_qpcr.plots_outcome; "
        "print(sorted(m for m in ('scipy.stats', 'ctc_qpcr.outcome.analyses') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(ctc_qpcr.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
    from ctc_qpcr import outcome

    assert outcome.run_outcome.__module__ == "ctc_qpcr.outcome.run" and "run_outcome" in dir(outcome)
