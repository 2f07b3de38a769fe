"""The bad-input corpus (tests/data/bad/, written by scripts/make_bad_inputs.py).

Every row of ``tests/data/bad/cases.tsv`` is run through the stage that reads
it, and must end with its expected outcome: an ``error`` whose message contains
the expected text (and names the file), or a clean run (``ok`` / ``flag`` /
``note``) whose summary contains it. Never a bare traceback, never a silent
drop. Cases whose behaviour belongs to a module owned elsewhere are marked
``xfail(strict=True, reason="owner: <module>")`` from the ``xfail`` column.

Library stages run in-process (fast); ``workflow`` cases run ``snakemake -n``
in one scratch copy of the repository.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BAD = REPO / "tests" / "data" / "bad"
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctc_qpcr import sheets  # noqa: E402
from ctc_qpcr.errors import ConfigError, InputError  # noqa: E402


def load_cases() -> list[dict]:
    with open(BAD / "cases.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


CASES = load_cases()


def params_of(case: dict) -> dict:
    return dict(p.split("=", 1) for p in case["params"].split(";") if p)


def inputs_of(case: dict) -> list[str]:
    return [p for p in case["inputs"].split(";") if p]


# --------------------------------------------------------------------------- stage runners
# Each returns a summary text of a clean run or raises InputError/ConfigError.


def run_export(case, tmp_path):
    from ctc_qpcr.parsers.registry import read_export

    (path,) = inputs_of(case)
    wells = read_export(path, fmt=params_of(case).get("format", "auto"), plate="P1")
    return f"reads {len(wells)} wells"


def _plate(path, samples, assays, unknown_names="error", plate="P1"):
    from ctc_qpcr.importing import read_plate

    fmt = "auto"
    return read_plate(path, fmt, plate, "B1", samples, assays, unknown_names=unknown_names)


def _sheets(sample_path, assay_path):
    return sheets.load_samples(sample_path), sheets.assays_frame(sheets.load_assays(assay_path))


def well_summary(wells: pd.DataFrame) -> str:
    parts = [f"reads {len(wells)} wells"]
    odd = wells[wells["state"] != "CALC"]
    for (state, reason), n in odd.groupby(["state", "state_reason"]).size().sort_index().items():
        parts.append(f"{state}:{reason}={n}")
    excluded = wells.loc[wells["excluded"] != "", "excluded"].value_counts().sort_index()
    parts += [f"excluded:{reason}={n}" for reason, n in excluded.items()] or ["excluded none"]
    return "; ".join(parts)


def run_plate(case, tmp_path):
    chip, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    wells = _plate(chip, samples, assays, params_of(case).get("unknown_names", "error"))
    assert len(wells) == _data_rows(chip), "a well was dropped"
    return well_summary(wells)


def _data_rows(chip: str) -> int:
    from ctc_qpcr.parsers.text import load_text

    lines = load_text(chip).lines
    start = next(i for i, line in enumerate(lines) if line.startswith("ID,"))
    return sum(1 for line in lines[start + 1 :] if line.strip(", "))


def run_names(case, tmp_path):
    from ctc_qpcr.importing import unplated_names

    chip, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    wells = _plate(chip, samples, assays)
    return " | ".join(unplated_names(wells, samples, assays))


def run_sheet(case, tmp_path):
    (path,) = inputs_of(case)
    kind = params_of(case)["kind"]
    df = getattr(sheets, f"load_{kind}")(path)
    text = f"loads {len(df)} rows"
    if "show" in params_of(case):  # show=<sample>:<column>: the value as read
        name, col = params_of(case)["show"].split(":")
        text += f"; {col} of {name} = {df.loc[df[df.columns[0]] == name, col].iloc[0]}"
    return text


def _merged(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def run_settings(case, tmp_path):
    """config_check.check_settings: the dry-run checks of settings against the sheets."""
    from ctc_qpcr.config_check import check_settings

    config_path, sample_path, assay_path = inputs_of(case)
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config = _merged(base, yaml.safe_load(Path(config_path).read_text(encoding="utf-8")))
    check_settings(
        config,
        sheets.load_samples(sample_path),
        sheets.load_assays(assay_path),
        sample_path,
        assay_path,
        config_path,
    )
    return "settings match the sheets"


def run_config(case, tmp_path):
    from ctc_qpcr.config_check import check_yaml_file

    (path,) = inputs_of(case)
    return f"{len(check_yaml_file(path))} keys"


def run_escape(case, tmp_path):
    from ctc_qpcr.tables import read_tsv, write_parquet, write_tsv

    chip, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    wells = _plate(chip, samples, assays)
    names = list(dict.fromkeys(wells["sample"]))
    write_tsv(wells, tmp_path / "w.tsv")
    write_parquet(wells, tmp_path / "w.parquet")
    header, *rows = (tmp_path / "w.tsv").read_text(encoding="utf-8").splitlines()
    col = header.split("\t").index("sample")
    written = list(dict.fromkeys(r.split("\t")[col] for r in rows))
    back = list(dict.fromkeys(read_tsv(tmp_path / "w.tsv")["sample"]))
    kept = list(dict.fromkeys(pd.read_parquet(tmp_path / "w.parquet")["sample"]))
    assert back == written, "reading the TSV back must show the quoted cell"
    assert kept == names, "the Parquet keeps the true name"
    assert all(w.startswith("'") for w in written)
    return "escaped " + " ".join(written) + "; parquet keeps " + " ".join(kept)


def run_preprocess(case, tmp_path):
    from ctc_qpcr.audit import build_audit, summarise_audit
    from ctc_qpcr.chip_options import chip_options
    from ctc_qpcr.preprocess import preprocess_batch

    *chips, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    wells = pd.concat([_plate(c, samples, assays, plate=Path(c).stem) for c in chips], ignore_index=True)
    usable = wells[wells["excluded"] == ""]
    # ipc.on_missing (default stop, tests/test_preprocess.py): the corpus checks the flags of each chip
    options = chip_options(
        {
            "ipc": {"on_missing": params_of(case).get("ipc_on_missing", "uncalibrated")},
            "replicates": {"on_extra": params_of(case).get("replicates_on_extra", "stop")},
        }
    )
    exports = {Path(c).stem: c for c in chips}
    result = preprocess_batch(
        usable, sheets.samples_frame(samples), assays, options, batch="B1", exports=exports
    )
    parts = list(result["notes"])
    for row in result["plate_calibration"].itertuples():
        parts.append(f"calibration {row.plate}: {row.flags}")
    vp = result["validprime_assays"]
    for plate, grp in vp.groupby("plate", sort=True):
        counts = grp["confidence"].value_counts().sort_index()
        parts.append(f"validprime {plate}: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    audit = build_audit(wells, result["well_flags"])
    summary = summarise_audit(audit)
    parts.append(
        f"audit read={len(audit)} kept={int((audit['fate'] == 'kept').sum())} "
        f"excluded={int((audit['fate'] == 'excluded').sum())}"
    )
    assert int(summary["read"].sum()) == len(wells)
    cells = result["cells"]
    parts.append(f"cells={len(cells)} detected={int(cells['detected'].astype(bool).sum())}")
    return " | ".join(parts)


def run_ntc(case, tmp_path):
    """ntc.ntc_table on one plate: the flagged plate × assay rows as check_ntc logs them."""
    from ctc_qpcr.ntc import ntc_table

    chip, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    wells = _plate(chip, samples, assays, plate=Path(chip).stem)
    table = ntc_table(wells, samples, {"B1": 35.0}, 3.32)
    rows = [
        f"{r.plate}/{r.assay}: {r.flag} ({r.ntc_amplified} of {r.ntc_wells} NTC wells amplified, lowest Cq "
        f"{r.ntc_min_cq:.2f}; samples' median Cq {r.samples_median_cq:.2f})"
        for r in table[table["flag"] != "ok"].itertuples()
    ]
    return f"{len(table)} plate × assay with NTC wells; " + " | ".join(rows or ["no NTC amplified"])


def run_normalise(case, tmp_path):
    from ctc_qpcr.normalise import normalise_study
    from ctc_qpcr.tables import read_tsv

    cells_path, sample_path, assay_path = inputs_of(case)
    samples, assays = _sheets(sample_path, assay_path)
    cells = read_tsv(cells_path)
    result = normalise_study(
        cells,
        sheets.samples_frame(samples),
        assays,
        strategies=["reference"],
        reference_genes=["ACTB", "GAPDH", "B2M", "PPIA"],
    )
    long = result["normalised"]["reference"]
    flags = long[long["flags"].fillna("") != ""].drop_duplicates("sample")
    return " | ".join(list(result["notes"]) + [f"{r.sample}: {r.flags}" for r in flags.itertuples()])


def run_differential(case, tmp_path):
    from ctc_qpcr.differential import run_comparison
    from ctc_qpcr.tables import read_tsv

    norm_path, sample_path = inputs_of(case)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    name = params_of(case)["comparison"]
    spec = next(c for c in config["differential"]["comparisons"] if c["name"] == name)
    samples = sheets.load_samples(sample_path)
    table, notes = run_comparison(read_tsv(norm_path), samples, spec, min_per_group=3, min_site_patients=5)
    return " | ".join(notes)


def _read_outcome_table(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")


def run_outcome(case, tmp_path):
    from ctc_qpcr import outcome

    table = params_of(case)["table"]
    paths = inputs_of(case)
    if table == "counts":
        return f"{len(outcome.validate_counts(_read_outcome_table(paths[0]), paths[0]))} rows"
    if table == "clinical":
        return f"{len(outcome.validate_clinical(_read_outcome_table(paths[0]), paths[0]))} rows"
    counts = outcome.validate_counts(_read_outcome_table(paths[0]), paths[0])
    clinical = outcome.validate_clinical(_read_outcome_table(paths[1]), paths[1])
    outcome.match_patients(counts, clinical, paths[0], paths[1], on_unmatched="error")
    return "patients match"


RUNNERS = {
    "export": run_export,
    "plate": run_plate,
    "names": run_names,
    "sheet": run_sheet,
    "escape": run_escape,
    "preprocess": run_preprocess,
    "ntc": run_ntc,
    "normalise": run_normalise,
    "differential": run_differential,
    "outcome": run_outcome,
    "settings": run_settings,
    "config": run_config,
}


def _param(case):
    marks = []
    if case["xfail"]:
        marks.append(pytest.mark.xfail(strict=True, reason=f"owner: {case['xfail']}"))
    if case["stage"] == "workflow":
        marks.append(pytest.mark.workflow)
    return pytest.param(case, id=case["id"], marks=marks)


def check(case: dict, kind: str, text: str) -> None:
    assert "Traceback" not in text, f"{case['id']}: a bare traceback:\n{text}"
    assert kind == ("error" if case["outcome"] == "error" else "ok"), (
        f"{case['id']}: expected {case['outcome']}, got {kind}: {text}"
    )
    assert case["expected"] in text, f"{case['id']}: expected {case['expected']!r} in:\n{text}"
    if kind == "error" and case["stage"] != "workflow":
        names = [Path(p).name for p in inputs_of(case)]
        assert any(n in text for n in names), f"{case['id']}: the message does not name the file: {text}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES if c["stage"] != "workflow"])
def test_bad_input(case, tmp_path, monkeypatch):
    monkeypatch.chdir(BAD)
    try:
        kind, text = "ok", RUNNERS[case["stage"]](case, tmp_path)
    except (InputError, ConfigError) as exc:
        kind, text = "error", str(exc)
    check(case, kind, text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    from workflow_helpers import make_workdir

    work = make_workdir(tmp_path_factory.mktemp("bad") / "w")
    shutil.copytree(BAD, work / "bad")
    return work


@pytest.mark.parametrize("case", [_param(c) for c in CASES if c["stage"] == "workflow"])
def test_bad_input_workflow(case, scratch):
    from workflow_helpers import snakemake

    config = next(p for p in inputs_of(case) if p.endswith(".yaml"))
    proc = snakemake(scratch, "-n", "--configfile", f"bad/{config}", check=False)
    kind = "error" if proc.returncode != 0 else "ok"
    check(case, kind, proc.stdout + proc.stderr)


def test_corpus_is_complete_and_small():
    assert len(CASES) >= 40
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for c in CASES:
        assert c["stage"] in RUNNERS or c["stage"] == "workflow", c["id"]
        assert c["outcome"] in ("error", "ok", "flag", "note"), c["id"]
        for p in inputs_of(c):
            assert (BAD / p).is_file(), f"{c['id']}: missing {p}"
    size = sum(p.stat().st_size for p in BAD.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024, size


def test_generator_reproduces_the_corpus(tmp_path):
    """The committed corpus is exactly what scripts/make_bad_inputs.py writes."""
    import subprocess

    out = tmp_path / "bad"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_bad_inputs.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    mine = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(BAD): p.read_bytes() for p in BAD.rglob("*") if p.is_file()}
    assert mine.keys() == committed.keys()
    assert [k for k in mine if mine[k] != committed[k]] == []
