"""The compiled NNGP and NTK against neural-tangents (stored tables; no JAX needed here).

tests/data/neural_tangents.npz is written by scripts/neural_tangents_reference.py with
neural-tangents 0.6.5: three circular-padded conv nets in the NTK parameterisation, kernels
for one white-noise input of C = 4096 channels, averaged over positions.  That input's
empirical covariance is δ(r) plus noise of std 1/√C ≈ 0.016 per offset, which the layers
pass on at about that size; so we allow 2e-2 relative to the kernel's peak, as the issue asks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpdip import Architecture, Conv, Erf, InputSpec, LeakyReLU, ReLU, compile_kernels

PATH = Path(__file__).parents[1] / "data" / "neural_tangents.npz"
RADIUS = 5

ARCHS = {
    "relu": (
        Conv(64, weight_var=2.0),
        ReLU(),
        Conv(64, weight_var=2.0),
        ReLU(),
        Conv(1, kernel_size=1, weight_var=2.0),
    ),
    "leaky_erf": (
        Conv(64, weight_var=2.0, bias_var=0.1),
        LeakyReLU(0.2),
        Conv(64, weight_var=1.5),
        Erf(),
        Conv(1, kernel_size=1, weight_var=1.0),
    ),
    "erf": (Conv(64, weight_var=1.0, bias_var=0.05), Erf(), Conv(1, 3, weight_var=1.7)),
}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_matches_neural_tangents(name):
    if not PATH.exists():
        pytest.skip(f"{PATH} not generated (scripts/neural_tangents_reference.py)")
    reference = np.load(PATH, allow_pickle=False)
    arch = Architecture(InputSpec(channels=64), ARCHS[name])
    nngp, ntk = compile_kernels(arch, RADIUS + 1, dims=2)
    for kind, ours in (("nngp", nngp), ("ntk", ntk)):
        theirs = reference[f"{name}__{kind}"]
        error = np.abs(ours.numpy() - theirs).max() / np.abs(theirs).max()
        assert error <= 2e-2, f"{name} {kind}: relative difference {error:.4f}"
