"""GP posterior on a pixel grid: mean, pathwise samples, variance.

Model: ``f ~ GP(mu, k)`` on the ``H x W`` grid, observations
``y_o = f_o + eps``, ``eps ~ N(0, s^2 I)`` at the observed pixels ``o``.

* mean:      ``m = mu + K_{:o} alpha``,  ``(K_oo + s^2 I) alpha = y_o - mu``
* samples:   Matheron's rule (Wilson et al. 2020), with ``f ~ GP(0, k)`` and
  ``e ~ N(0, s^2 I)``: ``f_post = m + f + K_{:o} (K_oo + s^2 I)^{-1} (-f_o - e)``
* variance:  ``diag(K - K_{:o} (K_oo + s^2 I)^{-1} K_{o:})`` exactly (dense), or
  the mean of ``(f_post - m)^2`` over ``n`` pathwise samples, whose relative
  Monte Carlo standard error is ``sqrt(2 / n)`` (chi-square with n d.o.f.).

Backends: ``dense`` (float64 Cholesky, the reference), ``grid`` (FFT matmul +
batched preconditioned CG; all right-hand sides in one solve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.cg import conjugate_gradients, grid_preconditioner
from gpdip.gp.grid import TableFn, crop_table, dense_from_table
from gpdip.gp.sampling import CirculantSampler
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

#: Largest dense problem (bytes for ``K_{:o}`` and ``K_oo``) before raising.
MAX_DENSE_BYTES = 2 * 1024**3


@dataclass
class Posterior:
    """Result of an inference: tensors of shape ``(H, W)`` (``samples``: ``(n, H, W)``)."""

    mean: Tensor
    std: Tensor | None = None
    samples: Tensor | None = None
    info: dict = field(default_factory=dict)


def constant_mean(y_obs: Tensor, mean: str | float, solve=None) -> float:
    """Prior constant: ``"observed"`` mean, a number, or ``"ml"`` (GLS estimate).

    ``"ml"`` maximises the marginal likelihood in ``mu``:
    ``mu = 1^T A^{-1} y / 1^T A^{-1} 1`` with ``A = K_oo + s^2 I`` (``solve(B)``
    returns ``A^{-1} B`` for rows ``B``).
    """
    if isinstance(mean, int | float):
        return float(mean)
    if mean == "observed":
        return float(y_obs.mean())
    if mean == "ml":
        if solve is None:
            raise GpdipError("mean='ml' needs a solver")
        a = solve(torch.stack([y_obs, torch.ones_like(y_obs)]))
        return float(a[0].sum() / a[1].sum())
    raise GpdipError(f"mean: expected 'observed', 'ml' or a number, got {mean!r}")


def _check(image: Tensor, mask: Tensor) -> None:
    if image.shape != mask.shape:
        raise GpdipError(
            f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}"
        )
    if not bool(mask.any()):
        raise GpdipError("mask has no observed pixels (expected some nonzero entries)")
    if not bool(torch.isfinite(image[mask]).all()):
        raise GpdipError("image has NaN or Inf values at observed pixels")


def _slq_mll(op: MaskedGridOperator, r: Tensor, alpha: Tensor, probes: int,
             generator: torch.Generator | None) -> dict:
    """``-1/2 (r^T alpha + log|A| + n log 2 pi)`` with ``log|A|`` by SLQ, and its std error."""
    from gpdip.gp.slq import slq_logdet

    logdet, se = slq_logdet(op.matvec, r.numel(), probes, generator=generator)
    const = r.numel() * math.log(2 * math.pi)
    return {"log_marginal_likelihood": -0.5 * (float(r @ alpha) + logdet + const),
            "log_marginal_likelihood_se": 0.5 * se}


def _working_dtype(precision: str, tol: float) -> torch.dtype:
    if precision == "auto":
        return torch.float32 if tol >= 1e-4 else torch.float64
    if precision in ("float32", "float64"):
        return getattr(torch, precision)
    raise GpdipError(f"precision: expected 'auto', 'float32' or 'float64', got {precision!r}")


def dense_posterior(
    table: Tensor, image: Tensor, mask: Tensor, noise: float, mean: str | float = "observed",
    n_samples: int = 0, generator: torch.Generator | None = None,
    max_bytes: int = MAX_DENSE_BYTES,
) -> Posterior:
    """Reference posterior by float64 Cholesky (exact mean, variance, log marginal likelihood)."""
    _check(image, mask)
    size = tuple(image.shape)
    idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
    n, m = image.numel(), idx.numel()
    need = 8 * (n * m + m * m + n * n)
    if need > max_bytes:
        raise GpdipError(
            f"dense backend would need {need / 1024**3:.1f} GiB for a {size} image "
            f"(limit {max_bytes / 1024**3:.1f} GiB); use backend='grid' (--backend grid)"
        )
    table = crop_table(table, size).detach().to(torch.float64)
    K = dense_from_table(table, size)
    A = K[idx][:, idx] + noise * torch.eye(m, dtype=K.dtype, device=K.device)
    L = torch.linalg.cholesky(A)
    y = image.reshape(-1)[idx].to(torch.float64)

    def solve(b: Tensor) -> Tensor:  # rows of b -> rows of A^{-1} b
        return torch.cholesky_solve(b.T, L).T

    mu = constant_mean(y, mean, solve)
    alpha = solve((y - mu)[None])[0]
    Ko = K[:, idx]
    post_mean = mu + Ko @ alpha
    V = torch.linalg.solve_triangular(L, Ko.T, upper=False)
    var = (K.diagonal() - (V * V).sum(0)).clamp_min(0.0)
    logdet = 2.0 * torch.log(L.diagonal()).sum()
    mll = -0.5 * (float((y - mu) @ alpha) + float(logdet) + m * math.log(2 * math.pi))
    post = Posterior(post_mean.reshape(size), var.sqrt().reshape(size))
    post.info = {"backend": "dense", "log_marginal_likelihood": mll, "mean_constant": mu}
    if n_samples:
        cov = K - V.T @ V
        jitter = 1e-10 * float(K.diagonal().max())
        Lp = torch.linalg.cholesky(cov + jitter * torch.eye(n, dtype=K.dtype))
        w = torch.randn((n, n_samples), generator=generator, dtype=K.dtype)
        post.samples = (post_mean[:, None] + Lp @ w).T.reshape(n_samples, *size)
    return post


def grid_posterior(
    kernel: Tensor | TableFn, image: Tensor, mask: Tensor, noise: float,
    mean: str | float = "observed", n_samples: int = 0, tol: float = 1e-6,
    max_iter: int = 2000, generator: torch.Generator | None = None, progress: bool = False,
    precision: str = "float64", logdet_probes: int = 0,
) -> Posterior:
    """Posterior by FFT matmuls and batched preconditioned CG (see module doc).

    ``kernel`` is a table covering the image or a callable ``size -> table``
    (needed for sampling when the minimal circulant embedding is not PSD).
    With ``n_samples > 0`` the std map is the pathwise Monte Carlo estimate.
    ``precision``: ``"float64"`` (default), ``"float32"`` (FFTs and CG in single precision;
    loses CG orthogonality sooner: 142 vs 112 iterations on a 512x512 test at tol 1e-4)
    or ``"auto"`` (float32 when ``tol >= 1e-4``).  ``logdet_probes > 0`` adds the log
    marginal likelihood estimated by SLQ (``info["log_marginal_likelihood"]`` and its
    standard error ``info["log_marginal_likelihood_se"]``).
    """
    _check(image, mask)
    size = tuple(image.shape)
    table = kernel(size) if callable(kernel) else crop_table(kernel, size)
    table = table.detach().to(torch.float64)
    work = _working_dtype(precision, tol)
    op = MaskedGridOperator(GridKernelOperator(table, work), mask,
                            torch.tensor(noise, dtype=torch.float64))
    precond = grid_preconditioner(op, full=True)
    y = op.gather(image)
    fmask = op.mask.to(work)

    def solve(b: Tensor):  # b: (B, n_obs) -> CG on full-grid vectors vanishing off the mask
        full = op.scatter(b).reshape(b.shape[0], -1).to(work)
        x, cg = conjugate_gradients(op.matvec_full, full, precond, tol, max_iter, progress)
        return fmask * x, cg

    info: dict = {"backend": "grid", "cg_iterations": 0, "cg_residual": 0.0}
    if mean == "ml":
        sol, cg = solve(torch.stack([y, torch.ones_like(y)]))
        info["cg_iterations"] += cg.iterations
        mu = float(sol[0].double().sum() / sol[1].double().sum())
    else:
        mu = constant_mean(y, mean)
    rhs = [(y - mu)[None]]
    prior = None
    if n_samples:
        sampler = CirculantSampler(kernel if callable(kernel) else table, size)
        prior = sampler.sample(n_samples, generator).to(image.dtype)
        eps = torch.randn((n_samples, y.numel()), generator=generator, dtype=image.dtype,
                          device=image.device)
        rhs.append(-(op.gather(prior) + noise**0.5 * eps))
    sol, cg = solve(torch.cat(rhs))
    info["cg_iterations"] += cg.iterations
    info["cg_residual"] = cg.residual
    info["mean_constant"] = mu
    corr = op.base.grid_matmul(sol.reshape(-1, *size)).to(torch.float64)  # K_{:o} per column
    post = Posterior(mu + corr[0], info=info)
    if logdet_probes:
        alpha = op.gather(sol[0].reshape(size).double())
        info.update(_slq_mll(op, y - mu, alpha, logdet_probes, generator))
    if prior is not None:
        post.samples = post.mean + prior + corr[1:]
        post.std = ((post.samples - post.mean) ** 2).mean(0).sqrt()
        info["std_mc_relative_error"] = math.sqrt(1.0 / (2 * n_samples))
    return post
