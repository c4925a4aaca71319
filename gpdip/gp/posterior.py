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
from gpdip.gp.cg import (
    MatVec,
    Switch,
    conjugate_gradients,
    extension_preconditioner,
    grid_preconditioner,
)
from gpdip.gp.grid import TableFn, crop_table, dense_from_table
from gpdip.gp.gridcov import GridCovariance, MaskedGridCovariance
from gpdip.gp.precond import schwarz_preconditioner, schwarz_switch
from gpdip.gp.refine import refined_cg
from gpdip.gp.sampling import CirculantSampler

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


def _slq_mll(
    op: MaskedGridCovariance,
    r: Tensor,
    alpha: Tensor,
    probes: int,
    generator: torch.Generator | None,
) -> dict:
    """``-1/2 (r^T alpha + log|A| + n log 2 pi)`` per channel row of ``r``/``alpha``
    ``(C, n)``, summed, with ``log|A|`` by SLQ (shared) and its std error."""
    from gpdip.gp.slq import slq_logdet

    logdet, se = slq_logdet(op.matvec, r.shape[-1], probes, generator=generator)
    const = r.shape[-1] * math.log(2 * math.pi)
    quad = float((r * alpha).sum())
    return {
        "log_marginal_likelihood": -0.5 * (quad + r.shape[0] * (logdet + const)),
        "log_marginal_likelihood_se": 0.5 * r.shape[0] * se,
    }


def _working_dtype(precision: str, tol: float) -> torch.dtype:
    """The dtype CG's vectors (and, but for ``"mixed"``, its FFTs) work in."""
    if precision == "auto":
        return torch.float32 if tol >= 1e-4 else torch.float64
    if precision in ("float32", "float64"):
        return getattr(torch, precision)
    if precision == "mixed":
        return torch.float64
    raise GpdipError(
        f"precision: expected 'mixed', 'float64', 'float32' or 'auto', got {precision!r}"
    )


def dense_posterior(
    table: Tensor,
    image: Tensor,
    mask: Tensor,
    noise: float,
    mean: str | float = "observed",
    n_samples: int = 0,
    generator: torch.Generator | None = None,
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
    kernel: Tensor | TableFn,
    image: Tensor,
    mask: Tensor,
    noise: float,
    mean: str | float = "observed",
    n_samples: int = 0,
    tol: float = 1e-6,
    max_iter: int = 2000,
    generator: torch.Generator | None = None,
    progress: bool = False,
    precision: str = "mixed",
    logdet_probes: int = 0,
    precond: str = "auto",
) -> Posterior:
    """Posterior by FFT matmuls and one batched preconditioned CG (see module doc).

    ``image`` is ``(H, W)`` or ``(H, W, C)``: channels share kernel and mask, so all of
    them (and all samples) are right-hand sides of one CG.  ``kernel`` is a table
    covering the image or a callable ``size -> table`` (needed when the minimal circulant
    embedding is not PSD).  With ``n_samples > 0`` the std map is the pathwise Monte Carlo
    estimate.  ``precond``: ``"auto"`` (default: extension, switching to Schwarz when the
    residual decay predicts more than 100 further iterations, see
    :func:`gpdip.gp.precond.schwarz_switch`), ``"extension"``
    (:func:`extension_preconditioner`), ``"schwarz"``
    (:func:`gpdip.gp.precond.schwarz_preconditioner`: bounded iterations for smooth
    kernels at small noise) or ``"circulant"`` (:func:`grid_preconditioner`).
    ``info["cg_switched_at"]`` is the iteration of the switch (None: none).  ``precision``:
    ``"mixed"`` (default: float32 CG iterations with float64 residual replacement, the
    same float64 stopping rule at 0.67-0.73x the time at 512^2, :mod:`gpdip.gp.refine`),
    ``"float64"``,
    ``"float32"`` (loses CG orthogonality sooner: 142 vs 112 iterations on a 512x512 test
    at tol 1e-4) or ``"auto"`` (float32 when ``tol >= 1e-4``, else float64).
    ``logdet_probes > 0`` adds the log marginal likelihood by SLQ
    (``info["log_marginal_likelihood"]`` and ``..._se``; summed over channels).
    """
    colour = image.dim() == mask.dim() + 1
    planes = image.movedim(-1, 0) if colour else image[None]  # (C, H, W)
    for plane in planes:
        _check(plane, mask)
    size = tuple(planes.shape[1:])
    table = kernel(size) if callable(kernel) else crop_table(kernel, size)
    table = table.detach().to(torch.float64)
    work = _working_dtype(precision, tol)
    op = MaskedGridCovariance(
        GridCovariance(table, work), mask, torch.tensor(noise, dtype=torch.float64)
    )
    solve = _make_solver(op, precond, tol, max_iter, progress, work, precision == "mixed")
    ys = op.gather(planes.to(torch.float64))  # (C, n_obs)
    info: dict = {"backend": "grid", "preconditioner": precond, "cg_iterations": 0}
    if mean == "ml":
        alpha, _, cg = solve(torch.cat([ys, torch.ones_like(ys[:1])]))
        info["cg_iterations"] += cg.iterations
        mus = [float(a.sum() / alpha[-1].sum()) for a in alpha[:-1]]
    else:
        mus = [constant_mean(y, mean) for y in ys]
    mu = torch.tensor(mus, dtype=torch.float64)
    rhs = [ys - mu[:, None]]
    prior = None
    if n_samples:
        sampler = CirculantSampler(kernel if callable(kernel) else table, size)
        prior = sampler.sample(n_samples * len(mus), generator).to(torch.float64)
        eps = torch.randn((prior.shape[0], ys.shape[1]), generator=generator, dtype=torch.float64)
        rhs.append(-(op.gather(prior) + noise**0.5 * eps))
    alpha, corr, cg = solve(torch.cat(rhs))
    info["cg_iterations"] += cg.iterations
    info["cg_residual"] = cg.residual
    info["cg_switched_at"] = cg.switched_at
    means = mu[:, None, None] + corr[: len(mus)]  # (C, H, W)
    info["mean_constant"] = mus if colour else mus[0]
    post = Posterior(_channels_last(means, colour), info=info)
    if logdet_probes:
        info.update(_slq_mll(op, ys - mu[:, None], alpha[: len(mus)], logdet_probes, generator))
    if prior is not None:
        # sample j of channel c is row c * n_samples + j (channel-major)
        draws = (prior + corr[len(mus) :]).reshape(len(mus), n_samples, *size)
        samples = means[:, None] + draws  # (C, n, H, W)
        std = (draws**2).mean(1).sqrt()
        post.samples = samples.movedim(0, -1) if colour else samples[0]
        post.std = _channels_last(std, colour)
        info["std_mc_relative_error"] = math.sqrt(1.0 / (2 * n_samples))
    return post


def _channels_last(planes: Tensor, colour: bool) -> Tensor:
    return planes.movedim(0, -1) if colour else planes[0]


def _make_solver(
    op: MaskedGridCovariance,
    precond: str,
    tol: float,
    max_iter: int,
    progress: bool,
    work: torch.dtype,
    mixed: bool = False,
):
    """``solve(b (B, n_obs)) -> (alpha (B, n_obs), K_{:o} alpha (B, H, W), CGInfo)``.

    CG runs on full-grid vectors that vanish off the mask (no scatter/gather per iteration);
    ``mixed``: float32 rounds refined on float64 residuals (:func:`refined_cg`).
    """
    size = op.base.grid_size
    fmask = op.float_mask(work)
    if mixed:
        low = op.astype(torch.float32)
        apply_low, switch = _preconditioner(low, precond, tol)
        # the Schwarz matrix works in float64 whatever the vectors: reuse it for float64
        exact = (
            (lambda: apply_low)
            if precond == "schwarz"
            else (lambda: _preconditioner(op, precond, tol)[0])
        )

        def run(full: Tensor):
            return refined_cg(
                op.matvec_full,
                low.matvec_full,
                full,
                apply_low,
                exact,
                tol,
                max_iter,
                progress,
                switch,
            )
    else:
        apply, switch = _preconditioner(op, precond, tol)

        def run(full: Tensor):
            return conjugate_gradients(op.matvec_full, full, apply, tol, max_iter, progress, switch)

    def solve(b: Tensor):
        x, cg = run(op.scatter(b).reshape(b.shape[0], -1).to(work))
        x = (fmask * x).reshape(-1, *size)
        corr = op.base.grid_matmul(x).to(torch.float64)
        return op.gather(x.to(torch.float64)), corr, cg

    return solve


def _preconditioner(
    op: MaskedGridCovariance, precond: str, tol: float
) -> tuple[MatVec, Switch | None]:
    """The preconditioner named ``precond`` for ``op`` and, for ``"auto"``, its switch."""
    if precond in ("extension", "auto"):
        switch = schwarz_switch(op, tol) if precond == "auto" else None
        return extension_preconditioner(op), switch
    if precond == "circulant":
        return grid_preconditioner(op, full=True), None
    if precond == "schwarz":
        return schwarz_preconditioner(op), None
    raise GpdipError(
        f"precond: expected 'auto', 'extension', 'schwarz' or 'circulant', got {precond!r}"
    )
