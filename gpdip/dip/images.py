"""Masks, noise and resizing for the DIP trainer (reading and writing: :mod:`gpdip.io.images`).

Images are float tensors of shape ``(C, H, W)`` with values in ``[0, 1]``;
masks are boolean tensors of shape ``(1, H, W)`` (``True`` = observed pixel),
broadcast over channels.
"""

from __future__ import annotations

import torch

from gpdip.errors import GpdipError


def check_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Validate a mask against a ``(C, H, W)`` image; return it as ``(1|C, H, W)`` bool."""
    if mask.dim() == 2:
        mask = mask[None]
    if (
        mask.dim() != 3
        or tuple(mask.shape[1:]) != tuple(image.shape[1:])
        or mask.shape[0]
        not in (
            1,
            image.shape[0],
        )
    ):
        raise GpdipError(
            f"mask has shape {tuple(mask.shape)} but image has shape {tuple(image.shape)}; "
            f"expected (1, {image.shape[1]}, {image.shape[2]}) or {tuple(image.shape)}"
        )
    if mask.is_floating_point() and not bool(torch.isfinite(mask).all()):
        raise GpdipError("mask contains NaN or Inf; expected 0 (missing) or non-zero (observed)")
    mask = mask != 0
    if not bool(mask.any()):
        raise GpdipError("mask observes no pixel; expected at least one non-zero mask pixel")
    return mask


def add_noise(img: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """y = x + N(0, σ²) (not clipped, so the noise model stays exactly Gaussian)."""
    noise = torch.randn(img.shape, generator=generator, dtype=img.dtype)
    return img + sigma * noise.to(img.device)


def bernoulli_mask(shape: tuple[int, ...], drop: float, generator: torch.Generator) -> torch.Tensor:
    """A ``(1, H, W)`` mask that drops each pixel independently with probability ``drop``."""
    if not 0.0 <= drop < 1.0:
        raise GpdipError(f"drop={drop}: expected a drop probability in [0, 1)")
    return torch.rand((1, *shape), generator=generator) >= drop


def salt_and_pepper(img: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Each entry of ``img`` (C, H, W) independently replaced with probability ``amount`` by
    0 or 1 (equally likely): scikit-image's ``random_noise(mode="s&p")``, per channel."""
    if not 0.0 <= amount <= 1.0:
        raise GpdipError(f"salt-and-pepper amount={amount}: expected a fraction in [0, 1]")
    hit = torch.rand(img.shape, generator=generator) < amount
    salt = torch.rand(img.shape, generator=generator) < 0.5
    return torch.where(hit, salt.to(img.dtype), img)


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Area-resample a ``(C, H, W)`` image to ``size × size``."""
    return torch.nn.functional.interpolate(img[None], size=(size, size), mode="area")[0]


def estimate_noise_std(img: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Robust estimate of an additive white-noise σ from the finest Haar HH band.

    For white noise of std σ the diagonal detail d = (a − b − c + e)/2 of each
    2×2 block has std σ; natural images have little energy there, so
    σ̂ = median(|d|)/0.6745 (Donoho's MAD rule).  Blocks with an unobserved
    pixel are skipped.
    """
    x = img[:, : img.shape[1] // 2 * 2, : img.shape[2] // 2 * 2]
    d = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    if mask is not None:
        m = mask[:, : x.shape[1], : x.shape[2]].expand_as(x)
        ok = m[:, 0::2, 0::2] & m[:, 0::2, 1::2] & m[:, 1::2, 0::2] & m[:, 1::2, 1::2]
        d = d[ok]
    if d.numel() == 0:
        raise GpdipError(
            "cannot estimate the noise level: no fully observed 2×2 block; pass --noise-std"
        )
    return float(d.abs().median() / 0.6745)
