"""Image and mask input/output, PSNR and SSIM.

Images are float64 tensors in [0, 1], shape ``(H, W)`` (grey) or ``(H, W, C)``.
PNG modes: ``L``/``RGB`` (8-bit, /255), ``I;16``/``I`` (16-bit, /65535),
``P`` (palette, converted to RGB or L), ``LA``/``RGBA`` (alpha dropped with a
warning).  ``.npy`` files are read as float64 without scaling.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.io.atomic import atomic_write, save_text


class GpdipWarning(UserWarning):
    """Recoverable input problems (alpha channel dropped, nothing to inpaint...)."""


def load_image(path: str | os.PathLike) -> Tensor:
    """Load a PNG (any common mode) or NPY as float64 ``(H, W)`` or ``(H, W, C)``."""
    path = Path(path)
    if not path.exists():
        raise GpdipError(f"image file '{path}' does not exist")
    is_npy = path.suffix.lower() == ".npy"
    arr = np.load(path).astype(np.float64) if is_npy else _png_array(path)
    if arr.ndim not in (2, 3):
        raise GpdipError(f"image '{path}': expected 2-D or 3-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise GpdipError(f"image '{path}' contains NaN or Inf values")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _png_array(path: Path) -> np.ndarray:
    im: Image.Image
    try:
        im = Image.open(path)
        im.load()
    except OSError as exc:
        raise GpdipError(f"image '{path}' could not be read as an image: {exc}") from exc
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "RGBA", "PA"):
        warnings.warn(f"image '{path}': alpha channel dropped", GpdipWarning, stacklevel=3)
        im = im.convert("L" if im.mode == "LA" else "RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im, dtype=np.float64) / 65535.0
    if im.mode == "F":
        return np.asarray(im, dtype=np.float64)
    if im.mode not in ("L", "RGB", "1"):
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.float64)
    return arr if im.mode == "1" else arr / 255.0


def load_mask(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> Tensor:
    """Boolean observed-pixel mask ``(H, W)`` from PNG or NPY; nonzero = observed."""
    path = Path(path)
    if not path.exists():
        raise GpdipError(f"mask file '{path}' does not exist")
    if path.suffix.lower() == ".npy":
        arr = np.load(path)
    else:
        arr = np.asarray(Image.open(path).convert("L"))
    if arr.ndim == 3:
        arr = arr.any(axis=-1)
    mask = torch.from_numpy(np.ascontiguousarray(arr != 0))
    if shape is not None and tuple(mask.shape) != tuple(shape[:2]):
        raise GpdipError(
            f"mask '{path}' has size {tuple(mask.shape)} but the image has {tuple(shape[:2])}"
        )
    return mask


def save_array(path: str | os.PathLike, x: Tensor, bits: int = 8) -> None:
    """Write ``.npy`` (float64, unclipped) or ``.png`` (8/16-bit, clipped) atomically."""
    path = Path(path)
    arr = x.detach().cpu().numpy().astype(np.float64)
    if path.suffix.lower() == ".npy":
        atomic_write(path, lambda f: np.save(f, arr))
        return
    if path.suffix.lower() != ".png":
        raise GpdipError(f"output '{path}': expected a .png or .npy file name")
    arr = np.clip(arr, 0.0, 1.0)
    if bits == 16:
        if arr.ndim == 3:
            raise GpdipError(f"output '{path}': 16-bit PNG supports grayscale only")
        im = Image.fromarray(np.round(arr * 65535).astype(np.uint16))
    else:
        im = Image.fromarray(np.round(arr * 255).astype(np.uint8))
    atomic_write(path, lambda f: im.save(f, format="PNG"))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file (JSON reports)."""
    save_text(path, text)


def psnr(x: Tensor, ref: Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak^2 / MSE)`` (x clipped to [0, 1])."""
    mse = float(((x.clamp(0, 1) - ref) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak**2 / mse))


def ssim(x: Tensor, ref: Tensor, peak: float = 1.0, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004) with an 11x11 Gaussian window, K1=0.01, K2=0.03.

    Colour images: the mean over channels.  ``x`` is clipped to [0, 1].
    """
    if x.dim() == 3:
        chans = [ssim(x[..., c], ref[..., c], peak, sigma) for c in range(x.shape[-1])]
        return float(np.mean(chans))
    g = torch.exp(-(torch.arange(11, dtype=torch.float64) - 5) ** 2 / (2 * sigma**2))
    w = (g[:, None] * g[None, :]) / g.sum() ** 2

    def blur(a: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(a[None, None], w[None, None])[0, 0]

    a, b = x.clamp(0, 1).double(), ref.double()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())
