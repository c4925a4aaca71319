"""Stochastic Lanczos quadrature (SLQ) for ``log|A|`` on the grid.

Ubaru, Chen & Saad (2017): for Rademacher probes ``z`` (``E[z z^T] = I``),
``log|A| = E[z^T log(A) z]``, and ``z^T log(A) z ~= ||z||^2 e_1^T log(T) e_1``
with ``T`` the ``m x m`` Lanczos tridiagonal of ``A`` started at ``z``.  The
Monte Carlo standard error of the mean over ``p`` probes is reported.  Used for
the grid log marginal likelihood

    log p(y) = -1/2 r^T A^{-1} r - 1/2 log|A| - n/2 log 2 pi,  A = K_oo + s^2 I.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def lanczos(matvec: Callable[[Tensor], Tensor], z: Tensor, steps: int) -> Tensor:
    """Batched Lanczos, fully reorthogonalised: tridiagonals ``(B, m, m)`` for ``z (B, n)``."""
    B, _ = z.shape
    q = z / z.norm(dim=-1, keepdim=True)
    Q = [q]
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    for j in range(steps):
        w = matvec(Q[-1])
        a = (w * Q[-1]).sum(-1)
        w = w - a[:, None] * Q[-1] - (betas[-1][:, None] * Q[-2] if j else 0)
        stack = torch.stack(Q, 1)  # (B, j+1, n): re-orthogonalise against all previous vectors
        w = w - torch.einsum("bk,bkn->bn", torch.einsum("bkn,bn->bk", stack, w), stack)
        alphas.append(a)
        b = w.norm(dim=-1)
        if j == steps - 1 or bool((b < 1e-12 * a.abs()).all()):
            break
        betas.append(b)
        Q.append(w / b[:, None])
    m = len(alphas)
    T = torch.zeros(B, m, m, dtype=z.dtype, device=z.device)
    idx = torch.arange(m, device=z.device)
    T[:, idx, idx] = torch.stack(alphas, 1)
    if m > 1:
        off = torch.stack(betas[: m - 1], 1)
        T[:, idx[:-1], idx[1:]] = off
        T[:, idx[1:], idx[:-1]] = off
    return T


def slq_logdet(matvec: Callable[[Tensor], Tensor], n: int, probes: int = 16, steps: int = 40,
               generator: torch.Generator | None = None, dtype=torch.float64,
               device=None) -> tuple[float, float]:
    """Estimate ``log|A|`` of an SPD ``n x n`` operator; returns ``(estimate, std error)``."""
    z = torch.randint(0, 2, (probes, n), generator=generator, device=device).to(dtype) * 2 - 1
    T = lanczos(matvec, z, steps)
    evals, evecs = torch.linalg.eigh(T)
    quad = (evecs[:, 0, :] ** 2 * torch.log(evals.clamp_min(1e-300))).sum(-1) * n
    est = float(quad.mean())
    err = float(quad.std() / math.sqrt(probes)) if probes > 1 else float("nan")
    return est, err
