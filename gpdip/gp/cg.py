"""Batched preconditioned conjugate gradients and the grid preconditioner.

Solves ``A x_b = r_b`` for a batch of right-hand sides at once (one matmul per
iteration serves all columns), stopping each column when its relative residual
``||r - A x|| / ||r|| <= tol``.  Non-convergence is reported with
:class:`CGConvergenceWarning` and the residual reached, never silently.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gpdip.gp.grid import table_grid_size
from gpdip.gp.gridcov import MaskedGridCovariance, circulant_spectrum, crop_table_for_period

MatVec = Callable[[Tensor], Tensor]
#: ``switch(iteration, relative_residuals (B,)) -> new preconditioner or None``.
Switch = Callable[[int, Tensor], "MatVec | None"]


class CGConvergenceWarning(RuntimeWarning):
    """Conjugate gradients stopped at ``max_iter`` above the requested tolerance."""


@dataclass
class CGInfo:
    """Outcome of a CG solve: iterations used, final relative residual per column."""

    iterations: int
    residual: float  # worst relative residual over the batch
    converged: bool
    switched_at: int | None = None  # iteration at which ``switch`` changed the preconditioner


def conjugate_gradients(
    matvec: MatVec,
    rhs: Tensor,
    precond: MatVec | None = None,
    tol: float | Tensor = 1e-6,
    max_iter: int = 1000,
    progress: bool = False,
    switch: Switch | None = None,
) -> tuple[Tensor, CGInfo]:
    """Solve ``A X = B`` column-wise for symmetric positive-definite ``A``.

    Args:
        matvec: ``v (B, n) -> A v (B, n)``.
        rhs: right-hand sides ``(B, n)`` (or ``(n,)``).
        precond: ``v -> P^{-1} v``, symmetric positive definite; identity if None.
        tol: relative residual at which a column stops: a float, or one per column ``(B,)``.
        switch: called after every iteration with the iteration count and the relative
            residuals until it returns a preconditioner; CG then restarts its search
            direction from the current iterate and residual with that preconditioner
            (the iterate, the residual and the stopping rule ``||r|| <= tol ||b||`` carry
            over, so the answer is the same system solved to the same tolerance).
    Returns:
        ``X`` shaped like ``rhs`` and a :class:`CGInfo`.
    """
    squeeze = rhs.dim() == 1
    b = rhs[None] if squeeze else rhs
    precond = precond or (lambda v: v)
    tiny = torch.finfo(b.dtype).tiny
    x = torch.zeros_like(b)
    r = b.clone()
    bnorm = b.norm(dim=-1).clamp_min(tiny)
    z = precond(r)
    p = z.clone()
    rz = row_dot(r, z)
    rel = r.norm(dim=-1) / bnorm
    it = 0
    switched_at = None
    bar = progress_bar(max_iter, progress)
    # the updates run in place: a fresh (B, n) temporary costs as much as the pass itself
    while it < max_iter and bool((rel > tol).any()):
        ap = matvec(p)
        alpha = rz / row_dot(p, ap).clamp_min(tiny)
        step = (alpha * (rel > tol))[:, None]  # zero: converged columns stay frozen
        x.addcmul_(p, step)
        r.addcmul_(ap, step, value=-1.0)
        rel = r.norm(dim=-1) / bnorm
        it += 1
        new = switch(it, rel) if switch is not None and switched_at is None else None
        if new is not None:  # restart: steepest descent step in the new preconditioner
            precond, switched_at = new, it
            z = precond(r)
            p = z.clone()
            rz = row_dot(r, z)
        else:
            rz = next_direction(precond, r, p, rz)
        tick(bar, rel)
    if bar is not None:
        bar.close()
    worst = float(rel.max())
    converged = bool((rel <= tol).all())
    info = CGInfo(iterations=it, residual=worst, converged=converged, switched_at=switched_at)
    if not info.converged:
        warn_unconverged(info, float(torch.as_tensor(tol).min()))
    return (x[0] if squeeze else x), info


def warn_unconverged(info: CGInfo, tol: float) -> None:
    """The :class:`CGConvergenceWarning` of a solve that stopped above ``tol``, with its
    figures; attributed to the solver's caller."""
    warnings.warn(
        f"conjugate gradients did not converge: relative residual {info.residual:.3e} > tol "
        f"{tol:.1e} after {info.iterations} iterations (raise max_iter or the noise variance)",
        CGConvergenceWarning,
        stacklevel=3,
    )


def row_dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise inner products ``(B, n), (B, n) -> (B,)`` without a ``(B, n)`` temporary."""
    return torch.bmm(a[:, None, :], b[:, :, None]).reshape(a.shape[0])


def next_direction(precond: MatVec, r: Tensor, p: Tensor, rz: Tensor) -> Tensor:
    """CG's new search direction ``p <- z + (r.z / rz) p`` with ``z = P^{-1} r``, in place on
    ``p``; returns ``r.z`` for the next step."""
    z = precond(r)
    rz_new = row_dot(r, z)
    p.mul_((rz_new / rz.clamp_min(torch.finfo(rz.dtype).tiny))[:, None]).add_(z)
    return rz_new


def tick(bar, rel: Tensor) -> None:
    """One iteration on the progress bar (if any), showing the worst relative residual."""
    if bar is not None:
        bar.update(1)
        bar.set_postfix(residual=f"{float(rel.max()):.2e}")


def progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, pipes, captured output)
    return tqdm(total=total, desc="CG", unit="it", leave=False, disable=None)


def tchan_spectrum(table: Tensor) -> Tensor:
    """Eigenvalues of T. Chan's optimal circulant approximation of the grid covariance.

    For a Toeplitz ``K`` on ``n`` points, ``c_k = ((n-k) K(k) + k K(k-n)) / n``
    (the Frobenius-nearest circulant); in 2-D the weights multiply per axis.  It
    is positive semi-definite when ``K`` is; tiny negatives are clipped.
    """
    size = table_grid_size(table)
    c = crop_table_for_period(table, size)
    return circulant_spectrum(c).clamp_min(0.0)


def grid_preconditioner(
    op: MaskedGridCovariance,
    scale: float | None = None,
    shift: float | None = None,
    full: bool = False,
) -> MatVec:
    """Preconditioner ``P^{-1} v = S (a C + b I)^{-1} S^T v`` for ``K_oo + s^2 I``.

    ``C`` is T. Chan's circulant of the full-grid covariance and ``S`` selects
    the observed pixels.  For a Bernoulli(p) mask, ``E[S^T S K S^T S] = p^2 K +
    p(1-p) diag(K)``, which motivates ``a = p`` (default) and a shift
    ``b = s^2 + 0.1 p (1-p) k(0)`` (default; the factor 0.1 was tuned on RBF,
    Matern and exponential+constant kernels, see docs/benchmarks-gp.md).  It
    costs one FFT pair on the ``H x W`` grid per application.  ``full=True`` acts on
    full-grid vectors (see :meth:`MaskedGridCovariance.matvec_full`).  It helps most for
    rough kernels (DIP-like); for very smooth kernels at tiny noise it is weak.
    """
    base = op.base
    p = float(op.index.numel()) / base.n
    a = p if scale is None else scale
    table = base.table.detach()
    k0 = float(table[tuple(s - 1 for s in base.grid_size)])
    b = float(op.noise) + 0.1 * p * (1 - p) * k0 if shift is None else shift
    inv = 1.0 / (a * tchan_spectrum(table) + b)
    size = base.grid_size
    dims = tuple(range(-len(size), 0))

    def apply(v: Tensor) -> Tensor:
        g = op.scatter(v) if not full else v.reshape(*v.shape[:-1], *size)
        g = torch.fft.irfftn(torch.fft.rfftn(g, dim=dims) * inv.to(v.dtype), s=size, dim=dims)
        return op.gather(g) if not full else mask * g.reshape(v.shape)

    mask = op.float_mask(base.spectrum.dtype)
    return apply


#: Order of the binomial blur of the normalised-convolution fill (4: taps 1 4 6 4 1, a
#: Gaussian of std 1 pixel).  Orders 2/4/6/10 gave 430/185/186/224 CG iterations on a
#: 128x128 conv-d2-s6 test (noise 1e-4, output scale 0.3).
FILL_ORDER = 4


def extension_preconditioner(op: MaskedGridCovariance, order: int = FILL_ORDER) -> MatVec:
    """``P^{-1} = E^T (C + s2 I)^{-1} E`` for ``K_oo + s2 I`` on full-grid vectors.

    ``C`` is T. Chan's circulant of the full-grid covariance and ``E`` extends observed
    values to the whole grid by normalised convolution with a small binomial blur ``g``:
    ``E v = v + (1 - M) (g * v) / (g * M)`` (holes wider than ``g`` stay 0).  Why: the
    plain sandwich ``S (a C + b I)^{-1} S^T`` scatters a smooth observed field with
    zeros, and that mask pattern leaks into high frequencies where ``(a C + b)^{-1}``
    is ``1 / b``: for smooth kernels at small noise it swamps the signal (more than 600
    CG iterations on the test above).  With the fill, a smooth mode ``S f`` gives
    ``E S K M f ~ p K f``, ``(C + s2)^{-1}`` turns it into ``p f``, and ``E^T`` sums
    ``1 / p`` copies back: eigenvalue about 1; a rough mode (``K S^T v ~ 0``) passes
    through ``1 / s2``: eigenvalue 1 as well.  ``P^{-1}`` is symmetric positive
    definite (``E`` is injective).  Cost: one FFT pair of the ``H x W`` grid and four
    separable blurs per application.  Vectors are ``(B, H*W)`` and vanish off the mask.
    """
    base = op.base
    size = base.grid_size
    dims = tuple(range(-len(size), 0))
    dtype = base.spectrum.dtype
    inv = (1.0 / (tchan_spectrum(base.table.detach()) + float(op.noise))).to(dtype)
    mask = op.float_mask(dtype).reshape(1, *size)
    density = _blur(mask, order)
    fill = torch.where(density > 1e-3, (1 - mask) / density.clamp_min(1e-3), 0.0)

    def apply(v: Tensor) -> Tensor:
        g = v.reshape(-1, *size)
        extended = _blur(g, order).mul_(fill).add_(g)  # E v
        spectrum = torch.fft.rfftn(extended, dim=dims).mul_(inv)
        z = torch.fft.irfftn(spectrum, s=size, dim=dims)
        out = _blur(fill * z, order).add_(z).mul_(mask)  # E^T z
        return out.reshape(v.shape)

    return apply


def _blur(x: Tensor, order: int) -> Tensor:
    """Zero-padded binomial blur of order ``order`` (even) along every grid axis of ``x``.

    ``(B, *size)`` grids -> a new tensor; per axis the taps ``C(order, k) / 2^order``
    (order 4: ``(1, 4, 6, 4, 1) / 16``) by shifted adds, with the signal taken as zero
    outside the grid: a symmetric operator, as ``E^T`` needs.
    """
    half = order // 2
    taps = [math.comb(order, half + k) / 2**order for k in range(half + 1)]
    for axis in range(1, x.dim()):
        n = x.shape[axis]
        out = x * taps[0]
        for shift in range(1, min(half, n - 1) + 1):
            out.narrow(axis, shift, n - shift).add_(x.narrow(axis, 0, n - shift), alpha=taps[shift])
            out.narrow(axis, 0, n - shift).add_(x.narrow(axis, shift, n - shift), alpha=taps[shift])
        x = out
    return x
