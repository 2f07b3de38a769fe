"""What the site classifier is trained on (docs/methods.md §7): site labels, the
patient samples of one time point, the genes measured in every batch, clinical
covariates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ClassifierInputError
from .validation import grouped

log = logging.getLogger(__name__)


def _site_sets(samples: pd.DataFrame, sites_column: str) -> tuple[dict[str, set[str]], list[str]]:
    ids = samples["sample"].astype(str).str.strip()
    if ids.duplicated().any():
        dup = sorted(ids[ids.duplicated()].unique())
        raise ClassifierInputError(
            f"duplicate sample ids in samples sheet: {', '.join(dup)}", "give every sample one row"
        )
    cells = samples[sites_column].fillna("").astype(str).str.strip().str.lower()
    known = cells != ""
    unknown = sorted(ids[~known])
    site_sets = {
        s: {p.strip() for p in c.split(";") if p.strip()}
        for s, c in zip(ids[known], cells[known], strict=True)
    }
    return site_sets, unknown


def site_labels(
    samples: pd.DataFrame, sites_column: str = "sites", min_class: int = 8
) -> tuple[pd.DataFrame, list[dict]]:
    """Multi-label site indicator matrix from the ``;``-separated ``sites`` column (§7).

    Returns ``(Y, skipped)``: ``Y`` is indexed by ``sample`` with one 0/1 column per
    modelled site (sorted); ``skipped`` lists ``{"site", "n_pos", "n_neg", "reason"}``
    for sites with fewer than ``min_class`` positives or negatives.  Samples whose
    sites cell is empty are left out of ``Y`` (unknown, not "no metastasis") and
    listed as one ``skipped`` entry with ``site = ""``.
    """
    if "sample" not in samples.columns or sites_column not in samples.columns:
        raise ClassifierInputError(
            f"samples sheet needs columns 'sample' and '{sites_column}' for the classifier",
            f"add a '{sites_column}' column (';'-separated metastatic sites)",
        )
    site_sets, unknown = _site_sets(samples, sites_column)
    index = pd.Index(sorted(site_sets), name="sample")
    all_sites = sorted(set().union(*site_sets.values())) if site_sets else []
    Y = pd.DataFrame(
        {site: [int(site in site_sets[s]) for s in index] for site in all_sites}, index=index, dtype=int
    )
    skipped: list[dict] = []
    if unknown:
        log.warning("classifier: %d samples without a sites annotation left out", len(unknown))
        skipped.append(
            {
                "site": "",
                "n_pos": 0,
                "n_neg": 0,
                "reason": "no sites annotation for samples: " + ", ".join(unknown),
            }
        )
    keep = []
    for site in all_sites:
        n_pos = int(Y[site].sum())
        n_neg = int(len(Y) - n_pos)
        if n_pos < min_class or n_neg < min_class:
            skipped.append(
                {
                    "site": site,
                    "n_pos": n_pos,
                    "n_neg": n_neg,
                    "reason": f"{n_pos} positives / {n_neg} negatives; "
                    f"need at least {min_class} of each (docs/methods.md §7)",
                }
            )
        else:
            keep.append(site)
    return Y[keep], skipped


def shared_panel(
    cells: pd.DataFrame, samples: Sequence[str] | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """Genes measured in every batch (issue 13.3) from the Cells table.

    A gene is measured in a batch when the batch has a cell (any plate, detected or
    not) for it; only rows of ``samples`` count when given.  Returns
    ``(genes, lacking)``: the genes of every batch (sorted) and, for the others,
    the batches that lack them.
    """
    need = {"batch", "sample", "gene"}
    if not need <= set(cells.columns):
        raise ClassifierInputError(
            "Cells table needs columns batch, sample, gene", "give results/preprocessed/cq of this workflow"
        )
    rows = cells[["batch", "sample", "gene"]].astype(str)
    if samples is not None:
        rows = rows[rows["sample"].isin(set(map(str, samples)))]
    batches = sorted(rows["batch"].unique())
    measured = rows.drop_duplicates(["batch", "gene"]).groupby("gene")["batch"].agg(set)
    lacking = {g: [b for b in batches if b not in have] for g, have in measured.items()}
    shared = sorted(g for g, miss in lacking.items() if not miss)
    return shared, {g: miss for g, miss in sorted(lacking.items()) if miss}


@dataclass
class TrainingData:
    """Patient samples of one time point with their ΔCq and patient groups."""

    X: np.ndarray
    genes: list[str]
    sheet: pd.DataFrame
    groups: np.ndarray
    notes: list[str] = field(default_factory=list)


def _matrix(matrix: pd.DataFrame) -> pd.DataFrame:
    mat = matrix.set_index("sample") if "sample" in matrix.columns else matrix.copy()
    mat.index = mat.index.astype(str).str.strip()
    if mat.index.duplicated().any():
        raise ClassifierInputError("duplicate sample ids in the expression matrix", "give one row per sample")
    return mat.apply(pd.to_numeric, errors="coerce")


def _patient_sheet(samples: pd.DataFrame, one_timepoint: str | None, notes: list[str]) -> pd.DataFrame:
    sheet = samples.copy()
    sheet["sample"] = sheet["sample"].astype(str).str.strip()
    if "kind" in sheet.columns:
        sheet = sheet[sheet["kind"].astype(str).str.strip() == "patient"]
    if one_timepoint is not None and "timepoint" in sheet.columns:
        keep = sheet["timepoint"].astype(str).str.strip() == str(one_timepoint)
        notes.append(f"one_timepoint={one_timepoint}: {int(keep.sum())} of {len(sheet)} patient samples kept")
        sheet = sheet[keep]
    return sheet


def _restrict_panel(genes: list[str], panel: tuple[list[str], dict] | None, notes: list[str]) -> list[str]:
    if panel is None:
        return genes
    shared, lacking = panel
    dropped = [g for g in genes if g in lacking]
    if dropped:
        notes.append(
            "shared panel: genes not measured in every batch left out of the model: "
            + "; ".join(f"{g} (not in {', '.join(lacking[g])})" for g in dropped)
        )
    else:
        notes.append("shared panel: every gene of the matrix is measured in every batch")
    return [g for g in genes if g not in lacking]


def prepare(
    matrix: pd.DataFrame,
    samples: pd.DataFrame,
    one_timepoint: str | None,
    panel: tuple[list[str], dict] | None = None,
) -> TrainingData:
    """Patient samples (of ``one_timepoint``) in both the matrix and the sheet, sorted;
    genes with at least one value (and, with ``panel`` from :func:`shared_panel`,
    measured in every batch); patient groups for grouped CV."""
    notes: list[str] = []
    mat = _matrix(matrix)
    sheet = _patient_sheet(samples, one_timepoint, notes)
    missing = sorted(set(sheet["sample"]) - set(mat.index))
    if missing:
        notes.append("samples in the sheet but not in the matrix (left out): " + ", ".join(missing))
    sheet = sheet[sheet["sample"].isin(mat.index)].sort_values("sample").reset_index(drop=True)
    if sheet.empty:
        raise ClassifierInputError(
            "no patient samples shared by the matrix and the samples sheet",
            "check that the sample names of the sheet are those of the exports",
        )
    mat = mat.loc[sheet["sample"]]
    genes = _restrict_panel(list(mat.columns), panel, notes)
    empty = [g for g in genes if mat[g].isna().all()]
    if empty:
        notes.append("genes without any value left out: " + ", ".join(empty))
        genes = [g for g in genes if g not in empty]
    if "patient" in sheet.columns:
        has = sheet["patient"].notna() & (sheet["patient"].astype(str) != "")
        groups = sheet["patient"].where(has, sheet["sample"]).astype(str).to_numpy()
    else:
        groups = sheet["sample"].to_numpy()
    if grouped(groups):
        notes.append(
            "several samples per patient: outer and inner CV grouped by patient (StratifiedGroupKFold)"
        )
    return TrainingData(mat[genes].to_numpy(dtype=float), genes, sheet, groups, notes)


def clinical_frame(sheet: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Clinical covariates of the baseline model: numbers where every value is one."""
    absent = [c for c in columns if c not in sheet.columns]
    if absent:
        raise ClassifierInputError(
            "clinical covariate columns not in the samples sheet: " + ", ".join(absent),
            "add them to the samples sheet or remove them from classifier.clinical_columns",
        )
    out = pd.DataFrame(index=range(len(sheet)))
    for c in columns:
        col = sheet[c].reset_index(drop=True)
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() == col.notna().sum() and col.notna().any():
            out[c] = num.astype(float)
        else:
            out[c] = col.astype(object).where(col.notna(), np.nan)
    return out
