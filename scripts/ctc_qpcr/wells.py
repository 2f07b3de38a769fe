"""Per-well state: CALC / EXPFAIL / LOWSIGNAL / NOAMP (docs/methods.md §3.1, §1.5).

The four states are those of gh-validprime (§1.5), applied to every well as read
(data-model.md section 1):

* NOAMP     — no numeric Cq (999, Undetermined, No Ct, N/A, empty → ``cq`` is NaN).
* EXPFAIL   — the instrument rejected the curve: call ``Fail``; quality below the
  export's quality threshold (when both are numbers — this also covers ``Flag``,
  which is EXPFAIL only when the quality is below threshold); the well was
  omitted (``omit`` in ``instrument_flags``); or Cq ≤ 0 (``invalid_cq``).
* LOWSIGNAL — Cq above the LOD (the assay's ``lod`` if given, else the global LOD).
* CALC      — a usable Cq.

NOAMP wins over Fail: BioMark writes ``999`` + ``Fail`` for "no amplification".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CALC = "CALC"
EXPFAIL = "EXPFAIL"
LOWSIGNAL = "LOWSIGNAL"
NOAMP = "NOAMP"
STATES = (CALC, EXPFAIL, LOWSIGNAL, NOAMP)


def _text(wells: pd.DataFrame, col: str) -> pd.Series:
    """``col`` as stripped lower-case text ("" for missing), cleaned once per distinct value."""
    if col not in wells.columns:
        return pd.Series("", index=wells.index, dtype=object)
    codes, uniques = pd.factorize(wells[col])
    clean = pd.Series(uniques, dtype=object).astype(str).str.strip().str.lower().to_numpy(dtype=object)
    return pd.Series(np.append(clean, "")[codes], index=wells.index, dtype=object)  # code −1 (missing) → ""


def _number(wells: pd.DataFrame, col: str) -> np.ndarray:
    if col not in wells.columns:
        return np.full(len(wells), np.nan)
    return pd.to_numeric(wells[col], errors="coerce").to_numpy(dtype=float)


def effective_lods(assay_lod: dict | None) -> dict[str, float]:
    """The assay LODs :func:`well_lod` applies: names as text, finite numbers only."""
    return {str(k): float(v) for k, v in (assay_lod or {}).items() if v is not None and np.isfinite(v)}


def same_limits(a: tuple[float, dict | None], b: tuple[float, dict | None]) -> bool:
    """True when two (LOD, assay LODs) pairs give every well the same limit: :func:`assign_states`
    with either gives the same states."""
    return float(a[0]) == float(b[0]) and effective_lods(a[1]) == effective_lods(b[1])


def states_current(wells: pd.DataFrame, states_of: tuple | None, limits: tuple) -> bool:
    """True when ``wells`` carry states assigned with ``states_of`` (LOD, assay LODs) and those
    give every well the limit ``limits`` gives: :func:`assign_states` would give the same states."""
    has = {"state", "state_reason"} <= set(wells.columns)
    return states_of is not None and has and same_limits(states_of, limits)


def well_lod(wells: pd.DataFrame, lod: float = 35.0, assay_lod: dict[str, float] | None = None) -> np.ndarray:
    """LOD that applies to each well: the assay's own LOD where given, else ``lod``."""
    limit = np.full(len(wells), float(lod))
    if assay_lod:
        per_assay = wells["assay"].astype(str).map(effective_lods(assay_lod))
        limit = np.where(per_assay.notna(), per_assay.to_numpy(dtype=float, na_value=np.nan), limit)
    return limit


def assign_states(
    wells: pd.DataFrame, lod: float = 35.0, assay_lod: dict[str, float] | None = None, *, copy: bool = True
) -> pd.DataFrame:
    """Return a copy of ``wells`` with ``state`` and ``state_reason`` (data-model.md §1).

    ``state_reason`` is "" for CALC; for EXPFAIL every reason that applies is
    given, ``;``-joined in a fixed order (``invalid_cq``, ``omitted``,
    ``call_fail``, ``quality<0.65``). ``copy=False`` sets the two columns on ``wells``
    itself (a caller's own working table: no copy of every column).
    """
    out = wells.copy() if copy else wells
    n = len(out)
    cq = _number(out, "cq")
    quality = _number(out, "quality")
    threshold = _number(out, "quality_threshold")
    call = _text(out, "call")
    flags = _text(out, "instrument_flags")
    limit = well_lod(out, lod, assay_lod)

    noamp = ~np.isfinite(cq)
    invalid = ~noamp & (cq <= 0)
    codes, uniques = pd.factorize(flags)  # "omit" looked for once per distinct flag text
    omitted = np.append(
        pd.Series(uniques, dtype=object).str.contains("omit", regex=False).to_numpy(bool), False
    )[codes]
    call_fail = (call == "fail").to_numpy()
    with np.errstate(invalid="ignore"):
        low_quality = np.isfinite(quality) & np.isfinite(threshold) & (quality < threshold)
        above_lod = ~noamp & (cq > limit)

    reasons = {
        "invalid_cq": invalid,
        "omitted": omitted,
        "call_fail": call_fail,
        "quality": low_quality,
    }
    expfail = ~noamp & (invalid | omitted | call_fail | low_quality)

    state = np.full(n, CALC, dtype=object)
    state[above_lod] = LOWSIGNAL
    state[expfail] = EXPFAIL
    state[noamp] = NOAMP

    # Reasons of the EXPFAIL wells, built column-wise (no per-well Python loop).
    reason = pd.Series("", index=out.index, dtype=object)
    if expfail.any():
        thr = pd.Series(threshold[expfail])
        labels = {t: f"quality<{t:g}" for t in thr.dropna().unique()}
        thr_text = thr.map(labels).fillna("quality<threshold").to_numpy(dtype=object)
        parts = [
            pd.Series(np.where(mask[expfail], thr_text if name == "quality" else name, ""), dtype=object)
            for name, mask in reasons.items()
        ]
        joined = parts[0]
        for p in parts[1:]:
            joined = joined.str.cat(p, sep=";")
        joined = joined.str.replace(r";{2,}", ";", regex=True).str.strip(";")
        reason[expfail] = joined.to_numpy(dtype=object)
    reason[state == LOWSIGNAL] = "cq>lod"
    reason[noamp] = "no_amplification"

    out["state"] = state
    out["state_reason"] = reason.astype(str)
    return out
