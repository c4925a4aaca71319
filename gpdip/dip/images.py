"""Image I/O, masks, noise and quality metrics for the DIP trainer.

Images are float tensors of shape ``(C, H, W)`` with values in ``[0, 1]``;
masks are boolean tensors of shape ``(1, H, W)`` (``True`` = observed pixel),
broadcast over channels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gpdip.errors import GpdipError


def load_image(path: str | Path, *, grayscale: bool = False) -> torch.Tensor:
    """Read a PNG/JPEG as a ``(C, H, W)`` float32 tensor in ``[0, 1]`` (C = 1 or 3).

    Alpha channels are dropped; ``grayscale=True`` converts colour to luminance.
    """
    path = Path(path)
    if not path.is_file():
        raise GpdipError(f"image '{path}' not found; expected a readable PNG or JPEG file")
    try:
        im = Image.open(path)
        im.load()
    except OSError as exc:
        raise GpdipError(
            f"image '{path}' could not be read ({exc}); expected a PNG or JPEG"
        ) from exc
    gray = grayscale or im.mode in ("L", "LA", "I", "I;16", "1", "F")
    arr = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def save_image(img: torch.Tensor, path: str | Path) -> None:
    """Write a ``(C, H, W)`` tensor in ``[0, 1]`` (clipped) as an 8-bit PNG."""
    arr = img.detach().float().cpu().clamp(0, 1).numpy()
    arr = (arr * 255.0 + 0.5).astype(np.uint8)
    arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def load_mask(
    path: str | Path, shape: tuple[int, int], *, image_name: str = "image"
) -> torch.Tensor:
    """Read a mask image (non-zero = observed) as a ``(1, H, W)`` bool tensor.

    Raises :class:`GpdipError` when its size differs from ``shape`` = (H, W).
    """
    m = load_image(path, grayscale=True)
    if tuple(m.shape[1:]) != tuple(shape):
        raise GpdipError(
            f"mask '{path}' is {m.shape[2]}×{m.shape[1]} (W×H) but {image_name} is "
            f"{shape[1]}×{shape[0]}; expected a mask of the same width and height"
        )
    return m > 0.5


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
    mask = mask.bool()
    if not bool(mask.any()):
        raise GpdipError("mask observes no pixel; expected at least one non-zero mask pixel")
    return mask


def psnr(x: torch.Tensor, ref: torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10·log10(peak² / MSE) in dB (x clipped to [0, peak])."""
    mse = float(torch.mean((x.detach().clamp(0, peak) - ref.detach()) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


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


def center_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size × size`` window of a ``(C, H, W)`` image."""
    _, h, w = img.shape
    if size > min(h, w):
        raise GpdipError(f"crop size {size} exceeds the image size {h}×{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top : top + size, left : left + size].contiguous()


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
