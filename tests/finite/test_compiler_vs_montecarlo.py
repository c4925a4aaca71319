"""The compiled kernel against Monte Carlo over real sampled networks.

Measure: relative Frobenius error over offsets |r_d| ≤ 8 (``relative_error``).

Tolerance (see :func:`tolerance`), from the two error sources:

* Monte Carlo noise.  The estimate is a mean of n iid per-network tables, each
  entry with standard error s(r) (measured).  The error vector's norm is then
  about ‖s‖_F; allowing 4‖s‖_F/‖K‖_F keeps a false alarm below ~1e-4 for the
  χ-like norm of a noise vector of 17 (1-D) to 289 (2-D) entries.
* Finite width.  Given the previous layer, each pre-activation is exactly
  Gaussian with an empirical covariance averaged over C·k^d iid terms, whose
  relative variance is 2/(C·k^d) ≤ 2/C.  A smooth map of it (each
  non-linearity) is biased by ½·f''·Var, and the normalised ReLU-family and
  erf maps have |f''| ≤ 1 on correlations, so each non-linear layer adds at
  most 1/C of relative bias; the biases of L non-linear layers add up.  So
  we allow L/width (L counted along the longest path).  At width 256 with 3
  non-linearities that is 0.012, inside the issue's aim of 0.05.
"""

from __future__ import annotations

import pytest
import torch

from gpdip import compile_kernel, load_architecture
from gpdip.arch.catalog import catalog_names
from gpdip.finite.montecarlo import estimate_kernel, relative_error
from gpdip.layers.base import nonlinear_depth
from tests.archgen import random_architecture

MAX_OFFSET = 8


def tolerance(arch, estimate, exact) -> float:
    centre = [(n - 1) // 2 for n in exact.shape]
    index = tuple(slice(c - MAX_OFFSET, c + MAX_OFFSET + 1) for c in centre)
    noise = float(torch.linalg.norm(estimate.stderr[index]) / torch.linalg.norm(exact[index]))
    finite_width = nonlinear_depth(arch.layers) / estimate.width
    return 4 * noise + finite_width


def check(arch, dims: int, width: int, samples: int, seed: int = 0) -> tuple[float, float]:
    exact = compile_kernel(arch, MAX_OFFSET + 1, dims=dims)
    estimate = estimate_kernel(
        arch, MAX_OFFSET + 1, dims=dims, width=width, samples=samples, seed=seed
    )
    error, tol = relative_error(estimate.mean, exact, MAX_OFFSET), tolerance(arch, estimate, exact)
    assert error <= tol, f"{arch.name}: relative error {error:.4f} > tolerance {tol:.4f}"
    return error, tol


CATALOG_1D = ["conv-d1", "conv-d3-s2", "conv-d6", "ae-d1-s2", "ae-d2", "ae-d3", "unet2"]


@pytest.mark.parametrize("name", CATALOG_1D)
def test_catalog_1d(name):
    arch = load_architecture(name)
    _, tol = check(arch, dims=1, width=256, samples=120)
    assert tol < 0.16  # the test is sharp enough to mean something


@pytest.mark.parametrize("name", ["skip5-nearest", "skip5-bilinear"])
def test_skip5_1d(name):
    """22 non-linearities deep: at width 256 the finite-width bias is ~8% (allowed L/width)."""
    check(load_architecture(name), dims=1, width=256, samples=60)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["skip5-nearest", "skip5-bilinear"])
def test_skip5_1d_width_1024(name):
    """At width 1024 the 32-phase compiled kernel is matched to 0.1% (measured 0.0009, 0.0013)."""
    exact = compile_kernel(name, MAX_OFFSET + 1, dims=1)
    estimate = estimate_kernel(
        name, MAX_OFFSET + 1, dims=1, width=1024, samples=100, domain=512, seed=5
    )
    assert relative_error(estimate.mean, exact) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(catalog_names()) - set(CATALOG_1D)))
def test_rest_of_catalog_1d(name):
    check(load_architecture(name), dims=1, width=256, samples=200)


@pytest.mark.parametrize("seed", range(8))
def test_random_family_1d(seed):
    _, tol = check(random_architecture(seed), dims=1, width=256, samples=60, seed=seed)
    assert tol < 0.16


def test_random_family_covers_every_layer_type():
    from gpdip.arch.spec import layer_type_name

    seen: set[str] = set()
    modes: set[str] = set()

    def walk(layers):
        for layer in layers:
            seen.add(layer_type_name(layer))
            if hasattr(layer, "mode"):
                modes.add(layer.mode)
            for sub in ("layers", "branch", "shortcut"):
                walk(getattr(layer, sub, ()))

    for seed in range(8):
        walk(random_architecture(seed).layers)
    assert seen >= {"conv", "relu", "leaky_relu", "erf", "downsample", "upsample", "skip", "block"}
    assert modes >= {"stride", "avg", "nearest", "bilinear", "sinc", "add", "concat"}


@pytest.mark.parametrize("name", ["conv-d2-s2", "ae-d1"])
def test_catalog_2d_small(name):
    check(load_architecture(name), dims=2, width=128, samples=12)


@pytest.mark.parametrize("seed", [0, 3])
def test_random_family_2d_small(seed):
    check(random_architecture(seed, channels=64), dims=2, width=128, samples=12, seed=seed)


def test_detects_a_wrong_kernel():
    """The check fails for a slightly wrong kernel: the tolerance is not vacuous."""
    arch = load_architecture("conv-d3-s2")
    exact = compile_kernel(arch, MAX_OFFSET + 1, dims=1)
    wrong = compile_kernel(arch.with_input(sigma=3.0), MAX_OFFSET + 1, dims=1)
    estimate = estimate_kernel(arch, MAX_OFFSET + 1, dims=1, width=256, samples=120)
    assert relative_error(estimate.mean, exact) <= tolerance(arch, estimate, exact)
    assert relative_error(estimate.mean, wrong) > tolerance(arch, estimate, wrong)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet2", "ae-d2", "conv-d4-s2"])
def test_catalog_2d_width_256(name):
    error, _ = check(load_architecture(name), dims=2, width=256, samples=60)
    assert error <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8, 16))
def test_random_family_2d_width_256(seed):
    check(random_architecture(seed, channels=64), dims=2, width=256, samples=40, seed=seed)
