"""Inter-plate calibration (algorithms §2) and its commutation with ValidPrime (§1.6)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc_qpcr import calibration as cal
from ctc_qpcr import validprime as vp
from ctc_qpcr.chip_options import chip_options


def ipc_wells():
    rows = []
    for plate, values in {
        "P1": [24.90, 25.02, 24.96],
        "P2": [25.48, 25.52, 25.56],
        "P3": [24.70, 24.74, 24.66],
    }.items():
        for i, cq in enumerate(values):
            rows.append(
                {
                    "plate": plate,
                    "well": f"S{i + 1:02d}-A01",
                    "sample": "IPC",
                    "assay": "IPC_assay",
                    "cq": cq,
                    "state": "CALC",
                }
            )
        rows.append(
            {"plate": plate, "well": "S10-A02", "sample": "s1", "assay": "GOI", "cq": 28.30, "state": "CALC"}
        )
    return pd.DataFrame(rows)


def test_ipc_worked_example():
    w = ipc_wells()
    off = cal.ipc_offsets(w, ["IPC"], ["IPC_assay"]).set_index("plate")
    assert off["ipc_mean"].tolist() == pytest.approx([24.96, 25.52, 24.70])
    assert off["offset"].tolist() == pytest.approx([-0.10, 0.46, -0.36])
    assert off["ipc_sd"].tolist() == pytest.approx([0.06, 0.04, 0.04])
    assert off["n"].tolist() == [3, 3, 3]
    assert (off["flags"] == "").all()
    assert cal.ipc_reference_from(off.reset_index()) == pytest.approx(25.06)
    out = cal.apply_offsets(w, off.reset_index())
    goi = out[(out["plate"] == "P2") & (out["assay"] == "GOI")]
    assert goi["cq"].iloc[0] == pytest.approx(27.84)
    assert goi["plate_offset"].iloc[0] == pytest.approx(0.46)


def test_ipc_given_reference_and_flags():
    w = ipc_wells()
    w.loc[(w["plate"] == "P3") & (w["sample"] == "IPC"), "state"] = "EXPFAIL"
    w.loc[(w["plate"] == "P1") & (w["sample"] == "IPC") & (w["well"] == "S01-A01"), "cq"] = 26.0
    extra = pd.DataFrame(
        [{"plate": "P4", "well": "S01-A01", "sample": "s1", "assay": "GOI", "cq": 30.0, "state": "CALC"}]
    )
    w = pd.concat([w, extra], ignore_index=True)
    off = cal.ipc_offsets(w, ["IPC"], ["IPC_assay"], reference=24.0).set_index("plate")
    assert off.loc["P2", "offset"] == pytest.approx(1.52)
    assert "IPC_OFFSET>1" in off.loc["P2", "flags"]
    assert "IPC_SD>0.25" in off.loc["P1", "flags"]
    assert off.loc["P3", "flags"] == "IPC_FAILED" and off.loc["P3", "offset"] == 0.0
    assert off.loc["P4", "flags"] == "IPC_MISSING" and off.loc["P4", "offset"] == 0.0
    # no IPC at all: never a crash
    none = cal.ipc_offsets(w, ["nothing"], None)
    assert (none["offset"] == 0).all() and (none["flags"] == "IPC_MISSING").all()


def test_irc_worked_example():
    # gene X, IRC1/IRC2: run 1 = 22.10 / 26.40, run 2 = 22.60 / 26.80
    w = pd.DataFrame(
        {
            "plate": ["R1", "R1", "R2", "R2"],
            "sample": ["IRC1", "IRC2", "IRC1", "IRC2"],
            "assay": "X",
            "cq": [22.10, 26.40, 22.60, 26.80],
            "state": "CALC",
            "well": ["A1", "A2", "A1", "A2"],
        }
    )
    off = cal.irc_offsets(w, ["IRC1", "IRC2"]).set_index("plate")
    assert off.loc["R1", "cf"] == pytest.approx(1.1688, abs=5e-5)
    assert off.loc["R2", "cf"] == pytest.approx(0.8556, abs=5e-5)
    assert -off.loc["R1", "offset"] == pytest.approx(0.225)
    assert -off.loc["R2", "offset"] == pytest.approx(-0.225)
    assert off["n_irc"].tolist() == [2, 2]
    out = cal.apply_assay_offsets(w, off.reset_index())
    assert out["cq"].tolist() == pytest.approx([22.325, 26.625, 22.375, 26.575])


def test_irc_unequal_sets_least_squares():
    # true offsets −0.3, 0.1, 0.2 (sum 0), IRC levels 20 / 25 / 30, IRC3 missing on run C
    true = {"A": -0.3, "B": 0.1, "C": 0.2}
    mu = {"I1": 20.0, "I2": 25.0, "I3": 30.0}
    rows = [
        {"plate": p, "sample": i, "assay": "X", "cq": mu[i] + o, "state": "CALC", "well": i}
        for p, o in true.items()
        for i in mu
        if not (p == "C" and i == "I3")
    ]
    rows.append({"plate": "D", "sample": "s", "assay": "X", "cq": 30.0, "state": "CALC", "well": "z"})
    off = cal.irc_offsets(pd.DataFrame(rows), list(mu)).set_index("plate")
    for p, o in true.items():
        assert off.loc[p, "offset"] == pytest.approx(o, abs=1e-9)
    assert off.loc["D", "flags"] == "IRC_MISSING" and off.loc["D", "offset"] == 0.0


cq = st.floats(min_value=15.0, max_value=33.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    goi=st.lists(cq, min_size=4, max_size=4),
    vpa=st.lists(cq, min_size=4, max_size=4),
    gdna_goi=st.lists(cq, min_size=4, max_size=4),
    gdna_vpa=st.lists(cq, min_size=4, max_size=4),
    offset=st.floats(min_value=-2.0, max_value=2.0, allow_nan=False),
)
def test_validprime_commutes_with_global_ipc(goi, vpa, gdna_goi, gdna_vpa, offset):
    """§1.6: adding o_p to every Cq of a chip shifts Cq_RNA by exactly o_p."""

    def build(shift):
        rows = []
        for k in range(4):
            rows += [
                {
                    "plate": "P",
                    "well": f"S{k + 1:02d}-A01",
                    "sample": f"s{k}",
                    "assay": "G",
                    "cq": goi[k] + shift,
                    "state": "CALC",
                },
                {
                    "plate": "P",
                    "well": f"S{k + 1:02d}-A02",
                    "sample": f"s{k}",
                    "assay": "V",
                    "cq": vpa[k] + shift,
                    "state": "CALC",
                },
                {
                    "plate": "P",
                    "well": f"S{k + 11:02d}-A01",
                    "sample": f"g{k}",
                    "assay": "G",
                    "cq": gdna_goi[k] + shift,
                    "state": "CALC",
                },
                {
                    "plate": "P",
                    "well": f"S{k + 11:02d}-A02",
                    "sample": f"g{k}",
                    "assay": "V",
                    "cq": gdna_vpa[k] + shift,
                    "state": "CALC",
                },
            ]
        w = pd.DataFrame(rows)
        o = chip_options({"validprime": {"sd_max": 1e9}})
        gdna = [f"g{k}" for k in range(4)]
        table = vp.validate_assays(w, vpa_assay="V", gdna_samples=gdna, lod=o.lod, options=o.validprime)
        goi_w = w[(w["assay"] == "G") & w["sample"].str.startswith("s")]
        kw = {"vpa_assay": "V", "mode": "replicate", "vpa_lod": o.lod, "options": o.validprime}
        return vp.apply_validprime(goi_w, w, assay_table=table, **kw)

    before = build(0.0)
    after_vp = before["cq_rna"].to_numpy() - offset  # ValidPrime, then IPC offset
    first_ipc = build(-offset)  # IPC offset, then ValidPrime
    assert before["vp_grade"].tolist() == first_ipc["vp_grade"].tolist()
    np.testing.assert_allclose(first_ipc["cq_rna"].to_numpy(), after_vp, atol=1e-9, equal_nan=True)
