"""CellSearch count studies: new analyses (docs/methods.md §8), the example count
studies against their planted truth, and planning with or without qPCR."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from ctc_qpcr.errors import InputError
from ctc_qpcr.outcome import (
    clopper_pearson,
    cochran_armitage,
    expression_cox,
    interaction_test,
    landmark_times,
    outcome_options,
    run_outcome,
    validate_clinical,
    validate_counts,
)
from ctc_qpcr.outcome.inputs import read_table
from ctc_qpcr.plots_outcome import plot_forest, plot_positivity
from ctc_qpcr.simulate_counts import BREAST_TRUTH, GASTRIC_TRUTH, simulate_breast, simulate_gastric
from ctc_qpcr.survival import cox_ph
from workflow_helpers import REPO, make_workdir, snakemake


def _study(name):
    cfg = yaml.safe_load((REPO / f"config/{name}_cellsearch.yaml").read_text())["outcome"]
    counts = read_table(REPO / cfg["ctc_counts"])
    clinical = read_table(REPO / cfg["clinical"])
    paths = {"counts_path": str(REPO / cfg["ctc_counts"]), "clinical_path": str(REPO / cfg["clinical"])}
    return run_outcome(counts, clinical, outcome_options(cfg), **paths)


@pytest.fixture(scope="module")
def breast():
    return _study("breast")


@pytest.fixture(scope="module")
def gastric():
    return _study("gastric")


# ---------------------------------------------------------------- statistics


def test_clopper_pearson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    k = np.array([0, 1, 12, 124, 172, 267])
    n = np.array([10, 10, 52, 267, 267, 267])
    lo, hi = clopper_pearson(k, n)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="beta")
    np.testing.assert_allclose(lo, np.nan_to_num(ref_lo), atol=1e-12)
    np.testing.assert_allclose(hi, np.nan_to_num(ref_hi, nan=1.0), atol=1e-12)
    assert lo[0] == 0.0 and hi[-1] == 1.0  # k = 0 and k = n: one-sided ends
    # worked: 0/10 → upper 1 − 0.025^(1/10) = 0.30850
    assert hi[0] == pytest.approx(1 - 0.025**0.1, abs=1e-12)


def test_cochran_armitage_worked_and_linear_by_linear():
    """Worked: scores 0,1,2; 10/50, 20/50, 30/50 positive. p̄ = 0.4, T = 20,
    Var = 0.24·(250 − 150²/150) = 24 → z = 20/√24 = 4.0825 (R prop.trend.test χ² 16.667)."""
    z, p = cochran_armitage([0, 1, 2], [10, 20, 30], [50, 50, 50])
    assert z == pytest.approx(20 / np.sqrt(24), rel=1e-12)
    assert z**2 == pytest.approx(16.6667, abs=1e-4)
    from statsmodels.stats.contingency_tables import Table

    tab = np.array([[10, 40], [20, 30], [30, 20]])
    ll = Table(tab).test_ordinal_association(row_scores=np.array([0, 1, 2]), col_scores=np.array([1, 0]))
    # the linear-by-linear statistic uses N − 1 where Cochran–Armitage uses N
    assert z**2 == pytest.approx(ll.zscore**2 * 150 / 149, rel=1e-10)
    assert np.isnan(cochran_armitage([0, 1], [0, 0], [5, 5])[0])  # no positives: undefined


def test_interaction_lr_matches_statsmodels():
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(5)
    n = 120
    arm = rng.choice(["A", "B", "C"], n)
    high = rng.random(n) < 0.5
    t = rng.exponential(1 / (0.1 * np.where(high, np.where(arm == "C", 4.0, 1.5), 1.0)))
    e = (rng.random(n) < 0.8).astype(int)
    d = pd.DataFrame({"pfs_months": t, "pfs_event": e, "ctc_per_7_5ml": np.where(high, 10, 0), "arm": arm})
    chi2, df, p, note = interaction_test(d, "pfs", "arm", 5)
    x = high.astype(float)[:, None]
    dummies = np.column_stack([(arm == "B"), (arm == "C")]).astype(float)
    red = PHReg(t, np.hstack([x, dummies]), status=e, ties="efron").fit()
    full = PHReg(t, np.hstack([x, dummies, x * dummies]), status=e, ties="efron").fit()
    assert df == 2 and not note
    assert chi2 == pytest.approx(2 * (full.llf - red.llf), rel=1e-6)


def test_subgroup_rows_are_separate_cox_fits(breast):
    sg = breast["subgroups"]
    row = sg[(sg["endpoint"] == "pfs") & (sg["variable"] == "subtype") & (sg["subgroup"] == "TN")].iloc[0]
    counts = read_table(REPO / "resources/breast_cellsearch/ctc_counts.tsv")
    clin = read_table(REPO / "resources/breast_cellsearch/clinical.tsv")
    base = counts[counts["timepoint"] == "baseline"].merge(clin, on="patient")
    tn = base[base["subtype"] == "TN"]
    fit = cox_ph(
        tn["pfs_months"].astype(float),
        tn["pfs_event"].astype(int),
        (tn["ctc_count"].astype(int) >= 5).astype(float),
    )
    assert row["hr"] == pytest.approx(fit.hr[0], rel=1e-9) and row["n"] == len(tn)
    overall = sg[(sg["endpoint"] == "pfs") & (sg["subgroup"] == "all")]["hr"].unique()
    cox = breast["cox"]
    uni = cox[(cox["model"] == "univariate: baseline CTC>=5") & (cox["endpoint"] == "pfs")]["hr"].iloc[0]
    assert len(overall) == 1 and overall[0] == pytest.approx(uni, rel=1e-9)
    assert sg["interaction_p"].between(0, 1).all()


def test_landmark_times_from_dates_three_ways():
    counts = validate_counts(
        pd.DataFrame(
            {
                "patient": ["P1", "P1", "P2", "P2"],
                "timepoint": ["baseline", "week2"] * 2,
                "ctc_count": [5, 1, 0, 0],
                "draw_date": ["2009-01-01", "2009-01-15", "2009-03-01", "2009-03-31"],
            }
        ),
        "c.tsv",
    )
    base = pd.DataFrame(
        {
            "patient": ["P1", "P2"],
            "pfs_months": [3.0, 4.0],
            "pfs_event": [1, 0],
            "os_months": [5.0, 6.0],
            "os_event": [1, 0],
        }
    )
    from_long, notes = landmark_times(counts, validate_clinical(base, "k.tsv"), "baseline", ["week2"])
    np.testing.assert_allclose(from_long["landmark_week2_months"], [14 / 30.4375, 30 / 30.4375])
    assert "draw_date" in notes[0]
    wide = base.assign(date_baseline=["2009-01-01", "2009-03-01"], date_week2=["2009-01-15", "2009-03-31"])
    from_wide, notes = landmark_times(
        counts.drop(columns="draw_date"), validate_clinical(wide, "k.tsv"), "baseline", ["week2"]
    )
    np.testing.assert_allclose(from_wide["landmark_week2_months"], from_long["landmark_week2_months"])
    given = base.assign(landmark_week2_months=[0.5, 1.0])
    kept, notes = landmark_times(counts, validate_clinical(given, "k.tsv"), "baseline", ["week2"])
    assert list(kept["landmark_week2_months"]) == [0.5, 1.0] and notes == []


def test_bad_draw_date_names_line_and_column():
    with pytest.raises(InputError) as err:
        validate_counts(
            pd.DataFrame(
                {
                    "patient": ["P1", "P2"],
                    "timepoint": ["baseline"] * 2,
                    "ctc_count": [1, 2],
                    "draw_date": ["2009-01-01", "15/01/2009"],
                }
            ),
            "c.tsv",
        )
    msg = str(err.value)
    assert "c.tsv" in msg and "line 3" in msg and "draw_date" in msg and "YYYY-MM-DD" in msg


def test_expression_cox_detected_only_and_never_detected_gene():
    rng = np.random.default_rng(2)
    n = 30
    clin = pd.DataFrame(
        {
            "patient": [f"P{i}" for i in range(n)],
            "pfs_months": rng.exponential(8, n),
            "pfs_event": (rng.random(n) < 0.8).astype(int),
        }
    )
    s2p = pd.Series(clin["patient"].to_numpy(), index=[f"S{i}" for i in range(n)])
    # the normaliser differs with outcome, so a never-detected gene's imputed ΔCq tracks outcome
    normaliser = 20 - 0.3 * clin["pfs_months"].to_numpy() + rng.normal(0, 0.7, n)
    rows = []
    for i in range(n):
        rows.append((f"S{i}", "NEVER", 36 - normaliser[i], False))
        rows.append((f"S{i}", "RARE", rng.normal(8, 1) if i < 2 else 36 - normaliser[i], i < 2))
        rows.append((f"S{i}", "KRT19", rng.normal(6, 1), True))
    expr = pd.DataFrame(rows, columns=["sample", "gene", "dcq", "detected"])
    out = expression_cox(expr, s2p, clin, ["pfs"], "T0", "expr.tsv", min_detected=3).set_index("gene")
    assert np.isnan(out.loc["NEVER", "p"]) and "detected in 0 of 30" in out.loc["NEVER", "reason"]
    assert np.isnan(out.loc["RARE", "p"]) and "detected in 2 of 30" in out.loc["RARE", "reason"]
    assert np.isfinite(out.loc["KRT19", "p"]) and out.loc["KRT19", "reason"] == ""
    # had the imputed values been used, the never-detected gene would look highly significant
    fit = cox_ph(clin["pfs_months"], clin["pfs_event"], -(36 - normaliser)[:, None])
    assert fit.p[0] < 1e-3
    # string booleans (as read back from a TSV) count the same
    out2 = expression_cox(
        expr.assign(detected=expr["detected"].astype(str)), s2p, clin, ["pfs"], "T0", "e", 3
    )
    pd.testing.assert_frame_equal(out2.set_index("gene"), out)


# ---------------------------------------------------------------- example studies


def test_simulators_reproduce_committed_files(tmp_path):
    import subprocess
    import sys

    for study in ("breast", "gastric"):
        out = tmp_path / study
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts/simulate_count_studies.py"),
                "--study",
                study,
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        for name in ("ctc_counts.tsv", "clinical.tsv", "truth/patients.tsv", "truth/planted.tsv"):
            assert (out / name).read_bytes() == (
                REPO / f"resources/{study}_cellsearch" / name
            ).read_bytes(), (study, name)


def test_breast_design_and_planted_values(breast):
    counts, clinical, truth = simulate_breast()
    assert clinical["patient"].nunique() == 267
    assert set(counts["timepoint"]) == {"baseline", "C2", "C3-4"}
    assert set(clinical["subtype"]) == {"HR+", "HER2+", "TN"}
    rates = breast["positivity_rates"].set_index(["timepoint", "threshold"])
    for thr, planted in ((1.0, BREAST_TRUTH["p_baseline_ge1"]), (5.0, BREAST_TRUTH["p_baseline_ge5"])):
        r = rates.loc[("baseline", thr)]
        assert r["ci_low"] < planted < r["ci_high"]
    lr = breast["logrank"].set_index(["analysis", "endpoint"])
    assert lr.loc[("baseline CTC>=5", "pfs"), "p"] < 0.01
    assert lr.loc[("C2 CTC>=5 (landmark)", "pfs"), "p"] < 1e-6
    cox = breast["cox"]
    hh = cox[
        (cox["model"] == "univariate: baseline→C2 change at 5 (landmark)")
        & (cox["endpoint"] == "pfs")
        & (cox["term"] == "change=high→high (ref low→low)")
    ].iloc[0]
    assert hh["ci_low"] < BREAST_TRUTH["hr_pfs"]["high→high"] < hh["ci_high"]
    assoc = breast["associations"]
    conv = assoc[assoc["ctc"] == "conversion high→low at C2 (baseline-high)"]
    assert len(conv) == 1 and "chemo+anti-HER2" in conv["table"].iloc[0]
    trend = assoc[(assoc["variable"] == "n_sites") & (assoc["ctc"] == "baseline CTC>=5")].iloc[0]
    assert trend["test"].startswith("Cochran-Armitage") and trend["q"] < 0.05
    mw = assoc[(assoc["variable"] == "ca15_3") & (assoc["ctc"] == "baseline CTC>=5")].iloc[0]
    assert mw["test"] == "Mann-Whitney U" and mw["kind"] == "continuous"
    assert (assoc["q"].dropna() >= assoc.loc[assoc["q"].notna(), "p"] - 1e-12).all()


def test_gastric_design_and_landmarks_from_dates(gastric):
    counts, clinical, truth = simulate_gastric()
    assert clinical["patient"].nunique() == 52 and set(counts["timepoint"]) == {"baseline", "week2", "week4"}
    notes = " ".join(gastric["notes"]["note"])
    assert "landmark_week2_months computed from ctc_counts column draw_date" in notes
    rates = gastric["positivity_rates"]
    assert list(rates["threshold"].unique()) == [GASTRIC_TRUTH["threshold"]]
    cox = gastric["cox"]
    w2 = cox[(cox["model"] == "univariate: week2 CTC>=4 (landmark)") & (cox["endpoint"] == "pfs")].iloc[0]
    assert w2["ci_low"] < GASTRIC_TRUTH["hr_pfs_week2_high"] < w2["ci_high"] and w2["hr"] > 1


def test_outcome_plots_deterministic(tmp_path, breast):
    a = plot_forest(breast["subgroups"], "pfs", tmp_path / "a.svg")
    b = plot_forest(breast["subgroups"], "pfs", tmp_path / "b.svg")
    assert a.read_bytes() == b.read_bytes() and b"interaction p" in a.read_bytes()
    c = plot_positivity(breast["positivity_rates"], tmp_path / "c.svg")
    assert b"n=267" in c.read_bytes()


# ---------------------------------------------------------------- planning


def _jobs(stdout: str) -> set[str]:
    table = stdout.split("Job stats:")[-1]
    return {m.group(1) for m in re.finditer(r"^(\S+)\s+\d+$", table, flags=re.M) if m.group(1) != "total"}


QPCR_RULES = {
    "merge_batches",
    "normalise",
    "positivity",
    "differential",
    "classifier",
    "run_record",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("counts") / "w")


def test_count_only_config_plans_no_qpcr_job(workdir):
    for study in ("breast", "gastric"):
        jobs = _jobs(snakemake(workdir, "-n", "--configfile", f"config/{study}_cellsearch.yaml").stdout)
        assert "outcome" in jobs and "plot_outcome" in jobs and "plot_outcome_draw" not in jobs
        assert not jobs & QPCR_RULES and not any(j.startswith("preprocess_batch") for j in jobs), jobs
    # a config holding only an outcome: section (no config/config.yaml underneath)
    only = {"outcome": yaml.safe_load((workdir / "config/gastric_cellsearch.yaml").read_text())["outcome"]}
    (workdir / "only_outcome.yaml").write_text(yaml.safe_dump(only))
    jobs = _jobs(
        snakemake(workdir, "-n", "--configfile", "only_outcome.yaml", "--replace-workflow-config").stdout
    )
    assert "outcome" in jobs and not jobs & QPCR_RULES


def test_qpcr_only_config_plans_no_outcome_job(workdir):
    (workdir / "qpcr_only.yaml").write_text(yaml.safe_dump({"outcome": {"activate": False}}))
    jobs = _jobs(snakemake(workdir, "-n", "--configfile", "qpcr_only.yaml").stdout)
    assert any(j.startswith("preprocess_batch_") for j in jobs), jobs
    assert not {j for j in jobs if "outcome" in j}, jobs


def test_bad_count_table_stops_dry_run_with_line_and_column(workdir):
    bad = workdir / "resources/gastric_cellsearch/bad_counts.tsv"
    text = (workdir / "resources/gastric_cellsearch/ctc_counts.tsv").read_text().splitlines()
    text[4] = (
        text[4].replace("\t0\t", "\t-1\t", 1)
        if "\t0\t" in text[4]
        else re.sub(r"\t\d+\t", "\t-1\t", text[4], count=1)
    )
    bad.write_text("\n".join(text) + "\n")
    cfg = yaml.safe_load((workdir / "config/gastric_cellsearch.yaml").read_text())
    cfg["outcome"]["ctc_counts"] = "resources/gastric_cellsearch/bad_counts.tsv"
    (workdir / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "bad_counts.tsv" in out and "line 5" in out and "ctc_count" in out and "negative CTC count" in out
