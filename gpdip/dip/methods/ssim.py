"""Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, Eq. 13) for (C, H, W) images.

Gaussian window σ = 1.5 truncated at radius 5 (11×11, normalised), K1 = 0.01, K2 = 0.03,
population (biased) local covariances, data range 1; the SSIM map is averaged over the
pixels whose window lies inside the image ("valid"), then over channels.  This is
scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``, which filters with reflection and then crops
the 5-pixel border, leaving exactly the valid pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gpdip.errors import GpdipError

RADIUS, SIGMA, K1, K2 = 5, 1.5, 0.01, 0.03


def _window(dtype: torch.dtype) -> torch.Tensor:
    r = torch.arange(-RADIUS, RADIUS + 1, dtype=dtype)
    g = torch.exp(-(r**2) / (2 * SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, 11, 11)


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM of ``x`` (clipped to [0, data_range]) against ``ref``, both (C, H, W)."""
    if x.shape != ref.shape or x.dim() != 3:
        raise GpdipError(
            f"ssim: images of shapes {tuple(x.shape)} and {tuple(ref.shape)}; "
            "expected two (C, H, W) images of one shape"
        )
    if min(x.shape[1:]) < 2 * RADIUS + 1:
        raise GpdipError(f"ssim: image {tuple(x.shape)} is smaller than the 11×11 window")
    a = x.detach().double().clamp(0, data_range)[:, None]
    b = ref.detach().double()[:, None]
    w = _window(torch.float64).to(a.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())
