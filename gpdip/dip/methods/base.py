"""What every method of :mod:`gpdip.dip.methods` shares: the forward model, the data term,
the optimiser, and networks whose input is an image.

The forward model is the trainer's: A = diag(mask) (denoising: A = I), so
‖A f − y‖² is the squared error over observed entries.  Every loss here is divided by
``n_obs`` (the trainer's convention: Adam steps then have the same meaning in every method),
and every regulariser on all N = C·H·W entries is divided by N, so "λ = 1" weighs it like
the data term per entry.

A method is a small object with ``step() -> estimate``: one outer iteration, returning the
method's current answer (C, H, W), detached.  :func:`gpdip.dip.methods.runner.run_method`
drives any of them, logs PSNR/SSIM and applies ES-WMV on top.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import nn

from gpdip.errors import GpdipError


class Method(Protocol):
    """One DIP method's state: ``step()`` runs one outer iteration and returns the estimate."""

    name: str

    def step(self) -> torch.Tensor: ...


class Observation:
    """y (C, H, W) and A = diag(mask); ``mask`` (1|C, H, W) or None (all observed)."""

    def __init__(self, observed: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if observed.dim() != 3:
            raise GpdipError(
                f"observed image has shape {tuple(observed.shape)}; expected (C, H, W)"
            )
        self.y = observed
        m = (
            torch.ones((1, *observed.shape[1:]), dtype=observed.dtype, device=observed.device)
            if mask is None
            else mask.to(observed.dtype).to(observed.device)
        )
        if m.dim() != 3 or tuple(m.shape[1:]) != tuple(observed.shape[1:]):
            raise GpdipError(
                f"mask has shape {tuple(m.shape)}; expected "
                f"(1, {observed.shape[1]}, {observed.shape[2]})"
            )
        self.mask = m
        self.n_obs = int(m.expand_as(observed).sum())
        if self.n_obs == 0:
            raise GpdipError("mask observes no pixel; expected at least one observed entry")
        self.n_all = observed.numel()

    def data_term(self, out: torch.Tensor) -> torch.Tensor:
        """‖A out − y‖² / n_obs (out: (C, H, W) or (S, C, H, W) broadcasting)."""
        return ((out - self.y) * self.mask).pow(2).sum() / self.n_obs

    def adjoint(self) -> torch.Tensor:
        """Aᵀy = mask ⊙ y (the image-space starting point of Self-Guided DIP and aSeqDIP)."""
        return self.y * self.mask


def make_optimizer(params: Iterable[torch.Tensor], kind: str, lr: float) -> torch.optim.Optimizer:
    """Adam or plain SGD at rate ``lr``."""
    params = list(params)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise GpdipError(f"optimizer '{kind}': expected 'adam' or 'sgd'")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`GpdipError` unless ``value`` is a finite number > 0 (≥ 0 if allowed)."""
    ok = isinstance(value, int | float) and value == value and abs(value) != float("inf")
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise GpdipError(f"{name}={value}: expected a finite number {bound}")


def check_count(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise GpdipError(f"{name}={value}: expected an integer ≥ 1")


def make_image_input_network(
    arch: str,
    shape: tuple[int, int],
    channels: int,
    *,
    width: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A network whose input is an image: (1, C, H, W) → (1, C, H, W), C = ``channels``.

    Self-Guided DIP feeds f its own output's space (‖f(z) − z‖²) and aSeqDIP iterates
    z ← f(z), so the input must have the image's channels.  Rather than bolting a lifting
    layer onto a catalog network, the architecture is rebuilt with ``input.channels = C``
    (the rest unchanged; width scaling first, as :func:`~gpdip.dip.nets.make_network`)."""
    if arch == "dip-tiny":
        from gpdip.dip.nets import TinyEncoderDecoder, _limit_init

        net: nn.Module = TinyEncoderDecoder(channels, width or 32, channels)
        _limit_init(net, generator)
        return net
    from gpdip.arch.parse import load_architecture
    from gpdip.finite.network import build_network

    spec = load_architecture(arch)
    if width is not None:
        spec = spec.scaled(width)
    spec = dataclasses.replace(spec, input=dataclasses.replace(spec.input, channels=channels))
    return build_network(spec, dims=2, out_channels=channels, generator=generator)
