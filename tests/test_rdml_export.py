"""RDML 1.3 export: valid against the RDML XSD, and read back by the workflow's own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.layout import positions
from ctc_qpcr.parsers import rdml
from ctc_qpcr.rdml_write import BatchWells, study_rdml, write_study_rdml


def _xsd() -> Path:
    rdmlpython = pytest.importorskip("rdmlpython")
    path = Path(rdmlpython.__file__).parent / "schema" / "RDML_v1_3_REC.xsd"
    if not path.is_file():
        pytest.skip("rdmlpython ships no RDML 1.3 XSD")
    return path


def _wells() -> pd.DataFrame:
    chip = pd.DataFrame(
        {
            "batch": "B1",
            "plate": "chip01",
            "well": ["S01-A01", "S01-A02", "S02-A01", "S02-A02", "S48-A48"],
            "sample": ["P01", "P01", "NTC & co", "NTC & co", "P01"],
            "assay": ["KRT19", "ACTB", "KRT19", "ACTB", "ACTB"],
            "cq": [27.5, 18.25, np.nan, 36.1, 19.0],
            "state": ["CALC", "CALC", "NOAMP", "LOWSIGNAL", "CALC"],
            "fate": ["kept", "kept", "kept", "excluded", "kept"],
            "reason": ["", "", "", "NTC<LOD", ""],
        }
    )
    plate = pd.DataFrame(
        {
            "batch": "B2",
            "plate": "plate02",
            "well": ["A1", "A12", "H1", "H12"],
            "sample": ["P02", "P02", "std_10", "std_10"],
            "assay": ["KRT19", "ACTB", "KRT19", "ACTB"],
            "cq": [30.0, 20.0, 25.0, 15.5],
            "state": ["CALC"] * 4,
            "fate": ["kept", "excluded", "kept", "kept"],
            "reason": ["", "HIGHSD (0.9 > 0.354)", "", ""],
        }
    )
    return pd.concat([chip, plate], ignore_index=True)


SAMPLES = pd.DataFrame(
    {
        "sample": ["P01", "P02", "NTC & co", "std_10"],
        "kind": ["patient", "patient", "ntc", "standard"],
        "patient": ["p1", "p2", None, None],
        "response": ["responder", "non-responder", None, None],
        "quantity": [None, None, None, "10"],
    }
)
ASSAYS = pd.DataFrame(
    {
        "assay": ["KRT19", "ACTB"],
        "gene": ["KRT19", "ACTB"],
        "role": ["target", "reference"],
        "efficiency": [1.95, 2.0],
        "lod": [np.nan, 34.0],
    }
)
EFFICIENCY = pd.DataFrame(
    {
        "assay": ["KRT19", "ACTB", "ACTB"],
        "E": [1.95, 2.0, 2.0],
        "source": ["assays_sheet", "standards", "standards"],
    }
)


@pytest.fixture()
def exported(tmp_path) -> Path:
    path = tmp_path / "study.rdml"
    path.write_text(study_rdml(_wells(), SAMPLES, ASSAYS, EFFICIENCY, 35.0, "9.9"))
    return path


def test_layout_positions_worked_examples():
    where, geometry = positions(pd.Series(["S01-A01", "S02-A01", "S96-A96"]))
    assert (geometry.rows, geometry.columns) == (96, 96)
    assert where["position"].tolist() == [1, 97, 9216]
    where, geometry = positions(pd.Series(["A1", "H12", "B03"]))
    assert (geometry.kind, geometry.rows, geometry.columns) == ("plate", 8, 12)
    assert where["position"].tolist() == [1, 96, 15]
    where, geometry = positions(pd.Series(["P24", "A1"]))
    assert (geometry.rows, geometry.columns) == (16, 24) and where["position"].tolist() == [384, 1]
    where, geometry = positions(pd.Series(["S01-A01", "S40-A30"]))
    assert (geometry.rows, geometry.columns) == (48, 48)


def test_export_validates_against_the_rdml_1_3_xsd(exported):
    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.parse(str(_xsd())))
    document = etree.parse(str(exported))
    assert schema.validate(document), schema.error_log.last_error
    ns = {"r": "http://www.rdml.org"}
    assert document.getroot().get("version") == "1.3"
    # Sheet annotations, sample types, target types, LOD and efficiency.
    p01 = document.find("r:sample[@id='P01']", ns)
    annotations = {
        a.findtext("r:property", namespaces=ns): a.findtext("r:value", namespaces=ns)
        for a in p01.findall("r:annotation", ns)
    }
    assert annotations == {"kind": "patient", "patient": "p1", "response": "responder"}
    assert document.findtext("r:sample[@id='NTC & co']/r:type", namespaces=ns) == "ntc"
    assert document.findtext("r:sample[@id='std_10']/r:type", namespaces=ns) == "std"
    assert document.findtext("r:target[@id='ACTB']/r:type", namespaces=ns) == "ref"
    assert float(document.findtext("r:target[@id='ACTB']/r:detectionLimit", namespaces=ns)) == 34.0
    assert float(document.findtext("r:target[@id='KRT19']/r:detectionLimit", namespaces=ns)) == 35.0
    assert float(document.findtext("r:target[@id='KRT19']/r:amplificationEfficiency", namespaces=ns)) == 1.95
    # Exclusions per well, with the reason (chip01 is a 48.48 array: S02-A02 = 48 + 2).
    excl = {
        (run.get("id"), react.get("id")): react.findtext("r:data/r:excl", namespaces=ns)
        for run in document.iterfind(".//r:run", ns)
        for react in run.iterfind("r:react", ns)
    }
    assert {k: v for k, v in excl.items() if v} == {
        ("chip01", "50"): "NTC<LOD",
        ("plate02", "12"): "HIGHSD (0.9 > 0.354)",
    }


def test_reading_the_export_back_gives_the_same_wells(exported):
    back = rdml.read(str(exported))
    back["plate"] = back["run"].str.split("/").str[1]
    back["position"] = back["well"].str.split(":").str[1]
    original = _wells()
    keyed = []
    for _, group in original.groupby("plate"):
        where, geometry = positions(group["well"])
        numbered = group.assign(position=where["position"].to_numpy())
        if geometry.kind == "plate":  # the reader names plate wells A1-style
            numbered["position"] = (
                group["well"].str.replace(r"^([A-Z]+)0*(\d+)$", r"\1\2", regex=True).to_numpy()
            )
        keyed.append(numbered.astype({"position": str}))
    expected = pd.concat(keyed)[["plate", "position", "sample", "assay", "cq"]]
    got = back[["plate", "position", "sample", "assay", "cq"]]
    merged = expected.merge(got, on=["plate", "position"], suffixes=("", "_back"), validate="one_to_one")
    assert len(merged) == len(original) == len(back)
    assert (merged["sample"] == merged["sample_back"]).all()
    assert (merged["assay"] == merged["assay_back"]).all()
    np.testing.assert_allclose(merged["cq"], merged["cq_back"], rtol=0, atol=1e-12, equal_nan=True)
    assert back.loc[back["sample"] == "std_10", "sample_type"].eq("Standard").all()


def test_export_is_deterministic():
    first = study_rdml(_wells(), SAMPLES, ASSAYS, EFFICIENCY, 35.0, "9.9")
    shuffled = _wells().sample(frac=1, random_state=3)
    assert study_rdml(shuffled, SAMPLES, ASSAYS, EFFICIENCY, 35.0, "9.9") == first


def _batch_files(tmp_path, wells: pd.DataFrame, batches: list[list[int]]) -> list[Path]:
    paths = []
    for number, rows in enumerate(batches, 1):
        path = tmp_path / f"B{number}.parquet"
        wells.iloc[rows].to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_streamed_export_is_the_whole_document(tmp_path):
    """write_study_rdml (one batch read at a time) gives the bytes of study_rdml of all wells,
    also when a plate's wells are split over batches, with tied wells and a missing sample."""
    wells = _wells()
    # S01-A01 again: the same assay (a tie), another assay (sorts first); a well without sample
    extra = wells.iloc[[0, 5, 0]].assign(cq=[31.0, 21.0, 17.0], sample=["P01", None, "P01"])
    extra["assay"] = ["KRT19", "KRT19", "ACTB"]
    wells = pd.concat([wells, extra], ignore_index=True)
    paths = _batch_files(tmp_path, wells, [[5, 1, 9], [0, 2, 3, 4, 6], [7, 8, 10, 11]])
    out = tmp_path / "rdml" / "study.rdml"
    columns = list(wells.columns)
    batches = BatchWells(paths, columns)
    write_study_rdml(out, batches, SAMPLES, ASSAYS, EFFICIENCY, 35.0, "9.9")
    whole = pd.concat([pd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)
    assert out.read_bytes() == study_rdml(whole, SAMPLES, ASSAYS, EFFICIENCY, 35.0, "9.9").encode()
    assert (batches.wells, batches.plate_names()) == (len(wells), ["chip01", "plate02"])
    assert not batches._held  # every batch dropped once its plates were written
    assert '<sample id="None">' in out.read_text()  # as the whole-table export names it


def test_escaping_once_per_distinct_text_is_escaping_each():
    from ctc_qpcr.rdml_write import _esc, _esc_each

    texts = pd.Series(["a<b", None, "a<b", "", 'x&"y"', np.nan, "a<b"], index=[9, 8, 7, 6, 5, 4, 3])
    mixed = pd.Series([1, 1.0, True, -0.0, 0.0, None], dtype=object)  # hash-equal, printed apart
    for values in (texts, mixed, pd.Series([0.0, -0.0, np.nan]), pd.Series([], dtype=object)):
        pd.testing.assert_series_equal(_esc(values), _esc_each(values), check_dtype=False)
    assert _esc(texts).tolist() == ["a&lt;b", "", "a&lt;b", "", "x&amp;&quot;y&quot;", "", "a&lt;b"]


def test_float_text_is_pythons_str_at_every_magnitude():
    """Arrow's cast where it prints as Python does (1e-4 to 1e10, zero), Python elsewhere."""
    from ctc_qpcr.rdml_write import _float_repr

    rng = np.random.default_rng(17)
    low, high = np.array([1e-12, 1e20]).view(np.int64)
    edges = [0.0, -0.0, 1e-4, np.nextafter(1e-4, 0), 1e10, np.nextafter(1e10, 0), 99999.0, 19.0, 27.5]
    values = np.concatenate(
        [
            rng.integers(low, high, 200_000).view(np.float64),  # every digit count
            np.round(rng.uniform(0, 50, 100_000), 2),  # Cq-like, with whole numbers
            np.floor(rng.uniform(0, 1e12, 20_000)),
            -rng.uniform(0, 1e6, 10_000),
            edges,
            [np.inf, -np.inf, 1e300, 5e-324],
        ]
    )
    text = _float_repr(np.concatenate([values, [np.nan]])).to_pylist()
    assert text[:-1] == [str(v) for v in values.tolist()]
    assert text[-1] is None  # no Cq: no <cq> element


def test_one_value_escaped_as_a_column():
    from ctc_qpcr.rdml_write import _esc1, _esc_each

    values = ['a<b&"c">', None, np.nan, 3, 2.5, True, "", "plain"]
    assert [_esc1(v) for v in values] == _esc_each(pd.Series(values, dtype=object)).tolist()


def test_layout_positions_reused_only_for_the_same_well_ids():
    import pyarrow as pa

    from ctc_qpcr.rdml_write import Layouts

    layouts = Layouts()
    chip = pa.chunked_array([["S01-A01", "S02-A01"]])
    first = layouts.of(chip)
    assert layouts.of(pa.chunked_array([["S01-A01"], ["S02-A01"]])) is first  # same ids, other chunks
    other = layouts.of(pa.chunked_array([["S01-A01", "S40-A30"]]))
    assert other is not first and (other[1].rows, other[1].columns) == (48, 48)
    assert other[0]["position"].tolist() == [1, 39 * 48 + 30]
