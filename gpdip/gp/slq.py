"""Stochastic Lanczos quadrature (SLQ) for ``log|A|`` on the grid.

Ubaru, Chen & Saad (2017): for Rademacher probes ``z`` (``E[z z^T] = I``),
``log|A| = E[z^T log(A) z]``, and ``z^T log(A) z ~= ||z||^2 e_1^T log(T) e_1``
with ``T`` the ``m x m`` Lanczos tridiagonal of ``A`` started at ``z``.  The
Monte Carlo standard error of the mean over ``p`` probes is reported.
:class:`ShiftedQuadrature` reuses one Lanczos run for every noise level.  Used for
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


def slq_logdet(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    probes: int = 16,
    steps: int = 40,
    generator: torch.Generator | None = None,
    dtype=torch.float64,
    device=None,
) -> tuple[float, float]:
    """Estimate ``log|A|`` of an SPD ``n x n`` operator; returns ``(estimate, std error)``."""
    z = torch.randint(0, 2, (probes, n), generator=generator, device=device).to(dtype) * 2 - 1
    T = lanczos(matvec, z, steps)
    evals, evecs = torch.linalg.eigh(T)
    quad = (evecs[:, 0, :] ** 2 * torch.log(evals.clamp_min(1e-300))).sum(-1) * n
    est = float(quad.mean())
    err = float(quad.std() / math.sqrt(probes)) if probes > 1 else float("nan")
    return est, err


class ShiftedQuadrature:
    """Gauss quadrature of ``log|K + lam I|`` and ``r^T (K + lam I)^{-1} r`` for every ``lam``.

    Lanczos is shift invariant: the Krylov space of ``K + lam I`` started at ``z`` is that
    of ``K``, with tridiagonal ``T + lam I``.  One Lanczos run of the *unit, noise-free*
    operator ``K`` (observed block, output scale 1) from ``probes`` Rademacher vectors and
    from the residual ``r`` therefore gives, with ``T = V diag(theta) V^T``,

        log|K + lam I| ~= n mean_p sum_j V_p[0, j]^2 log(theta_pj + lam)      (SLQ)
        r^T (K + lam I)^{-1} r ~= |r|^2 sum_j V_r[0, j]^2 / (theta_rj + lam)  (= CG's estimate)

    for any ``lam`` at no further matmul, so the whole-image likelihood of
    ``A = s (K + lam I)`` is a closed-form, differentiable function of ``(s, lam)``.
    Errors: the log-determinant has the Hutchinson probe error (reported as ``se``) plus
    the quadrature bias, the quadratic term only the Lanczos bias (a lower bound that
    grows as ``lam`` falls: ``steps`` must resolve ``cond(K + lam I)``).  Measured against
    dense float64 in ``tests/gp/test_slq.py``.
    """

    def __init__(
        self,
        matvec: Callable[[Tensor], Tensor],
        r: Tensor,
        probes: int = 8,
        steps: int = 60,
        generator: torch.Generator | None = None,
    ):
        n = r.numel()
        z = torch.randint(0, 2, (probes, n), generator=generator).to(r.dtype) * 2 - 1
        T = lanczos(matvec, torch.cat([z, r[None]]), steps)
        theta, V = torch.linalg.eigh(T)
        self.n = n
        self.theta = theta.clamp_min(0.0)  # (probes + 1, m); K is PSD
        self.weight = V[:, 0, :] ** 2
        self.r_norm2 = float(r @ r)

    def logdet(self, lam: float) -> tuple[float, float]:
        """``(estimate, standard error)`` of ``log|K + lam I|``."""
        per_probe = self.n * (self.weight[:-1] * torch.log(self.theta[:-1] + lam)).sum(-1)
        se = (
            float(per_probe.std() / math.sqrt(per_probe.numel()))
            if per_probe.numel() > 1
            else float("nan")
        )
        return float(per_probe.mean()), se

    def quadratic(self, lam: float) -> float:
        """``r^T (K + lam I)^{-1} r``."""
        return self.r_norm2 * float((self.weight[-1] / (self.theta[-1] + lam)).sum())

    def log_marginal_likelihood(self, scale: float, noise: float) -> float:
        """``log N(r; 0, scale K + noise I)`` with the estimates above."""
        lam = noise / scale
        return -0.5 * (
            self.quadratic(lam) / scale
            + self.n * math.log(scale)
            + self.logdet(lam)[0]
            + self.n * math.log(2 * math.pi)
        )
