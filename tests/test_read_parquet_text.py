"""miqe.read_parquet_text: the frame pandas reads, text made once per distinct value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctc_qpcr.miqe import read_parquet_text


def test_read_parquet_text_is_read_parquet_of_every_file(tmp_path):
    first = pd.DataFrame(
        {"sample": ["P1", None, "P1"], "cq": [20.5, np.nan, 31.0], "n": [1, 2, 3], "ok": [True, False, True]}
    )
    second = pd.DataFrame({"sample": [None, None], "cq": [1.0, 2.0], "n": [4, 5], "ok": [False, False]})
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    first.to_parquet(paths[0], index=False)
    second.astype({"sample": str}).assign(sample=["x&y", "P1"]).to_parquet(paths[1], index=False)
    columns = ["sample", "cq", "n", "ok"]
    expected = pd.concat([pd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)
    got = read_parquet_text(paths, columns)
    pd.testing.assert_frame_equal(got, expected)
    assert got["sample"].tolist() == ["P1", None, "P1", "x&y", "P1"]  # None, not NaN, as pandas reads


def test_read_parquet_text_keeps_the_rows_chosen_in_arrow(tmp_path):
    import pyarrow.compute as pc

    frame = pd.DataFrame({"sample": ["P1", "P2", None, "P1"], "cq": [1.0, 2.0, 3.0, 4.0]})
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    got = read_parquet_text([tmp_path / "a.parquet"], ["sample", "cq"], keep=lambda t: pc.equal(t["cq"], 4.0))
    assert got.to_dict("list") == {"sample": ["P1"], "cq": [4.0]}
