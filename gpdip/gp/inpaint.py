"""High-level inpainting: kernel choice, hyperparameters, backend, colour.

``inpaint(image, mask, kernel=...)`` fits hyperparameters by marginal
likelihood (unless given), then computes the posterior with the chosen backend:
``dense`` (float64 Cholesky), ``gpytorch`` (ExactGP with a table kernel) or
``grid`` (FFT + CG); ``auto`` picks ``dense`` up to 1024 observed pixels and
``grid`` above.  Colour images get an independent GP per channel, with
hyperparameters shared (fitted on the channel mean) or per channel.
"""

from __future__ import annotations

import time
import warnings

import gpytorch
import torch
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp.grid import grid_coordinates
from gpdip.gp.hyper import fit_hyperparameters, make_kernel, select_kernel
from gpdip.gp.kernels import TableKernel
from gpdip.gp.posterior import Posterior, dense_posterior, grid_posterior

BACKENDS = ("auto", "dense", "gpytorch", "grid")
#: Lower bound of GPyTorch's ``GaussianLikelihood`` noise (its default ``GreaterThan(1e-4)``).
GPYTORCH_MIN_NOISE = 1e-4
DENSE_AUTO_MAX = 1024  # observed pixels up to which ``auto`` uses the dense reference


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, x, y, likelihood, kernel, mu):
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean()
        self.mean_module.constant.data.fill_(mu)
        self.covar_module = kernel

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def gpytorch_posterior(
    kernel: TableKernel, image: Tensor, mask: Tensor, noise: float, mu: float, variance: bool = True
) -> Posterior:
    """Posterior mean (and std) through GPyTorch's default ExactGP prediction path.

    GPyTorch uses Cholesky up to ``max_cholesky_size`` (800) training points and CG
    beyond; the variance of every pixel is expensive there (``variance=False`` skips it).
    A noise below GPyTorch's bound ``GPYTORCH_MIN_NOISE`` is raised to it with a warning
    (the likelihood would otherwise refuse it); ``info["noise"]`` holds the value used.
    """
    if noise < GPYTORCH_MIN_NOISE:
        warnings.warn(
            f"gpytorch backend: noise {noise:.3g} is below GPyTorch's noise bound "
            f"{GPYTORCH_MIN_NOISE:g} (GaussianLikelihood); using {GPYTORCH_MIN_NOISE:g} "
            "(use backend='grid' or 'dense' for smaller noise)",
            GpdipWarning,
            stacklevel=2,
        )
        noise = GPYTORCH_MIN_NOISE
    x = grid_coordinates(tuple(image.shape))
    obs = mask.reshape(-1)
    lik = gpytorch.likelihoods.GaussianLikelihood().double()
    lik.noise = noise
    model = _ExactGP(x[obs], image.reshape(-1)[obs].double(), lik, kernel, mu).double()
    model.eval()
    lik.eval()
    with torch.no_grad():
        pred = model(x)
        mean = pred.mean
        std = pred.variance.clamp_min(0).sqrt().reshape(image.shape) if variance else None
    post = Posterior(mean.reshape(image.shape), std)
    post.info = {"backend": "gpytorch", "mean_constant": mu, "noise": noise}
    return post


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
    k = make_kernel(kernel, lengthscale) if isinstance(kernel, str) else kernel
    if fit:
        return k, fit_hyperparameters(k, image, mask, noise, progress=progress)
    return k, {
        "noise": noise if noise is not None else 1e-4,
        "outputscale": float(k.outputscale.detach()),
    }


def inpaint(
    image: Tensor,
    mask: Tensor,
    kernel: str | TableKernel = "rbf",
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
    if image.dim() == 3:
        return _colour(
            image,
            mask,
            kernel,
            noise,
            lengthscale,
            backend,
            tol,
            n_samples,
            std,
            mean,
            fit,
            shared,
            generator,
            progress,
        )
    t0 = time.perf_counter()
    k, hyper = resolve_kernel(kernel, image, mask, noise, lengthscale, fit, progress)
    post = _solve(k, hyper, image, mask, backend, tol, n_samples, std, mean, generator, progress)
    post.info.update(hyper=hyper, time_s=time.perf_counter() - t0)
    return post


def _solve(k, hyper, image, mask, backend, tol, n_samples, std, mean, generator, progress):
    s2 = float(hyper["noise"])
    if backend == "auto":
        backend = "dense" if int(mask.sum()) <= DENSE_AUTO_MAX else "grid"
    size = tuple(image.shape)
    with torch.no_grad():
        if backend == "dense":
            return dense_posterior(k.table(size), image, mask, s2, mean, n_samples, generator)
        if backend == "gpytorch":
            mu = float(image[mask].mean()) if mean == "observed" else float(mean)
            return gpytorch_posterior(k, image, mask, s2, mu)
        ns = max(n_samples, 16) if std else n_samples
        return grid_posterior(
            lambda s: k.table(s),
            image,
            mask,
            s2,
            mean,
            ns,
            tol,
            generator=generator,
            progress=progress,
        )


def _colour(
    image,
    mask,
    kernel,
    noise,
    lengthscale,
    backend,
    tol,
    n_samples,
    std,
    mean,
    fit,
    shared,
    generator,
    progress,
) -> Posterior:
    """Independent GP per channel; hyperparameters shared (fit on the channel mean) or not.

    With shared hyperparameters the grid backend solves every channel (and sample) as
    right-hand sides of one batched CG; the other backends loop over channels.
    """
    k, hyper = (None, None)
    if shared:
        t0 = time.perf_counter()
        k, hyper = resolve_kernel(kernel, image.mean(-1), mask, noise, lengthscale, fit, progress)
        if backend == "grid" or (backend == "auto" and int(mask.sum()) > DENSE_AUTO_MAX):
            post = _solve(
                k, hyper, image, mask, "grid", tol, n_samples, std, mean, generator, progress
            )
            post.info.update(hyper=hyper, time_s=time.perf_counter() - t0)
            return post
    outs = []
    for c in range(image.shape[-1]):
        if shared:
            outs.append(
                _solve(
                    k,
                    hyper,
                    image[..., c],
                    mask,
                    backend,
                    tol,
                    n_samples,
                    std,
                    mean,
                    generator,
                    progress,
                )
            )
        else:
            outs.append(
                inpaint(
                    image[..., c],
                    mask,
                    kernel,
                    noise,
                    lengthscale,
                    backend,
                    tol,
                    n_samples,
                    std,
                    mean,
                    fit,
                    True,
                    generator,
                    progress,
                )
            )
    post = Posterior(torch.stack([o.mean for o in outs], -1))
    if all(o.std is not None for o in outs):
        post.std = torch.stack([o.std for o in outs], -1)
    if all(o.samples is not None for o in outs):
        post.samples = torch.stack([o.samples for o in outs], -1)
    post.info = {"channels": [o.info for o in outs], "hyper": hyper}
    return post
