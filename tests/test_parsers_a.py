"""Instrument export readers, part A: BioMark, QuantStudio, CFX, plain tables, registry.

Real exports come from ``../shared/data/public`` (skipped when absent); the
pinned Cq values were checked by hand against the files (line numbers as a text
editor shows them). Variants (European semicolon/decimal comma, cut-off files,
duplicate wells ...) are written to ``tmp_path`` by converting slices of the
real files or from a few hand-made lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc_qpcr.errors import InputError
from ctc_qpcr.parsers import biomark, cfx, quantstudio, registry, toolkit
from ctc_qpcr.parsers.text import load_text
from ctc_qpcr.parsers.toolkit import to_numbers

WELLS = ["plate", *toolkit.WELL_COLUMNS]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def row(df: pd.DataFrame, line: int) -> SimpleNamespace:
    """The one well read from ``line``, with its columns as attributes."""
    hits = df[df["line"] == line]
    assert len(hits) == 1, f"expected one row on line {line}"
    return SimpleNamespace(**hits.iloc[0].to_dict())


# ---------------------------------------------------------------------------
# BioMark
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cheese_lines(public_data) -> list[str]:
    return load_text(public_data / "biomark_biologger" / "CheeseSamples_validation_rawdata.csv").lines


def test_biomark_v2_htqpcr_sample(public_data):
    df = registry.read_export(public_data / "htqpcr" / "BioMark_sample.csv", plate="BM1")
    assert list(df.columns) == WELLS
    assert len(df) == 2304 and df["well"].is_unique and set(df["run"]) == {""}
    first = row(df, 13)
    assert (first.well, first.sample, first.assay, first.call) == ("S48-A01", "no preamp", "b actin", "Pass")
    assert first.cq == pytest.approx(34.6154024701642) and first.quality == pytest.approx(0.85)
    assert first.quantity == pytest.approx(0.05) and first.sample_type == "Unknown"
    failed = row(df, 14)
    assert math.isnan(failed.cq) and failed.cq_raw == "999" and failed.call == "Fail"
    last = row(df, 2316)
    assert (last.well, last.sample, last.assay) == ("S22-A48", "", "SDHA")
    assert last.cq == pytest.approx(21.6047140982225)
    assert (df["quality_threshold"] == 0.65).all() and (df["plate"] == "BM1").all()
    assert df["line"].tolist() == list(range(13, 2317))


def test_biomark_v4_cheese_with_melt_columns(public_data):
    df = registry.read_export(public_data / "biomark_biologger" / "CheeseSamples_validation_rawdata.csv")
    assert len(df) == 4608 and df["well"].is_unique
    assert list(df.columns) == WELLS + ["tm", "tm_out", "peak_ratio", "calibrated_rconc"]
    std = row(df, 13)
    assert (std.well, std.sample, std.sample_type, std.assay) == (
        "S001-A13",
        "Std_24 10^7",
        "Standard",
        "Lbbrevi_g2037-3",
    )
    assert std.cq == pytest.approx(10.5279011719756) and std.quantity == 1e7
    assert std.calibrated_rconc == pytest.approx(10945006.1007868)
    assert std.tm == pytest.approx(81.7792369268354) and math.isnan(std.tm_out) and std.peak_ratio == 1
    ntc = row(df, 4620)
    assert (ntc.well, ntc.sample_type, ntc.call) == ("S192-A02", "NTC", "Flag")
    assert math.isnan(ntc.cq) and math.isnan(ntc.tm) and math.isnan(ntc.calibrated_rconc)
    assert (df["quality_threshold"] == 0.5).all()
    assert set(df["call"]) == {"Pass", "Flag"}


def test_biomark_combined_chip_run_sets_run_per_chip(public_data):
    df = registry.read_export(public_data / "biomark_biologger" / "Assayvalidation_triplicates_rawdata.csv")
    assert len(df) == 18432 and df["well"].is_unique
    assert df["run"].value_counts().to_dict() == {"chip1": 4608, "chip2": 4608, "chip3": 4608, "chip4": 4608}
    assert row(df, 13).run == "chip1"
    second = row(df, 4621)
    assert (second.run, second.well, second.assay) == ("chip2", "S001-A37", "Lbparac_mutS2")
    std = row(df, 7283)
    assert (std.run, std.well) == ("chip2", "S143-A27") and std.cq == pytest.approx(9.89341686137316)
    assert row(df, 16716).run == "chip4"


def test_biomark_repeated_chamber_ids_get_chip_prefix(tmp_path, cheese_lines):
    head = cheese_lines[:12]
    head[0] = head[0].replace("1691204034", "Combined Chip Run")
    body = cheese_lines[12:15]
    path = write(tmp_path / "combined.csv", "\r\n".join(head + body + body) + "\r\n")
    with pytest.raises(InputError, match=r"the 192.24 chip has 9216; 9210 missing: chip1:S001-A01"):
        registry.read_export(path)
    df = registry.read_export(path, on_incomplete="flag")
    assert len(df.attrs["missing_wells"]) == 2 * (4608 - 3) and "chip2:S192-A24" in df.attrs["missing_wells"]
    assert df["run"].tolist() == ["chip1"] * 3 + ["chip2"] * 3
    assert df["well"].tolist()[::3] == ["chip1:S001-A13", "chip2:S001-A13"]
    assert df["line"].tolist() == [13, 14, 15, 16, 17, 18]


def _european(lines: list[str]) -> str:
    """Semicolon-separated, decimal-comma version of BioMark lines (as European Windows writes them)."""
    out = []
    for line in lines:
        fields = line.split(",")
        out.append(";".join(f.replace(".", ",") if _is_decimal(f) else f for f in fields))
    return "\r\n".join(out) + "\r\n"


def _is_decimal(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return "." in field


def test_biomark_semicolon_decimal_comma_matches_original(tmp_path, cheese_lines):
    lines = cheese_lines[:12] + cheese_lines[12:60]
    original = biomark.read(write(tmp_path / "point.csv", "\r\n".join(lines) + "\r\n"))
    european = write(tmp_path / "comma.csv", _european(lines))
    assert "0,5" in european.read_text() and ";" in european.read_text()
    assert registry.detect_format(european) == "biomark"
    df = biomark.read(european)
    numeric = [
        "cq",
        "quality",
        "quality_threshold",
        "quantity",
        "tm",
        "tm_out",
        "peak_ratio",
        "calibrated_rconc",
    ]
    pd.testing.assert_frame_equal(df[numeric], original[numeric])
    assert df["well"].tolist() == original["well"].tolist()


def test_biomark_columns_mapped_by_stacked_header_not_position(tmp_path, cheese_lines):
    header, body = cheese_lines[9:12], cheese_lines[12:20]
    order = [0, 1, 2, 3, 4, 5, 9, 8, 6, 7, 10, 13, 12, 11]  # Call and Quality before Value, Tm block reversed
    shuffle = lambda line: ",".join(line.split(",")[i] for i in order)  # noqa: E731
    path = write(
        tmp_path / "shuffled.csv", "\n".join(cheese_lines[:9] + [shuffle(l) for l in header + body]) + "\n"
    )
    plain = write(tmp_path / "plain.csv", "\n".join(cheese_lines[:20]) + "\n")
    pd.testing.assert_frame_equal(biomark.read(path), biomark.read(plain))


def test_biomark_cut_off_export_names_last_line(tmp_path, cheese_lines):
    lines = cheese_lines[:30]
    lines[-1] = lines[-1][:40]  # the export stopped in the middle of the last row
    path = write(tmp_path / "cut.csv", "\n".join(lines))
    with pytest.raises(InputError) as err:
        registry.read_export(path)
    assert err.value.line == 30
    assert "re-export" in err.value.hint and "cut off" in err.value.problem
    assert str(path) in str(err.value)


def test_biomark_mixed_decimal_marks_names_first_offending_line(tmp_path, cheese_lines):
    text = _european(cheese_lines[:20]).splitlines()
    text[16] = text[16].replace("0,92", "0.92").replace("0,89", "0.89").replace("0,93", "0.93")
    cells = text[16].split(";")
    cells[8] = "0.91"  # Quality written with a decimal point on line 17
    text[16] = ";".join(cells)
    path = write(tmp_path / "mixed.csv", "\n".join(text))
    with pytest.raises(InputError) as err:
        biomark.read(path)
    assert err.value.line == 17 and err.value.column == "Quality"
    assert "decimal point" in err.value.problem and "line 13" in err.value.problem


def test_biomark_without_table_header_and_heatmap_export(tmp_path, cheese_lines):
    no_header = write(tmp_path / "noheader.csv", "\n".join(cheese_lines[:9] + cheese_lines[12:20]))
    with pytest.raises(InputError, match="no BioMark column header"):
        biomark.read(no_header)
    heatmap = write(
        tmp_path / "heatmap.csv", "\n".join(cheese_lines[:20]).replace("Table Results", "Heatmap Results")
    )
    with pytest.raises(InputError, match="Heatmap Results") as err:
        biomark.read(heatmap)
    assert err.value.line == 4


def test_biomark_missing_ct_value_column(tmp_path, cheese_lines):
    lines = list(cheese_lines[:20])
    lines[11] = lines[11].replace(",Value,", ",Valeur,")
    with pytest.raises(InputError) as err:
        biomark.read(write(tmp_path / "novalue.csv", "\n".join(lines)))
    assert err.value.line == 12 and "Ct/Value" in err.value.problem


def test_biomark_96_96_chip_parses_whole(tmp_path, cheese_lines):
    """A 96.96 chip has 9,216 chambers, one row each (its speed is timed by
    benchmarks/bench_read_exports.py)."""
    rows = cheese_lines[12:]
    body = []
    for s in range(1, 97):
        for a in range(1, 97):
            fields = rows[(s * 96 + a) % len(rows)].split(",")
            fields[0] = f"S{s:02d}-A{a:02d}"
            body.append(",".join(fields))
    path = write(tmp_path / "chip9696.csv", "\r\n".join(cheese_lines[:12] + body) + "\r\n")
    df = biomark.read(path)
    assert len(df) == 9216 and df["well"].is_unique


# ---------------------------------------------------------------------------
# QuantStudio
# ---------------------------------------------------------------------------


def test_quantstudio_comparative_ct_exp1(public_data):
    path = public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv"
    assert registry.detect_format(path) == "quantstudio"
    df = registry.read_export(path)
    assert len(df) == 192 and df["well"].is_unique and df["line"].max() == 239
    first = row(df, 48)
    assert (first.well, first.sample, first.assay, first.sample_type) == (
        "A1",
        "AiW002-2-D0",
        "FMR1",
        "Unknown",
    )
    assert first.cq == pytest.approx(25.934) and first.instrument_flags == ""
    undetermined = row(df, 99)
    assert undetermined.well == "E4" and undetermined.cq_raw == "Undetermined" and math.isnan(undetermined.cq)
    assert undetermined.instrument_flags == "CQCONF;EXPFAIL"
    assert row(df, 239).cq == pytest.approx(29.302)
    assert df["cq"].isna().sum() == 20


def test_quantstudio_standard_curve_and_relative(public_data):
    std = registry.read_export(public_data / "autoqpcr" / "2019-04-25_135946-ACTB.csv")
    assert len(std) == 96
    d11 = row(std, 94)
    assert (d11.well, d11.sample, d11.sample_type) == ("D11", "", "Standard")
    assert d11.cq == pytest.approx(23.314) and d11.quantity == pytest.approx(0.781)
    assert row(std, 143).cq == pytest.approx(33.114)
    rel = registry.read_export(public_data / "autoqpcr" / "2019-09-10_120614exp2-relative.csv")
    assert len(rel) == 288
    assert row(rel, 335).cq == pytest.approx(36.391) and row(rel, 335).instrument_flags == "HIGHSD"
    assert row(rel, 300).cq_raw == "Undetermined" and row(rel, 300).instrument_flags == "CQCONF"


NATIVE_TXT = (
    "* Block Type = 96-Well Block (0.2mL)\n"
    "* Experiment Type = Comparative C\u0442 (\u0394\u0394C\u0442)\n"
    "* Instrument Type = QuantStudio\u2122 7 Flex System\n"
    "\n"
    "[Results]\n"
    "Well\tWell Position\tOmit\tSample Name\tTarget Name\tTask\tReporter\tQuencher\t"
    "C\u0442\tQuantity\tEXPFAIL\tNOAMP\n"
    "1\tA1\tfalse\tpatient 1\tKRT19\tUNKNOWN\tFAM\tNFQ-MGB\t27.10\t\tN\tN\n"
    "2\tA2\ttrue\tpatient 1\tKRT19\tUNKNOWN\tFAM\tNFQ-MGB\t27.40\t\tY\tN\n"
    "3\tA3\tfalse\tNTC\tKRT19\tNTC\tFAM\tNFQ-MGB\tUndetermined\t\tN\tY\n"
    "4\tA4\tfalse\tstd 1\tKRT19\tSTANDARD\tFAM\tNFQ-MGB\t20.5\t1000\tN\tN\n"
    "\n"
    "[Amplification Data]\n"
    "Well\tCycle\tTarget Name\tRn\tDelta Rn\n"
    "1\t1\tKRT19\t0.5\t0.01\n"
)


def test_quantstudio_native_txt_with_sections_omit_and_cyrillic_ct(tmp_path):
    path = write(tmp_path / "qs7.txt", NATIVE_TXT)
    assert registry.detect_format(path) == "quantstudio"
    df = registry.read_export(path)
    assert df["well"].tolist() == ["A1", "A2", "A3", "A4"]
    assert df["line"].tolist() == [7, 8, 9, 10]
    assert df["cq"].tolist()[:2] == [27.10, 27.40] and math.isnan(df["cq"][2])
    assert df["instrument_flags"].tolist() == ["", "EXPFAIL;omit", "NOAMP", ""]
    assert df["sample_type"].tolist() == ["Unknown", "Unknown", "NTC", "Standard"]
    assert df["quantity"][3] == 1000
    assert quantstudio.preamble(load_text(path))["Block Type"] == "96-Well Block (0.2mL)"


def test_quantstudio_multiplex_wells_get_reporter(tmp_path):
    text = (
        "Well,Well Position,Sample Name,Target Name,Reporter,CT\n"
        "1,A1,s1,KRT19,FAM,25.1\n"
        "1,A1,s1,ACTB,VIC,18.2\n"
        "2,A2,s1,KRT19,FAM,25.3\n"
    )
    df = registry.read_export(write(tmp_path / "multiplex.csv", text))
    assert df["well"].tolist() == ["A1-FAM", "A1-VIC", "A2"]


def test_quantstudio_non_numeric_ct_names_line_and_column(tmp_path):
    bad = NATIVE_TXT.replace("\t27.40\t", "\tabc\t")
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "bad.txt", bad))
    assert (err.value.line, err.value.column) == (8, "C\u0442")
    assert "'abc'" in err.value.problem


# ---------------------------------------------------------------------------
# CFX
# ---------------------------------------------------------------------------


def test_cfx_sample(public_data):
    path = public_data / "htqpcr" / "CFX_sample.txt"
    assert registry.detect_format(path) == "cfx"
    df = registry.read_export(path)
    assert len(df) == 330 and df["well"].is_unique
    first = row(df, 2)
    assert (first.well, first.sample, first.assay) == ("A01", "1-SI1", "GLP1")
    assert first.cq == pytest.approx(37.42) and first.quantity == pytest.approx(2.183e-3)
    ntc = row(df, 8)
    assert (
        ntc.well == "A07"
        and ntc.cq_raw == "N/A"
        and math.isnan(ntc.cq)
        and ntc.sample_type == "Negative Control"
    )
    assert row(df, 331).cq == pytest.approx(36.14)
    assert df["cq"].isna().sum() == 10


CFX_TEXT = (
    ",Well,Fluor,Target,Content,Sample,Biological Set Name,Cq,Cq Mean,Starting Quantity (SQ)\n"
    ",A01,FAM,KRT19,Unkn-01,patient 1,,27.51,27.51,NaN\n"
    ",A02,FAM,KRT19,Std-01,std,,20.00,20.00,1.000E+03\n"
    ",A03,FAM,KRT19,NTC,,,NaN,0.00,NaN\n"
    ",A01,HEX,ACTB,Unkn-01,patient 1,,18.20,18.20,NaN\n"
)


def test_cfx_content_types_nan_and_multiplex(tmp_path):
    df = registry.read_export(write(tmp_path / "cfx.csv", CFX_TEXT))
    assert df["sample_type"].tolist() == ["Unknown", "Standard", "NTC", "Unknown"]
    assert df["well"].tolist() == ["A01-FAM", "A02", "A03", "A01-HEX"]
    assert math.isnan(df["cq"][2]) and df["quantity"][1] == 1000


def test_cfx_semicolon_decimal_comma(tmp_path):
    text = (
        CFX_TEXT.replace(",", ";")
        .replace("27;51", "27,51")
        .replace("20;00", "20,00")
        .replace("18;20", "18,20")
    )
    text = text.replace("1;000E+03", "1,000E+03").replace("0;00", "0,00")
    path = write(tmp_path / "cfx_eu.csv", text)
    assert registry.detect_format(path) == "cfx"
    df = cfx.read(path)
    assert df["cq"].tolist()[:2] == [27.51, 20.0] and df["quantity"][1] == 1000


# ---------------------------------------------------------------------------
# Plain tables
# ---------------------------------------------------------------------------


def test_table_readqpcr_whitespace_example(public_data):
    path = public_data / "readqpcr_normqpcr" / "qPCR.example.txt"
    assert registry.detect_format(path) == "table"
    df = registry.read_export(path)
    assert len(df) == 200 and df["well"].is_unique
    first = row(df, 2)
    assert (first.run, first.well, first.sample, first.assay) == ("A", "A:1", "caseA", "gene_dm")
    assert first.cq == pytest.approx(21.0014917960626)
    last = row(df, 201)
    assert (last.well, last.sample, last.assay) == ("D:50", "controlB", "gene_fw")
    assert last.cq == pytest.approx(19.8522036845548)


def test_table_readqpcr_techreps_has_repeated_wells(public_data):
    with pytest.raises(InputError) as err:
        registry.read_export(public_data / "readqpcr_normqpcr" / "qPCR.techReps.txt")
    assert "'A:17'" in err.value.problem and "lines 18 and 50" in err.value.problem


def test_table_easyqpcr_wide_space_separated_with_row_names(public_data):
    df = registry.read_export(public_data / "easyqpcr" / "qPCR_run1.csv")
    assert len(df) == 60 and df["well"].is_unique
    assert df.iloc[0][["sample", "assay", "cq", "line"]].tolist() == ["Control 1", "RG1", 19.62, 2]
    assert df.iloc[-1][["sample", "assay", "cq", "line"]].tolist() == ["Calibrator", "TGb", 17.05, 16]


def test_table_easyqpcr_semicolon_decimal_comma_replicates(public_data):
    df = registry.read_export(public_data / "easyqpcr" / "Gene_maximisation.csv")
    assert len(df) == 576
    replicate = df[(df["line"] == 3) & (df["assay"] == "RG1")].iloc[0]
    assert replicate["sample"] == "Sample 1" and replicate["cq"] == pytest.approx(22.6665111235)
    assert replicate["cq_raw"] == "22,6665111235"
    ntc = df[(df["line"] == 191) & (df["assay"] == "TG")].iloc[0]
    assert ntc["sample"] == "NTC 8"


def test_table_long_csv_with_synonyms_and_no_values(tmp_path):
    text = (
        "Sample Name,Target,Ct,Plate\n"
        "p1,KRT19,27.1,plate A\n"
        "p1,KRT19,No Ct,plate A\n"
        "p2,KRT19,-,plate A\n"
        "p3,KRT19,NA,plate A\n"
        "p4,KRT19,,plate A\n"
        "p5,KRT19,999,plate A\n"
    )
    df = registry.read_export(write(tmp_path / "long.csv", text))
    assert df["well"].tolist() == [f"R{i:06d}" for i in range(1, 7)]
    assert df["run"].unique().tolist() == ["plate A"]
    assert df["cq"][0] == 27.1 and df["cq"][1:].isna().all()
    assert df["line"].tolist() == [2, 3, 4, 5, 6, 7]


def test_table_tsv_utf16_bom(tmp_path):
    text = "well\tsample\tassay\tcq\nA1\tp1\tEPCAM\t30,5\nA2\tp1\tEPCAM\t31,0\n"
    df = registry.read_export(write(tmp_path / "utf16.tsv", "\ufeff" + text, encoding="utf-16-le"))
    assert df["cq"].tolist() == [30.5, 31.0] and df["well"].tolist() == ["A1", "A2"]


def test_table_wrong_delimiter_names_line_1(tmp_path):
    path = write(tmp_path / "pipes.txt", "sample|assay|cq\np1|KRT19|27.1\n")
    with pytest.raises(InputError) as err:
        registry.read_export(path, fmt="table")
    assert err.value.line == 1 and "single column" in err.value.problem and "|" in err.value.problem
    assert "tab-separated" in err.value.hint
    with pytest.raises(InputError, match="not recognised"):
        registry.detect_format(path)


def test_table_without_recognisable_header(tmp_path):
    path = write(tmp_path / "noheader.csv", "p1,KRT19,27.1\np2,KRT19,28.3\n")
    with pytest.raises(InputError) as err:
        registry.read_export(path, fmt="table")
    assert err.value.line == 1 and "no sample/assay/Cq columns" in err.value.problem


def test_duplicate_well_names_both_lines(tmp_path):
    text = "well,sample,assay,cq\nA1,p1,KRT19,27.1\nA2,p1,KRT19,27.3\nA1,p2,KRT19,28.0\n"
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "dup.csv", text), plate="P7")
    assert "'A1'" in err.value.problem and "lines 2 and 4" in err.value.problem and "P7" in err.value.problem
    assert err.value.line == 4 and err.value.column == "well"


def test_non_numeric_cq_names_line_column_and_text(tmp_path):
    text = "well,sample,assay,cq\nA1,p1,KRT19,27.1\nA2,p1,KRT19,abc\n"
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "abc.csv", text))
    assert (err.value.line, err.value.column) == (3, "cq") and "'abc'" in err.value.problem
    wide = "sample;KRT19;EPCAM\np1;27,1;28,5\np2;27,3;2x,5\n"
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "wide.csv", wide))
    assert (err.value.line, err.value.column) == (3, "EPCAM")


def test_table_mixed_decimal_marks(tmp_path):
    text = "sample;assay;cq\np1;KRT19;27,1\np2;KRT19;28,4\np3;KRT19;29.0\n"
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "mixed.csv", text))
    assert err.value.line == 4 and "line 2" in err.value.problem and "decimal point" in err.value.problem


def test_table_short_row(tmp_path):
    text = "well,sample,assay,cq\nA1,p1,KRT19,27.1\nA2,p1\n"
    with pytest.raises(InputError) as err:
        registry.read_export(write(tmp_path / "short.csv", text))
    assert err.value.line == 3 and "2 fields" in err.value.problem


def test_empty_wells_are_kept(tmp_path):
    text = "well,sample,assay,cq\nA1,p1,KRT19,27.1\nA2,,,\nA3,p1,KRT19,27.3\n"
    df = registry.read_export(write(tmp_path / "empty.csv", text))
    assert df["well"].tolist() == ["A1", "A2", "A3"]
    assert df.loc[1, ["sample", "assay", "cq_raw"]].tolist() == ["", "", ""]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_formats_and_unknown_file(tmp_path):
    assert registry.FORMATS == ("biomark", "quantstudio", "cfx", "sds", "lc480", "rdml", "table", "excel")
    path = write(tmp_path / "notes.txt", "just some notes\nnothing tabular here\n")
    with pytest.raises(InputError) as err:
        registry.detect_format(path)
    assert "biomark" in err.value.problem and "plates.tsv" in err.value.hint
    with pytest.raises(InputError, match="unknown export format 'word'"):
        registry.read_export(path, fmt="word")


def test_missing_reader_makes_format_unavailable(tmp_path, monkeypatch):
    real_import = registry.importlib.import_module

    def no_sds(name, *args):
        if name.endswith(".sds"):
            raise ImportError("not written yet")
        return real_import(name, *args)

    monkeypatch.setattr(registry.importlib, "import_module", no_sds)
    assert "sds" not in registry.available_formats() and "biomark" in registry.available_formats()
    path = write(tmp_path / "t.csv", "sample,assay,cq\np1,KRT19,27.1\n")
    assert registry.detect_format(path) == "table"
    with pytest.raises(InputError, match="not available"):
        registry.read_export(path, fmt="sds")


def test_binary_file_is_reported(tmp_path):
    path = tmp_path / "plate.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8)
    assert registry.detect_format(path) == "excel"  # OLE magic and .xls: a workbook, which is damaged
    with pytest.raises(InputError, match="the Excel workbook cannot be opened"):
        registry.read_export(path)
    other = tmp_path / "plate.bin"
    other.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="binary"):
        registry.detect_format(other)


@pytest.mark.parametrize(
    ("relative", "fmt", "count"),
    [
        ("htqpcr/BioMark_sample.csv", "biomark", 2304),
        ("biomark_biologger/CheeseSamples_validation_rawdata.csv", "biomark", 4608),
        ("biomark_biologger/Assayvalidation_triplicates_rawdata.csv", "biomark", 18432),
        ("autoqpcr/2019-09-10_120614_exp1.csv", "quantstudio", 192),
        ("autoqpcr/2019-09-10_120614exp2-relative.csv", "quantstudio", 288),
        ("autoqpcr/2019-04-25_135946-ACTB.csv", "quantstudio", 96),
        ("htqpcr/CFX_sample.txt", "cfx", 330),
        ("readqpcr_normqpcr/qPCR.example.txt", "table", 200),
        ("easyqpcr/qPCR_run1.csv", "table", 60),
        ("easyqpcr/qPCR_run2.csv", "table", 60),
        ("easyqpcr/Efficiency_calculation.csv", "table", 30),
        ("easyqpcr/Gene_maximisation.csv", "table", 576),
    ],
)
def test_detect_and_count_real_exports(public_data, relative, fmt, count):
    path = public_data / relative
    assert registry.detect_format(path) == fmt
    df = registry.read_export(path, plate="X")
    assert len(df) == count and df["well"].is_unique
    assert df["line"].is_monotonic_increasing and (df["line"] > 0).all()
    assert (
        df[["run", "well", "sample", "assay", "cq_raw", "call", "sample_type", "instrument_flags"]]
        .map(type)
        .eq(str)
        .all()
        .all()
    )
    assert np.issubdtype(df["cq"].dtype, np.floating) and df["line"].dtype == np.int64


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-50, max_value=1e6, allow_nan=False), min_size=1, max_size=20))
def test_decimal_comma_and_point_read_the_same(values):
    point = pd.Series([repr(v) for v in values], dtype=object)
    comma = point.str.replace(".", ",", regex=False)
    np.testing.assert_array_equal(to_numbers(point, "."), to_numbers(comma, ","))


def test_forced_format_without_its_header(public_data):
    cfx_file = public_data / "htqpcr" / "CFX_sample.txt"
    with pytest.raises(InputError, match="no results table header") as err:
        registry.read_export(cfx_file, fmt="quantstudio")
    assert "re-export" in err.value.hint
    with pytest.raises(InputError, match="no CFX results header"):
        registry.read_export(public_data / "autoqpcr" / "2019-04-25_135946-ACTB.csv", fmt="cfx")
    with pytest.raises(InputError, match="no BioMark column header"):
        registry.read_export(cfx_file, fmt="biomark")


def test_to_numbers_is_float_of_each_cell():
    """Both fast paths (Arrow's cast, numpy's per-cell float()) give float(cell) to the bit, signs
    of zero included, and the cells Arrow refuses (spaces, non-ASCII digits) are still read."""
    rng = np.random.default_rng(3)
    numbers = [f"{v:.15g}" for v in rng.lognormal(2, 8, 5000)] + [
        f"{v:.17g}" for v in rng.uniform(0, 40, 5000)
    ]
    for cells in (
        numbers + ["-0", "0", "1e400", "4.9e-324", "+1.5", ".5", "5."],
        numbers + [" 1.5", "2 ", "\u0661\u0662"],
    ):
        got = to_numbers(pd.Series(cells, dtype=object)).to_numpy()
        expected = np.array([float(c) for c in cells])
        expected = np.where(np.isfinite(expected), expected, np.nan)
        assert got.tobytes() == expected.tobytes()
    mixed = to_numbers(pd.Series(["1.5", "n/a", "", "2"], dtype=object)).to_numpy()
    np.testing.assert_array_equal(mixed, [1.5, np.nan, np.nan, 2.0])
