"""portable_math: the C library's bits for every finite result, numpy's special values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctc_qpcr import portable_math as pm

FUNCTIONS = ["exp", "exp2", "log", "log2"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_finite_result_is_the_c_librarys(name):
    x = np.random.default_rng(7).uniform(-60, 60, 20_000)
    arg = np.abs(x) + 1e-9 if name.startswith("log") else x
    got = getattr(pm, name)(arg)
    expected = np.array([getattr(math, name)(v) for v in arg])
    assert got.dtype == np.float64 and got.shape == arg.shape
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values_are_numpys(name):
    special = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e6, -1e6])
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(special)
    np.testing.assert_array_equal(getattr(pm, name)(special), expected)


def test_shapes_and_scalars():
    grid = np.arange(1.0, 7.0).reshape(2, 3)
    assert pm.log2(grid).shape == (2, 3)
    assert pm.log2(8.0) == 3.0 and np.ndim(pm.log2(8.0)) == 0
    assert pm.exp(np.array([], dtype=float)).size == 0
