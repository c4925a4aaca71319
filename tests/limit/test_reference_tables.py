"""The compiled kernels of every catalog architecture equal the tables saved before the
layer-registry redesign (tests/data/reference_kernels.npz, written by the old compiler at
commit d5b7ae8): the redesign moved code, it must not change a single value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpdip import compile_kernel

REFERENCE = np.load(Path(__file__).parents[1] / "data" / "reference_kernels.npz",
                    allow_pickle=False)
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
    assert np.array_equal(kernel.numpy(), REFERENCE[key])  # max abs difference 0
