"""Instrument export readers, part B: ABI SDS 2.x / TLDA, Roche LC480, RDML.

Well counts and Cq values are pinned against the real public files (checked by
hand in the files); the malicious and broken inputs are small hand-made
fixtures in ``tests/data/parsers_b/`` or are built in ``tmp_path``.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc_qpcr.errors import InputError
from ctc_qpcr.parsers import lc480, rdml, sds
from ctc_qpcr.parsers.text import load_text
from ctc_qpcr.parsers.toolkit import NO_VALUE_TOKENS, WELL_COLUMNS, parse_cq_column

FIXTURES = Path(__file__).parent / "data" / "parsers_b"


class _Row(dict):
    """A row whose fields read as attributes (``row.sample``, not the Series method)."""

    __getattr__ = dict.__getitem__


def _one(frame: pd.DataFrame, **where: str) -> _Row:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    rows = frame[mask]
    assert len(rows) == 1, f"{where}: {len(rows)} rows"
    return _Row(rows.iloc[0].to_dict())


def _check_contract(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(WELL_COLUMNS)
    assert frame["well"].is_unique
    for column in ("run", "well", "sample", "assay", "cq_raw", "call", "sample_type", "instrument_flags"):
        assert all(isinstance(v, str) for v in frame[column]), column
    for column in ("cq", "quality", "quality_threshold", "quantity"):
        assert frame[column].dtype == float, column
    assert frame["line"].dtype.kind == "i"
    assert frame["quality"].isna().all() and frame["quality_threshold"].isna().all()
    assert (frame["call"] == "").all()


# --------------------------------------------------------------------------- SDS


def test_sds_23_rq_results(public_data):
    path = public_data / "htqpcr" / "SDS_sample.txt"
    assert sds.sniff(load_text(path))
    wells = sds.read(path)
    _check_contract(wells)
    assert len(wells) == 384
    a1 = _one(wells, well="A1")
    assert (a1.sample, a1.assay, a1.cq, a1.sample_type, a1.line) == (
        "Sample01",
        "Gene1",
        11.463166,
        "Endogenous Control",
        18,
    )
    assert a1.run == "Control"
    a9 = _one(wells, well="A9")
    assert math.isnan(a9.cq) and a9.cq_raw == "Undetermined" and a9.instrument_flags == "flagged"
    assert _one(wells, well="P24").cq == 29.962372
    assert wells["cq"].isna().sum() == 31
    assert (wells["instrument_flags"] == "flagged").sum() == 65


def test_sds_21_stops_before_summary_block(public_data):
    path = public_data / "readqpcr_normqpcr" / "example.txt"
    wells = sds.read(path)
    _check_contract(wells)
    assert len(wells) == 768  # 2 TLDA cards x 384; the "Summary Data" block from line 783 is not wells
    assert wells["line"].max() == 781
    assert sorted(wells["run"].unique()) == ["john dawes card 1", "john dawes card 2"]
    first = _one(wells, well="john dawes card 1:1")
    assert (first.sample, first.assay, first.cq, first.line) == ("fp1 day3 v", "Il12a-Rn00584538_m1", 1.0, 14)
    last = _one(wells, well="john dawes card 2:384")
    assert (last.sample, last.assay, last.cq) == ("fp 8 day 3 mia", "Cx3cl1-Rn00593186_m1", 30.70357)
    assert (wells["cq_raw"] == "Undetermined").sum() == wells["cq"].isna().sum() == 99


def test_sds_21_tech_reps(public_data):
    wells = sds.read(public_data / "readqpcr_normqpcr" / "exampleTechReps.txt")
    _check_contract(wells)
    assert len(wells) == 2280  # 6 cards x 380 wells
    assert wells["run"].nunique() == 6
    first = _one(wells, well="Immune profile card 1 bact:1")
    assert (first.sample, first.assay, first.cq) == ("Human UVB2", "IL-1a-Hs00174092_m1", 31.773615)
    assert _one(wells, well="Immune profile card 6 bact:382").cq == 27.788082
    assert (wells["instrument_flags"] == "outlier").sum() == 10


@pytest.mark.parametrize(
    "name, n_missing, well, cq",
    [
        ("sample1.txt", 31, "P24", 29.962372),
        ("sample2.txt", 72, "A2", 34.9502),
        ("sample3.txt", 24, "A1", 10.616297),
        ("sample4.txt", 45, "A2", 33.769184),
        ("sample5.txt", 49, "A1", 10.464284),
        ("sample6.txt", 48, "A2", 30.25876),
    ],
)
def test_sds_headerless_tlda_cards(public_data, name, n_missing, well, cq):
    path = public_data / "htqpcr" / name
    assert sds.sniff(load_text(path))
    wells = sds.read(path)
    _check_contract(wells)
    assert len(wells) == 384
    assert wells["cq"].isna().sum() == n_missing
    assert _one(wells, well=well).cq == cq
    assert wells["line"].tolist() == list(range(1, 385))
    assert set(wells["sample_type"]) == {"Target", "Endogenous Control"}


@pytest.mark.parametrize(
    "relative",
    [
        "readqpcr_normqpcr/qPCR.example.txt",
        "readqpcr_normqpcr/LC480_Example.txt",
        "readqpcr_normqpcr/LC480_Example_SampleInfo.txt",
        "htqpcr/CFX_sample.txt",
        "htqpcr/BioMark_sample.csv",
        "htqpcr/LightCycler_sample.txt",
        "htqpcr/OpenArray_sample.csv",
        "htqpcr/files.txt",
        "autoqpcr/2019-09-10_120614_exp1.csv",
    ],
)
def test_sds_and_lc480_sniff_reject_other_tables(public_data, relative):
    text = load_text(public_data / relative)
    assert not sds.sniff(text)
    if relative != "htqpcr/LightCycler_sample.txt":
        assert not lc480.sniff(text)


def _write_tlda(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "card.txt"
    path.write_bytes("\r".join(rows).encode())
    return path


def test_sds_bad_cq_names_line_and_column(tmp_path):
    rows = [
        "1\tControl\tA1\tPassed\tS1\tGAPDH\tTarget\t21.5",
        "2\tControl\tA2\tPassed\tS1\tACTB\tTarget\tfailed?",
    ]
    with pytest.raises(InputError) as caught:
        sds.read(_write_tlda(tmp_path, rows))
    assert caught.value.line == 2 and caught.value.column == "Ct" and "failed?" in str(caught.value)


def test_sds_no_value_tokens(tmp_path):
    tokens = ["Undetermined", "No Ct", "N/A", "NaN", "-", "", "999"]
    rows = [f"{i + 1}\tP\tA{i + 1}\tPassed\tS1\tG{i}\tTarget\t{t}" for i, t in enumerate(tokens)]
    wells = sds.read(_write_tlda(tmp_path, rows))
    assert wells["cq"].isna().all()
    assert wells["cq_raw"].tolist() == tokens


def test_sds_duplicate_well(tmp_path):
    rows = [
        "1\tControl\tA1\tPassed\tS1\tGAPDH\tTarget\t21.5",
        "2\tControl\tA1\tPassed\tS1\tACTB\tTarget\t22.5",
    ]
    with pytest.raises(InputError, match="occurs twice") as caught:
        sds.read(_write_tlda(tmp_path, rows))
    assert caught.value.line == 2


def test_sds_wells_after_blank_line_are_not_dropped(tmp_path):
    rows = [
        "1\tControl\tA1\tPassed\tS1\tGAPDH\tTarget\t21.5",
        "",
        "2\tControl\tA2\tPassed\tS1\tACTB\tTarget\t22.5",
    ]
    with pytest.raises(InputError, match="blank line") as caught:
        sds.read(_write_tlda(tmp_path, rows))
    assert caught.value.line == 3


def test_sds_empty_sample_and_omit(tmp_path):
    header = "\t".join(["Well", "Sample", "Detector", "Task", "Ct", "Omit"])
    path = tmp_path / "rq.txt"
    path.write_text(
        f"SDS 2.3 RQ Results\t1.2\n\n{header}\n1\t\tGAPDH\tTarget\t20.1\tTRUE\n2\tS2\t\tNTC\t\tFALSE\n"
    )
    wells = sds.read(path)
    assert wells["sample"].tolist() == ["", "S2"] and wells["assay"].tolist() == ["GAPDH", ""]
    assert wells["instrument_flags"].tolist() == ["omitted", ""]
    assert wells["line"].tolist() == [4, 5]
    assert wells["run"].tolist() == ["", ""]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-50, max_value=60, allow_nan=False) | st.sampled_from(sorted(NO_VALUE_TOKENS)),
        min_size=1,
        max_size=20,
    )
)
def test_parse_cq_column_numbers_and_tokens(cells):
    raw = pd.Series([c if isinstance(c, str) else repr(c) for c in cells])
    parsed = parse_cq_column(raw, "x.txt", None, "Ct")
    for cell, value in zip(cells, parsed, strict=True):
        if isinstance(cell, str) or cell == 999.0:
            assert math.isnan(value)
        else:
            assert value == cell


# --------------------------------------------------------------------------- LC480


def test_lc480_abs_quant(public_data):
    path = public_data / "htqpcr" / "LightCycler_sample.txt"
    assert lc480.sniff(load_text(path))
    wells = lc480.read(path)
    _check_contract(wells)
    assert len(wells) == 384
    assert (wells["run"] == "Demo Abs Quant with SYBR Green I_training").all()
    assert (wells["assay"] == "").all()
    a1 = _one(wells, well="A1")
    assert (a1.sample, a1.cq, a1.line) == ("Sample 1", 16.13, 3)
    empty = _one(wells, well="A2")
    assert math.isnan(empty.cq) and empty.cq_raw == ""
    f9 = _one(wells, well="F9")
    assert (f9.sample, f9.cq, f9.quantity, f9.sample_type) == ("Standard 1", 12.64, 1e6, "Standard")
    assert _one(wells, well="P11").cq == 35.17
    assert wells["cq"].notna().sum() == 77
    assert wells["quantity"].notna().sum() == 35  # 7 standards x 5


def test_lc480_include_false_and_assay_argument():
    wells = lc480.read(FIXTURES / "lc480_mini.txt", assay="GAPDH")
    assert wells["well"].tolist() == ["A1", "A2", "A3", "A4"]
    assert wells["instrument_flags"].tolist() == ["", "excluded", "", ""]
    assert (wells["assay"] == "GAPDH").all()
    assert wells["run"].iloc[0] == "Mini run"
    assert _one(wells, well="A3").quantity == 1000.0
    assert _one(wells, well="A4").sample == ""


def test_lc480_bad_cp(tmp_path):
    path = tmp_path / "lc.txt"
    path.write_text(
        "Experiment: X\nInclude\tColor\tPos\tName\tCp\nTrue\t1\tA1\ts\t16.1\nTrue\t1\tA2\ts\t>40\n"
    )
    with pytest.raises(InputError) as caught:
        lc480.read(path)
    assert caught.value.line == 4 and caught.value.column == "Cp"


# --------------------------------------------------------------------------- RDML


@pytest.mark.parametrize(
    "relative, n_rows, n_runs",
    [
        ("rdml_rpkg/BioRad_384.rdml", 48, 1),
        ("rdml_rpkg/BioRad_qPCR_melt.rdml", 60, 2),
        ("rdml_rpkg/lc96_bACTXY.rdml", 384, 1),
        ("rdml_rpkg/stepone_std.rdml", 24, 1),
        ("rdml_tools/absolute.rdml", 96, 1),
        ("rdml_tools/genorm.rdml", 90, 1),
        ("rdml_tools/relative.rdml", 210, 1),
        ("rdml_tools/sample.rdml", 90, 1),
        ("rdml_tools/six_plate_correction.rdml", 245, 6),
        ("rdml_tools/two_plate_correction.rdml", 576, 2),
    ],
)
def test_rdml_counts(public_data, relative, n_rows, n_runs):
    path = public_data / relative
    assert rdml.sniff_path(path)
    wells = rdml.read(path)
    _check_contract(wells)
    assert len(wells) == n_rows
    assert wells["run"].nunique() == n_runs
    assert (wells["line"] == 0).all()


def test_rdml_values(public_data):
    absolute = rdml.read(public_data / "rdml_tools" / "absolute.rdml")
    a1 = _one(absolute, well="A1")
    assert (a1.run, a1.sample, a1.assay, a1.cq, a1.sample_type) == (
        "Reference Sample/Vermeulen Merge",
        "1826",
        "BIRC5_20080229",
        23.403,
        "Unknown",
    )
    assert _one(absolute, well="A4").cq == 27.635
    standard = absolute[absolute["sample"] == "STD_150000"]
    assert set(standard["quantity"]) == {18750.0} and set(standard["sample_type"]) == {"Standard"}

    stepone = rdml.read(public_data / "rdml_rpkg" / "stepone_std.rdml")  # RDML 1.0, ids already A1
    a4 = _one(stepone, well="A4")
    assert (a4.sample, a4.assay, a4.cq) == ("pop1_RNase P", "RNase P", 28.96287)

    two = rdml.read(public_data / "rdml_tools" / "two_plate_correction.rdml")
    missing = _one(two, well="Plate Correction/Plate 2:A1")
    assert math.isnan(missing.cq) and missing.cq_raw == "-1.0" and missing.assay == "SCX"
    assert _one(two, well="Plate Correction/Plate 1:A1").cq == 30.386
    assert two["cq"].isna().sum() == 22

    lc96 = rdml.read(public_data / "rdml_rpkg" / "lc96_bACTXY.rdml")  # zip with 6 XMLs, multiplex
    d3 = _one(lc96, well="D3-FAM@bACT")
    assert (d3.sample, d3.cq, d3.sample_type) == ("Sample 39", 22.15, "Standard")
    assert _one(lc96, well="D3-Cy5@IPC").cq == 34.25

    melt = rdml.read(public_data / "rdml_rpkg" / "BioRad_qPCR_melt.rdml")
    assert _one(melt, well="All Wells/Amp Step 3_FAM:A1").cq == pytest.approx(27.7514537682101)
    assert melt[melt["run"].str.endswith("Cy5")]["cq"].isna().all()


def _rdml_xml(namespace: str, version: str, react_ids=("1", "13"), cq=("20.5", "-1"), extra: str = "") -> str:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    reacts = "".join(
        f'<react id="{r}"><sample id="S{i}"/><data><tar id="GAPDH"/><cq>{c}</cq></data></react>'
        for i, (r, c) in enumerate(zip(react_ids, cq, strict=True))
    )
    return (
        f'<?xml version="1.0"?><rdml{xmlns} version="{version}">'
        '<sample id="S0"><type>std</type><quantity><value>100</value><unit>cop</unit></quantity></sample>'
        '<sample id="S1"><type>ntc</type></sample>'
        f'<experiment id="E"><run id="R"><pcrFormat><rows>8</rows><columns>12</columns>'
        f"<rowLabel>ABC</rowLabel><columnLabel>123</columnLabel></pcrFormat>{reacts}{extra}</run></experiment></rdml>"
    )


@pytest.mark.parametrize(
    "namespace, version",
    [("http://www.rdml.org", "1.1"), ("http://www.rdml.org/rdml1.0", "1.0"), ("", "1.2")],
)
def test_rdml_namespace_agnostic_plain_xml(tmp_path, namespace, version):
    path = tmp_path / "plate.rdml"
    path.write_text(_rdml_xml(namespace, version))
    assert rdml.sniff_path(path)
    wells = rdml.read(path)
    assert wells["well"].tolist() == ["A1", "B1"]
    assert wells["sample_type"].tolist() == ["Standard", "NTC"]
    assert wells["quantity"].iloc[0] == 100.0 and math.isnan(wells["quantity"].iloc[1])
    assert wells["cq"].iloc[0] == 20.5 and math.isnan(wells["cq"].iloc[1])


def test_rdml_bad_cq_and_duplicate_react(tmp_path):
    path = tmp_path / "bad.rdml"
    path.write_text(_rdml_xml("http://www.rdml.org", "1.1", cq=("20.5", "high")))
    with pytest.raises(InputError, match="'high'"):
        rdml.read(path)
    path.write_text(_rdml_xml("http://www.rdml.org", "1.1", react_ids=("1", "1")))
    with pytest.raises(InputError, match="occurs twice"):
        rdml.read(path)


def test_rdml_refuses_external_entity():
    with pytest.raises(InputError, match="DTD/entities, which is refused for safety"):
        rdml.read(FIXTURES / "xxe.rdml")


def test_rdml_refuses_billion_laughs():
    with pytest.raises(InputError, match="DTD/entities, which is refused for safety"):
        rdml.read(FIXTURES / "billion_laughs.rdml")


def test_rdml_refuses_dtd_inside_zip(tmp_path):
    path = tmp_path / "xxe_zipped.rdml"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rdml_data.xml", (FIXTURES / "xxe.rdml").read_text())
    with pytest.raises(InputError, match="refused for safety"):
        rdml.read(path)


def test_rdml_malformed_xml_reports_line():
    with pytest.raises(InputError) as caught:
        rdml.read(FIXTURES / "malformed.rdml")
    assert caught.value.line == 5
    assert "malformed" in str(caught.value)


def test_rdml_zip_bomb_refused(tmp_path):
    path = tmp_path / "bomb.rdml"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rdml_data.xml", b"<rdml>" + b" " * (8 * 1024 * 1024) + b"</rdml>")
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match="limit"):
        rdml.read(path, max_bytes=1024 * 1024)


def test_rdml_zip_bomb_with_lying_directory(tmp_path, monkeypatch):
    """The size is counted while reading, not only taken from the zip directory."""
    path = tmp_path / "liar.rdml"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rdml_data.xml", b"<rdml>" + b" " * (4 * 1024 * 1024) + b"</rdml>")
    real_infolist = zipfile.ZipFile.infolist

    def lying_infolist(self):
        infos = real_infolist(self)
        for info in infos:
            info.file_size = 10  # what a forged central directory would claim
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying_infolist)
    # Python's zipfile itself stops at the declared size (then fails the CRC check) ...
    with pytest.raises(InputError, match="cannot be read"):
        rdml.read(path, max_bytes=1024 * 1024)

    # ... and if a member stream ever yields more than declared, the count while reading stops it.
    def endless_open(self, info, *args, **kwargs):
        return io.BytesIO(b" " * (2 * 1024 * 1024))

    monkeypatch.setattr(zipfile.ZipFile, "open", endless_open)
    with pytest.raises(InputError, match="unpacks to more than"):
        rdml.read(path, max_bytes=1024 * 1024)


def test_rdml_zip_too_many_members(tmp_path):
    path = tmp_path / "many.rdml"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rdml_data.xml", _rdml_xml("http://www.rdml.org", "1.1"))
        for i in range(5):
            archive.writestr(f"junk{i}.txt", "x")
    with pytest.raises(InputError, match="members"):
        rdml.read(path, max_members=3)
    assert len(rdml.read(path)) == 2


def test_rdml_zip_path_traversal(tmp_path):
    path = tmp_path / "evil.rdml"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rdml_data.xml", _rdml_xml("http://www.rdml.org", "1.1"))
        archive.writestr("../../etc/evil.xml", "<x/>")
    with pytest.raises(InputError, match="unsafe path"):
        rdml.read(path)


def test_rdml_sniff_rejects_other_files(public_data, tmp_path):
    assert not rdml.sniff_path(public_data / "htqpcr" / "SDS_sample.txt")
    assert not rdml.sniff_path(public_data / "rdml_rpkg" / "BioRad.xlsx")
    assert not rdml.sniff_path(tmp_path / "missing.rdml")
