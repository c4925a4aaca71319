"""The compiled NTK against the empirical NTK of real sampled networks (NTK parameterisation).

Measure: relative Frobenius error over offsets |r| ≤ S − 1 (``relative_error``).
Tolerance, as for the NNGP (tests/finite/test_compiler_vs_montecarlo.py):

* Monte Carlo noise: 4·‖s‖_F/‖Θ‖_F with s the measured standard error per offset (the
  per-network Θ̂ are iid; their products of Gaussians are heavy-tailed, hence 4 and not 3).
* Finite width: E[Θ̂] − Θ = O(L/width) for L non-linear layers (each non-linearity's
  empirical averages over C·k iid channels bias smooth maps by ≤ 1/C, as for the NNGP);
  for conv → relu → conv → relu → conv the gradients are products of independent layers
  and the bias is O(1/width) as well.  We allow L/width.
"""

from __future__ import annotations

import pytest
import torch

from gpdip import compile_kernel, load_architecture
from gpdip.finite.empirical_ntk import estimate_ntk
from gpdip.finite.montecarlo import relative_error
from gpdip.layers.base import nonlinear_depth


def _check(name: str, size: int, width: int, samples: int, seed: int) -> tuple[float, float]:
    arch = load_architecture(name)
    exact = compile_kernel(arch, size, dims=1, kind="ntk")
    est = estimate_ntk(arch, size, dims=1, width=width, samples=samples, seed=seed)
    error = relative_error(est.mean, exact, size - 1)
    noise = float(torch.linalg.norm(est.stderr) / torch.linalg.norm(exact))
    tol = 4 * noise + nonlinear_depth(arch.layers) / width
    assert error <= tol, f"{name}: relative error {error:.4f} > tolerance {tol:.4f}"
    return error, tol


def test_conv_d2_ntk_matches_sampled_networks():
    _, tol = _check("conv-d2", size=4, width=64, samples=40, seed=3)
    assert tol < 0.2  # sharp enough to catch a wrong layer term (each is ≥ 20% of Θ(0))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet2", "ae-d2", "conv-d3-s2"])
def test_catalog_ntk_matches_sampled_networks(name):
    _check(name, size=6, width=256, samples=40, seed=1)
