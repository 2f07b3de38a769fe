"""CTC positivity of patient samples against healthy-donor (HD) controls (docs/methods.md §5).

Per marker (gene) and patient sample, on the ΔCq scale (smaller = more expression):

* ``max_healthy`` — positive if ΔCq < min over HDs (§5 rule 2);
* ``mean_ksd``  — positive if ΔCq < mean_HD − k·SD_HD (rule 3, k configurable, default 2);
* ``mean_3sd``  — the same with k = 3 (always reported, §5 quotes k = 2 or 3);
* ``fold``      — positive if ΔΔCq = ΔCq − mean_HD ≤ −c (rule 4, c = ``fold``, default 1 → ≥ 2-fold);
* ``healthy_absent`` — marker detected in no HD: positive ⇔ detected in the sample (rule 5).

Choices made here (documented deviations / precisions):

* A marker can only be positive where it is *detected* in the sample: an imputed
  non-detect is never called positive, whatever its ΔCq.
* HD statistics use every HD value of the gene, imputed non-detects included (§6:
  response = ΔCq after imputation). When *no* HD detects the marker these
  statistics describe only the imputation, so rule 5 replaces rules 2–4 for that
  marker (each of ``max_healthy``, ``mean_ksd``, ``mean_3sd``, ``fold`` then equals
  ``healthy_absent``).
* SD is the sample SD (ddof = 1); with fewer than 2 HDs the SD rules are False and a
  note is added.

Sample-level call (rule 6): positive if at least ``min_markers`` markers of the
``markers`` subset are positive under the rule ``rule``. The default subset is all
targets, but §5 warns that with 46 markers and "any marker" the expected false-positive
rate is ~0.9 for HD-like samples; pre-specify an epithelial/tumour subset, e.g. KRT19,
KRT8, KRT18, EPCAM, MUC1, ERBB2, SCGB2A2 (mammaglobin), and check the leave-one-HD-out
``specificity`` table.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConfigError
from .options import from_config
from .tables import cell_text, tsv_parts

RULES = ("max_healthy", "mean_ksd", "mean_3sd", "fold", "healthy_absent")
#: The columns of the normalised table the calls read.
NORMALISED_COLUMNS = ["sample", "gene", "dcq", "detected"]
#: Columns of the per-marker calls with one value per gene (the HD statistics).
PER_GENE = ("hd_mean", "hd_sd", "hd_min")
#: The number columns of the per-marker calls, in their order (fold_change from ddcq).
CALL_NUMBERS = ("dcq", "hd_mean", "hd_sd", "hd_min", "ddcq", "fold_change")
#: Rows of the per-marker calls turned into text at a time (issue 17: peak memory).
CALLS_BLOCK = 1 << 20


@dataclass(frozen=True)
class PositivityOptions:
    """``positivity:`` (methods §5). ``markers`` empty = every target gene."""

    markers: tuple[str, ...]
    rule: str  # one of RULES
    k: float
    fold: float
    min_markers: int


def positivity_options(given: dict | None = None) -> PositivityOptions:
    """The ``positivity:`` section (missing keys: the schema's defaults), checked."""
    return from_config(PositivityOptions, "positivity", given)


def hd_thresholds(hd: np.ndarray, k: float) -> dict:
    """Summary of HD ΔCq values of one marker (NaNs dropped): mean, SD, min, mean − k·SD,
    mean − 3·SD (§5 worked example: 12.74, 0.658, 11.8, 11.4239, 10.7659)."""
    x = np.asarray(hd, dtype=float)
    x = x[np.isfinite(x)]
    mean = float(x.mean()) if x.size else math.nan
    sd = float(x.std(ddof=1)) if x.size >= 2 else math.nan
    return {
        "n": int(x.size),
        "mean": mean,
        "sd": sd,
        "min": float(x.min()) if x.size else math.nan,
        "mean_ksd": mean - k * sd,
        "mean_3sd": mean - 3.0 * sd,
    }


def _rules(
    dcq: np.ndarray, detected: np.ndarray, mean, sd, low, none_detected, k: float, fold: float
) -> dict:
    """The §5 rules given the HD statistics (1-D per marker, or 2-D per sample × marker)."""
    with np.errstate(invalid="ignore", all="ignore"):
        ddcq = dcq - mean
        det = detected & np.isfinite(dcq)
        out = {
            "max_healthy": det & (dcq < low),
            "mean_ksd": det & (dcq < mean - k * sd),
            "mean_3sd": det & (dcq < mean - 3.0 * sd),
            "fold": det & (ddcq <= -fold),
            "healthy_absent": det & none_detected,
        }
    for rule in ("max_healthy", "mean_ksd", "mean_3sd", "fold"):
        out[rule] = np.where(none_detected, out["healthy_absent"], out[rule])
    out["ddcq"] = ddcq
    return out


def _rule_matrix(
    dcq: np.ndarray, detected: np.ndarray, hd_dcq: np.ndarray, hd_detected: np.ndarray, k: float, fold: float
) -> dict[str, np.ndarray]:
    """Vectorised rules. ``dcq``/``detected``: samples × markers; ``hd_*``: HDs × markers."""
    n_markers = dcq.shape[1]
    with np.errstate(invalid="ignore", all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns → NaN
        n_hd = np.isfinite(hd_dcq).sum(axis=0) if hd_dcq.size else np.zeros(n_markers, int)
        if hd_dcq.shape[0] == 0:
            mean = sd = low = np.full(n_markers, np.nan)
        else:
            mean = np.nanmean(hd_dcq, axis=0)
            sd = np.where(n_hd >= 2, np.nanstd(hd_dcq, axis=0, ddof=1), np.nan)
            low = np.nanmin(hd_dcq, axis=0)
        none_detected = (
            ~(hd_detected & np.isfinite(hd_dcq)).any(axis=0) if hd_dcq.size else np.ones(dcq.shape[1], bool)
        )
    out = _rules(dcq, detected, mean, sd, low, none_detected, k, fold)
    out.update({"hd_mean": mean, "hd_sd": sd, "hd_min": low})
    return out


def _leave_one_out_rules(
    hd_dcq: np.ndarray, hd_det: np.ndarray, k: float, fold: float
) -> dict[str, np.ndarray]:
    """Rules for every HD against all the other HDs at once (HDs × markers).

    Same statistics as :func:`_rule_matrix` on the other HDs, from column totals minus
    the HD's own value (O(HDs × markers) instead of O(HDs² × markers)): mean from sums,
    SD from sums of squares centred on the all-HD mean (no cancellation problem), min as
    the smallest value, or the second smallest for the HD holding the minimum. Equal to
    the per-HD recomputation up to floating-point rounding.
    """
    x = np.asarray(hd_dcq, float)
    fin = np.isfinite(x)
    xz = np.where(fin, x, 0.0)
    cnt = fin.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(cnt > 0, xz.sum(axis=0) / np.maximum(cnt, 1), 0.0)
        d = np.where(fin, x - centre, 0.0)
        cnt_o = cnt[None, :] - fin  # values of the other HDs
        sum_o = d.sum(axis=0)[None, :] - d
        sq_o = (d * d).sum(axis=0)[None, :] - d * d
        mean = np.where(cnt_o > 0, centre + sum_o / cnt_o, np.nan)
        var = (sq_o - sum_o * sum_o / cnt_o) / (cnt_o - 1)
        sd = np.where(cnt_o >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)
    if x.shape[0] >= 2:
        two = np.sort(np.where(fin, x, np.inf), axis=0)[:2]
        low = np.where(fin & (x == two[0][None, :]), two[1][None, :], two[0][None, :])
    else:
        low = np.full(x.shape, np.inf)
    low = np.where(np.isinf(low), np.nan, low)
    det_n = (hd_det & fin).sum(axis=0)
    none_detected = (det_n[None, :] - (hd_det & fin)) == 0
    return _rules(x, hd_det, mean, sd, low, none_detected, k, fold)


def call_positivity(
    normalised: pd.DataFrame,
    samples: pd.DataFrame,
    options: PositivityOptions | None = None,
) -> dict:
    """Positivity calls per marker and per sample, plus leave-one-HD-out specificity (§5).

    ``normalised``: long ``sample, gene, dcq, detected`` (one strategy). ``samples``:
    the samples sheet (``kind`` = patient / healthy; ``patient``, ``timepoint`` optional).
    ``options``: :func:`positivity_options` (None: the schema's defaults).

    Returns a dict of DataFrames (and ``notes``, a list of strings):

    * ``calls``: sample, gene, dcq, detected, hd_mean, hd_sd, hd_min, ddcq, fold_change,
      one boolean per rule in :data:`RULES`, ``in_markers``, ``positive`` (the chosen
      rule) — one row per patient sample × gene;
    * ``sample_calls``: sample, patient, timepoint, n_positive_markers, positive;
    * ``summary``: per timepoint n, n_positive, fraction;
    * ``specificity``: per rule n_healthy, n_false_positive, specificity (sample-level
      rule with ``markers``/``min_markers``), mean_marker_fp_rate.
    """
    o = options if options is not None else positivity_options()
    rule, k, fold, min_markers = o.rule, o.k, o.fold, o.min_markers
    if rule not in RULES:
        raise ConfigError(f"config positivity.rule: {rule!r} is not one of {', '.join(RULES)}")
    notes: list[str] = []
    sheet = samples.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    for col in ("patient", "timepoint"):
        if col not in sheet.columns:
            sheet[col] = ""
    genes, wanted, dcq, det, hd_ids, pt_ids = _wide(normalised, sheet, list(o.markers) or None, notes)
    hd_dcq, hd_det = dcq.loc[hd_ids].to_numpy(float), det.loc[hd_ids].to_numpy(bool)
    pt_dcq, pt_det = dcq.loc[pt_ids].to_numpy(float), det.loc[pt_ids].to_numpy(bool)
    res = _rule_matrix(pt_dcq, pt_det, hd_dcq, hd_det, k, fold)
    in_markers = np.isin(genes, wanted)

    calls = _marker_calls(pt_ids, genes, pt_dcq, pt_det, res, in_markers, rule)
    sample_calls, summary = _sample_level(res[rule], in_markers, sheet, pt_ids, min_markers)
    specificity = leave_one_hd_out(hd_dcq, hd_det, in_markers, k=k, fold=fold, min_markers=min_markers)
    return {
        "calls": calls,
        "sample_calls": sample_calls,
        "summary": summary,
        "specificity": specificity,
        "notes": notes,
    }


def _marker_calls(pt_ids, genes, pt_dcq, pt_det, res: dict, in_markers, rule: str) -> pd.DataFrame:
    """One row per patient sample × gene with a ΔCq: the values, HD statistics and each rule's
    call. Built once from the sample × gene matrices (sample and gene as categories, each name
    converted once when written)."""
    keep = np.isfinite(pt_dcq.ravel())
    sample_codes, gene_codes = np.divmod(np.flatnonzero(keep), len(genes))

    def per_gene(values):
        return np.asarray(values)[gene_codes]

    def per_cell(values):
        return np.asarray(values).ravel()[keep]

    numbers = np.empty((len(CALL_NUMBERS), len(gene_codes)))  # one block: no copy to consolidate
    values = dict(zip(CALL_NUMBERS, numbers, strict=True))
    values["dcq"][:] = per_cell(pt_dcq)
    for name in PER_GENE:
        values[name][:] = per_gene(res[name])
    values["ddcq"][:] = per_cell(res["ddcq"])
    values["fold_change"][:] = 2.0 ** (-values["ddcq"])
    calls = pd.DataFrame(numbers.T, columns=list(CALL_NUMBERS), copy=False)
    names = pd.Index(pt_ids, dtype=object), pd.Index(genes, dtype=object)
    calls.insert(0, "sample", pd.Categorical.from_codes(sample_codes, categories=names[0]))
    calls.insert(1, "gene", pd.Categorical.from_codes(gene_codes, categories=names[1]))
    calls.insert(3, "detected", per_cell(pt_det))
    for r in RULES:
        calls[r] = per_cell(res[r]).astype(bool)
    calls["in_markers"] = per_gene(in_markers)
    calls["positive"] = calls[rule].to_numpy() & calls["in_markers"].to_numpy()
    return calls


def write_calls(calls: pd.DataFrame, path, block: int = CALLS_BLOCK) -> None:
    """:func:`~ctc_qpcr.tables.write_tsv` of the per-marker calls (the same bytes), ``block`` rows
    at a time, the HD statistics formatted once per gene (:func:`calls_text`)."""
    with tsv_parts(path) as add:
        for start in range(0, max(len(calls), 1), block):
            rows = calls.iloc[start : start + block]
            try:
                add(calls_text(rows), formatted=True)
            except ValueError:  # a name with a tab, quote or line break: quoted as write_tsv does
                add(rows)


def calls_text(calls: pd.DataFrame) -> pa.Table:
    """The cells of the calls as :func:`~ctc_qpcr.tables.write_tsv` writes them
    (:func:`~ctc_qpcr.tables.cell_text`), each gene's HD statistics formatted once."""
    genes = calls["gene"].cat.codes.to_numpy()
    columns = []
    for name in calls.columns:
        if name in PER_GENE:
            per_gene = np.full(len(calls["gene"].cat.categories), np.nan)
            per_gene[genes] = calls[name].to_numpy()
            columns.append(cell_text(pa.array(per_gene)).take(pa.array(genes)))
        else:
            columns.append(cell_text(pa.array(calls[name])))
    return pa.Table.from_arrays(columns, names=list(calls.columns))


def _wide(normalised: pd.DataFrame, sheet: pd.DataFrame, markers, notes: list[str]):
    """(genes, wanted markers, ΔCq and detected samples x genes, healthy ids, patient ids).

    The samples on the sheet only; ΔCq: samples with at least one, as ``pivot_table`` gives it
    (built from codes: issue 17)."""
    data = normalised[NORMALISED_COLUMNS]
    samples = data["sample"].astype(str)
    listed = samples.isin(sheet["sample"]).to_numpy()
    data, samples = data[listed], samples[listed]
    sample_codes, sample_ids = pd.factorize(samples, sort=True)
    gene_codes, gene_index = pd.factorize(data["gene"], sort=True)
    genes = list(gene_index)
    wanted = genes if markers is None else [g for g in markers if g in genes]
    if markers is not None and len(wanted) < len(markers):
        missing = sorted(set(markers) - set(genes))
        notes.append(f"markers not in the data, ignored: {', '.join(missing)}")
    shape = (len(sample_ids), len(genes))
    dcq, det = _matrices(
        sample_codes * shape[1] + gene_codes,
        data["dcq"].to_numpy(float),
        data["detected"].astype(bool),
        shape,
    )
    measured = ~np.isnan(dcq).all(axis=1)
    # stored gene by gene, as pivot_table stores them: the HD statistics sum in the same order
    dcq = pd.DataFrame(np.asfortranarray(dcq[measured]), index=sample_ids[measured], columns=genes)
    det = pd.DataFrame(np.asfortranarray(det), index=sample_ids, columns=genes)
    kinds = sheet.set_index("sample")["kind"].astype(str)
    kind = kinds.reindex(dcq.index).to_numpy()
    hd_ids, pt_ids = list(dcq.index[kind == "healthy"]), list(dcq.index[kind == "patient"])
    if len(hd_ids) < 2:
        notes.append(f"only {len(hd_ids)} healthy-donor sample(s): SD-based rules cannot call positives")
    return genes, wanted, dcq, det, hd_ids, pt_ids


def _matrices(
    cells: np.ndarray, dcq: np.ndarray, detected: pd.Series, shape
) -> tuple[np.ndarray, np.ndarray]:
    """ΔCq (mean; NaN where none) and detected (in any row) per sample × gene, from each row's
    cell ``sample × genes + gene``; rows of one cell averaged as ``pivot_table`` does."""
    if len(cells) and np.bincount(cells).max() > 1:
        rows = pd.DataFrame({"cell": cells, "dcq": dcq, "detected": detected.to_numpy()})
        per_cell = rows.groupby("cell").agg(dcq=("dcq", "mean"), detected=("detected", "max"))
        cells, dcq, detected = per_cell.index.to_numpy(), per_cell["dcq"].to_numpy(), per_cell["detected"]
    mean = np.full(shape, np.nan)
    mean.flat[cells] = dcq
    anywhere = np.zeros(shape, dtype=bool)
    anywhere.flat[cells] = detected.to_numpy(bool)
    return mean, anywhere


def _sample_level(
    marker_calls: np.ndarray, in_markers: np.ndarray, sheet: pd.DataFrame, pt_ids, min_markers: int
):
    """Sample-level calls (≥ ``min_markers`` positive markers) and the positive fraction per time point."""
    n_pos = (marker_calls & in_markers[None, :]).sum(axis=1)
    info = sheet.drop_duplicates("sample").set_index("sample")
    sample_calls = pd.DataFrame(
        {
            "sample": pt_ids,
            "patient": info.loc[pt_ids, "patient"].fillna("").astype(str).to_numpy() if pt_ids else [],
            "timepoint": info.loc[pt_ids, "timepoint"].fillna("").astype(str).to_numpy() if pt_ids else [],
            "n_positive_markers": n_pos.astype(int),
            "positive": n_pos >= min_markers,
        }
    )
    summary = (
        sample_calls.groupby("timepoint", sort=True)
        .agg(n=("sample", "size"), n_positive=("positive", "sum"))
        .reset_index()
    )
    summary["n_positive"] = summary["n_positive"].astype(int)
    summary["fraction"] = summary["n_positive"] / summary["n"]

    return sample_calls, summary


def leave_one_hd_out(
    hd_dcq: np.ndarray,
    hd_det: np.ndarray,
    in_markers: np.ndarray,
    *,
    k: float,
    fold: float,
    min_markers: int,
) -> pd.DataFrame:
    """Each HD is called against the other HDs as if it were a patient sample (§5).

    Specificity = fraction of HDs whose sample-level call is negative;
    ``mean_marker_fp_rate`` = mean over markers of the per-marker false-positive rate.
    """
    n_hd = hd_dcq.shape[0]
    fp_samples = dict.fromkeys(RULES, 0)
    fp_markers = dict.fromkeys(RULES, 0.0)
    if n_hd:
        res = _leave_one_out_rules(hd_dcq, hd_det, k, fold)
        n_markers = max(int(in_markers.sum()), 1)
        for r in RULES:
            hits = (res[r] & in_markers[None, :]).sum(axis=1)
            fp_samples[r] = int((hits >= min_markers).sum())
            fp_markers[r] = float((hits / n_markers).sum())
    rows = []
    for r in RULES:
        rows.append(
            {
                "rule": r,
                "n_healthy": n_hd,
                "n_false_positive": fp_samples[r],
                "specificity": 1.0 - fp_samples[r] / n_hd if n_hd else math.nan,
                "mean_marker_fp_rate": fp_markers[r] / n_hd if n_hd else math.nan,
            }
        )
    return pd.DataFrame(rows)
