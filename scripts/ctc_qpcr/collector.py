"""Python's garbage collector, set for a chip-level job (called first, before the heavy imports).

A batch job makes ~10^6 short-lived objects (pandas' frames and index objects, the text cells of
~110k wells) and almost no reference cycles. With the default thresholds the collector runs ~200
times and twice walks every object alive, Snakemake's and the imported modules' included: ~70 ms
of a ~2 s job. :func:`few_collections` freezes what exists (never walked again) and lets 50,000
allocations pass between young collections: ~15 ms. Cycles are still collected, later.
"""

from __future__ import annotations

import gc

#: Allocations between collections of the youngest generation (Python's default: 700), and how
#: many of those before the older generations are looked at.
THRESHOLDS = (50_000, 20, 10)


def few_collections() -> None:
    """Freeze the objects alive now and collect rarely (:data:`THRESHOLDS`)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
