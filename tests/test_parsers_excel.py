"""Excel workbooks (issue 13 item 5): real CSV exports written into workbooks in the instrument's layout
read to the same wells; a workbook without a results sheet is refused naming its sheets."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from ctc_qpcr.errors import InputError
from ctc_qpcr.parsers import excel, registry
from ctc_qpcr.parsers.text import load_text
from xlsx_writer import write_xlsx

SAME = ["well", "sample", "assay", "cq", "sample_type", "quantity", "instrument_flags"]


def rows_of(path: Path, delimiter: str) -> list[list[str]]:
    return list(csv.reader(load_text(path).lines, delimiter=delimiter))


def same_wells(csv_path: Path, book: Path) -> pd.DataFrame:
    from_csv = registry.read_export(csv_path, plate="P1")
    from_book = registry.read_export(book, plate="P1")
    assert len(from_book) == len(from_csv) > 0
    pd.testing.assert_frame_equal(from_book[SAME], from_csv[SAME], check_exact=True)
    assert (from_book["line"] == from_csv["line"]).all()  # Excel row numbers = CSV line numbers
    return from_book


def test_quantstudio_results_sheet_with_preamble(tmp_path, public_data):
    source = public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv"
    rows = rows_of(source, ",")
    setup = [["Block Type", "384-Well Block"], ["Well", "Sample Name"], ["A1", "x"]]
    book = write_xlsx(
        tmp_path / "qs.xlsx",
        {
            "Sample Setup": setup,
            "Results": rows,
            "Amplification Data": [["Well", "Cycle", "Rn"]],
        },
    )
    assert registry.detect_format(book) == "excel"
    wells = same_wells(source, book)
    assert len(wells) == 192 and wells["cq"].notna().sum() > 100


def test_cfx_quantification_cq_results_sheet(tmp_path, public_data):
    source = public_data / "htqpcr" / "CFX_sample.txt"
    book = write_xlsx(
        tmp_path / "cfx.xlsx",
        {
            "Run Information": [["File Name", "x.pcrd"]],
            "Quantification Cq Results_0": rows_of(source, ","),
        },
    )
    wells = same_wells(source, book)
    assert len(wells) == 330 and excel.read(book).attrs["sheet"] == "Quantification Cq Results_0"


def test_plain_table_sheet(tmp_path, public_data):
    source = public_data / "easyqpcr" / "qPCR_run1.csv"  # R write.table: space-separated, row names
    rows = rows_of(source, " ")
    book = write_xlsx(tmp_path / "plain.xlsx", {"Sheet1": rows})
    from_book = registry.read_export(book)
    from_csv = registry.read_export(source)
    pd.testing.assert_frame_equal(from_book[SAME], from_csv[SAME], check_exact=True)


def test_cut_off_results_sheet_names_the_sheet_and_the_group(tmp_path, public_data):
    rows = rows_of(public_data / "autoqpcr" / "2019-09-10_120614_exp1.csv", ",")
    start = next(i for i, r in enumerate(rows) if r and r[0] == "Well")
    end = next(i for i in range(start + 1, len(rows)) if not any(rows[i]))
    book = write_xlsx(tmp_path / "cut.xlsx", {"Results": rows[: end - 1]})
    with pytest.raises(
        InputError,
        match=r"\(sheet 'Results'\): plate P1: 1 replicate group\(s\) lack wells",
    ):
        registry.read_export(book, plate="P1")


def test_workbooks_without_results_sheet_are_refused_naming_their_sheets(public_data):
    with pytest.raises(InputError) as err:
        registry.read_export(public_data / "rdml_rpkg" / "7500_std.xls")
    assert "no results sheet" in err.value.problem
    assert (
        "'Sample Setup' (104 rows), 'Multicomponent Data' (amplification/fluorescence data)"
        in err.value.problem
    )
    with pytest.raises(InputError) as err:
        registry.read_export(public_data / "rdml_rpkg" / "BioRad.xlsx")
    assert "its sheets: 'description' (17 rows), 'adp' (amplification/fluorescence data)" in err.value.problem


def test_damaged_workbook(tmp_path):
    path = tmp_path / "plate.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    assert registry.detect_format(path) == "excel"
    with pytest.raises(InputError, match="the Excel workbook cannot be opened"):
        registry.read_export(path)
