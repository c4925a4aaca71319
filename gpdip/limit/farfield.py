"""Far-field extension: compile only the offsets where receptive fields overlap.

Beyond the *correlation radius* R of a layer, two outputs depend on disjoint
parts of the input.  With a white-noise input (σ = 0), or a Gaussian-filtered
one whose K_x(r) < 1e-18·K_x(0) beyond 13σ, the second moment of such a pair
depends only on the two phases: C[p, r] = F(p, (p + r) mod P).  The maps of
the recursion keep that property, so the output kernel satisfies

    K(r) = K(r')  for |r_d| > R, with r'_d ≡ r_d (mod P) in (R, R + P],

per dimension.  The compiler therefore computes offsets up to R + P and fills
the rest of the table by this periodic continuation, which is exact (to the
1e-18 truncation of a Gaussian input): a 512×512 image needs the recursion on
about 40×40 offsets instead of 1023×1023.

How each layer moves R (per dimension; each layer type's ``far_radius`` in
:mod:`gpdip.layers`, folded by :func:`gpdip.layers.base.far_radius`):

==============  =========================================================
conv            unchanged: iid taps correlate only equal taps, C'[p, r] =
                mean_j C[p+j, r] keeps the offset (a stride decimates)
non-linearity   unchanged (acts on each (p, r) entry)
decimate τ      ⌊R/τ⌋;  average pooling: ⌊(R + τ − 1)/τ⌋
nearest/bilin.  τ·(R + 2·span + 1) − 1, span = 0 (nearest) or 1 (bilinear)
sinc            unbounded (the band-limited interpolant has infinite support)
skip            the larger of the two paths
==============  =========================================================
"""

from __future__ import annotations

import math

import torch

# exp(−r²/(4σ²)) < 1e-18 for r > 13σ (exp(−42.25) = 4.5e-19).
GAUSSIAN_CUTOFF = 13.0


def input_radius(sigma: float) -> float:
    """Correlation radius of the input: 0 for white noise, ⌈13σ⌉ for a Gaussian filter.

    ``math.inf`` (no continuation) when 13σ is beyond any table (σ > 1e12).
    """
    if sigma == 0:
        return 0
    return math.inf if sigma > 1e12 else math.ceil(GAUSSIAN_CUTOFF * sigma)


def extend(kernel: torch.Tensor, sizes: tuple[int, ...], far: int, period: int) -> torch.Tensor:
    """Continue a centred table computed to radius ≥ far + period up to radius sizes[d] − 1."""
    for d, size in enumerate(sizes):
        have = (kernel.shape[d] - 1) // 2
        want = size - 1
        if want <= have:
            continue
        r = torch.arange(-want, want + 1)
        mag = r.abs()
        folded = far + 1 + (mag - far - 1) % period
        source = torch.where(mag <= have, r, torch.sign(r) * folded)
        kernel = kernel.index_select(d, (source + have).to(kernel.device))
    return kernel
