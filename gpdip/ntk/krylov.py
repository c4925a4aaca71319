"""``Θ_{:,o} g_t(Θ_oo) y`` for many step counts ``t`` from one Lanczos basis.

Kernel gradient descent with rate ``η`` on ``L = ½ Σ_o (f − y)²`` from ``f_0 = 0``,
``f_{k+1} = f_k + η Θ_{:,o} (y − f_k(o))``, has the closed form

    f_t = Θ_{:,o} g_t(Θ_oo) y,   g_t(λ) = (1 − (1 − ηλ)^t) / λ = η Σ_{k<t} (1 − ηλ)^k,

a polynomial in ``Θ_oo`` (no inverse; well defined when ``Θ_oo`` is singular).

Lanczos on ``Θ_oo`` started at ``y`` (batched over independent right-hand sides)
gives ``Θ_oo Q_m ≈ Q_m T_m`` and

    g_t(Θ_oo) y ≈ ‖y‖ Q_m g_t(T_m) e_1,   f_t ≈ W_m c_t,  c_t = ‖y‖ g_t(T_m) e_1,

with ``W_m = Θ_{:,o} Q_m``: the grid products that Lanczos computes anyway, kept, so
any number of step counts costs one small eigendecomposition of ``T_m`` and one
``(n, m)`` matrix product each.  The basis grows until the prediction for the
requested steps changes by less than ``tol`` (relative to ``max |y|``) over two
successive checkpoints ``check_every`` steps apart; it is exact (to rounding) once the Krylov
space is invariant, at the latest after ``n_obs`` steps.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.ntk.operators import ObservedBlock

#: ``β_j < BREAKDOWN · max|α|``: the Krylov space is invariant and the fit exact.
BREAKDOWN = 1e-12
#: Observed pixels up to which Lanczos is fully reorthogonalised by default.
REORTH_MAX = 16384


def gd_filter(lam: Tensor, lr: float, steps: Tensor) -> Tensor:
    """``g_t(λ) = (1 − (1 − ηλ)^t) / λ`` (and ``η t`` at ``λ = 0``), broadcast.

    For ``ηλ < 1`` the numerator is ``−expm1(t log1p(−ηλ))``, accurate as ``λ → 0``
    where the plain form cancels; for ``ηλ >= 1`` (a sign-alternating base) the
    plain form has no cancellation.
    """
    t = steps.to(lam.dtype)
    x = lr * lam
    below = x < 1
    smooth = -torch.expm1(t * torch.log1p(-torch.where(below, x, torch.zeros_like(x))))
    alternating = 1 - torch.pow(1 - torch.where(below, torch.zeros_like(x), x), t)
    numerator = torch.where(below, smooth, alternating)
    zero = x == 0
    return torch.where(zero, lr * t, lr * numerator / torch.where(zero, torch.ones_like(x), x))


class _Buffer:
    """A ``(B, capacity, n)`` stack of vectors that doubles its capacity when full."""

    def __init__(self, batch: int, n: int, dtype: torch.dtype, capacity: int = 8):
        self.data = torch.empty(batch, capacity, n, dtype=dtype)
        self.size = 0

    def append(self, v: Tensor) -> None:
        if self.size == self.data.shape[1]:
            grown = self.data.new_empty(self.data.shape[0], 2 * self.size, self.data.shape[2])
            grown[:, : self.size] = self.data
            self.data = grown
        self.data[:, self.size] = v
        self.size += 1

    def view(self) -> Tensor:
        return self.data[:, : self.size]


@dataclass
class KrylovFit:
    """A Lanczos basis of ``Θ_oo`` from ``y``: gives ``f_t = Θ_{:,o} g_t(Θ_oo) y`` for any ``t``.

    Attributes:
        images: ``W_m = Θ_{:,o} Q_m``, shape ``(B, m, n)``.
        ritz: eigenvalues of ``T_m``, ``(B, m)``; ``ritz_vectors`` their eigenvectors.
        norm: ``‖y‖`` per right-hand side, ``(B,)``.
        lr: the learning rate ``η``.
        lanczos_steps: ``m``; ``change``: the last checkpoint's relative change of the
            prediction; ``converged``: ``change <= tol`` or an invariant Krylov space.
    """

    images: Tensor
    ritz: Tensor
    ritz_vectors: Tensor
    norm: Tensor
    lr: float
    lanczos_steps: int
    change: float
    converged: bool
    history: list[tuple[int, float]] = field(default_factory=list)

    def coefficients(self, steps: Tensor) -> Tensor:
        """``c_t = ‖y‖ g_t(T_m) e_1`` for ``steps (S,)``: shape ``(B, S, m)``."""
        g = gd_filter(self.ritz[:, None, :], self.lr, steps[None, :, None])
        first = self.ritz_vectors[:, 0, :]  # e_1ᵀ S
        c = torch.einsum("bij,bsj->bsi", self.ritz_vectors, g * first[:, None, :])
        return self.norm[:, None, None] * c

    def predict(self, steps: Tensor, chunk: int = 16) -> Tensor:
        """``f_t`` on the whole grid for ``steps (S,)``: shape ``(B, S, n)``."""
        parts = [
            torch.einsum("bsm,bmn->bsn", self.coefficients(steps[i : i + chunk]), self.images)
            for i in range(0, max(len(steps), 1), chunk)
        ]
        return (
            torch.cat(parts, 1)
            if parts
            else self.images.new_zeros(self.images.shape[0], 0, self.images.shape[2])
        )

    @property
    def ritz_max(self) -> float:
        """Largest Ritz value: a lower bound on ``λ_max(Θ_oo)``."""
        return float(self.ritz.max())


def _eigh_tridiagonal(alphas: list[Tensor], betas: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Eigen-decompose each ``T_m`` with numpy/LAPACK (torch's eigh is erratically slow here).

    A few right-hand sides: LAPACK's tridiagonal solver, one per ``T``; many (samples):
    one batched dense ``eigh``, whose per-call overhead is shared.
    """
    diag = torch.stack(alphas, 1).numpy()
    off = torch.stack(betas[: len(alphas) - 1], 1).numpy() if len(alphas) > 1 else diag[:, :0]
    if diag.shape[0] <= 4:
        pairs = [scipy.linalg.eigh_tridiagonal(d, e) for d, e in zip(diag, off, strict=True)]
        ritz = torch.from_numpy(np.stack([p[0] for p in pairs]))
        vectors = torch.from_numpy(np.stack([p[1] for p in pairs]))
    else:
        T = np.zeros((*diag.shape, diag.shape[1]))
        idx = np.arange(diag.shape[1])
        T[:, idx, idx] = diag
        T[:, idx[:-1], idx[1:]] = T[:, idx[1:], idx[:-1]] = off
        lam, vec = np.linalg.eigh(T)
        ritz, vectors = torch.from_numpy(lam), torch.from_numpy(vec)
    return ritz, vectors


class _Recurrence:
    """The batched Lanczos three-term recurrence on ``Θ_oo``, keeping ``W = Θ_{:,o} Q``."""

    def __init__(self, block: ObservedBlock, y: Tensor, reorth: bool):
        B = y.shape[0]
        self.block, self.reorth = block, reorth
        self.norm = y.norm(dim=-1)
        self.q = y / torch.where(self.norm > 0, self.norm, torch.ones_like(self.norm))[:, None]
        self.q_prev = torch.zeros_like(self.q)
        self.basis = _Buffer(B, block.n_obs if reorth else 0, y.dtype)
        self.images = _Buffer(B, block.n, y.dtype)
        self.alphas: list[Tensor] = []
        self.betas: list[Tensor] = []
        self.a_max = torch.zeros(B, dtype=y.dtype)

    def step(self) -> bool:
        """One Lanczos step; True when every Krylov space is invariant (breakdown)."""
        q = self.q
        if self.reorth:
            self.basis.append(q)
        full, w = self.block.apply(q)
        self.images.append(full)
        self.alphas.append((w * q).sum(-1))
        w = w - self.alphas[-1][:, None] * q
        if self.betas:
            w = w - self.betas[-1][:, None] * self.q_prev
        if self.reorth:  # one classical Gram-Schmidt pass against every earlier vector
            Q = self.basis.view()
            w = w - torch.einsum("bk,bkn->bn", torch.einsum("bkn,bn->bk", Q, w), Q)
        self.a_max = torch.maximum(self.a_max, self.alphas[-1].abs())
        b = w.norm(dim=-1)
        live = b > BREAKDOWN * self.a_max
        # a broken-down right-hand side continues with q = 0, β = 0: T stays block-diagonal
        self.betas.append(torch.where(live, b, torch.zeros_like(b)))
        self.q_prev = q
        self.q = w / torch.where(live, b, torch.ones_like(b))[:, None] * live[:, None]
        return not bool(live.any())

    def fit(self, lr: float, history: list[tuple[int, float]]) -> KrylovFit:
        """The current ``T_m`` and ``W_m`` as a :class:`KrylovFit` (not yet converged)."""
        ritz, vectors = _eigh_tridiagonal(self.alphas, self.betas)
        m = len(self.alphas)
        return KrylovFit(
            self.images.view(), ritz, vectors, self.norm, lr, m, math.inf, False, history
        )


def _next_check(m: int, check_every: int) -> int:
    """Checkpoints every ``check_every`` steps, then every ~m/8: their cost stays ~linear in m."""
    return m + max(check_every, m // 8)


def check_stability(lr: float, lower: float, upper: float) -> None:
    """GD on ``Θ_oo`` is stable iff ``lr < 2 / λ_max``; ``lower <= λ_max <= upper``.

    Raises :class:`GpdipError` when ``lr >= 2 / lower`` (certainly unstable: the iterates
    diverge) and warns when ``lr >= 2 / upper`` (stability not guaranteed).
    """
    if lr * lower >= 2:
        safe = f"; use lr < {2 / upper:.6g}, where it is guaranteed" if upper < math.inf else ""
        raise GpdipError(
            f"lr={lr:.6g} is above the stability bound of gradient descent, 2/λ_max(Θ_oo) <= "
            f"{2 / lower:.6g} (λ_max >= {lower:.6g}): the iterates diverge{safe}"
        )
    if lr * upper >= 2:
        warnings.warn(
            f"lr={lr:.6g} may exceed the stability bound of gradient descent 2/λ_max(Θ_oo), "
            f"which lies in [{2 / upper:.6g}, {2 / lower:.6g}]",
            GpdipWarning,
            stacklevel=3,
        )


def lanczos_gd(
    block: ObservedBlock,
    y: Tensor,
    lr: float,
    steps: Tensor,
    tol: float = 1e-6,
    max_steps: int = 500,
    check_every: int = 4,
    reorthogonalize: bool | None = None,
    lambda_upper: float = math.inf,
) -> KrylovFit:
    """Lanczos on ``Θ_oo`` from each row of ``y (B, n_obs)`` until ``f_t`` settles (see module doc).

    The prediction for ``steps`` is recomputed at checkpoints (every ``check_every``
    Lanczos steps, then every ~m/8); the fit stops when its largest change relative to
    ``max |y|`` is ``<= tol`` at two successive checkpoints (one small change can be a
    plateau), when every Krylov space is invariant (exact), or after ``max_steps``
    (``converged=False``).  ``reorthogonalize`` (default: when ``n_obs <= REORTH_MAX``)
    keeps ``Q_m`` orthonormal, so small problems end exactly in ``<= n_obs`` steps; on
    large grids plain Lanczos is used, whose ``f(A) b`` error in floating point stays
    near the best polynomial approximation (Musco, Musco & Sidford 2018) at half the
    memory and no ``O(m² n)`` cost.  A Ritz value with ``lr · θ >= 2`` stops the fit
    with :class:`GpdipError` (``lambda_upper``, an upper bound on ``λ_max``, is quoted).
    """
    reorth = block.n_obs <= REORTH_MAX if reorthogonalize is None else reorthogonalize
    lanczos = _Recurrence(block, y, reorth)
    scale = max(float(y.abs().max()), 1e-300)
    previous: Tensor | None = None
    history: list[tuple[int, float]] = []
    check = check_every
    for m in range(1, max_steps + 1):
        invariant = lanczos.step()
        if m not in (check, max_steps) and not invariant:
            continue
        check = _next_check(m, check_every)
        fit = lanczos.fit(lr, history)
        if lr * fit.ritz_max >= 2:  # a Ritz value is a lower bound on λ_max: stop early
            check_stability(lr, fit.ritz_max, max(lambda_upper, fit.ritz_max))
        current = fit.predict(steps)
        if previous is not None:
            history.append((m, float((current - previous).abs().max()) / scale))
            fit.change = max(c for _, c in history[-2:]) if len(history) > 1 else fit.change
        previous = current
        if invariant or fit.change <= tol or m == max_steps:
            fit.converged = invariant or fit.change <= tol
            fit.change = 0.0 if invariant else fit.change  # exact: no truncation left
            return fit
    raise GpdipError(f"lanczos_gd: max_steps must be >= 1, got {max_steps}")
