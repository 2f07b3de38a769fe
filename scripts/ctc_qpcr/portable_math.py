"""exp, exp2, log and log2 of float64 arrays with the same bits on every x86-64 CPU.

numpy computes float64 ``exp``, ``log``, ``log2`` (and ``log10``, ``expm1``, ``log1p``, ``tanh``)
with its own AVX-512 code where the CPU has AVX-512, and with the C library (glibc's libm)
elsewhere. The two differ in the last bit: on an AMD EPYC with AVX-512, 2 million draws gave
1 value in 22 different for ``exp`` and 1 in 2,800 for ``log2``. That is far below any printed
decimal, but a file written with 15 significant digits then differs between machines in a few
cells. The simulator's files are committed (``resources/example``) and must be regenerated
byte for byte on any machine, so it takes these four functions from here: numpy first (for the
special values: 0, negatives, infinities, NaN, overflow), then Python's ``math`` (the C
library) for every finite result, which is what numpy itself gives on a CPU without AVX-512.
"""

from __future__ import annotations

import math

import numpy as np


def _through_libm(values, numpy_fn, libm_fn) -> np.ndarray:
    """``numpy_fn(values)``, with every finite, non-zero result recomputed by ``libm_fn``."""
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        out = np.array(numpy_fn(x), dtype=float, copy=True)
    redo = np.isfinite(out) & (out != 0)
    args = x[redo]
    out[redo] = np.fromiter(map(libm_fn, args.tolist()), dtype=float, count=args.size)
    return out if out.ndim else out[()]


def exp(values) -> np.ndarray:
    """e ** values, elementwise."""
    return _through_libm(values, np.exp, math.exp)


def exp2(values) -> np.ndarray:
    """2 ** values, elementwise."""
    return _through_libm(values, np.exp2, math.exp2)


def log(values) -> np.ndarray:
    """Natural logarithm, elementwise (0 → -inf, negative → nan, as numpy)."""
    return _through_libm(values, np.log, math.log)


def log2(values) -> np.ndarray:
    """Base-2 logarithm, elementwise (0 → -inf, negative → nan, as numpy)."""
    return _through_libm(values, np.log2, math.log2)
