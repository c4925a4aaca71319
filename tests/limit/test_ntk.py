"""The compiled NNGP and NTK against an independent dense torus propagation (tests/limit/torus.py).

Tolerance 1e-10 (absolute, on kernels of order 1): both sides are float64 sums of a few
hundred terms, so rounding stays near 1e-14; any wrong map, phase or weight is O(1e-2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpdip import (
    Architecture,
    Conv,
    GpdipError,
    InputSpec,
    compile_kernel,
    compile_kernels,
    load_architecture,
)
from gpdip.arch.catalog import catalog_names
from gpdip.layers.base import far_radius, total_downsampling, walk
from gpdip.limit.compiler import symbolic_output
from gpdip.limit.farfield import input_radius
from tests.archgen import random_architecture

from .torus import torus_kernels

TOL = 1e-10


def _torus_size(arch, dims: int, cap: int) -> int:
    """A torus larger than the correlation reach (4·(R + P)), a multiple of the downsampling."""
    reach = far_radius(arch.layers, input_radius(arch.input.sigma))
    period = symbolic_output(arch).period
    need = 4 * (reach + period) if not math.isinf(reach) else cap
    step = total_downsampling(arch.layers)
    return min(cap, step * math.ceil(max(need, 8) / step))


def _compare(arch, dims: int, cap: int, radius: int, params=None):
    n = _torus_size(arch, dims, cap)
    radius = min(radius, n // 4)
    k_torus, t_torus = torus_kernels(arch, (n,) * dims, radius, params)
    k, t = compile_kernels(arch, radius + 1, dims=dims, params=params)
    np.testing.assert_allclose(k.numpy(), k_torus, rtol=0, atol=TOL * max(1, k_torus.max()))
    np.testing.assert_allclose(t.numpy(), t_torus, rtol=0, atol=TOL * max(1, t_torus.max()))
    return k, t


def _has_sinc(arch) -> bool:
    return any(getattr(layer, "mode", None) == "sinc" for layer in walk(arch.layers))


@pytest.mark.parametrize("name", catalog_names())
def test_catalog_1d_matches_torus(name):
    arch = load_architecture(name)
    k, t = _compare(arch, 1, cap=800, radius=40)
    assert bool((t >= k - TOL).all())  # Θ = K + (earlier layers' gradients, ≥ 0 at r = 0)


@pytest.mark.parametrize(
    "name", ["ae-d1", "ae-d2", "conv-d3", pytest.param("unet2", marks=pytest.mark.slow)]
)  # 45 s
def test_catalog_2d_matches_torus(name):
    arch = load_architecture(name)
    cap = 48 if name == "unet2" else 32  # unet2: compared only where the torus cannot alias
    _compare(arch, 2, cap=cap, radius=8 if name == "unet2" else 6)


@pytest.mark.parametrize("seed", range(12))
def test_random_architectures_match_torus(seed):
    arch = random_architecture(seed, channels=16)
    if _has_sinc(arch):
        pytest.skip("sinc upsampling is band-limited: exact only up to its table margin")
    _compare(arch, 1, cap=600, radius=24, params={"weight_var": 1.3, "bias_var": 0.05})


def test_ntk_of_one_conv_is_its_nngp():
    """A single conv's only parameters are its own: Θ = K exactly (the input is not trained)."""
    arch = Architecture(InputSpec(4, sigma=1.0), (Conv(8, weight_var=1.7, bias_var=0.2),))
    k, t = compile_kernels(arch, 8, dims=1)
    assert torch.equal(k, t)


def test_ntk_is_differentiable_in_params():
    """Autograd through the NTK matches a central finite difference (float64)."""
    arch = load_architecture("unet2")
    wv = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    t = compile_kernel(arch, 12, dims=1, kind="ntk", params={"weight_var": wv, "sigma": sigma})
    weights = torch.linspace(0.5, 1.5, t.numel(), dtype=torch.float64)
    (t * weights).sum().backward()
    for name, var in (("weight_var", wv), ("sigma", sigma)):
        h = 1e-6
        values = []
        for step in (h, -h):
            p = {"weight_var": wv.detach(), "sigma": sigma.detach()}
            p[name] = var.detach() + step
            values.append(
                float((compile_kernel(arch, 12, dims=1, kind="ntk", params=p) * weights).sum())
            )
        assert var.grad is not None and torch.isfinite(var.grad)
        assert float(var.grad) == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-6)


def test_bad_kind():
    with pytest.raises(GpdipError, match="kind: expected one of nngp, ntk"):
        compile_kernel("conv-d2", 4, kind="ntkk")
