"""High-level inpainting: kernel choice, hyperparameters, backend, colour.

``inpaint(image, mask, kernel=...)`` fits hyperparameters by marginal
likelihood (unless given), then computes the posterior with the chosen backend:
``dense`` (float64 Cholesky), ``gpytorch`` (ExactGP with a table kernel) or
``grid`` (FFT + CG; neither it nor ``dense`` imports gpytorch); ``auto`` picks
``dense`` up to 1024 observed pixels and ``grid`` above.  Colour images get an
independent GP per channel, with hyperparameters shared (fitted on the channel mean) or
per channel.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp.hyper import Kernel, fit_hyperparameters, select_kernel
from gpdip.gp.posterior import Posterior, dense_posterior, grid_posterior
from gpdip.gp.tables import GridTable, make_table

BACKENDS = ("auto", "dense", "gpytorch", "grid")
DENSE_AUTO_MAX = 1024  # observed pixels up to which ``auto`` uses the dense reference


@dataclass(frozen=True)
class _SolveOptions:
    """How to solve, once the kernel and hyperparameters are known (see :func:`inpaint`)."""

    backend: str  # resolved: "dense", "gpytorch" or "grid"
    tol: float
    n_samples: int
    std: bool
    mean: str | float
    generator: torch.Generator | None
    progress: bool


def resolve_kernel(
    kernel,
    image: Tensor,
    mask: Tensor,
    noise: float | None,
    lengthscale: float | None,
    fit: bool,
    progress: bool,
):
    """Return ``(TableKernel, hyper dict)``: selected/fitted as requested."""
    if isinstance(kernel, str) and (kernel == "auto" or kernel.startswith("auto:")):
        # "auto" uses hyper.DEFAULT_CANDIDATES; "auto:rbf,unet2,conv-d3" gives the list
        names = tuple(c for c in kernel.partition(":")[2].split(",") if c)
        if names:
            k, sel = select_kernel(image, mask, candidates=names, noise=noise, progress=progress)
        else:
            k, sel = select_kernel(image, mask, noise=noise, progress=progress)
        return k, {**sel["chosen"], "candidates": sel["candidates"]}
    k = make_table(kernel, lengthscale) if isinstance(kernel, str) else kernel
    if fit:
        return k, fit_hyperparameters(k, image, mask, noise, progress=progress)
    return k, {
        "noise": noise if noise is not None else 1e-4,
        "outputscale": float(k.outputscale.detach()),
    }


def inpaint(
    image: Tensor,
    mask: Tensor,
    kernel: str | Kernel = "rbf",
    noise: float | None = None,
    lengthscale: float | None = None,
    backend: str = "auto",
    tol: float = 1e-6,
    n_samples: int = 0,
    std: bool = False,
    mean: str | float = "observed",
    fit: bool = True,
    shared: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Posterior:
    """Posterior of the image given observed pixels (``mask`` True = observed).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float; values at unobserved pixels are ignored.
        kernel: ``"rbf"``, ``"matern52"``, ``"auto"`` (or ``"auto:NAME,NAME,..."`` with the
            candidates), an architecture name/path, or a kernel.
        noise: noise variance; learned by marginal likelihood when None.  With every pixel
            observed and ``noise > 0`` this is GP denoising (the posterior mean smooths).
        std: also compute the posterior std (exact for dense/gpytorch; pathwise
            Monte Carlo with ``max(n_samples, 16)`` samples for grid).
    Returns:
        :class:`Posterior` with ``mean`` (and ``std``/``samples``) shaped like ``image``.
    """
    if backend not in BACKENDS:
        raise GpdipError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    image = image.double()
    mask = mask.bool()
    if tuple(mask.shape) != tuple(image.shape[:2]):
        raise GpdipError(
            f"mask shape {tuple(mask.shape)} does not match image {tuple(image.shape[:2])}"
        )
    if not bool(mask.any()):
        raise GpdipError("mask has no observed pixels (expected some nonzero entries)")
    if not bool(torch.isfinite(image).all()):
        raise GpdipError("image contains NaN or Inf values")
    if bool(mask.all()) and not noise:  # all observed and noise-free: nothing to infer
        warnings.warn(
            "mask observes every pixel: nothing to inpaint, returning the image "
            "(pass noise > 0 to denoise)",
            GpdipWarning,
            stacklevel=2,
        )
        return Posterior(image.clone(), torch.zeros_like(image), info={"backend": "none"})
    if backend == "auto":  # resolved once here: every channel and _colour see the same
        backend = "dense" if int(mask.sum()) <= DENSE_AUTO_MAX else "grid"
    opts = _SolveOptions(backend, tol, n_samples, std, mean, generator, progress)
    if image.dim() == 3:
        return _colour(image, mask, kernel, noise, lengthscale, fit, shared, opts)
    t0 = time.perf_counter()
    k, hyper = resolve_kernel(kernel, image, mask, noise, lengthscale, fit, progress)
    post = _solve(k, hyper, image, mask, opts)
    post.info.update(hyper=hyper, time_s=time.perf_counter() - t0)
    return post


def _solve(k, hyper: dict, image: Tensor, mask: Tensor, opts: _SolveOptions) -> Posterior:
    s2 = float(hyper["noise"])
    backend = opts.backend
    size = tuple(image.shape)
    with torch.no_grad():
        if backend == "dense":
            table = k.table(size)
            return dense_posterior(
                table, image, mask, s2, opts.mean, opts.n_samples, opts.generator
            )
        if backend == "gpytorch":
            from gpdip.gp.gpytorch_backend import gpytorch_posterior  # imports gpytorch

            mu = float(image[mask].mean()) if opts.mean == "observed" else float(opts.mean)
            gk = k.to_gpytorch() if isinstance(k, GridTable) else k
            return gpytorch_posterior(gk, image, mask, s2, mu)
        ns = max(opts.n_samples, 16) if opts.std else opts.n_samples
        return grid_posterior(
            lambda s: k.table(s),
            image,
            mask,
            s2,
            opts.mean,
            ns,
            opts.tol,
            generator=opts.generator,
            progress=opts.progress,
        )


def _colour(image, mask, kernel, noise, lengthscale, fit, shared, opts: _SolveOptions):
    """Independent GP per channel; hyperparameters shared (fit on the channel mean) or not.

    With shared hyperparameters the grid backend solves every channel (and sample) as
    right-hand sides of one batched CG; the other backends loop over channels.
    """
    k, hyper = None, {}
    if shared:
        t0 = time.perf_counter()
        k, hyper = resolve_kernel(
            kernel, image.mean(-1), mask, noise, lengthscale, fit, opts.progress
        )
        if opts.backend == "grid":
            post = _solve(k, hyper, image, mask, opts)
            post.info.update(hyper=hyper, time_s=time.perf_counter() - t0)
            return post
    outs = []
    for c in range(image.shape[-1]):
        if shared:
            outs.append(_solve(k, hyper, image[..., c], mask, opts))
        else:
            outs.append(
                inpaint(
                    image[..., c],
                    mask,
                    kernel,
                    noise,
                    lengthscale,
                    fit=fit,
                    **{f.name: getattr(opts, f.name) for f in fields(opts)},
                )
            )
    post = Posterior(torch.stack([o.mean for o in outs], -1))
    stds = [o.std for o in outs if o.std is not None]
    if len(stds) == len(outs):
        post.std = torch.stack(stds, -1)
    samples = [o.samples for o in outs if o.samples is not None]
    if len(samples) == len(outs):
        post.samples = torch.stack(samples, -1)
    post.info = {"channels": [o.info for o in outs], "hyper": hyper}
    return post
