"""Exports checked for completeness, NTC flags, oversized files, and the BioMark reading speed.

Issue 13 (items 2 and 6) and issue 17 (reading one chip ≤ 3 × pandas).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.audit import build_audit, summarise_audit
from ctc_qpcr.errors import InputError
from ctc_qpcr.importing import read_plate
from ctc_qpcr.ntc import ntc_table
from ctc_qpcr.parsers import biomark, registry
from ctc_qpcr.parsers.text import load_text


def write(path: Path, lines: list[str], newline: str = "\r\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def sheets_for(wells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    samples = pd.DataFrame({"sample": sorted(set(wells["sample"]) - {""}), "kind": "patient"})
    assays = pd.DataFrame({"assay": sorted(set(wells["assay"]) - {""}), "lod": np.nan})
    return samples, assays


def chip_9696(template: list[str]) -> list[str]:
    """A 96.96 chip (9,216 chambers) in the layout of ``template`` (v2 header: no chip format),
    its rows reused."""
    head = [
        "Chip Run Filename,C:\\chip.bml",
        "Application Version,2.1.1",
        "Export Type,Table Results",
        "Quality Threshold,0.65",
        "",
        "",
    ] + template[9:12]
    rows = template[12:]
    body = []
    for s in range(1, 97):
        for a in range(1, 97):
            fields = rows[(s * 96 + a) % len(rows)].split(",")
            fields[0], fields[1], fields[4] = (
                f"S{s:02d}-A{a:02d}",
                f"sample{s}",
                f"assay{a}",
            )
            body.append(",".join(fields))
    return head + body


@pytest.fixture(scope="module")
def v2_lines(public_data) -> list[str]:
    """HTqPCR's BioMark 48.48 export (v2.1.1, 10 columns): the layout the study simulator writes."""
    return load_text(public_data / "htqpcr" / "BioMark_sample.csv").lines


@pytest.fixture(scope="module")
def cheese(public_data) -> list[str]:
    return load_text(public_data / "biomark_biologger" / "CheeseSamples_validation_rawdata.csv").lines


# --------------------------------------------------------------------------- BioMark grid


def test_biomark_cut_at_line_end_names_plate_and_missing_chambers(tmp_path, cheese):
    """The 192.24 export cut after 3,108 of 4,608 chambers (1,500 gone, as in issue 13)."""
    path = write(tmp_path / "cut.csv", cheese[:12] + cheese[12 : 12 + 3108])
    with pytest.raises(InputError) as err:
        registry.read_export(path, plate="chip7")
    problem = err.value.problem
    assert problem.startswith(
        "plate chip7: the export lists 3108 chambers but the 192.24 chip has 4608; 1500 missing: "
    )
    missing = biomark.read(path).attrs["missing_wells"]
    assert len(missing) == 1500 and missing[0] in problem and "… and 1488 more" in problem
    assert "import.on_incomplete: flag" in err.value.hint
    full = registry.read_export(public_data_file(cheese, tmp_path))
    assert len(full) == 4608 and full.attrs["missing_wells"] == []


def public_data_file(cheese: list[str], tmp_path: Path) -> Path:
    return write(tmp_path / "full.csv", cheese)


def test_biomark_without_chip_format_checks_the_rectangle_of_inlets(tmp_path, v2_lines):
    lines = chip_9696(v2_lines)
    assert len(registry.read_export(write(tmp_path / "full.csv", lines))) == 9216
    cut = lines[: 9 + 95 * 96 + 40]  # sample inlet 96 keeps its first 40 chambers
    with pytest.raises(
        InputError,
        match=r"9160 chambers but the chip has 9216; 56 missing: S96-A41, S96-A42",
    ):
        registry.read_export(write(tmp_path / "cut.csv", cut))
    gap = lines[:100] + lines[101:]  # one chamber deleted inside the table
    with pytest.raises(InputError, match=r"1 missing: S01-A92 —"):
        registry.read_export(write(tmp_path / "gap.csv", gap))


def test_flag_mode_lists_missing_chambers_in_the_audit(tmp_path, cheese):
    path = write(tmp_path / "cut.csv", cheese[:12] + cheese[12 : 12 + 3108])
    samples, assays = sheets_for(biomark.read(path))
    wells = read_plate(str(path), "biomark", "chip7", "B1", samples, assays, on_incomplete="flag")
    assert len(wells) == 4608
    missing = wells[wells["excluded"] == "missing"]
    assert len(missing) == 1500 and (missing["cq_raw"] == "").all() and missing["cq"].isna().all()
    assert missing["well"].iloc[-1] == "S192-A24" and (missing["line"] == 0).all()
    audit = build_audit(wells)
    summary = summarise_audit(audit).iloc[0]
    assert summary["read"] == 4608 and summary["kept"] + summary["excluded"] == 4608
    assert summary["excluded_missing"] == 1500
    assert set(audit.loc[audit["well"].isin(missing["well"]), "reason"]) == {"missing"}


# --------------------------------------------------------------------------- QuantStudio / CFX groups


def test_quantstudio_cut_off_names_the_group_and_its_wells(tmp_path, public_data):
    lines = load_text(public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv").lines
    registry.read_export(public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv")  # complete: reads
    start = next(i for i, line in enumerate(lines) if line.startswith("Well,"))
    table = registry.read_export(public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv")
    last = table.iloc[-1]
    group = table[(table["sample"] == last["sample"]) & (table["assay"] == last["assay"])]
    assert len(group) >= 2 and group["cq"].nunique() > 1
    cut = lines[: start + 1 + len(table) - 1]  # the last well line is gone
    path = write(tmp_path / "cut.csv", cut)
    with pytest.raises(InputError) as err:
        registry.read_export(path, plate="QS1")
    assert (
        f"plate QS1: 1 replicate group(s) lack wells: sample '{last['sample']}', assay '{last['assay']}'"
        in err.value.problem
    )
    kept = ", ".join(group["well"].iloc[:-1])
    assert (
        f"the {len(group) - 1} well(s) listed ({kept}) average {group['cq'].iloc[:-1].mean():.3f}"
        in err.value.problem
    )
    samples, assays = sheets_for(table)
    wells = read_plate(str(path), "quantstudio", "QS1", "B1", samples, assays, on_incomplete="flag")
    flagged = wells[wells["instrument_flags"].str.contains("incomplete_group")]
    assert flagged["well"].tolist() == group["well"].iloc[:-1].tolist()


def test_cfx_missing_replicate_is_refused(tmp_path, public_data):
    lines = load_text(public_data / "htqpcr" / "CFX_sample.txt").lines
    table = registry.read_export(public_data / "htqpcr" / "CFX_sample.txt")
    k01 = table[table["well"] == "K01"].iloc[0]
    assert (k01["sample"], k01["assay"], k01["cq"], k01["line"]) == (
        "1-Ce1",
        "GLP1",
        29.05,
        230,
    )
    del lines[229]  # K01 (29.05); its replicate K02 is 28.57, Cq Mean 28.81
    with pytest.raises(
        InputError,
        match=r"the export's Cq Mean is 28.81 but the 1 well\(s\) listed \(K02\) average 28.570",
    ):
        registry.read_export(write(tmp_path / "cfx.txt", lines, "\n"))


# --------------------------------------------------------------------------- no usable Cq


def test_rdml_with_every_cq_empty_is_refused(tmp_path):
    reacts = "".join(
        f'<react id="{i}"><sample id="S"/><data><tar id="GAPDH"/></data></react>' for i in (1, 2, 3)
    )
    path = tmp_path / "empty.rdml"
    path.write_text(
        '<?xml version="1.0"?><rdml xmlns="http://www.rdml.org" version="1.2">'
        '<sample id="S"><type>unkn</type></sample>'
        f'<experiment id="E"><run id="R">{reacts}</run></experiment></rdml>'
    )
    with pytest.raises(
        InputError,
        match=r"plate R1: none of the 3 wells has a Cq value \(every cq cell is empty\)",
    ):
        registry.read_export(path, plate="R1")


def test_all_999_chip_is_a_result_not_an_error(tmp_path, cheese):
    rows = [",".join(f if i != 6 else "999" for i, f in enumerate(line.split(","))) for line in cheese[12:]]
    wells = registry.read_export(write(tmp_path / "noamp.csv", cheese[:12] + rows))
    assert len(wells) == 4608 and wells["cq"].isna().all()


# --------------------------------------------------------------------------- oversized / wrong kind


def test_oversized_raw_curve_file_refused_before_loading(tmp_path, monkeypatch):
    lines = ["Well,Well Position,Cycle,Target Name,Rn,Delta Rn"] + [
        f"{w},A{w},{c},GAPDH,{0.1 * c:.3f},{0.09 * c:.3f}" for w in range(1, 97) for c in range(1, 41)
    ]
    path = write(tmp_path / "amplification.csv", lines)
    assert path.stat().st_size > 100_000

    def no_loading(*args, **kwargs):
        raise AssertionError("the file was loaded")

    monkeypatch.setattr(registry, "load_text", no_loading)
    monkeypatch.setattr(registry, "MAX_EXPORT_BYTES", 100_000)
    with pytest.raises(InputError) as err:
        registry.read_export(path, fmt="quantstudio")
    assert err.value.problem.startswith(
        f"the file is {path.stat().st_size / 1e6:.1f} MB, more than the 0.1 MB"
    )
    assert "raw fluorescence curves (one row per well and cycle: delta rn, cycle)" in err.value.problem
    with pytest.raises(InputError, match="raw fluorescence curves"):
        registry.read_export(path)  # auto-detection would load it: refused first


def test_size_limit_default_covers_real_exports_with_margin(public_data):
    largest = max(
        p.stat().st_size for p in public_data.rglob("*") if p.is_file() and p.suffix in {".csv", ".txt"}
    )
    assert largest * 4 < registry.MAX_EXPORT_BYTES


# --------------------------------------------------------------------------- NTC


def _plate_wells() -> pd.DataFrame:
    rows = []
    for assay, sample_cq, ntc_cq in (
        ("A1", [25.0, 25.4, 24.6], 27.0),
        ("A2", [22.0, 23.0], 33.0),
        ("A3", [30.0], math.nan),
        ("A4", [30.0], 38.0),
    ):
        for i, cq in enumerate(sample_cq):
            rows.append(("P1", f"{assay}s{i}", "S1", assay, cq, "CALC", ""))
        rows.append(
            (
                "P1",
                f"{assay}n",
                "NTC1",
                assay,
                ntc_cq,
                "CALC" if ntc_cq == ntc_cq else "NOAMP",
                "",
            )
        )
    rows.append(("P2", "x", "S1", "A1", 25.0, "CALC", ""))
    rows.append(("P2", "y", "water", "A1", 20.0, "EXPFAIL", "NTC"))
    wells = pd.DataFrame(rows, columns=["plate", "well", "sample", "assay", "cq", "state", "sample_type"])
    return wells.assign(batch="B1", excluded="")


def test_ntc_flags_per_plate_and_assay():
    samples = pd.DataFrame({"sample": ["S1", "NTC1"], "kind": ["patient", "ntc"]})
    table = ntc_table(_plate_wells(), samples, {"B1": 35.0}, 3.32)
    got = table.set_index(["plate", "assay"])
    assert got.loc[("P1", "A1"), "flag"] == "ntc_close_to_samples"  # 27.0 - median 25.0 = 2.0 < 3.32
    assert got.loc[("P1", "A1"), "delta_cq"] == pytest.approx(2.0)
    assert got.loc[("P1", "A2"), "flag"] == "ntc_amplified"  # 33.0 - 22.5 = 10.5
    assert got.loc[("P1", "A2"), "samples_median_cq"] == pytest.approx(22.5)
    assert got.loc[("P1", "A3"), "flag"] == "ok" and got.loc[("P1", "A4"), "flag"] == "ok"  # none; 38 > 35
    assert set(got.loc["P1", "plate_flag"]) == {"ntc_close_to_samples"}
    assert got.loc[("P2", "A1"), "flag"] == "ok" and got.loc[("P2", "A1"), "ntc_wells"] == 1  # EXPFAIL curve
    assert list(table.columns[:4]) == ["batch", "plate", "assay", "ntc_wells"]
    stricter = ntc_table(_plate_wells(), samples, {"B1": 30.0}, 3.32).set_index(["plate", "assay"])
    assert stricter.loc[("P1", "A2"), "flag"] == "ok"


# --------------------------------------------------------------------------- a full chip (issue 17)


def test_biomark_chip_reads_every_chamber_as_pandas_does(tmp_path, v2_lines):
    """A 9,216-chamber chip read with all checks gives pandas' rows, in order (its speed against
    pandas read_csv, target ≤ 3 ×, is timed by benchmarks/bench_read_exports.py)."""
    path = write(tmp_path / "chip.csv", chip_9696(v2_lines))
    plain = pd.read_csv(path, skiprows=8, header=0)
    ours = registry.read_export(path, fmt="biomark")  # as plates.tsv gives it
    assert len(ours) == len(plain) == 9216
    assert list(ours["well"]) == list(plain["ID"])


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_unquoted_body_read_by_arrow_as_pandas_reads_it(sep):
    """arrow_csv.unquoted_cells (Arrow's CSV reader) gives pandas' C parser's text cells."""
    import io

    from ctc_qpcr.parsers.arrow_csv import unquoted_cells

    rows = [
        ["S01-A01", "gDNA 10", "", "31.9", "µ-ß Ünïcode", "1e-3"],
        ["S01-A02", " padded ", "x", "999", "#not a comment", "nan"],
        ["S01-A03", "", "", "", "", ""],
        ["S01-A04", "NA", "N/A", "-", "=1+2", "0,5" if sep != "," else "0.5"],
    ]
    raw = "".join(sep.join(r) + "\n" for r in rows).encode("utf-8")
    for usecols in (None, [0, 3, 5]):
        ours = unquoted_cells(raw, sep, 6, usecols)
        theirs = pd.read_csv(
            io.BytesIO(raw), sep=sep, header=None, names=list(range(6)), usecols=usecols,
            dtype=object, na_filter=False, engine="c",
        )  # fmt: skip
        assert ours is not None and ours.columns.tolist() == theirs.columns.tolist()
        assert ours.to_numpy().tolist() == theirs.to_numpy().tolist()
    assert unquoted_cells(b'a,"b,c"\n', ",", 2, None) is None  # quoted: pandas reads it
    assert unquoted_cells(b"a,b\xff\n", ",", 2, None) is None  # not UTF-8
    assert unquoted_cells(b"a,b\nc\n", ",", 2, None) is None  # a short row


def test_chamber_ids_of_one_layout_read_as_the_digit_runs():
    """biomark._fixed_width_inlets reads what _integers reads; None for ids of other layouts."""
    ids = np.array([f"S{s:02d}-A{a:03d}" for s in (1, 7, 48) for a in (1, 12, 192)], dtype=object)
    s, a, ws, wa = biomark._fixed_width_inlets(ids)
    numbers, widths = biomark._integers("\x00".join(ids))
    assert s.tolist() == numbers[0::2].tolist() and a.tolist() == numbers[1::2].tolist()
    assert (ws, wa) == (2, 3) == tuple(widths[:2])
    for other in (
        ["S1-A1", "S10-A1"],
        ["S01-B01"],
        ["S0x-A01"],
        ["Sé1-A01"],
        ["S01-A01", "S01-A01 "],
        [np.nan],
    ):
        assert biomark._fixed_width_inlets(np.array(other, dtype=object)) is None


def test_arrow_body_cells_share_one_object_per_distinct_text():
    """As pandas' C parser: a repeated text is one Python object (memory, hashing once)."""
    from ctc_qpcr.parsers.arrow_csv import unquoted_cells

    raw = "".join(f"S01-A{i:02d},gDNA_10,{i % 3}\n" for i in range(1, 61)).encode()
    cells = unquoted_cells(raw, ",", 3, None)
    assert len({id(v) for v in cells[1]}) == 1 and len({id(v) for v in cells[2]}) == 3
    assert len({id(v) for v in cells[0]}) == 60 and cells[2].tolist()[:4] == ["1", "2", "0", "1"]
