#!/usr/bin/env python3
"""Write the bad-input corpus ``tests/data/bad/`` (issue "Reliability").

    python scripts/make_bad_inputs.py            # (re)writes tests/data/bad/
    python scripts/make_bad_inputs.py --out DIR  # elsewhere

Every case is one folder ``tests/data/bad/<case>/`` holding the broken input(s),
cut from the example study (``resources/example/``) or written by hand, and one
row of ``tests/data/bad/cases.tsv``:

* ``id``       — the case (= folder name);
* ``stage``    — what reads it: ``export`` (parsers.registry.read_export),
  ``plate`` (importing.read_plate with the sheets), ``names`` (importing.unplated_names),
  ``sheet`` (sheets.load_*), ``preprocess`` (preprocess.preprocess_batch + audit),
  ``ntc`` (ntc.ntc_table on one plate), ``normalise`` (normalise.normalise_study), ``differential`` (differential.run_comparison),
  ``outcome`` (outcome.validate_counts / validate_clinical / match_patients),
  ``escape`` (tables.write_tsv / write_parquet), ``workflow`` (``snakemake -n``);
* ``inputs``   — the files, ``;``-separated, relative to ``tests/data/bad/``
  (``_base/`` holds the shared sheets and cut-down chips);
* ``params``   — ``key=value`` pairs, ``;``-separated (format, sheet kind, ...);
* ``outcome``  — ``error`` (an InputError/ConfigError/WorkflowError message),
  ``ok`` (reads cleanly), ``flag`` (a documented flag/state in the outputs) or
  ``note`` (a logged note);
* ``expected`` — an exact substring of the message, or of the summary the test
  builds (``reads N wells``, ``EXPFAIL:invalid_cq=1``, flags, notes);
* ``xfail``    — the owning module when the expected behaviour is not there yet;
* ``tests``    — what the case is about.

The output is deterministic (no timestamps; zip entries dated 1980-01-01), so
re-running the generator leaves ``git status`` clean. Total size < 2 MB.
"""

from __future__ import annotations

import argparse
import codecs
import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "resources" / "example"
CRLF = "\r\n"

#: assays kept on the cut-down chips: 3 targets, the 4 reference genes, ValidPrime, IPC
MINI_ASSAYS = ("KRT19", "EPCAM", "ESR1", "ACTB", "GAPDH", "B2M", "PPIA", "ValidPrime", "IPC")
GDNA = ("gDNA_10", "gDNA_50", "gDNA_250", "gDNA_1000", "gDNA_5000")

CASES: list[dict] = []


def case(id_, stage, inputs, outcome, expected, tests, params="", xfail=""):
    for s in (expected, tests, params):
        assert "\t" not in s and "\n" not in s, id_
    CASES.append(
        {
            "id": id_,
            "stage": stage,
            "inputs": inputs,
            "params": params,
            "outcome": outcome,
            "expected": expected,
            "xfail": xfail,
            "tests": tests,
        }
    )


# --------------------------------------------------------------------------- chips


def chip(name: str) -> tuple[list[str], list[list[str]]]:
    """(header lines incl. the two column-header rows, data rows as field lists) of an example chip."""
    lines = (EXAMPLE / "chips" / f"{name}.csv").read_text(encoding="utf-8").splitlines()
    head = lines[:12]
    rows = [line.split(",") for line in lines[12:] if line.strip()]
    return head, rows


def select(rows, samples, assays=MINI_ASSAYS):
    return [r for r in rows if r[1] in samples and r[4] in assays]


def patients_on(rows, n=2):
    seen = []
    for r in rows:
        if r[1].startswith("P") and r[1] not in seen:
            seen.append(r[1])
    return seen[:n]


def render(head, rows, sep=",", newline=CRLF) -> str:
    return newline.join([line.replace(",", sep) for line in head] + [sep.join(r) for r in rows]) + newline


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        with open(path, "w", encoding=encoding, newline="") as handle:
            handle.write(text)


def tsv(rows: list[list[str]]) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def fixed_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            archive.writestr(info, data)


# --------------------------------------------------------------------------- sheets as labs write them


def with_cell(line: str, col: int, value: str) -> str:
    """A sheet line with cell ``col`` (0-based) replaced."""
    cells = line.split("\t")
    cells[col] = value
    return "\t".join(cells)


def _sheet_case(d, id_, name, text, outcome, expected, tests, kind="samples", encoding="utf-8", params=""):
    write(d(id_) / name, text, encoding=encoding)
    case(
        id_,
        "sheet",
        f"{id_}/{name}",
        outcome,
        expected,
        tests,
        f"kind={kind}" + (f";{params}" if params else ""),
    )


def sheet_inputs_cases(d, sheet_lines: list[str], assay_lines: list[str]) -> None:
    """Encodings, trailing tabs, '#' in cells, duplicate columns, look-alike letters, labels."""
    crlf = CRLF.join(sheet_lines) + CRLF
    n = len(sheet_lines) - 1
    _sheet_case(
        d,
        "sheet_utf16",
        "samples.tsv",
        codecs.BOM_UTF16_LE + crlf.encode("utf-16-le"),
        "ok",
        f"loads {n} rows",
        "samples sheet saved by Excel as 'Unicode Text' (UTF-16 LE with BOM, CRLF)",
    )
    _sheet_case(
        d,
        "sheet_utf8_bom",
        "samples.tsv",
        codecs.BOM_UTF8 + crlf.encode("utf-8"),
        "ok",
        f"loads {n} rows",
        "samples sheet as UTF-8 with BOM and CRLF line ends",
    )
    accented = sheet_lines[:8] + [with_cell(sheet_lines[8], 7, "triple-négatif")] + sheet_lines[9:]
    _sheet_case(
        d,
        "sheet_cp1252",
        "samples.tsv",
        CRLF.join(accented) + CRLF,
        "ok",
        "subtype of P01_T0 = triple-négatif",
        "samples sheet saved by Excel on western Windows (Windows-1252, é in a covariate)",
        encoding="cp1252",
        params="show=P01_T0:subtype",
    )
    hashed = sheet_lines[:9] + [with_cell(sheet_lines[9], 7, "HR+/HER2- #2")] + sheet_lines[10:]
    name = sheet_lines[9].split("\t")[0]
    _sheet_case(
        d,
        "sheet_hash_in_cell",
        "samples.tsv",
        "\n".join(hashed) + "\n",
        "ok",
        f"subtype of {name} = HR+/HER2- #2",
        "'#' inside a cell is data (it used to cut the rest of the row as a comment)",
        params=f"show={name}:subtype",
    )
    _sheet_case(
        d,
        "sheet_trailing_tab",
        "samples.tsv",
        "\n".join(line + "\t" for line in sheet_lines) + "\n",
        "ok",
        f"loads {n} rows",
        "a trailing tab on every line: empty cells without a column name are ignored",
    )
    stray = sheet_lines[:9] + [sheet_lines[9] + "\tsee notes"] + sheet_lines[10:]
    _sheet_case(
        d,
        "sheet_stray_cell",
        "samples.tsv",
        "\n".join(stray) + "\n",
        "error",
        "line 10, column 12: cell 12 ('see notes') has no column name in the header (the header names 11 columns)",
        "a cell beyond the header (pandas' tokenizer message before)",
    )
    twice = [sheet_lines[0] + "\tresponse"] + [line + "\t" for line in sheet_lines[1:]]
    _sheet_case(
        d,
        "sheet_duplicate_column",
        "samples.tsv",
        "\n".join(twice) + "\n",
        "error",
        "line 1, column response: columns 5 and 12 are both named 'response' in the samples sheet",
        "two columns with one name (the second was silently ignored)",
    )
    renamed = [sheet_lines[0].replace("\tresponse\t", "\tResponse\t")] + sheet_lines[1:]
    _sheet_case(
        d,
        "sheet_column_case",
        "samples.tsv",
        "\n".join(renamed) + "\n",
        "error",
        "line 1, column Response: column 'Response' is spelt like the samples column 'response' except for case or '_'",
        "an optional column in another case (was kept as a covariate: every response empty)",
    )
    t0_line = next(i for i, line in enumerate(sheet_lines) if i > 8 and line.split("\t")[3] == "T0") + 1
    swap = {
        "sheet_sites_comma": (
            (5, "liver,lung"),
            "line 9, column sites: sites 'liver,lung' uses ',' between sites",
            "sites separated by a comma (was one site 'liver,lung')",
        ),
        "sheet_kind_case": (
            (1, "Patient"),
            "line 9, column kind: kind 'Patient' is not one of patient, healthy, gdna, "
            "ipc, ntc, standard, other — did you mean 'patient'?",
            "a kind in another case: did-you-mean",
        ),
        "sheet_timepoint_case": (
            (3, "t0"),
            f"timepoint is spelt both 'T0' (line {t0_line}) and 't0' (line 9), which differ only by upper/lower case",
            "t0 next to T0 (samples silently left out of T0 comparisons)",
        ),
        "sheet_zero_width": (
            (0, "P01\u200b_T0"),
            "line 9, column sample: sample 'P01\u200b_T0' holds an invisible "
            "character U+200B ZERO WIDTH SPACE at position 4",
            "a zero-width space pasted into a sample name",
        ),
        "sheet_lookalike": (
            (0, "P01_\u04220"),
            "line 9, column sample: sample 'P01_\u04220' holds a look-alike "
            "character U+0422 CYRILLIC CAPITAL LETTER TE at position 5",
            "a Cyrillic Т in a sample name (reported as unknown)",
        ),
    }
    for id_, ((col, value), expected, tests) in swap.items():
        lines = sheet_lines[:8] + [with_cell(sheet_lines[8], col, value)] + sheet_lines[9:]
        _sheet_case(d, id_, "samples.tsv", "\n".join(lines) + "\n", "error", expected, tests)
    hd = next(i for i, line in enumerate(sheet_lines) if line.split("\t")[1] == "healthy")
    healthy = sheet_lines[:hd] + [with_cell(sheet_lines[hd], 4, "responder")] + sheet_lines[hd + 1 :]
    _sheet_case(
        d,
        "sheet_healthy_response",
        "samples.tsv",
        "\n".join(healthy) + "\n",
        "error",
        f"line {hd + 1}, column response: a healthy sample has response 'responder'; only patients can have one",
        "a healthy donor with a response value (entered the responder group)",
    )
    genes = assay_lines[:4] + [assay_lines[4].replace("EGFR\tEGFR", "EGFR\tegfr", 1)] + assay_lines[5:]
    genes += ["EGFR_2\tEGFR\ttarget\t1.95\t"]
    _sheet_case(
        d,
        "assay_gene_case",
        "assays.tsv",
        "\n".join(genes) + "\n",
        "error",
        "gene is spelt both 'EGFR' (line 54) and 'egfr' (line 5), which differ only by upper/lower case",
        "one gene spelt two ways by two assays",
        kind="assays",
    )
    fixed_zip(
        d("sheet_xlsx") / "samples.tsv",
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"},
    )
    case(
        "sheet_xlsx",
        "sheet",
        "sheet_xlsx/samples.tsv",
        "error",
        "the samples sheet is an Excel workbook (.xlsx) or another zip archive, not tab-separated text",
        "an Excel workbook saved under the sheet's name",
        "kind=samples",
    )
    plates = [["plate", "batch", "path", "format"], ["chip_a", "B 1", "_base/chip_a.csv", "biomark"]]
    write(d("plates_space_batch") / "plates.tsv", tsv(plates))
    case(
        "plates_space_batch",
        "sheet",
        "plates_space_batch/plates.tsv",
        "error",
        "line 2, column batch: batch id 'B 1' holds a character other than letters, digits, '_', '.', '-' (a space)",
        "a space in a batch id (was a schema dump)",
        "kind=plates",
    )
    write(d("plates_identical_exports") / "chip_copy.csv", (d("_base") / "chip_a.csv").read_bytes())
    write(
        d("plates_identical_exports") / "plates.tsv",
        tsv(
            [
                plates[0],
                ["chip_a", "B1", "_base/chip_a.csv", "biomark"],
                ["chip_b", "B1", "_base/chip_b.csv", "biomark"],
                ["chip_c", "B1", "plates_identical_exports/chip_copy.csv", "biomark"],
            ]
        ),
    )
    case(
        "plates_identical_exports",
        "sheet",
        "plates_identical_exports/plates.tsv",
        "error",
        "line 4, column path: plate 'chip_c' (plates_identical_exports/chip_copy.csv) has a byte-identical export to plate 'chip_a'",
        "two plates on byte-identical exports (one chip copied under two names)",
        "kind=plates",
    )


def settings_cases(d) -> None:
    """Settings naming genes, groups or time points the sheets spell differently (checked at dry run)."""
    S, A = "_base/samples.tsv", "_base/assays.tsv"
    cases = {
        "settings_marker_case": (
            "positivity:\n  markers: [KRT19, EpCAM]\n",
            "positivity.markers: target gene 'EpCAM' is not in _base/assays.tsv (gene, role target) — did you mean 'EPCAM'?",
            "EpCAM vs EPCAM: the marker was silently dropped",
        ),
        "settings_reference_gene": (
            "normalisation:\n  reference_genes: [ACTB, GAPDH1]\n",
            "normalisation.reference_genes: gene 'GAPDH1' is not in _base/assays.tsv (gene) — did you mean 'GAPDH'?",
            "a fixed reference gene the assays sheet does not have",
        ),
        "settings_level_case": (
            "differential:\n  comparisons:\n    - {name: tp, type: timepoints, column: timepoint, levels: [t0, T1]}\n",
            "differential comparison 'tp' levels: timepoint 't0' is not in _base/samples.tsv — did you mean 'T0'?",
            "a comparison level in another case than the sheet (the group was empty)",
        ),
        "settings_filter_case": (
            "differential:\n  comparisons:\n    - {name: r, type: two_group, column: response, "
            "levels: [responder, non-responder], filter: {kind: patient, timepoint: Baseline}}\n",
            "differential comparison 'r' filter: timepoint 'Baseline' is not in _base/samples.tsv",
            "a filter value no sample has",
        ),
        "settings_column_missing": (
            "differential:\n  comparisons:\n    - {name: s, type: two_group, column: Subtype, levels: [TNBC, HR+/HER2-]}\n",
            "differential comparison 's': column 'Subtype' is not in _base/samples.tsv (columns) — did you mean 'subtype'?",
            "a comparison column spelt in another case",
        ),
        "settings_efficiency_missing": (
            "efficiency:\n  apply: true\n  from_standards: false\n",
            "efficiency.apply is true but 2 assay(s) in settings_efficiency_missing/assays.tsv have no efficiency: EGFR, KRT19",
            "efficiency correction on with assays lacking an efficiency (was E = 2 in silence)",
        ),
    }
    for id_, (yaml_text, expected, tests) in cases.items():
        write(d(id_) / "config.yaml", yaml_text)
        assays = A
        if id_ == "settings_efficiency_missing":
            lines = (EXAMPLE / "assays.tsv").read_text(encoding="utf-8").splitlines()
            lines = [
                line.rsplit("\t", 2)[0] + "\t\t" if line.startswith(("KRT19\t", "EGFR\t")) else line
                for line in lines
            ]
            write(d(id_) / "assays.tsv", "\n".join(lines) + "\n")
            assays = f"{id_}/assays.tsv"
        case(id_, "settings", f"{id_}/config.yaml;{S};{assays}", "error", expected, tests)
    write(d("config_yaml_tab") / "config.yaml", "lod: 35\nvalidprime:\n\tsd_max: 0.3\n")
    case(
        "config_yaml_tab",
        "config",
        "config_yaml_tab/config.yaml",
        "error",
        "config.yaml, line 3: a tab character in the indentation — YAML indents with spaces only",
        "a tab in config.yaml (Snakemake's message named neither file nor line)",
    )


def inputs_left_cases(d, head1, rows1, mini2, head2, small, S, A) -> None:  # noqa: PLR0913
    """Issue 13's last classes: two samples under one name, NTC flags, a --configfile tab, odd letters in exports."""
    p = patients_on(rows1, 4)  # one name on 4 inlets, two patients on 2: the design is 2
    rows = [
        [r[0], p[0], *r[2:]] if r[1] == p[1] else r
        for r in select(rows1, set(GDNA) | {"IPC", "NTC", "HD03", *p})
    ]
    for id_, params, outcome, expected, tests in (
        (
            "two_samples_one_name",
            "",
            "error",
            f"two_samples_one_name/chip_a.csv (plate chip_a), line 112, column sample: sample '{p[0]}' has 4 wells "
            "for each of 9 assay(s) where the plate's replicate design is 2 (the most common count) — on inlets "
            "S10, S11, S12, S13: two samples seem to carry one name",
            "a second sample labelled with the first one's name: 4 inlets instead of 2 (was averaged into one sample)",
        ),
        (
            "two_samples_one_name_flag",
            "replicates_on_extra=flag",
            "flag",
            "1 sample(s) with more replicate wells than the plate's design (the most common count), kept and "
            f"flagged extra_replicates (replicates.on_extra: flag): chip_a/{p[0]}",
            "the same with replicates.on_extra: flag: kept, cells flagged, wells listed in the audit",
        ),
    ):
        write(d(id_) / "chip_a.csv", render(head1, rows))
        write(d(id_) / "chip_b.csv", render(head2, mini2))
        case(
            id_, "preprocess", f"{id_}/chip_a.csv;{id_}/chip_b.csv;{S};{A}", outcome, expected, tests, params
        )

    ntc = [
        [*r[:6], "26.5", "0.95", "Pass", r[9]] if r[1] == "NTC" and r[4] == "KRT19" else r
        for r in select(rows1, set(GDNA) | {"IPC", "NTC", "HD03", *p[:2]})
    ]
    write(d("ntc_amplifies") / "chip.csv", render(head1, ntc))
    case(
        "ntc_amplifies",
        "ntc",
        f"ntc_amplifies/chip.csv;{S};{A}",
        "flag",
        "chip/KRT19: ntc_close_to_samples (1 of 1 NTC wells amplified, lowest Cq 26.50; samples' median Cq 24.80)",
        "an NTC amplifying in KRT19: flagged on the plate and the assay (results/qc/ntc.tsv, the report, MIQE)",
    )

    tab = "lod: 35\ndifferential:\n  comparisons:\n    - name: a\n\t  type: two_group\n"
    write(d("configfile_yaml_tab") / "other.yaml", tab)
    case(
        "configfile_yaml_tab",
        "config",
        "configfile_yaml_tab/other.yaml",
        "error",
        "other.yaml, line 5: a tab character in the indentation — YAML indents with spaces only",
        "a tab in a --configfile: what python scripts/check_config.py says (Snakemake stops before the workflow)",
    )
    write(d("configfile_yaml_tab_snakemake") / "config.yaml", tab)
    case(
        "configfile_yaml_tab_snakemake",
        "workflow",
        "configfile_yaml_tab_snakemake/config.yaml",
        "error",
        "Config file is not valid JSON or YAML. In case of YAML, make sure to not mix whitespace and tab indentation.",
        "a tab in a --configfile: Snakemake's own message, before our code runs (names no file: see check_config.py)",
    )
    write(d("configfile_key_twice") / "other.yaml", "lod: 35\nipc:\n  max_sd: 0.3\n  max_sd: 0.5\n")
    case(
        "configfile_key_twice",
        "config",
        "configfile_key_twice/other.yaml",
        "error",
        "other.yaml, line 4: the key 'max_sd' is given twice in one section (first on line 3)",
        "a key given twice in a config file (YAML keeps the last one in silence)",
    )

    write(
        d("batch_override_bad_value") / "config.yaml", "batches:\n  B2:\n    replicates:\n      max_sd: x\n"
    )
    case(
        "batch_override_bad_value",
        "workflow",
        "batch_override_bad_value/config.yaml",
        "error",
        "config batches: B2: replicates.max_sd: 'x' must be of type number",
        "a wrong value in one batch's override: the dry run names the batch (it used to fail its job only)",
    )

    odd = {
        "export_lookalike_sample": (
            1,
            lambda r: [r[0], r[1].replace("T", "\u0422"), *r[2:]],
            "sample",
            "U+0422 CYRILLIC CAPITAL LETTER TE",
        ),
        "export_zero_width_assay": (
            4,
            lambda r: [*r[:4], r[4] + "\u200b", *r[5:]],
            "assay",
            "U+200B ZERO WIDTH SPACE",
        ),
    }
    for id_, (col, edit, what, char) in odd.items():
        rows_odd = [edit(r) if i == 7 else r for i, r in enumerate(small)]
        write(d(id_) / "chip.csv", render(head1, rows_odd))
        case(
            id_,
            "export",
            f"{id_}/chip.csv",
            "error",
            f"chip.csv, line 20, column {what}: the {what} name '{rows_odd[7][col]}' (well {rows_odd[7][0]}) holds "
            + ("a look-alike" if what == "sample" else "an invisible")
            + f" character {char}",
            f"a {char.split(' ', 1)[1].lower()} in an export's {what} name (was an unknown {what})",
            "format=biomark",
        )


# --------------------------------------------------------------------------- corpus


def build(out: Path) -> None:  # noqa: C901 (one long, flat list of cases)
    if out.exists():
        shutil.rmtree(out)
    base = out / "_base"
    base.mkdir(parents=True)
    # Byte-exact files: CRLF/CR-only line endings, UTF-16 and BOMs are the point of several cases.
    (out / ".gitattributes").write_text("* -text\n", encoding="utf-8")
    shutil.copy(EXAMPLE / "samples.tsv", base / "samples.tsv")
    shutil.copy(EXAMPLE / "assays.tsv", base / "assays.tsv")
    sheet_lines = (EXAMPLE / "samples.tsv").read_text(encoding="utf-8").splitlines()

    head1, rows1 = chip("chip01")
    head2, rows2 = chip("chip02")
    p1 = patients_on(rows1)
    p2 = patients_on(rows2)
    mini1 = select(rows1, set(GDNA) | {"IPC", "NTC", "HD03", *p1})
    mini2 = select(rows2, set(GDNA) | {"IPC", "NTC", *p2})
    write(base / "chip_a.csv", render(head1, mini1))
    write(base / "chip_b.csv", render(head2, mini2))
    # The parser cases: two patients × 6 assays × 2 replicates = 24 wells.
    small = select(rows1, set(p1), ("KRT19", "EPCAM", "ESR1", "ACTB", "GAPDH", "B2M"))
    assert len(small) == 24, len(small)
    write(base / "small.csv", render(head1, small))
    S = "_base/samples.tsv"
    A = "_base/assays.tsv"

    def d(id_):
        return out / id_

    def cq_of(row, value, call="Pass", quality="0.9"):
        r = list(row)
        r[6], r[7], r[8] = value, quality, call
        return r

    # ---- exports (parsers) ---------------------------------------------------------------
    text = render(head1, small)
    cut = text[: text.index(small[10][0]) + 40]  # stops in the middle of line 23
    write(d("truncated_export") / "chip.csv", cut)
    case(
        "truncated_export",
        "export",
        "truncated_export/chip.csv",
        "error",
        "line 23: this row has 7 fields but the header on line 12 has 10; the file looks cut off or edited",
        "export cut off mid-row (copy interrupted): names the line and says re-export",
        "format=biomark",
    )

    write(d("empty_file") / "chip.csv", "")
    case(
        "empty_file",
        "export",
        "empty_file/chip.csv",
        "error",
        "chip.csv: the file is empty",
        "0-byte export",
        "format=auto",
    )

    write(d("blank_lines_only") / "chip.csv", "\r\n \r\n,,,\r\n")
    case(
        "blank_lines_only",
        "export",
        "blank_lines_only/chip.csv",
        "error",
        "the file has no content (only blank lines or empty cells)",
        "export with only blank lines/commas",
        "format=auto",
    )

    write(d("wrong_delimiter") / "chip.txt", render(head1, small, sep="|"))
    case(
        "wrong_delimiter",
        "export",
        "wrong_delimiter/chip.txt",
        "error",
        "the export format was not recognised",
        "pipe-delimited export: not recognised, hint names the formats",
        "format=auto",
    )

    write(d("wrong_delimiter_biomark") / "chip.txt", render(head1, small, sep="|"))
    case(
        "wrong_delimiter_biomark",
        "export",
        "wrong_delimiter_biomark/chip.txt",
        "error",
        "no BioMark column header found",
        "pipe-delimited export with format biomark forced",
        "format=biomark",
    )

    euro = [[f.replace(".", ",") if f.replace(".", "").isdigit() else f for f in r] for r in small]
    write(d("decimal_comma") / "chip.csv", render(head1, euro, sep=";"))
    case(
        "decimal_comma",
        "export",
        "decimal_comma/chip.csv",
        "ok",
        "reads 24 wells",
        "semicolon-separated export with decimal commas (European Excel) parses",
        "format=auto",
    )

    mixed = [list(r) for r in euro]
    mixed[5][6] = small[5][6]  # one Cq with a decimal point again
    write(d("decimal_mixed") / "chip.csv", render(head1, mixed, sep=";"))
    case(
        "decimal_mixed",
        "export",
        "decimal_mixed/chip.csv",
        "error",
        f"line 18, column Value: this number ('{small[5][6]}') uses a decimal point, but line 13 uses a decimal comma; one file must use one decimal mark",
        "decimal comma mixed with decimal point: names line and column",
        "format=auto",
    )

    write(d("utf8_bom") / "chip.csv", codecs.BOM_UTF8 + text.encode("utf-8"))
    case(
        "utf8_bom",
        "export",
        "utf8_bom/chip.csv",
        "ok",
        "reads 24 wells",
        "UTF-8 with BOM parses",
        "format=auto",
    )

    write(d("utf16") / "chip.csv", text.encode("utf-16"))
    case(
        "utf16",
        "export",
        "utf16/chip.csv",
        "ok",
        "reads 24 wells",
        "UTF-16 (LE with BOM, Excel 'Unicode text') parses",
        "format=auto",
    )

    write(d("cr_only") / "chip.csv", render(head1, small, newline="\r"))
    case(
        "cr_only",
        "export",
        "cr_only/chip.csv",
        "ok",
        "reads 24 wells",
        "old-Mac CR-only line endings parse (line numbers still right)",
        "format=auto",
    )

    moved = ["Exported by the lab's LIMS", "Operator,someone", ""] + head1[:7] + ["", "", "", ""] + head1[7:]
    write(d("header_moved") / "chip.csv", render(moved, small))
    case(
        "header_moved",
        "export",
        "header_moved/chip.csv",
        "ok",
        "reads 24 wells",
        "column header moved down by extra preamble and blank lines parses",
        "format=auto",
    )

    write(d("header_missing") / "chip.csv", render(head1[:10], small))
    case(
        "header_missing",
        "export",
        "header_missing/chip.csv",
        "error",
        "no BioMark column header found (a row starting with 'ID' under a row starting with 'Chamber')",
        "the two column-header rows deleted (format biomark)",
        "format=biomark",
    )

    write(d("header_missing_auto") / "chip.csv", render(head1[:10], small))
    case(
        "header_missing_auto",
        "export",
        "header_missing_auto/chip.csv",
        "error",
        "no BioMark column header found",
        "header rows deleted, format auto: the preamble still says BioMark, so the BioMark message",
        "format=auto",
    )

    dup = small[:8] + [small[3]] + small[8:]
    write(d("duplicate_well") / "chip.csv", render(head1, dup))
    case(
        "duplicate_well",
        "export",
        "duplicate_well/chip.csv",
        "error",
        f"well '{small[3][0]}' appears twice on plate P1 (lines 16 and 21)",
        "one chamber listed twice (pasted row) on a BioMark chip",
        "format=biomark",
    )

    table_rows = [
        ["Well", "Sample", "Target", "Cq"],
        ["A1", p1[0], "KRT19", "25.1"],
        ["A2", p1[0], "ACTB", "18.2"],
        ["A1", p1[1], "KRT19", "26.0"],
    ]
    write(d("duplicate_well_table") / "plate.tsv", tsv(table_rows))
    case(
        "duplicate_well_table",
        "export",
        "duplicate_well_table/plate.tsv",
        "error",
        "well 'A1' appears twice on plate P1 (lines 2 and 4)",
        "duplicate well in a plain table",
        "format=table",
    )

    bad = [list(r) for r in small]
    bad[4][6] = "28.1a"
    write(d("nonnumeric_cq") / "chip.csv", render(head1, bad))
    case(
        "nonnumeric_cq",
        "export",
        "nonnumeric_cq/chip.csv",
        "error",
        "line 17, column Value: the Cq value '28.1a' of well",
        "non-numeric Cq text: names line and column",
        "format=biomark",
    )

    extra = [list(r) for r in small]
    extra[2] = extra[2] + ["", "", "surplus"]
    write(d("extra_fields") / "chip.csv", render(head1, extra))
    case(
        "extra_fields",
        "export",
        "extra_fields/chip.csv",
        "error",
        "line 15: this row has more fields than the 10 column names of the header",
        "a row with an unquoted delimiter / extra cells",
        "format=biomark",
    )

    heat = list(head1)
    heat[3] = "Export Type,Heat Map Results"
    write(d("biomark_heatmap") / "chip.csv", render(heat, small))
    case(
        "biomark_heatmap",
        "export",
        "biomark_heatmap/chip.csv",
        "error",
        "this is a BioMark 'Heat Map Results' export",
        "wrong BioMark export type",
        "format=biomark",
    )

    fixed_zip(
        d("excel_workbook") / "chip.xlsx",
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"},
    )
    case(
        "excel_workbook",
        "export",
        "excel_workbook/chip.xlsx",
        "error",
        "this is a zip archive (Excel .xlsx, or a zipped RDML), not a text export",
        "an .xlsx workbook given as a plate export",
        "format=biomark",
    )

    latin = text.replace("Linear", "Linéaire")  # the preamble gets a non-ASCII character
    write(d("latin1") / "chip.csv", latin, encoding="cp1252")
    case(
        "latin1",
        "export",
        "latin1/chip.csv",
        "ok",
        "reads 24 wells",
        "Windows-1252 export (not UTF-8) parses",
        "format=auto",
    )

    # ---- RDML safety -----------------------------------------------------------------------
    rdml_body = (
        '<rdml version="1.1" xmlns="http://www.rdml.org"><experiment id="e"><run id="r">'
        '<react id="1"><sample id="&xxe;"/><data><tar id="KRT19"/><cq>25</cq></data></react>'
        "</run></experiment></rdml>"
    )
    write(
        d("rdml_xxe") / "run.rdml",
        '<?xml version="1.0"?>\n<!DOCTYPE rdml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        + rdml_body
        + "\n",
    )
    case(
        "rdml_xxe",
        "export",
        "rdml_xxe/run.rdml",
        "error",
        "declares a DTD/entities, which is refused for safety",
        "RDML with an external entity (XXE)",
        "format=rdml",
    )

    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    write(
        d("rdml_billion_laughs") / "run.rdml",
        '<?xml version="1.0"?>\n<!DOCTYPE rdml [<!ENTITY lol0 "lol">'
        + lol
        + "]>\n"
        + rdml_body.replace("&xxe;", "&lol9;")
        + "\n",
    )
    case(
        "rdml_billion_laughs",
        "export",
        "rdml_billion_laughs/run.rdml",
        "error",
        "declares a DTD/entities, which is refused for safety",
        "RDML with entity expansion (billion laughs)",
        "format=rdml",
    )

    # 300 MB of zeros: bzip2 packs it into a few hundred bytes; the zip directory declares the size.
    zpath = d("zip_bomb") / "run.rdml"
    zpath.parent.mkdir(parents=True)
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_BZIP2) as archive:
        info = zipfile.ZipInfo("rdml_data.xml", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_BZIP2
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(b"<rdml>")
            block = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(block)
    case(
        "zip_bomb",
        "export",
        "zip_bomb/run.rdml",
        "error",
        "zip member 'rdml_data.xml' would unpack to 314572806 bytes, more than the 268435456-byte limit",
        "zipped RDML whose member expands to 300 MB (zip bomb)",
        "format=rdml",
    )

    fixed_zip(d("zip_many_members") / "run.rdml", {f"part{i:03d}.xml": b"<x/>" for i in range(101)})
    case(
        "zip_many_members",
        "export",
        "zip_many_members/run.rdml",
        "error",
        "the RDML zip holds 101 members, more than 100",
        "zip with too many members",
        "format=rdml",
    )

    fixed_zip(
        d("zip_traversal") / "run.rdml", {"../../rdml_data.xml": rdml_body.replace("&xxe;", "S1").encode()}
    )
    case(
        "zip_traversal",
        "export",
        "zip_traversal/run.rdml",
        "error",
        "the RDML zip has a member with an unsafe path '../../rdml_data.xml'",
        "zip slip member name",
        "format=rdml",
    )

    # ---- wells against the sheets (importing.read_plate) -------------------------------------
    neg = [list(r) for r in small]
    neg[0] = cq_of(neg[0], "-1.5")
    write(d("negative_cq") / "chip.csv", render(head1, neg))
    case(
        "negative_cq",
        "plate",
        f"negative_cq/chip.csv;{S};{A}",
        "flag",
        "EXPFAIL:invalid_cq=1",
        "negative Cq: kept in the table, state EXPFAIL reason invalid_cq (audit: excluded)",
    )

    zero = [list(r) for r in small]
    zero[1] = cq_of(zero[1], "0")
    write(d("zero_cq") / "chip.csv", render(head1, zero))
    case(
        "zero_cq",
        "plate",
        f"zero_cq/chip.csv;{S};{A}",
        "flag",
        "EXPFAIL:invalid_cq=1",
        "Cq 0: state EXPFAIL reason invalid_cq",
    )

    failed = [cq_of(r, "999", call="Fail", quality="0") for r in small]
    write(d("all_failed_plate") / "chip.csv", render(head1, failed))
    case(
        "all_failed_plate",
        "plate",
        f"all_failed_plate/chip.csv;{S};{A}",
        "flag",
        "reads 24 wells; NOAMP:no_amplification=24",
        "every well 999/Fail: all NOAMP, nothing dropped",
    )

    case_rows = [list(r) for r in small]
    for r in case_rows[:6]:
        r[1] = r[1].lower()
    write(d("name_case_plate") / "chip.csv", render(head1, case_rows))
    case(
        "name_case_plate",
        "plate",
        f"name_case_plate/chip.csv;{S};{A}",
        "error",
        f"sample '{p1[0].lower()}' (first at line 13, 6 wells) matches '{p1[0]}' in samples.tsv only when ignoring upper/lower case",
        "plate spells a sample in lower case, sheet in upper case",
    )

    space_rows = [list(r) for r in small]
    for r in space_rows[:6]:
        r[1] = f" {r[1]}  "
    write(d("name_space_plate") / "chip.csv", render(head1, space_rows))
    case(
        "name_space_plate",
        "plate",
        f"name_space_plate/chip.csv;{S};{A}",
        "ok",
        "NOAMP:no_amplification=4; excluded none",
        "sample name padded with spaces on the plate: stripped, matches the sheet",
    )

    unknown = [list(r) for r in small]
    for r in unknown[:4]:
        r[1] = "P99_T0"
    write(d("sample_not_in_sheet") / "chip.csv", render(head1, unknown))
    case(
        "sample_not_in_sheet",
        "plate",
        f"sample_not_in_sheet/chip.csv;{S};{A}",
        "error",
        "sample 'P99_T0' (first at line 13, 4 wells) is not in samples.tsv",
        "sample on the plate but not in the sheet (unknown_names: error)",
    )
    write(d("sample_not_in_sheet_exclude") / "chip.csv", render(head1, unknown))
    case(
        "sample_not_in_sheet_exclude",
        "plate",
        f"sample_not_in_sheet_exclude/chip.csv;{S};{A}",
        "flag",
        "reads 24 wells; LOWSIGNAL:cq>lod=4; NOAMP:no_amplification=4; excluded:sample_not_in_sheet=4",
        "same with unknown_names: exclude: wells kept in the table with an exclusion reason",
        "unknown_names=exclude",
    )

    unknown_a = [list(r) for r in small]
    for r in unknown_a:
        if r[4] == "ESR1":
            r[4] = "KRT20"
    write(d("assay_not_in_sheet") / "chip.csv", render(head1, unknown_a))
    case(
        "assay_not_in_sheet",
        "plate",
        f"assay_not_in_sheet/chip.csv;{S};{A}",
        "error",
        "assay 'KRT20' (first at line 14, 4 wells) is not in assays.tsv",
        "assay on the plate but not in the sheet",
    )

    empty_name = [list(r) for r in small]
    empty_name[7][1] = ""
    write(d("empty_chamber") / "chip.csv", render(head1, empty_name))
    case(
        "empty_chamber",
        "plate",
        f"empty_chamber/chip.csv;{S};{A}",
        "flag",
        "NOAMP:no_amplification=4; excluded:no_sample_name=1",
        "a chamber without a sample name: excluded as no_sample_name, not dropped",
    )

    # formula injection: names starting with = + - @
    evil = ["=SUM(1+1)", "+41-2", "-cmd", "@HYPERLINK"]
    ev_rows = [list(r) for r in small]
    for i, r in enumerate(ev_rows):
        r[1] = evil[i // 6]
    write(d("formula_names") / "chip.csv", render(head1, ev_rows))
    ev_sheet = sheet_lines[:1] + [f"{n}\tpatient\tPX{i}\tT0\t\t\t\t\t\t\t" for i, n in enumerate(evil)]
    write(d("formula_names") / "samples.tsv", "\n".join(ev_sheet) + "\n")
    case(
        "formula_names",
        "escape",
        f"formula_names/chip.csv;formula_names/samples.tsv;{A}",
        "ok",
        "escaped '=SUM(1+1) '+41-2 '-cmd '@HYPERLINK; parquet keeps =SUM(1+1) +41-2 -cmd @HYPERLINK",
        "sample names starting with = + - @: TSV cells quoted against formula injection, Parquet keeps the name",
    )

    # ---- names: sheet entries on no plate ------------------------------------------------------
    case(
        "sheet_sample_on_no_plate",
        "names",
        f"_base/small.csv;{S};{A}",
        "note",
        "140 sample(s) in samples.tsv are on no plate of this batch",
        "sheet samples that no plate holds: a logged note, not an error (other batches may hold them)",
    )
    case(
        "sheet_assay_on_no_plate",
        "names",
        f"_base/small.csv;{S};{A}",
        "note",
        "46 assay(s) in assays.tsv are on no plate of this batch: ABCC1, AKT2, ALDH1A1",
        "assay in the sheet that no plate holds: a logged note listing it",
    )

    # ---- sheets ----------------------------------------------------------------------------------
    write(
        d("sheet_case_duplicate") / "samples.tsv",
        "\n".join(sheet_lines + [sheet_lines[8].replace("P01_T0", "p01_t0")]) + "\n",
    )
    case(
        "sheet_case_duplicate",
        "sheet",
        "sheet_case_duplicate/samples.tsv",
        "error",
        f"line {len(sheet_lines) + 1}, column sample: sample 'p01_t0' is the same name except for upper/lower case of line 9 ('P01_T0')",
        "two sheet rows whose names differ only in case",
        "kind=samples",
    )

    write(
        d("sheet_space_duplicate") / "samples.tsv",
        "\n".join(sheet_lines + [sheet_lines[8].replace("P01_T0", " P01_T0 ")]) + "\n",
    )
    case(
        "sheet_space_duplicate",
        "sheet",
        "sheet_space_duplicate/samples.tsv",
        "error",
        f"line {len(sheet_lines) + 1}, column sample: sample 'P01_T0' is a duplicate of line 9",
        "two sheet rows whose names differ only by white space",
        "kind=samples",
    )

    write(d("sheet_comma") / "samples.tsv", "\n".join(line.replace("\t", ",") for line in sheet_lines) + "\n")
    case(
        "sheet_comma",
        "sheet",
        "sheet_comma/samples.tsv",
        "error",
        "line 1: the samples sheet is comma-separated, not tab-separated — save it as TSV",
        "wrong delimiter in a sheet",
        "kind=samples",
    )

    write(d("sheet_empty") / "assays.tsv", "")
    case(
        "sheet_empty",
        "sheet",
        "sheet_empty/assays.tsv",
        "error",
        "the assays sheet is empty",
        "0-byte sheet",
        "kind=assays",
    )

    write(
        d("sheet_response") / "samples.tsv",
        "\n".join(sheet_lines[:8] + [with_cell(sheet_lines[8], 4, "Responder?")]) + "\n",
    )
    case(
        "sheet_response",
        "sheet",
        "sheet_response/samples.tsv",
        "error",
        "line 9, column response: response 'Responder?' is not 'responder' or 'non-responder'",
        "unknown response label",
        "kind=samples",
    )

    assay_lines = (EXAMPLE / "assays.tsv").read_text(encoding="utf-8").splitlines()
    write(
        d("assay_efficiency_percent") / "assays.tsv",
        "\n".join(assay_lines[:3] + [assay_lines[3].replace("1.926", "92.6")]) + "\n",
    )
    case(
        "assay_efficiency_percent",
        "sheet",
        "assay_efficiency_percent/assays.tsv",
        "error",
        "line 4, column efficiency: efficiency 92.6 is outside 1.0–2.2",
        "efficiency given as a percentage",
        "kind=assays",
    )

    write(
        d("plates_bad_format") / "plates.tsv",
        tsv([["plate", "batch", "path", "format"], ["chip01", "B1", "_base/chip_a.csv", "xlsx"]]),
    )
    case(
        "plates_bad_format",
        "sheet",
        "plates_bad_format/plates.tsv",
        "error",
        "line 2, column format: format 'xlsx' is not one of",
        "unknown export format in plates.tsv",
        "kind=plates",
    )

    write(
        d("plates_empty_batch") / "plates.tsv",
        tsv([["plate", "batch", "path", "format"], ["chip01", "", "_base/chip_a.csv", "biomark"]]),
    )
    case(
        "plates_empty_batch",
        "sheet",
        "plates_empty_batch/plates.tsv",
        "error",
        "line 2, column batch: empty batch",
        "plate without batch",
        "kind=plates",
    )

    sheet_inputs_cases(d, sheet_lines, assay_lines)
    settings_cases(d)

    # ---- whole workflow: snakemake -n in a scratch copy ---------------------------------------------
    write(d("config_key_misspelt") / "config.yaml", "lod: 35\nvalidprime:\n  sd_maxx: 0.3\n")
    case(
        "config_key_misspelt",
        "workflow",
        "config_key_misspelt/config.yaml",
        "error",
        "sd_maxx",
        "misspelt config key (validprime.sd_maxx): the dry run names it",
    )

    write(d("config_key_misspelt_hint") / "config.yaml", "lod: 35\nvalidprime:\n  sd_maxx: 0.3\n")
    case(
        "config_key_misspelt_hint",
        "workflow",
        "config_key_misspelt_hint/config.yaml",
        "error",
        "config_key_misspelt_hint/config.yaml: unknown config key 'validprime.sd_maxx' — did you mean 'validprime.sd_max'?",
        "misspelt config key: the message names the --configfile it is in and gives its full path (and a near miss: did you mean sd_max), "
        "not only a JSON-schema dump",
    )

    smaple = [sheet_lines[0].replace("sample\t", "smaple\t", 1)] + sheet_lines[1:]
    write(d("sheet_column_misspelt") / "samples.tsv", "\n".join(smaple) + "\n")
    write(d("sheet_column_misspelt") / "config.yaml", "samples: bad/sheet_column_misspelt/samples.tsv\n")
    case(
        "sheet_column_misspelt",
        "workflow",
        "sheet_column_misspelt/config.yaml;sheet_column_misspelt/samples.tsv",
        "error",
        "line 1, column sample: the samples sheet has no column 'sample' — rename column 'smaple' to 'sample'",
        "misspelt sheet column: message says rename",
    )

    plates_lines = (EXAMPLE / "plates.tsv").read_text(encoding="utf-8").splitlines()
    write(
        d("plate_path_missing") / "plates.tsv",
        "\n".join(
            plates_lines[:2] + [plates_lines[2].replace("chip02.csv", "chip02_final.csv")] + plates_lines[3:]
        )
        + "\n",
    )
    write(d("plate_path_missing") / "config.yaml", "plates: bad/plate_path_missing/plates.tsv\n")
    case(
        "plate_path_missing",
        "workflow",
        "plate_path_missing/config.yaml;plate_path_missing/plates.tsv",
        "error",
        "line 3, column path: the export 'resources/example/chips/chip02_final.csv' of plate 'chip02' does not exist",
        "plates.tsv points at a file that is not there",
    )

    write(
        d("plate_id_twice") / "plates.tsv",
        "\n".join(plates_lines[:2] + [plates_lines[2].replace("chip02\t", "chip01\t", 1)] + plates_lines[3:])
        + "\n",
    )
    write(d("plate_id_twice") / "config.yaml", "plates: bad/plate_id_twice/plates.tsv\n")
    case(
        "plate_id_twice",
        "workflow",
        "plate_id_twice/config.yaml;plate_id_twice/plates.tsv",
        "error",
        "line 3, column plate: plate 'chip01' is a duplicate of line 2",
        "two plates with the same id",
    )

    write(d("wf_marker_case") / "config.yaml", "positivity:\n  markers: [KRT19, EpCAM]\n")
    case(
        "wf_marker_case",
        "workflow",
        "wf_marker_case/config.yaml",
        "error",
        "positivity.markers: target gene 'EpCAM' is not in resources/example/assays.tsv (gene, role target) — did you mean 'EPCAM'?",
        "a marker spelt with another case than the assays sheet: the dry run stops with a did-you-mean (it was silently dropped)",
    )

    write(
        d("wf_one_export_twice") / "plates.tsv",
        "\n".join(plates_lines[:2] + [plates_lines[2].replace("chip02.csv", "chip01.csv")] + plates_lines[3:])
        + "\n",
    )
    write(d("wf_one_export_twice") / "config.yaml", "plates: bad/wf_one_export_twice/plates.tsv\n")
    case(
        "wf_one_export_twice",
        "workflow",
        "wf_one_export_twice/config.yaml;wf_one_export_twice/plates.tsv",
        "error",
        "line 3, column path: plate 'chip02' (resources/example/chips/chip01.csv) points at the same file as plate 'chip01' on line 2",
        "two plates pointing at one export: refused at the dry run (one export was read twice, another never)",
    )

    # ---- preprocessing (one batch) -------------------------------------------------------------------
    def two_chips(id_, rows_a, rows_b, outcome, expected, tests, xfail=""):
        write(d(id_) / "chip_a.csv", render(head1, rows_a))
        write(d(id_) / "chip_b.csv", render(head2, rows_b))
        case(
            id_,
            "preprocess",
            f"{id_}/chip_a.csv;{id_}/chip_b.csv;{S};{A}",
            outcome,
            expected,
            tests,
            xfail=xfail,
        )

    two_chips(
        "chip_without_ipc",
        mini1,
        [r for r in mini2 if r[1] != "IPC"],
        "flag",
        "calibration chip_b: IPC_MISSING",
        "chip without IPC wells: offset 0 and flag IPC_MISSING",
    )
    two_chips(
        "ipc_failed_one_chip",
        mini1,
        [cq_of(r, "999", "Fail", "0") if r[1] == "IPC" and r[4] == "IPC" else r for r in mini2],
        "flag",
        "calibration chip_b: IPC_FAILED",
        "IPC wells all failed on one chip: offset 0, flag IPC_FAILED",
    )
    two_chips(
        "gdna_lt4",
        [r for r in mini1 if r[1] not in GDNA[:2]],
        [r for r in mini2 if r[1] not in GDNA[:2]],
        "flag",
        "validprime chip_a: Low=7 | validprime chip_b: Low=7",
        "gDNA series with 3 (< 4) valid rows: ValidPrime confidence Low",
    )
    two_chips(
        "no_validprime_assay",
        [r for r in mini1 if r[4] != "ValidPrime"],
        [r for r in mini2 if r[4] != "ValidPrime"],
        "note",
        "no assay with role 'validprime' in the batch: ValidPrime skipped",
        "ValidPrime configured but no ValidPrime assay on the plates: skipped with a note",
    )

    def fail(r):  # a numeric Cq with call Fail (999 + Fail would be NOAMP, i.e. a non-detect)
        return cq_of(r, "30.5" if r[6] == "999" else r[6], "Fail", "0.1")

    all_failed_a, all_failed_b = [fail(r) for r in mini1], [fail(r) for r in mini2]
    n_all = len(mini1) + len(mini2)
    two_chips(
        "all_wells_failed",
        all_failed_a,
        all_failed_b,
        "flag",
        f"audit read={n_all} kept=0 excluded={n_all}",
        "every well failed (call Fail): all EXPFAIL, the audit shows every well excluded, cells not detected",
    )
    two_chips(
        "all_wells_failed_note",
        all_failed_a,
        all_failed_b,
        "note",
        "no usable well",
        "every well failed: preprocessing must say so in its notes (not only through empty results)",
    )

    # ---- normalisation -----------------------------------------------------------------------------------
    genes = {
        "ACTB": ("reference", 17.0),
        "GAPDH": ("reference", 18.0),
        "B2M": ("reference", 16.5),
        "PPIA": ("reference", 17.5),
        "KRT19": ("target", 27.0),
        "EPCAM": ("target", 29.0),
    }
    people = [("HD01", "healthy", "chip_a")] + [
        (f"P{i:02d}_T0", "patient", "chip_a" if i <= 4 else "chip_b") for i in range(1, 9)
    ]

    def cells(missing):
        rows = [["plate", "sample", "assay", "gene", "role", "kind", "cq", "cq_imputed", "detected"]]
        for k, (sample, kind, plate) in enumerate(people):
            for j, (gene, (role, base_cq)) in enumerate(genes.items()):
                cq = base_cq + 0.1 * ((k * 7 + j * 3) % 5)
                if missing(sample, plate, gene):
                    rows.append([plate, sample, gene, gene, role, kind, "", "36", "False"])
                else:
                    rows.append([plate, sample, gene, gene, role, kind, f"{cq:.2f}", f"{cq:.2f}", "True"])
        return tsv(rows)

    write(d("reference_not_detected") / "cells.tsv", cells(lambda s, p, g: s == "P02_T0" and g == "ACTB"))
    case(
        "reference_not_detected",
        "normalise",
        f"reference_not_detected/cells.tsv;{S};{A}",
        "flag",
        "P02_T0: reference_missing:ACTB",
        "a reference gene not detected in one sample: normaliser from the others, sample flagged",
    )
    write(
        d("chip_reference_missing") / "cells.tsv",
        cells(lambda s, p, g: p == "chip_b" and genes[g][0] == "reference"),
    )
    case(
        "chip_reference_missing",
        "normalise",
        f"chip_reference_missing/cells.tsv;{S};{A}",
        "flag",
        "reference: no normaliser (dcq NaN) for 4 sample(s): P05_T0, P06_T0, P07_T0, P08_T0",
        "all reference genes missing on a chip: those samples get no_normaliser (dcq NaN) and a note",
    )

    # ---- differential ------------------------------------------------------------------------------------
    def diff_inputs(id_, sheet_rows):
        header = ["sample", "kind", "patient", "timepoint", "response", "sites"]
        write(d(id_) / "samples.tsv", tsv([header] + sheet_rows))
        norm = [["sample", "gene", "dcq", "detected"]]
        for k, row in enumerate(sheet_rows):
            for j, gene in enumerate(("KRT19", "EPCAM")):
                norm.append([row[0], gene, f"{8 + 0.3 * ((k * 5 + j) % 7):.2f}", "True"])
        write(d(id_) / "normalised.tsv", tsv(norm))

    resp = [
        [
            f"P{i:02d}_T0",
            "patient",
            f"P{i:02d}",
            "T0",
            "responder" if i % 2 else "non-responder",
            "liver;brain" if i == 1 else "liver",
        ]
        for i in range(1, 13)
    ]
    resp[11][4] = ""
    diff_inputs("patient_no_response", resp)
    case(
        "patient_no_response",
        "differential",
        "patient_no_response/normalised.tsv;patient_no_response/samples.tsv",
        "note",
        "response: 1 patient(s)/sample(s) without 'response' excluded",
        "patient with no response label: left out of the response comparison and counted in a note",
        "comparison=response",
    )
    diff_inputs("site_one_patient", resp)
    case(
        "site_one_patient",
        "differential",
        "site_one_patient/normalised.tsv;site_one_patient/samples.tsv",
        "note",
        "sites: sites skipped, fewer than 5 in a group: brain (1 with / 11 without)",
        "a metastatic site with one patient: skipped with a note",
        "comparison=sites",
    )

    # ---- outcome tables ----------------------------------------------------------------------------------
    counts = (EXAMPLE / "ctc_counts.tsv").read_text(encoding="utf-8").splitlines()
    clinical = (EXAMPLE / "clinical.tsv").read_text(encoding="utf-8").splitlines()

    def table_case(id_, lines, name, outcome, expected, tests, kind):
        write(d(id_) / name, "\n".join(lines) + "\n")
        case(id_, "outcome", f"{id_}/{name}", outcome, expected, tests, f"table={kind}")

    table_case(
        "ctc_negative",
        counts[:3] + [counts[3].replace("\t32\t", "\t-3\t")] + counts[4:12],
        "ctc_counts.tsv",
        "error",
        "line 4, column ctc_count: negative CTC count -3",
        "negative CTC count",
        "counts",
    )
    table_case(
        "ctc_noninteger",
        counts[:2] + [counts[2].replace("\t2\t", "\t2.5\t")] + counts[3:12],
        "ctc_counts.tsv",
        "error",
        "line 3, column ctc_count: CTC count 2.5 is not a whole number",
        "non-integer CTC count",
        "counts",
    )
    table_case(
        "ctc_text",
        counts[:2] + [counts[2].replace("\t2\t", "\tmany\t")] + counts[3:12],
        "ctc_counts.tsv",
        "error",
        "line 3, column ctc_count: 'many' is not a number",
        "CTC count as text",
        "counts",
    )
    table_case(
        "ctc_duplicate_row",
        counts[:12] + [counts[3]],
        "ctc_counts.tsv",
        "error",
        "patient P02 has more than one count for timepoint baseline (lines 4, 13)",
        "duplicated patient × draw rows",
        "counts",
    )
    table_case(
        "ctc_missing_column",
        [counts[0].replace("ctc_count", "ctc")] + counts[1:12],
        "ctc_counts.tsv",
        "error",
        "line 1: missing column(s) ctc_count in the CTC counts table",
        "count column misnamed",
        "counts",
    )
    table_case(
        "clinical_event_time_zero",
        clinical[:3] + [clinical[3].replace("\t18.92\t", "\t0\t")] + clinical[4:10],
        "clinical.tsv",
        "error",
        "line 4, column pfs_months: event at time 0 months (must be after baseline)",
        "an event at time 0",
        "clinical",
    )
    table_case(
        "clinical_negative_time",
        clinical[:2] + [clinical[2].replace("\t11.72\t", "\t-2\t")] + clinical[3:10],
        "clinical.tsv",
        "error",
        "line 3, column os_months: negative time -2 months",
        "negative follow-up time",
        "clinical",
    )
    table_case(
        "clinical_event_not_binary",
        clinical[:2] + [clinical[2].replace("\t5.21\t1\t", "\t5.21\t2\t")] + clinical[3:10],
        "clinical.tsv",
        "error",
        "line 3, column pfs_event: event 2 is not 0 or 1",
        "event coded 2",
        "clinical",
    )
    table_case(
        "clinical_duplicate_patient",
        clinical[:10] + [clinical[2]],
        "clinical.tsv",
        "error",
        "patient P02 appears more than once (lines 3, 11)",
        "duplicated patient rows",
        "clinical",
    )
    write(d("patients_unmatched") / "ctc_counts.tsv", "\n".join(counts[:12]) + "\n")
    write(d("patients_unmatched") / "clinical.tsv", "\n".join(clinical[:3]) + "\n")
    case(
        "patients_unmatched",
        "outcome",
        "patients_unmatched/ctc_counts.tsv;patients_unmatched/clinical.tsv",
        "error",
        "patients do not match between CTC counts and clinical data",
        "patients in one table but not the other",
        "table=match",
    )

    inputs_left_cases(d, head1, rows1, mini2, head2, small, S, A)

    # ---- index --------------------------------------------------------------------------------------------
    cols = ["id", "stage", "inputs", "params", "outcome", "expected", "xfail", "tests"]
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case id"
    lines = ["\t".join(cols)] + ["\t".join(c[k] for k in cols) for c in CASES]
    (out / "cases.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "bad"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    build(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(CASES)} cases, {size} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
