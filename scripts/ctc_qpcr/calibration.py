"""Inter-plate (inter-run) calibration, additive on Cq (docs/methods.md §2, §0).

* :func:`ipc_offsets` / :func:`apply_offsets` — global IPC (§2.1, TATAA/GenEx style):
  one inter-plate calibrator assay + template on every chip; one offset per chip,
  applied to all assays: ``o_p = c_p − ref``, ``Cq' = Cq − o_p``.
* :func:`irc_offsets` / :func:`apply_assay_offsets` — per-assay calibration with one
  or several inter-run calibrator samples run with all assays (§2.2, qbase+):
  ``o_{p,g} = mean_i(Cq_{i,p,g} − mean_p' Cq_{i,p',g}) = −log2 CF(p, g)``; with
  unequal calibrator sets the least-squares fit ``Cq(i,p) = μ_i + o_p`` with
  Σ_p o_p = 0 (§2.2 extension).

* :func:`chip_offsets` / :func:`ipc_policy` / :func:`apply_chip_offsets` — the chip-level
  stage's use of the above: a chip (or chip × assay) without usable IPC is never
  left uncalibrated in silence — ``ipc.on_missing`` says stop (default), exclude
  (its wells leave the analysis, with the reason in the well audit) or
  uncalibrated (every affected cell flagged ``ipc_missing``).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .chip_options import IpcOptions, chip_options
from .errors import ConfigError
from .replicates import join_flag_columns
from .rowkeys import distinct, text_is
from .wells import CALC

IPC_COLUMNS = ["plate", "ipc_mean", "ipc_sd", "n", "offset", "flags"]
IRC_COLUMNS = ["plate", "assay", "offset", "cf", "n_irc", "flags"]


def ipc_offsets(
    wells: pd.DataFrame,
    ipc_sample_names,
    ipc_assays=None,
    reference: float | None = None,
    *,
    plates=None,
    max_sd: float | None = None,
    max_offset: float | None = None,
    min_replicates: int | None = None,
) -> pd.DataFrame:
    """Global IPC offset per chip (§2.1 eqs. 5–6).

    ``c_p`` = mean Cq of the CALC IPC wells (samples ``ipc_sample_names`` ×
    assays ``ipc_assays``; ``None`` = every assay of those samples) on chip p;
    ``ref`` = ``reference`` if given (e.g. from a first batch, so a new batch
    does not shift old ones) else the mean of ``c_p`` over the chips that have
    one; ``offset = c_p − ref``.

    Flags (§2.1 suggested QC; limits not given = the `ipc` defaults of the config schema):
    ``IPC_SD>{max_sd}``, ``IPC_OFFSET>{max_offset}`` (|offset|), ``IPC_N<{min_replicates}``,
    ``IPC_MISSING`` (no IPC well on the chip) and ``IPC_FAILED`` (IPC wells, none CALC)
    — the last two with offset 0 — and ``IPC_NO_REFERENCE`` on every chip when the
    given ``reference`` is not a number (a first batch without usable IPC). All
    IPC wells of a chip are pooled: the TATAA design has one IPC assay.
    """
    default = _default_ipc()  # the QC limits not given: the config schema's defaults
    max_sd = default.max_sd if max_sd is None else max_sd
    max_offset = default.max_offset if max_offset is None else max_offset
    min_replicates = default.min_replicates if min_replicates is None else min_replicates
    plate_list = pd.Index(sorted(set(wells["plate"]) if plates is None else set(plates)), name="plate")
    ipc = wells[wells["sample"].isin(set(map(str, ipc_sample_names)))]
    if ipc_assays is not None:
        ipc = ipc[ipc["assay"].isin(set(map(str, ipc_assays)))]
    present = ipc.groupby("plate").size().reindex(plate_list, fill_value=0)
    calc = ipc[ipc["state"] == CALC]
    stats = calc.groupby("plate")["cq"].agg(ipc_mean="mean", ipc_sd="std", n="size").reindex(plate_list)
    stats["n"] = stats["n"].fillna(0).astype(int)
    if reference is None:
        ref = stats["ipc_mean"].mean() if stats["ipc_mean"].notna().any() else np.nan
    else:
        ref = float(reference)
    no_ref = reference is not None and not np.isfinite(ref)
    stats["offset"] = (stats["ipc_mean"] - ref).fillna(0.0)
    missing = present == 0
    failed = (present > 0) & (stats["n"] == 0)
    idx = stats.index
    f_missing = pd.Series(np.where(missing, "IPC_MISSING", ""), index=idx)
    f_failed = pd.Series(np.where(failed, "IPC_FAILED", ""), index=idx)
    f_sd = pd.Series(np.where(stats["ipc_sd"] > max_sd, f"IPC_SD>{max_sd:g}", ""), index=idx)
    f_off = pd.Series(
        np.where(stats["offset"].abs() > max_offset, f"IPC_OFFSET>{max_offset:g}", ""), index=idx
    )
    f_n = pd.Series(
        np.where((stats["n"] > 0) & (stats["n"] < min_replicates), f"IPC_N<{min_replicates}", ""), index=idx
    )
    f_ref = pd.Series("IPC_NO_REFERENCE" if no_ref else "", index=idx)
    stats["flags"] = join_flag_columns(
        pd.DataFrame({"m": f_missing, "f": f_failed, "n": f_n, "s": f_sd, "o": f_off, "r": f_ref})
    )
    out = stats.reset_index()
    out.attrs["reference"] = ref
    return out[IPC_COLUMNS]


def ipc_reference_from(plate_calibration: pd.DataFrame) -> float:
    """Reference IPC level of a finished batch: mean ``ipc_mean`` over its chips with a valid IPC.

    Pass the result as ``reference`` for later batches so their offsets are on the
    first batch's scale and earlier results do not move.
    """
    vals = pd.to_numeric(plate_calibration["ipc_mean"], errors="coerce").dropna()
    return float(vals.mean()) if len(vals) else float("nan")


def apply_offsets(frame: pd.DataFrame, offsets: pd.DataFrame, cq_cols=("cq",)) -> pd.DataFrame:
    """Subtract each chip's offset from ``cq_cols`` (eq. 6); adds ``plate_offset`` (0 where none)."""
    off = frame["plate"].map(offsets.set_index("plate")["offset"]).fillna(0.0).astype(float)
    out = frame.copy()
    for col in cq_cols:
        out[col] = out[col] - off
    out["plate_offset"] = off
    return out


def apply_assay_offsets(frame: pd.DataFrame, offsets: pd.DataFrame, cq_cols=("cq",)) -> pd.DataFrame:
    """Subtract the per-chip × assay offset of :func:`irc_offsets`; adds ``plate_offset``."""
    key = pd.MultiIndex.from_frame(frame[["plate", "assay"]])
    off = pd.Series(
        offsets.set_index(["plate", "assay"])["offset"].reindex(key).to_numpy(), index=frame.index
    )
    off = off.fillna(0.0).astype(float)
    out = frame.copy()
    for col in cq_cols:
        out[col] = out[col] - off
    out["plate_offset"] = off
    return out


def irc_offsets(
    wells: pd.DataFrame,
    irc_samples,
    *,
    assays=None,
    plates=None,
    max_iter: int = 500,
    tol: float = 1e-12,
) -> pd.DataFrame:
    """Per-chip × assay offsets from inter-run calibrators run with all assays (§2.2).

    Per assay, fits ``Cq(i, p) = μ_i + o_p`` by least squares with Σ_p o_p = 0 over
    the chips that have calibrator data, where Cq(i, p) is the mean of the CALC
    wells of calibrator i on chip p. With every calibrator on every chip this is
    exactly ``o_p = mean_i(Cq_ip − mean_p' Cq_ip') = −log2 CF(p)`` of eq. (7);
    with unequal sets it is the §2.2 extension. Solved by alternating means
    (back-fitting), vectorised over all assays; balanced designs converge in one pass.

    Returns plate, assay, offset (subtract from Cq), ``cf`` = 2^−offset (qbase+'s
    calibration factor for E = 2), ``n_irc`` and flags ``IRC_MISSING`` (no
    calibrator value for this assay on the chip → offset 0) / ``IRC_SINGLE_PLATE``.
    """
    irc = wells[wells["sample"].isin(set(map(str, irc_samples))) & (wells["state"] == CALC)]
    if assays is not None:
        irc = irc[irc["assay"].isin(set(assays))]
    y = irc.groupby(["assay", "sample", "plate"])["cq"].mean().rename("y").reset_index()
    plate_list = sorted(set(wells["plate"]) if plates is None else set(plates))
    assay_list = sorted(set(wells["assay"]) if assays is None else set(assays))
    grid = pd.MultiIndex.from_product([plate_list, assay_list], names=["plate", "assay"]).to_frame(
        index=False
    )

    if y.empty:
        o = pd.DataFrame(columns=["assay", "plate", "offset", "n_irc"])
    else:
        y["o"] = 0.0
        for _ in range(max_iter):
            mu = (y["y"] - y["o"]).groupby([y["assay"], y["sample"]]).transform("mean")
            new_o = (y["y"] - mu).groupby([y["assay"], y["plate"]]).transform("mean")
            # Σ_p o_p = 0 per assay (each chip counted once).
            per_plate = pd.DataFrame({"assay": y["assay"], "plate": y["plate"], "o": new_o}).drop_duplicates(
                ["assay", "plate"]
            )
            centre = per_plate.groupby("assay")["o"].mean()
            new_o = new_o - y["assay"].map(centre)
            delta = float(np.nanmax(np.abs(new_o - y["o"]))) if len(y) else 0.0
            y["o"] = new_o
            if delta < tol:
                break
        o = (
            y.groupby(["assay", "plate"])
            .agg(offset=("o", "first"), n_irc=("sample", "nunique"))
            .reset_index()
        )

    out = grid.merge(o, on=["plate", "assay"], how="left")
    missing = out["offset"].isna()
    out["offset"] = out["offset"].astype(float).fillna(0.0)
    out["n_irc"] = out["n_irc"].fillna(0).astype(int)
    n_plates = out[~missing].groupby("assay")["plate"].nunique()
    single = out["assay"].map(n_plates).fillna(0) == 1
    out["cf"] = np.power(2.0, -out["offset"])
    out["flags"] = np.where(missing, "IRC_MISSING", np.where(single, "IRC_SINGLE_PLATE", ""))
    return out[IRC_COLUMNS].sort_values(["plate", "assay"]).reset_index(drop=True)


def assay_roles(assays: pd.DataFrame) -> dict:
    """Role of each assay of the assays sheet (names and roles stripped)."""
    a_names = assays["assay"].astype(str).str.strip()
    return dict(zip(a_names, assays["role"].astype(str).str.strip(), strict=True))


def ipc_assays_of(role_of: dict) -> tuple:
    """The assays of role ``ipc`` (sorted), from :func:`assay_roles`."""
    return tuple(sorted(a for a, r in role_of.items() if r == "ipc"))


#: Plate-calibration flags that make a chip's IPC unusable.
UNUSABLE = ("IPC_MISSING", "IPC_FAILED", "IPC_NO_REFERENCE")


@functools.lru_cache(maxsize=1)
def _default_ipc():
    """The ``ipc`` options of the config schema's defaults (read once: the options are frozen)."""
    return chip_options().ipc


def _empty_plate_table(plates) -> pd.DataFrame:
    return pd.DataFrame(
        {"plate": plates, "ipc_mean": np.nan, "ipc_sd": np.nan, "n": 0, "offset": 0.0, "flags": ""}
    )[IPC_COLUMNS]


def chip_offsets(
    w: pd.DataFrame, o: IpcOptions, ipc_assays, notes: list, *, plates=None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Chip offsets: global IPC (§2.1), or per chip × assay with ``ipc.calibrators`` (§2.2).

    Global offsets are computed on the measured Cq and applied later
    (:func:`apply_chip_offsets`, after ValidPrime — the two commute, §1.6); per-assay
    offsets are applied here, before ValidPrime, as §1.6 requires. ``ipc_assays``:
    the assays of role ``ipc`` in the assays sheet (none = no IPC in the study's
    design: a note, no offsets). ``plates``: the chips (default: those of ``w``).
    Returns ``(w, plate_calibration, assay_calibration)``.
    """
    plates = sorted(distinct(w["plate"]) if plates is None else set(plates))
    plate_cal = _empty_plate_table(plates)
    assay_cal = pd.DataFrame(columns=IRC_COLUMNS)
    if not o.activate:
        notes.append("inter-plate calibration switched off (ipc.activate: false)")
        return w, plate_cal, assay_cal
    if o.calibrators:
        assay_cal = irc_offsets(w, list(o.calibrators), plates=plates)
        plate_cal["flags"] = "PER_ASSAY_CALIBRATION"
        return apply_assay_offsets(w, assay_cal, cq_cols=("cq",)), plate_cal, assay_cal
    if not len(ipc_assays):
        notes.append(
            "no inter-plate calibrator: the assays sheet has no assay of role 'ipc' — no plate offsets "
            "(set ipc.activate: false to say so)"
        )
        return w, plate_cal, assay_cal
    ipc_samples = sorted(distinct(w.loc[text_is(w["kind"], "ipc"), "sample"]))
    plate_cal = ipc_offsets(
        # the columns it reads (not a copy of the whole working table)
        w[["plate", "sample", "assay", "state", "cq_measured"]].rename(columns={"cq_measured": "cq"}),
        ipc_samples,
        list(ipc_assays),
        o.reference,
        plates=plates,
        max_sd=o.max_sd,
        max_offset=o.max_offset,
        min_replicates=int(o.min_replicates),
    )
    for plate, flags in zip(plate_cal["plate"], plate_cal["flags"], strict=True):
        if flags:
            notes.append(f"chip {plate}: IPC {flags}")
    return w, plate_cal, assay_cal


def _unusable(
    w: pd.DataFrame, plate_cal: pd.DataFrame, assay_cal: pd.DataFrame, o: IpcOptions
) -> pd.DataFrame:
    """Chips (global IPC) or chip × assay pairs (per-assay) without a usable calibrator, with the reason."""
    if o.calibrators:
        present = w[["plate", "assay"]].drop_duplicates()
        miss = assay_cal[assay_cal["flags"] == "IRC_MISSING"].merge(present, on=["plate", "assay"])
        return miss.assign(reason="IRC_MISSING")[["plate", "assay", "reason"]]
    reason = (
        plate_cal["flags"].str.split(";").map(lambda fl: next((f for f in fl if f in UNUSABLE), ""))
    )  # one per chip
    bad = plate_cal.assign(reason=reason)
    return bad.loc[bad["reason"] != "", ["plate", "reason"]]


def ipc_policy(
    w: pd.DataFrame, plate_cal: pd.DataFrame, assay_cal: pd.DataFrame, o: IpcOptions, *, batch: str = ""
):
    """Apply ``ipc.on_missing`` to chips without usable IPC (docs/methods.md §2.1).

    ``stop`` raises :class:`ConfigError` naming every such chip and the batch;
    ``exclude`` removes their wells (returned as excluding well flags: reason
    ``IPC_MISSING``/``IPC_FAILED``/``IPC_NO_REFERENCE``/``IRC_MISSING`` in the audit)
    and marks the chip ``CHIP_EXCLUDED``; ``uncalibrated`` keeps them at offset 0,
    marks the chip ``UNCALIBRATED`` and returns the keys whose cells get the flag
    ``ipc_missing``. Returns ``(w, plate_calibration, well_flags, uncalibrated)``.
    """
    none = pd.DataFrame(columns=["plate"])
    if not o.activate:
        return w, plate_cal, None, none
    bad = _unusable(w, plate_cal, assay_cal, o)
    if bad.empty:
        return w, plate_cal, None, none
    keys = ["plate", "assay"] if o.calibrators else ["plate"]
    if o.on_missing == "stop":
        where = f"batch {batch}: " if batch else ""
        what = "; ".join(
            f"chip {plate} ({', '.join(sorted(set(g['reason'])))}"
            + (f": assays {', '.join(sorted(g['assay']))}" if o.calibrators else "")
            + ")"
            for plate, g in bad.groupby("plate", sort=True)
        )
        raise ConfigError(
            f"{where}no usable inter-plate calibrator on {what} — these chips cannot be put on the study's "
            "scale. "
            "Check the export and the samples/assays sheets (IPC sample of kind 'ipc', assay of role 'ipc'"
            + (", ipc.calibrators" if o.calibrators else "")
            + "), or say what to do in config/config.yaml: ipc.on_missing: exclude (leave them out; "
            "their wells are excluded in results/qc/wells.tsv) or ipc.on_missing: uncalibrated (keep them "
            "without offset; their cells "
            "are flagged ipc_missing); for one batch: batches: {<batch>: {ipc: {on_missing: ...}}}"
            + (
                "; a first batch without usable IPC leaves later batches without reference: set ipc.reference"
                if (bad["reason"] == "IPC_NO_REFERENCE").any()
                else ""
            )
        )
    mark = "CHIP_EXCLUDED" if o.on_missing == "exclude" else "UNCALIBRATED"
    plate_cal = plate_cal.copy()
    hit = plate_cal["plate"].isin(set(bad["plate"]))
    plate_cal.loc[hit, "flags"] = join_flag_columns(
        pd.DataFrame({"f": plate_cal.loc[hit, "flags"], "m": mark})
    )
    if o.on_missing == "uncalibrated":
        return w, plate_cal, None, bad[keys]
    if not o.calibrators:
        plate_cal.loc[hit, "offset"] = np.nan
    why = w[keys].merge(bad, on=keys, how="left")["reason"].to_numpy(dtype=object)  # bad: one row per key
    drop = pd.notna(why)
    out = w.loc[drop, ["plate", "well", "sample", "assay"]]
    flags = out.assign(flag=why[drop], reason="ipc.on_missing: exclude", excluded=True)
    return w.loc[~drop], plate_cal, flags, none


def apply_chip_offsets(w: pd.DataFrame, plate_cal: pd.DataFrame, o: IpcOptions) -> pd.DataFrame:
    """Global IPC (§2.1 eq. 6): Cq' = Cq − o_p on every well of chip p; ``plate_offset`` and
    ``global_offset`` record o_p. In place (the working table of the chip-level steps, not copied)."""
    if not o.activate or o.calibrators:
        return w
    off = w["plate"].map(plate_cal.set_index("plate")["offset"]).fillna(0.0).astype(float)
    w["cq"] = w["cq"] - off
    w["plate_offset"] = off
    w["global_offset"] = off
    return w


def flag_uncalibrated(cells: pd.DataFrame, uncalibrated: pd.DataFrame) -> pd.DataFrame:
    """Add the cell flag ``ipc_missing`` to the cells of chips (or chip × assay) left uncalibrated."""
    if uncalibrated.empty:
        return cells
    keys = list(uncalibrated.columns)
    hit = (
        cells[keys]
        .merge(uncalibrated.drop_duplicates().assign(_hit=True), on=keys, how="left")["_hit"]
        .notna()
        .to_numpy()
    )
    cells = cells.copy()
    cells.loc[hit, "flags"] = join_flag_columns(
        pd.DataFrame({"f": cells.loc[hit, "flags"], "m": "ipc_missing"})
    )
    return cells
