"""Input and output: images, masks and metrics, atomic writers, run folders, data paths.

from gpdip.io import load_image, load_mask, psnr, ssim, save_image
y = load_image("noisy.png")                    # (C, H, W) float64 in [0, 1]
mask = load_mask("mask.png", tuple(y.shape[1:]))  # (H, W) bool, non-zero = observed
"""

from gpdip.io.atomic import (
    atomic_write,
    check_writable,
    ensure_dir,
    load_torch,
    save_figure,
    save_json,
    save_npy,
    save_text,
    save_torch,
)
from gpdip.io.images import (
    MAX_PIXELS,
    center_crop,
    channels_first,
    channels_last,
    load_image,
    load_mask,
    psnr,
    save_image,
    ssim,
)

__all__ = [
    "MAX_PIXELS",
    "atomic_write",
    "center_crop",
    "channels_first",
    "channels_last",
    "check_writable",
    "ensure_dir",
    "load_image",
    "load_mask",
    "load_torch",
    "psnr",
    "save_figure",
    "save_image",
    "save_json",
    "save_npy",
    "save_text",
    "save_torch",
    "ssim",
]
