"""Monte Carlo estimate of the NTK from real sampled networks (NTK parameterisation).

For one network with parameters θ, the empirical NTK is
Θ̂(t, t') = Σ_θ ∂f(t)/∂θ · ∂f(t')/∂θ.  For an anchor t₀, one backward pass gives
g = ∂f(t₀)/∂θ and one forward-mode product gives the whole row J·g = Θ̂(·, t₀) at
once, so a row costs two passes instead of one per position.  On a torus (circular
padding, periodic input) the kernel is cyclostationary with the network's period
P, so anchors on a P-grid of phases, averaged, estimate the phase-averaged
Θ(r) that :func:`gpdip.compile_kernel` (``kind="ntk"``) returns.  As the width
grows Θ̂ concentrates at Θ (Jacot et al. 2018): its fluctuation is O(1/√width).
"""

from __future__ import annotations

import itertools
import math
import os

import torch
from torch.func import functional_call, jvp

from gpdip.arch.parse import load_architecture
from gpdip.arch.spec import Architecture
from gpdip.errors import GpdipError
from gpdip.finite.montecarlo import MonteCarloEstimate
from gpdip.finite.network import build_network, sample_input, total_downsampling
from gpdip.layers.base import far_radius
from gpdip.limit.compiler import symbolic_output
from gpdip.limit.farfield import input_radius


def estimate_ntk(
    arch: str | os.PathLike[str] | Architecture,
    size: int,
    *,
    dims: int = 1,
    width: int = 256,
    samples: int = 20,
    seed: int = 0,
    domain: int | None = None,
) -> MonteCarloEstimate:
    """Mean and standard error of Θ̂(r) for |r_d| ≤ size − 1 over ``samples`` networks.

    Tables have shape (2S−1,)*dims like ``compile_kernel``.  Each network is
    NTK-parameterised, circular-padded and fed a periodic input on a torus of
    ``domain`` samples per side (default: 4S, or more so that offsets below S do not
    alias through the correlation reach; a multiple of the downsampling and the period).
    """
    arch = load_architecture(arch)
    if samples < 2:
        raise GpdipError(f"samples: need at least 2 for a standard error, got {samples}")
    period = symbolic_output(arch).period
    step = math.lcm(total_downsampling(arch), period)
    # A torus wider than the correlation reach R (far field) does not alias offsets < size.
    reach = far_radius(arch.layers, input_radius(arch.input.sigma))
    reach = 0 if math.isinf(reach) else int(reach)
    n = domain or step * math.ceil(max(4 * size, 2 * size + 2 * (reach + period)) / step)
    if n % step:
        raise GpdipError(f"domain: {n} is not a multiple of {step} (downsampling and period)")
    generator = torch.Generator().manual_seed(seed)
    tables = []
    for _ in range(samples):
        net = build_network(
            arch,
            dims=dims,
            width=width,
            out_channels=1,
            padding="circular",
            generator=generator,
            parameterization="ntk",
        ).double()
        x = sample_input(
            arch, (n,) * dims, width=width, generator=generator, periodic=True, dtype=torch.float64
        )
        tables.append(_network_ntk(net, x, size, period, dims))
    stack = torch.stack(tables)
    return MonteCarloEstimate(stack.mean(0), stack.std(0) / math.sqrt(samples), samples, width)


def _network_ntk(
    net: torch.nn.Module, x: torch.Tensor, size: int, period: int, dims: int
) -> torch.Tensor:
    """Θ̂(r) of one network, averaged over anchors at every phase (t₀ ∈ {0..P−1}^dims)."""
    params: dict[str, torch.Tensor] = dict(net.named_parameters())

    def f(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(net, p, (x,))[0, 0]  # (*spatial)

    total = torch.zeros((2 * size - 1,) * dims, dtype=torch.float64)
    anchors = list(itertools.product(range(period), repeat=dims))
    for anchor in anchors:
        out = f(params)
        grads = torch.autograd.grad(out[anchor], list(params.values()))
        tangent = dict(zip(params, grads, strict=True))
        row = jvp(f, (params,), (tangent,))[1]  # row[t] = Θ̂(t, anchor)
        # Offsets r = t − anchor in (−size, size): roll the anchor to the centre.
        shifts = tuple(size - 1 - a for a in anchor)
        centred = torch.roll(row.detach(), shifts=shifts, dims=tuple(range(dims)))
        total += centred[tuple(slice(0, 2 * size - 1) for _ in range(dims))].flip(
            tuple(range(dims))
        )
    return total / len(anchors)
