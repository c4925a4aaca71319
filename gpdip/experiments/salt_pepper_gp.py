"""GP posterior means for the salt-and-pepper task of the methods comparison.

Every entry is observed, so :func:`gpdip.gp.inpaint` with ``noise=None`` has nothing to
inpaint and returns the input unchanged (its documented short cut, with a warning).  That
was the comparison's first GP-DIP salt-and-pepper row: the noisy input, 8.57 dB.  Two
principled rows replace it:

* ``"gaussian"``: the GP with a Gaussian likelihood y = x + ε, ε ~ N(0, σ²), σ² fitted by
  marginal likelihood on the noisy image (:func:`gpdip.gp.inpaint.resolve_kernel`), then
  the posterior mean m = μ + K(K + σ²I)⁻¹(y − μ).  This is what a Gaussian likelihood
  does with impulse noise: the impulses are explained as a large σ², and m is a heavy
  smoothing of y (salt and pepper averaged in).
* ``"impulse"``: the salt-and-pepper likelihood p(y | x) = (1 − ρ) δ(y − x) + (ρ/2) δ(y) +
  (ρ/2) δ(y − 1) per entry (:func:`gpdip.dip.images.salt_and_pepper`).  For y ∉ {0, 1}
  it forces x = y; for y ∈ {0, 1} its x-dependent part is (1 − ρ) δ(y − x), which has
  prior probability zero under a GP (x is continuous), so the entry carries no
  information about x.  The exact posterior is therefore the GP conditioned on the
  entries strictly inside (0, 1): inpainting with :func:`impulse_mask` per channel.  It
  uses the noise model's impulse values (0 and 1), which DOP does not; true pixels at
  exactly 0 or 1 are dropped too, losing only their information.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp import inpaint
from gpdip.gp.inpaint import resolve_kernel

LIKELIHOODS = ("gaussian", "impulse")


def impulse_mask(observed: Tensor) -> Tensor:
    """``(C, H, W)`` bool, True where ``observed`` (C, H, W) is not an impulse: the entries
    strictly inside (0, 1), the only ones the salt-and-pepper likelihood leaves
    informative."""
    return (observed > 0) & (observed < 1)


def salt_pepper_gp_mean(
    kernel: str,
    observed: Tensor,
    likelihood: str,
    noise: float | None = None,
    lengthscale: float | None = None,
    fit: bool = True,
    tol: float = 1e-5,
) -> tuple[Tensor, dict[str, Any]]:
    """GP posterior mean ``(C, H, W)`` of a salt-and-pepper ``observed`` image (C, H, W),
    an independent GP per channel, under ``likelihood`` (see the module doc).

    ``noise``: the Gaussian noise variance; None fits it by marginal likelihood (on the
    whole noisy channel for ``"gaussian"``, on the non-impulse entries for ``"impulse"``).
    Returns the mean and ``{"likelihood", "noise", "outputscale", "observed_fraction"}``,
    lists over channels."""
    if likelihood not in LIKELIHOODS:
        raise GpdipError(f"likelihood {likelihood!r}: expected one of {', '.join(LIKELIHOODS)}")
    if observed.dim() != 3:
        raise GpdipError(f"observed: expected a (C, H, W) image, got shape {tuple(observed.shape)}")
    if likelihood == "impulse":
        masks = impulse_mask(observed)
    else:
        masks = torch.ones(observed.shape, dtype=torch.bool)
    means: list[Tensor] = []
    fits: dict[str, list[float]] = {"noise": [], "outputscale": [], "observed_fraction": []}
    for c in range(observed.shape[0]):
        y, mask = observed[c].double(), masks[c]
        if not bool(mask.any()):
            raise GpdipError(f"channel {c}: every entry is an impulse (0 or 1); nothing observed")
        s2 = noise
        if likelihood == "gaussian" and s2 is None:  # inpaint would return y (all observed)
            _, hyper = resolve_kernel(kernel, y, mask, None, lengthscale, fit, False)
            s2 = float(hyper["noise"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CG warnings: the row's PSNR shows a bad solve
            post = inpaint(y, mask, kernel, noise=s2, lengthscale=lengthscale, fit=fit, tol=tol)
        if post.info.get("backend") == "none":
            raise GpdipError(f"channel {c}: inpaint returned its input unsolved (noise {s2})")
        means.append(post.mean)
        fits["noise"].append(float(post.info["hyper"]["noise"]))
        fits["outputscale"].append(float(post.info["hyper"]["outputscale"]))
        fits["observed_fraction"].append(float(mask.double().mean()))
    return torch.stack(means).float(), {"likelihood": likelihood, **fits}
