"""Sheets read as the user meant them (issue 13), the run record's input hashes, disk full,
and the speed of loading a 44,000-sample sheet (issue 17)."""

from __future__ import annotations

import codecs
import errno
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from ctc_qpcr import provenance, sheets  # noqa: E402
from ctc_qpcr.errors import InputError, OutputError  # noqa: E402
from ctc_qpcr.sheet_text import odd_character  # noqa: E402

EXAMPLE = REPO / "resources" / "example"
SAMPLES = (EXAMPLE / "samples.tsv").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "encoding, bom, newline",
    [
        ("utf-8", b"", "\n"),
        ("utf-8", codecs.BOM_UTF8, "\r\n"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "\r\n"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "\n"),
        ("cp1252", b"", "\r\n"),
        ("utf-8", b"", "\r"),
    ],
)
def test_every_excel_encoding_reads_the_same_sheet(tmp_path, encoding, bom, newline):
    text = SAMPLES.replace("TNBC", "TNBC-é").replace("\n", newline)
    path = tmp_path / "samples.tsv"
    path.write_bytes(bom + text.encode(encoding))
    got = sheets.load_samples(path)
    want = sheets.load_samples(EXAMPLE / "samples.tsv")
    assert list(got.columns) == list(want.columns)
    assert (got["subtype"] == want["subtype"].str.replace("TNBC", "TNBC-é")).all()
    assert got.drop(columns="subtype").equals(want.drop(columns="subtype"))


def test_utf16_without_bom_is_refused_by_name(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_bytes(SAMPLES.encode("utf-16-le"))
    with pytest.raises(
        InputError, match="samples.tsv: the samples sheet looks like UTF-16 text without a byte-order mark"
    ):
        sheets.load_samples(path)


def test_line_numbers_count_comments_blank_lines_and_quoted_line_breaks(tmp_path):
    lines = SAMPLES.splitlines()
    text = "\n".join(
        [
            lines[0],
            "# a comment",
            "",
            lines[1],
            '"P99\nX"\tpatient',
            lines[8].replace("\tpatient", "\tPatient", 1),
        ]
    )
    path = tmp_path / "samples.tsv"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        sheets.load_samples(path)
    # header 1, comment 2, blank 3, gDNA 4, quoted name over lines 5-6, the bad kind on line 7
    assert "line 7, column kind: kind 'Patient' is not one of" in str(err.value)
    assert "did you mean 'patient'?" in str(err.value)


def test_cells_are_stripped_and_hash_is_data(tmp_path):
    lines = SAMPLES.splitlines()
    row = lines[8].split("\t")
    row[0], row[7] = "  P01_T0 ", " HR+ # ER low "
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join([lines[0], "\t".join(row)]) + "\n", encoding="utf-8")
    df = sheets.load_samples(path)
    assert df.loc[0, "sample"] == "P01_T0"
    assert df.loc[0, "subtype"] == "HR+ # ER low"


@pytest.mark.parametrize(
    "text, name_like, expected",
    [
        ("P01_T0", True, ""),
        ("Müller", True, ""),
        ("P01\u00a0T0", True, "U+00A0 NO-BREAK SPACE at position 4"),
        ("KRT\u200d19", False, "invisible character U+200D ZERO WIDTH JOINER"),
        ("ΕpCAM", True, "look-alike character U+0395 GREEK CAPITAL LETTER EPSILON at position 1"),
        ("ＫＲＴ19", True, "look-alike character U+FF2B FULLWIDTH LATIN CAPITAL LETTER K"),
        ("Mu\u0308ller", True, "combining mark U+0308 COMBINING DIAERESIS at position 3"),
        ("ER-α", False, ""),
    ],
)
def test_odd_characters_are_named_by_code_point(text, name_like, expected):
    found = odd_character(text, name_like=name_like)
    assert (expected in found) if expected else found == ""


def test_id_pattern_is_the_schema_pattern():
    schema = yaml.safe_load(
        (REPO / "workflow" / "schemas" / "plates.schema.yaml").read_text(encoding="utf-8")
    )
    for col in ("plate", "batch"):
        assert schema["properties"][col]["pattern"] == sheets.ID_PATTERN


def test_schema_view_keeps_the_constrained_values_only():
    samples = sheets.load_samples(EXAMPLE / "samples.tsv")
    schema = yaml.safe_load(
        (REPO / "workflow" / "schemas" / "samples.schema.yaml").read_text(encoding="utf-8")
    )
    view = sheets.schema_view(samples, schema)
    assert set(view["kind"]) == set(samples["kind"])
    assert set(view["response"]) == set(samples["response"])
    assert set(view["sample"]) == {"x"}
    assert len(view) < 20 < len(samples)


def _big_sheet(tmp_path, n=44_000) -> Path:
    lines = SAMPLES.splitlines()
    patients = [line.split("\t") for line in lines[1:] if "\tpatient\t" in line]
    rows = []
    for i in range(n):
        row = list(patients[i % len(patients)])
        row[0], row[2] = f"S{i:05d}_{row[0]}", f"R{i // 3:05d}"
        rows.append("\t".join(row))
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join([lines[0]] + rows) + "\n", encoding="utf-8")
    return path


def test_a_44000_sample_sheet_loads(tmp_path):
    """Issue 17: a 44,000-row sheet loads whole (its speed against pandas' parse is timed by
    benchmarks/bench_stages.py)."""
    path = _big_sheet(tmp_path)
    df = sheets.load_samples(path)
    assert len(df) == 44_000 and df["sample"].is_unique
    assert df["sample"].iloc[-1].startswith("S43999_")


def test_duplicate_in_a_big_sheet_names_both_lines(tmp_path):
    path = _big_sheet(tmp_path, 2_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append(lines[10].replace(lines[10].split("\t")[0], lines[10].split("\t")[0].lower(), 1))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        InputError,
        match=r"line 2002, column sample: .* is the same name except for upper/lower case of line 11",
    ):
        sheets.load_samples(path)


def test_a_new_batch_on_a_training_export_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    training = sheets.load_plates(EXAMPLE / "plates.tsv")
    new = sheets.load_plates(EXAMPLE / "new_batch" / "plates.tsv")
    sheets.check_new_exports(training, new, "new_batch/plates.tsv")  # the example's new batch is new
    copy = tmp_path / "copy.csv"
    copy.write_bytes(Path(training["path"][2]).read_bytes())
    for path, how in (
        (training["path"][1], "is the export of training plate 'chip02'"),
        (str(copy), "is byte-identical to the export of training plate 'chip03'"),
    ):
        with pytest.raises(
            InputError, match=f"new_batch/plates.tsv, column path: the new batch's plate 'chip05' .* {how}"
        ):
            sheets.check_new_exports(training, new.assign(path=[path]), "new_batch/plates.tsv")


# --------------------------------------------------------------------------- run record


def test_inputs_are_hashed_when_the_job_starts_and_changes_are_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sheet.tsv").write_text("a\n", encoding="utf-8")
    Path("results").mkdir()
    Path("results/cq.tsv").write_text("x\n", encoding="utf-8")
    logger = logging.getLogger("test_provenance")
    for name in ("a.log", "b.log"):
        handler = logging.FileHandler(name, mode="w", encoding="utf-8")
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        got = provenance.record_inputs(SimpleNamespace(input=["sheet.tsv", "results/cq.tsv"]), logger)
        handler.close()
        assert list(got) == ["sheet.tsv"]  # products of the workflow are not inputs
        Path("sheet.tsv").write_text("b\n", encoding="utf-8")  # edited after job a read it
    reads = provenance.collect(["b.log", "a.log"])
    assert list(reads["sheet.tsv"]) == ["a.log", "b.log"]
    assert reads["sheet.tsv"]["a.log"] == provenance.sha256_text("a\n")
    assert list(provenance.changed_inputs(reads)) == ["sheet.tsv"]


# --------------------------------------------------------------------------- disk full


def test_disk_full_names_the_table_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from ctc_qpcr import tables

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    target = tmp_path / "results" / "cq.tsv"
    with pytest.raises(OutputError, match=r"results/cq.tsv: no space left on the disk"):
        tables.write_tsv(pd.DataFrame({"a": [1]}), target)
    assert list(target.parent.iterdir()) == []


def test_disk_full_in_a_step_ends_it_with_the_message(tmp_path, capsys):
    from ctc_qpcr.adapter import run

    def main(smk, log):
        raise OSError(errno.ENOSPC, "No space left on device")

    smk = SimpleNamespace(log=[str(tmp_path / "job.log")], input=[], output=[str(tmp_path / "out.tsv")])
    with pytest.raises(SystemExit) as stop:
        run(main, smk)
    assert stop.value.code == 1
    assert "out.tsv: no space left on the disk" in (tmp_path / "job.log").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- odd characters inside exports


def _chip_with(tmp_path, old: str, new: str, nth: int) -> tuple[Path, int]:
    """chip_a.csv with the ``nth`` data line's ``old`` replaced by ``new``; (path, that line)."""
    lines = (REPO / "tests" / "data" / "bad" / "_base" / "chip_a.csv").read_bytes().decode().split("\r\n")
    hits = [i for i, line in enumerate(lines) if f",{old}," in line]
    i = hits[nth]
    lines[i] = lines[i].replace(f",{old},", f",{new},", 1)
    path = tmp_path / "chip.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    return path, i + 1


def test_a_cyrillic_letter_in_an_export_sample_name_is_named(tmp_path):
    from ctc_qpcr.parsers.registry import read_export

    name = "P02_T2"
    path, line = _chip_with(tmp_path, name, name.replace("T", "\u0422"), 3)
    with pytest.raises(InputError) as err:
        read_export(path, fmt="biomark", plate="P1")
    assert err.value.line == line and err.value.column == "sample"
    assert "U+0422 CYRILLIC CAPITAL LETTER TE at position 5" in str(err.value)
    assert str(err.value).startswith(f"{path}, line {line}, column sample: the sample name '")


def test_a_zero_width_space_in_an_export_assay_name_is_named(tmp_path):
    from ctc_qpcr.parsers.registry import read_export

    path, line = _chip_with(tmp_path, "ESR1", "ESR1\u200b", 0)
    with pytest.raises(InputError) as err:
        read_export(path, fmt="biomark", plate="P1")
    assert (err.value.line, err.value.column) == (line, "assay")
    assert "invisible character U+200B ZERO WIDTH SPACE at position 5" in str(err.value)


def test_plain_and_accented_export_names_pass_and_the_check_is_the_sheets(tmp_path):
    from ctc_qpcr.parsers import toolkit

    # an accented Latin name is neither invisible nor a look-alike: read as written
    wells = pd.DataFrame({"sample": ["Zürich_1", "P1"], "assay": ["KRT19", "KRT19"], "well": ["A1", "A2"]})
    wells["line"] = [5, 6]
    toolkit.check_well_names(wells, "x.csv")
    # one function for sheets and exports: the message text is odd_character's
    wells.loc[1, "sample"] = "P\u04151"  # Cyrillic Е
    with pytest.raises(InputError) as err:
        toolkit.check_well_names(wells, "x.csv")
    assert str(err.value) == (
        "x.csv, line 6, column sample: the sample name 'P\u04151' (well A2) "
        + odd_character("P\u04151", name_like=True)
        + " — retype the sample name with plain characters in the instrument software and export again "
        "(or edit it in the export), so that it matches the samples sheet"
    )
    wells["line"] = 0  # RDML: no line
    with pytest.raises(InputError) as err:
        toolkit.check_well_names(wells, "x.rdml")
    assert err.value.line is None


# --------------------------------------------------------------------------- a tab in a --configfile

TABBED = "lod: 35\ndifferential:\n  comparisons:\n    - name: a\n\t  type: two_group\n"


def test_snakemake_reads_a_configfile_before_the_workflow_and_names_no_line(tmp_path):
    """What the user sees for a tab in a --configfile: Snakemake's CLI loads the file before the
    Snakefile runs, so no check of ours can run first. If Snakemake starts naming the file, this
    test fails and docs/methods.md §12 / config/README.md can drop the check_config.py advice."""
    from snakemake.exceptions import WorkflowError
    from snakemake.settings.types import ConfigSettings

    path = tmp_path / "other.yaml"
    path.write_text(TABBED, encoding="utf-8")
    with pytest.raises(WorkflowError) as err:
        ConfigSettings(configfiles=[path])
    assert "Config file is not valid JSON or YAML" in str(err.value)
    assert "other.yaml" not in str(err.value)


def test_check_config_names_the_configfile_and_the_tab_line(tmp_path):
    import subprocess

    path = tmp_path / "other.yaml"
    path.write_text(TABBED, encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text("lod: 30\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_config.py"), str(good), str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stdout == f"{good}: ok\n"
    assert proc.stderr == (
        f"{path}, line 5: a tab character in the indentation — YAML indents with spaces only: "
        "replace the tab by spaces\n"
    )


def test_configfiles_checked_one_by_one_name_their_own_file(tmp_path):
    from ctc_qpcr.config_check import check_config_files
    from ctc_qpcr.errors import ConfigError

    schema = yaml.safe_load(
        (REPO / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")
    )
    other = tmp_path / "other.yaml"
    other.write_text("ipc:\n  max_sd: 0.3\n  on_mising: exclude\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"^.*other\.yaml: unknown config key 'ipc\.on_mising' — did you mean"
    ):
        check_config_files([REPO / "config" / "config.yaml", other], schema)
    twice = tmp_path / "twice.yaml"
    twice.write_text("lod: 35\nipc:\n  max_sd: 0.3\n  max_sd: 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        check_config_files([twice], schema)
    assert str(err.value) == (
        f"{twice}, line 4: the key 'max_sd' is given twice in one section (first on line 3); "
        "YAML would keep the last one — delete one"
    )
    check_config_files([REPO / "config" / "config.yaml"], schema)  # the shipped config passes
