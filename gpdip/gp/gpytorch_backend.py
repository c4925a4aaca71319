"""GPyTorch's own exact-GP prediction with a table kernel: the ``gpytorch`` backend.

Kept apart from :mod:`gpdip.gp.inpaint` so that the grid and dense paths never import
gpytorch (nor pykeops and sympy, which it pulls in).
"""

from __future__ import annotations

import warnings

import gpytorch
import torch
from torch import Tensor

from gpdip.errors import GpdipWarning
from gpdip.gp.grid import grid_coordinates
from gpdip.gp.kernels import TableKernel
from gpdip.gp.posterior import Posterior

#: Lower bound of GPyTorch's ``GaussianLikelihood`` noise (its default ``GreaterThan(1e-4)``).
GPYTORCH_MIN_NOISE = 1e-4


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
