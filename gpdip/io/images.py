"""The one image and mask reader of gpdip, and its metrics (PSNR, SSIM).

Layout: every image is a float64 tensor of shape ``(C, H, W)`` with C = 1 (grey) or 3
(colour), values in [0, 1] for PNGs.  The GP engine works on ``(H, W)`` / ``(H, W, C)``
arrays: convert with :func:`channels_last` and :func:`channels_first`.

Rules of :func:`load_image`:

* PNG (or any format Pillow reads), by mode: ``1`` → {0, 1}; ``L``, ``RGB`` (8-bit) → /255;
  ``I;16*`` / ``I`` (16-bit grey) → /65535; 16-bit colour PNGs are decoded by Pillow at
  8-bit precision.
* Alpha (``LA``, ``RGBA``, palette with transparency): the colour channels are kept as
  stored (not premultiplied) and alpha is dropped, with a :class:`GpdipWarning` unless every
  pixel is opaque.
* Palette (``P``): expanded through the palette to RGB; when every palette colour in use is
  grey (R = G = B) the image is read as grey (C = 1).
* ``.npy``: real numbers only (bool, integer or float; no objects, strings, complex or
  structured arrays; never unpickled), shape (H, W) or (H, W, C) with C ∈ {1, 3}
  (channels last, as a PNG), finite, not rescaled.
* A size limit of ``max_pixels`` = H·W (default :data:`MAX_PIXELS`) is checked on the
  file's header, before any pixel is decoded.

Rules of :func:`load_mask`: non-zero = observed, for every source: a bool mask, 0/1,
0/255 (8-bit PNG), 0/65535 (16-bit PNG) or any real values.  A colour mask observes a
pixel when any colour channel is non-zero (alpha is ignored).  NaN or ±Inf are rejected.
The result is a bool ``(H, W)`` tensor.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.io.atomic import atomic_write

MAX_PIXELS = 8192 * 8192  # H·W; a larger image would not fit the GP engine anyway
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    zlib.error,
    struct.error,
    Image.DecompressionBombError,
)


def load_image(
    path: str | os.PathLike[str], *, grey: bool = False, max_pixels: int = MAX_PIXELS
) -> Tensor:
    """A PNG or ``.npy`` image as float64 ``(C, H, W)``, C ∈ {1, 3} (rules: module docstring).

    ``grey``: colour is converted to luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2;
    for PNGs by Pillow, rounded to 8 bits, as Pillow's ``convert("L")``), C = 1.
    """
    path = _existing(path, "image")
    if _is_npy(path):
        array = _npy_image(path, max_pixels)
        if grey and array.ndim == 3 and array.shape[-1] == 3:
            array = array @ np.array([0.299, 0.587, 0.114])
    else:
        array = _png_image(path, max_pixels, grey)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3) or 0 in array.shape:
        raise GpdipError(
            f"image '{path}': shape {array.shape}; expected (H, W) or (H, W, C) "
            "with C = 1 or 3 channels, H, W ≥ 1"
        )
    if not np.isfinite(array).all():
        raise GpdipError(f"image '{path}' contains NaN or Inf values; expected finite numbers")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float64))


def load_mask(
    path: str | os.PathLike[str],
    shape: tuple[int, int] | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
) -> Tensor:
    """Observed-pixel mask, bool ``(H, W)``: non-zero = observed (rules: module docstring).

    ``shape`` = (H, W) of the image it belongs to: a different size is a :class:`GpdipError`.
    """
    path = _existing(path, "mask")
    if _is_npy(path):
        array = _npy_array(path, max_pixels, "mask")
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 2:
            raise GpdipError(f"mask '{path}': shape {array.shape}; expected (H, W)")
        if not np.isfinite(array.astype(np.float64)).all():
            raise GpdipError(
                f"mask '{path}' contains NaN or Inf; expected 0 (missing) or "
                "non-zero (observed) finite values"
            )
        observed = array != 0
    else:
        with _opened(path, max_pixels, "mask") as im:
            colour = im.convert("RGBA" if im.mode == "P" else im.mode)
            array = np.asarray(colour)
        if array.ndim == 3:  # L/LA/RGB/RGBA: alpha (the last of 2 or 4 bands) is ignored
            bands = array.shape[-1]
            array = array[..., : bands - 1] if bands in (2, 4) else array
            observed = (array != 0).any(axis=-1)
        else:
            observed = array != 0
    mask = torch.from_numpy(np.ascontiguousarray(observed))
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise GpdipError(
            f"mask '{path}' is {mask.shape[1]}×{mask.shape[0]} (W×H) but the "
            f"image is {shape[1]}×{shape[0]}; expected the same width and height"
        )
    return mask


def save_image(path: str | os.PathLike[str], image: Tensor, bits: int = 8) -> Path:
    """Write ``(C, H, W)`` or ``(H, W)`` as ``.npy`` (float64, as is) or ``.png`` (clipped
    to [0, 1], 8- or 16-bit; 16-bit for grey only), atomically."""
    path = Path(path)
    array = image.detach().cpu().double().numpy()
    if path.suffix.lower() == ".npy":
        return atomic_write(path, lambda handle: np.save(handle, channels_last_array(array)))
    check_image_suffix(path)
    array = np.clip(channels_last_array(array), 0.0, 1.0)
    if bits not in (8, 16):
        raise GpdipError(f"output '{path}': bits={bits}; expected 8 or 16")
    if bits == 16:
        if array.ndim == 3:
            raise GpdipError(f"output '{path}': a 16-bit PNG holds grey images only")
        pil = Image.fromarray(np.round(array * 65535).astype(np.uint16))
    else:
        pil = Image.fromarray(np.round(array * 255).astype(np.uint8))
    # zlib level 3: a 1024^2 RGB result in 0.19 s instead of 0.63 s (level 6, PIL's
    # default), for a file 10% larger
    return atomic_write(path, lambda handle: pil.save(handle, format="PNG", compress_level=3))


def check_image_suffix(path: str | os.PathLike[str]) -> None:
    """Output image names end in ``.png`` or ``.npy``."""
    if Path(path).suffix.lower() not in (".png", ".npy"):
        raise GpdipError(f"output '{path}': expected a .png or .npy file name")


def channels_last(image: Tensor) -> Tensor:
    """``(C, H, W)`` → ``(H, W)`` (C = 1) or ``(H, W, C)``: the GP engine's layout."""
    if image.dim() != 3:
        raise GpdipError(f"image of shape {tuple(image.shape)}; expected (C, H, W)")
    return image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)


def channels_first(image: Tensor) -> Tensor:
    """``(H, W)`` or ``(H, W, C)`` → ``(C, H, W)``."""
    if image.dim() not in (2, 3):
        raise GpdipError(f"image of shape {tuple(image.shape)}; expected (H, W) or (H, W, C)")
    return image[None] if image.dim() == 2 else image.permute(2, 0, 1)


def channels_last_array(array: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`channels_last` for writers; 2-D arrays pass through."""
    if array.ndim == 3:
        return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    return array


def center_crop(image: Tensor, size: int) -> Tensor:
    """The central ``size × size`` window of the last two axes (``(C, H, W)``, ``(H, W)``)."""
    h, w = image.shape[-2:]
    if not 1 <= size <= min(h, w):
        raise GpdipError(f"crop size {size}: expected 1 ≤ size ≤ {min(h, w)} (image {h}×{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top : top + size, left : left + size].contiguous()


def psnr(x: Tensor, ref: Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(peak² / MSE), ``x`` clipped to [0, peak];
    float64 arithmetic; any layout, same shape for both."""
    _same_shape(x, ref, "psnr")
    mse = float(((x.detach().double().clamp(0, peak) - ref.detach().double()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak**2 / mse))


def ssim(x: Tensor, ref: Tensor, peak: float = 1.0, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004): 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03,
    population (co)variances, over the "valid" region (no padding).

    SSIM = (2μ_aμ_b + c1)(2σ_ab + c2) / ((μ_a² + μ_b² + c1)(σ_a² + σ_b² + c2)),
    c1 = (K1·peak)², c2 = (K2·peak)².  Shapes ``(H, W)`` or ``(C, H, W)`` (mean over
    channels), H, W ≥ 11; ``x`` is clipped to [0, peak].  Equals scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=peak)`` (tests/io/test_images.py).
    """
    _same_shape(x, ref, "ssim")
    if x.dim() == 3:
        return float(np.mean([ssim(x[c], ref[c], peak, sigma) for c in range(x.shape[0])]))
    if x.dim() != 2 or min(x.shape) < 11:
        raise GpdipError(f"ssim: shape {tuple(x.shape)}; expected (H, W) or (C, H, W), H, W ≥ 11")
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * sigma**2))
    window = (g[:, None] * g[None, :]) / g.sum() ** 2

    def blur(a: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(a[None, None], window[None, None])[0, 0]

    a, b = x.detach().double().clamp(0, peak), ref.detach().double()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    return float((numerator / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean())


def _same_shape(x: Tensor, ref: Tensor, what: str) -> None:
    if tuple(x.shape) != tuple(ref.shape):
        raise GpdipError(
            f"{what}: image shape {tuple(x.shape)} differs from the reference's "
            f"{tuple(ref.shape)}; expected the same shape"
        )


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise GpdipError(f"{what} file '{path}' does not exist or is not a file")
    return path


def _is_npy(path: Path) -> bool:
    return path.suffix.lower() == ".npy"


def _npy_image(path: Path, max_pixels: int) -> np.ndarray:
    return _npy_array(path, max_pixels, "image").astype(np.float64)


def _npy_array(path: Path, max_pixels: int, what: str) -> np.ndarray:
    """A real-valued array; the header (dtype, shape) is checked before the data is read
    (a memory map reads only the header; ``allow_pickle=False`` refuses object arrays)."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise GpdipError(
            f"{what} '{path}' is not a readable .npy file of numbers ({exc})"
        ) from None
    if not isinstance(mapped, np.ndarray):
        raise GpdipError(f"{what} '{path}': expected one array (.npy), got an archive")
    dtype = mapped.dtype
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise GpdipError(
            f"{what} '{path}': dtype {dtype}; expected real numbers (bool, integer or float)"
        )
    _check_size(path, mapped.shape[:2], max_pixels, what)
    return np.array(mapped)


def _check_size(path: Path, hw: tuple[int, ...], max_pixels: int, what: str) -> None:
    pixels = int(np.prod(hw, dtype=object)) if hw else 0
    if pixels > max_pixels:
        raise GpdipError(
            f"{what} '{path}' declares {'×'.join(map(str, hw))} = {pixels} pixels; "
            f"the limit is {max_pixels} (max_pixels)"
        )


def _png_header_size(path: Path) -> tuple[int, int] | None:
    """(H, W) from a PNG's IHDR chunk, without decoding; None for other formats."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return height, width


@contextmanager
def _opened(path: Path, max_pixels: int, what: str) -> Iterator[Image.Image]:
    """Pillow image, its size checked on the header before decoding; every decoder error
    (truncated or corrupt file) a :class:`GpdipError`."""
    header = _png_header_size(path)
    if header is not None:
        _check_size(path, header, max_pixels, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            _check_size(path, image.size[::-1], max_pixels, what)
            image.load()
    except _DECODE_ERRORS as exc:
        raise GpdipError(
            f"{what} '{path}' could not be decoded ({exc}); expected a "
            "complete PNG (or another image format Pillow reads)"
        ) from None
    try:
        yield image
    finally:
        image.close()


def _png_image(path: Path, max_pixels: int, grey: bool) -> np.ndarray:
    with _opened(path, max_pixels, "image") as im:
        if im.mode == "P":
            im = _expand_palette(im)
        if im.mode in ("LA", "RGBA", "PA"):
            _drop_alpha_warning(path, np.asarray(im.getchannel("A")))
            im = im.convert("L" if im.mode == "LA" else "RGB")
        if grey and im.mode not in ("1", "L", "I", "F") and not im.mode.startswith("I;16"):
            im = im.convert("L")
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im, dtype=np.float64) / 65535.0
        if im.mode == "1":
            return np.asarray(im, dtype=np.float64)
        if im.mode == "F":
            return np.asarray(im, dtype=np.float64)
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        return np.asarray(im, dtype=np.float64) / 255.0


def _expand_palette(im: Image.Image) -> Image.Image:
    """Palette → RGB(A); → L(A) when every palette colour in use is grey."""
    rgba = im.convert("RGBA")
    has_alpha = "transparency" in im.info
    rgb = np.asarray(rgba)[..., :3]
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    if grey:
        return rgba.convert("LA") if has_alpha else rgba.convert("L")
    return rgba if has_alpha else rgba.convert("RGB")


def _drop_alpha_warning(path: Path, alpha: np.ndarray) -> None:
    if alpha.size and int(alpha.min()) < 255:  # an opaque alpha drops nothing
        warnings.warn(
            f"image '{path}': alpha channel dropped (colour kept as stored, not premultiplied)",
            GpdipWarning,
            stacklevel=4,
        )
