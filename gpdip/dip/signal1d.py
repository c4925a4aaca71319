"""1-D signals through the 2-D trainer, and their pooled SGLD posterior (paper Fig. 3d).

The trainer works on ``(C, H, W)`` images; a signal of length L is the image ``(C, 1, L)``
and :class:`Signal1D` squeezes the singleton row around a 1-D network, so every inference
scheme runs unchanged on signals.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gpdip.dip.config import DIPConfig
from gpdip.dip.nets import (
    annotate,
    attach_limit_prior,
    check_parameterization,
)
from gpdip.dip.trainer import Problem, fit


class Signal1D(nn.Module):
    """A 1-D network seen by the 2-D trainer: ``(N, C, 1, L) → (N, C_out, 1, L)``.

    The trainer works on ``(C, H, W)`` images; a 1-D signal of length L is the image
    ``(C, 1, L)`` and this wrapper squeezes the singleton row around the 1-D net, so every
    inference scheme (SGLD included) runs unchanged on signals (paper Fig. 3d)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :, 0])[:, :, None]


def make_network_1d(
    arch: str | Any,
    length: int,
    out_channels: int = 1,
    *,
    width: int | None = None,
    generator: torch.Generator | None = None,
    parameterization: str = "standard",
) -> tuple[nn.Module, torch.Tensor]:
    """``(net, input)`` for a 1-D signal of ``length`` samples, limit init and input.

    ``input`` has shape ``(1, C_in, 1, length)`` and ``net(input)`` ``(1, out_channels, 1,
    length)``; the network carries its exact limit prior for SGLD like
    :func:`make_network`'s.  ``parameterization``: as :func:`make_network`'s."""
    from gpdip.finite import network  # lazy, as in make_network

    check_parameterization(parameterization, arch)
    net = Signal1D(
        network.build_network(
            arch,
            dims=1,
            width=width,
            out_channels=out_channels,
            generator=generator,
            parameterization=parameterization,
        )
    )
    annotate(net, arch_name=str(arch))
    attach_limit_prior(net, arch)
    x = network.sample_input(arch, (length,), width=width, generator=generator)
    return net, x[:, :, None]


def sgld_posterior_1d(
    arch: Any,
    signal: torch.Tensor,
    mask: torch.Tensor,
    *,
    scale: float,
    noise: float,
    width: int,
    iters: int,
    chains: int = 1,
    lr: float = 3e-4,
    seed: int = 0,
    mean: float | None = None,
    freeze_preconditioner: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-chain pSGLD posterior means and stds, each ``(chains, L)`` float64, of the model

        y = m + √scale · f(x; θ) + N(0, noise)   on the observed samples (``mask``),

    f the finite network of ``arch`` at ``width`` channels with its limit prior — the finite
    counterpart of the GP with kernel ``scale·K`` and constant mean m (default: the observed
    mean, as ``dense_posterior``'s).  The network is trained on (y − m)/√scale with noise
    variance noise/scale; chain c uses network seed 1000·seed + c and Langevin seed
    100·seed + c; burn-in iters/4, every 5th sample kept; the pSGLD preconditioner is frozen
    after burn-in (exact) unless ``freeze_preconditioner`` is False (Li et al.'s)."""
    m = float(signal[mask].mean()) if mean is None else mean
    y = ((signal - m) / scale**0.5).float().reshape(1, 1, -1)
    prob = Problem(y, mask.reshape(1, 1, -1), None)
    means, stds = [], []
    for c in range(chains):
        cfg = DIPConfig.build(
            method="sgld",
            iters=iters,
            lr=lr,
            preconditioner="rmsprop",
            noise_std=(noise / scale) ** 0.5,
            burn_in=iters // 4,
            thin=5,
            log_every=max(1, iters // 20),
            seed=100 * seed + c,
            freeze_preconditioner=freeze_preconditioner,
        )
        net, x = make_network_1d(
            arch,
            signal.numel(),
            width=width,
            generator=torch.Generator().manual_seed(1000 * seed + c),
        )
        res = fit(net, x, prob, cfg, device="cpu")
        assert res.mean is not None and res.std is not None
        means.append(m + scale**0.5 * res.mean.double().reshape(-1))
        stds.append(scale**0.5 * res.std.double().reshape(-1))
    return torch.stack(means), torch.stack(stds)


def pool_chains(means: torch.Tensor, stds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixture mean and std of equally weighted chains: (K, L) → (L,), (L,)."""
    mean = means.mean(0)
    second = (stds**2 + means**2).mean(0)
    return mean, (second - mean**2).clamp_min(0).sqrt()
