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


def _text_test(wells: pd.DataFrame, col: str, test) -> np.ndarray:
    """``test`` (a Series of texts → booleans) of each well's ``col`` as stripped lower-case text
    ("" for missing), asked once per distinct value."""
    if col not in wells.columns:
        return np.full(len(wells), bool(test(pd.Series([""], dtype=object)).iloc[0]))
    codes, uniques = pd.factorize(wells[col])
    texts = [*uniques, ""]
    if all(type(u) is str for u in texts):  # the few distinct texts, without pandas' per-call overhead
        clean = pd.Series([u.strip().lower() for u in texts], dtype=object)
    else:
        clean = pd.Series(texts, dtype=object).astype(str).str.strip().str.lower()
    return test(clean).to_numpy(dtype=bool)[codes]  # code −1 (missing) → the last entry, ""


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
    limit = well_lod(out, lod, assay_lod)

    noamp = ~np.isfinite(cq)
    invalid = ~noamp & (cq <= 0)
    omitted = _text_test(out, "instrument_flags", lambda t: t.str.contains("omit", regex=False))
    call_fail = _text_test(out, "call", lambda t: t == "fail")
    with np.errstate(invalid="ignore"):
        low_quality = np.isfinite(quality) & np.isfinite(threshold) & (quality < threshold)
        above_lod = ~noamp & (cq > limit)
    expfail = ~noamp & (invalid | omitted | call_fail | low_quality)
    lowsignal = above_lod & ~expfail

    code = np.zeros(n, dtype=np.int8)  # index into STATES
    code[lowsignal] = 2
    code[expfail] = 1
    code[noamp] = 3
    reason = np.array(["", "", "cq>lod", "no_amplification"], dtype=object)[code]
    if expfail.any():
        reason[expfail] = _expfail_reasons(
            threshold[expfail], invalid[expfail], omitted[expfail], call_fail[expfail], low_quality[expfail]
        )
    out["state"] = np.array(STATES, dtype=object)[code]
    out["state_reason"] = reason
    return out


def _expfail_reasons(threshold, invalid, omitted, call_fail, low_quality) -> np.ndarray:
    """``state_reason`` of EXPFAIL wells: the reasons that apply, ``;``-joined in a fixed order
    (``invalid_cq``, ``omitted``, ``call_fail``, ``quality<0.65``); each distinct combination joined once."""
    thr = pd.Series(threshold)
    labels = {t: f"quality<{t:g}" for t in thr.dropna().unique()}
    quality = np.full(len(thr), "", dtype=object)
    quality[low_quality] = thr[low_quality].map(labels).fillna("quality<threshold").to_numpy(dtype=object)
    text_code, texts = pd.factorize(quality)
    bits = invalid * 1 + omitted * 2 + call_fail * 4 + low_quality * 8
    combos, first, inverse = np.unique(bits * len(texts) + text_code, return_index=True, return_inverse=True)
    names = ("invalid_cq", "omitted", "call_fail")
    joined = [
        ";".join(
            [name for k, name in enumerate(names) if bits[i] >> k & 1]
            + ([quality[i]] if low_quality[i] else [])
        )
        for i in first
    ]
    return np.array(joined, dtype=object)[inverse.reshape(-1)]
