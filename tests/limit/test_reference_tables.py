"""The compiled kernels of every catalog architecture equal the tables saved before the
layer-registry redesign (tests/data/reference_kernels.npz, written by the old compiler at
commit d5b7ae8).

The registry port alone was bit-identical (max abs difference 0 at commit a315774).
The cheap phase tables that followed (issue 12: in-place affine mixes, regathering by one
sparse product, offset lists) reorder floating-point sums, so the tables now agree to
rounding: measured 5.6e-16 relative; we allow 1e-13 (a few hundred ulps of summed terms),
far below any real error (a wrong phase or weight is O(1e-2))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpdip import compile_kernel

REFERENCE = np.load(
    Path(__file__).parents[1] / "data" / "reference_kernels.npz", allow_pickle=False
)
PARAMS = {"sigma": 1.5, "weight_var": 1.7, "bias_var": 0.1}


@pytest.mark.parametrize("key", REFERENCE.files)
def test_kernel_identical_to_pre_registry_compiler(key):
    name, case = key.split("__")
    if case == "2d":
        kernel = compile_kernel(name, (24, 20), dims=2)
    elif case == "1d":
        kernel = compile_kernel(name, 96, dims=1)
    else:
        kernel = compile_kernel(name, 40, dims=1, params=PARAMS)
    reference = REFERENCE[key]
    assert np.abs(kernel.numpy() - reference).max() <= 1e-13 * np.abs(reference).max()
