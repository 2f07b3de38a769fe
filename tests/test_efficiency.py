"""Efficiency (algorithms §3.4) worked example."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import efficiency as eff


def test_standard_curve_worked_example():
    r = eff.standard_curve([1, 2, 3, 4, 5], [33.1, 29.8, 26.4, 23.1, 19.7])
    assert r["slope"] == pytest.approx(-3.35)
    assert r["intercept"] == pytest.approx(36.47)
    assert r["E"] == pytest.approx(1.9884, abs=5e-5)
    assert r["efficiency_pct"] == pytest.approx(98.84, abs=5e-3)
    assert r["r2"] > 0.999
    assert eff.scale_cq(25.0, r["E"]) == pytest.approx(24.7905, abs=5e-5)
    assert eff.scale_cq(25.0, 2.0) == 25.0


def test_pfaffl_and_livak():
    # control S1 (target 26.0, ref 18.0), treated S2 (24.5, 18.6)
    assert eff.pfaffl_ratio(1.95, 26.0 - 24.5, 2.0, 18.0 - 18.6) == pytest.approx(4.1273, abs=5e-5)
    ddcq = (24.5 - 18.6) - (26.0 - 18.0)
    assert eff.livak_ratio(ddcq) == pytest.approx(4.2871, abs=5e-5)


def test_standard_curves_from_wells():
    q = [10, 100, 1000, 10000, 100000]
    w = pd.DataFrame(
        {
            "assay": ["G"] * 5 + ["H"] * 2,
            "cq": [33.1, 29.8, 26.4, 23.1, 19.7, 30, 27],
            "state": "CALC",
            "quantity": q + [10, 100],
        }
    )
    t = eff.standard_curves(w)
    assert t["assay"].tolist() == ["G"]  # H has < 3 points
    assert t["E"].iloc[0] == pytest.approx(1.9884, abs=5e-5) and t["source"].iloc[0] == "standard_curve"
    assert np.isnan(eff.standard_curve([1, 1], [20, 21])["E"])
