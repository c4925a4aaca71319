"""Isotropic total variation: a differentiable penalty (DIP-TV) and its proximal map (DIP-ADMM).

Images are ``(C, H, W)`` tensors; TV acts on each channel separately (as scikit-image's
``denoise_tv_chambolle`` with a channel axis).  Discretisation: forward differences with a
zero difference across the last row/column (Neumann boundary),

    (∇u)_x[i, j] = u[i, j+1] − u[i, j]  (0 at j = W−1),   (∇u)_y likewise along rows,
    TV(u) = Σ_{c,i,j} |(∇u)[c, i, j]|₂,

and ``div = −∇ᵀ`` its negative adjoint.

* :func:`tv_smooth` — Σ sqrt(dx² + dy² + ε), the differentiable TV of DIP-TV (Liu et al.
  2019, "Image restoration using total variation regularized deep image prior", Eq. 3).
* :func:`tv_prox` — prox_{wTV}(f) = argmin_u ½‖u − f‖² + w·TV(u) (Rudin-Osher-Fatemi) on
  Chambolle's dual (J. Math. Imaging Vis. 20, 2004): u = f + w·div p with |p| ≤ 1 the dual
  maximiser, found by fast gradient projection (Beck & Teboulle 2009).
* :func:`tv_duality_gap` — P(u(p)) − D(p) ≥ 0, an algorithm-independent certificate:
  ½‖u − u*‖² ≤ P(u) − P* ≤ gap, so ‖u − u*‖ ≤ sqrt(2·gap).
"""

from __future__ import annotations

import math

import torch

from gpdip.errors import GpdipError


def grad2d(u: torch.Tensor) -> torch.Tensor:
    """Forward differences of ``u`` (..., H, W) → (2, ..., H, W): [d/dy, d/dx], Neumann."""
    g = torch.zeros((2, *u.shape), dtype=u.dtype, device=u.device)
    g[0, ..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    g[1, ..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    return g


def div2d(p: torch.Tensor) -> torch.Tensor:
    """``div = −∇ᵀ`` for :func:`grad2d`: (2, ..., H, W) → (..., H, W)."""
    py, px = p[0], p[1]
    d = torch.zeros_like(py)
    d[..., :-1, :] += py[..., :-1, :]
    d[..., 1:, :] -= py[..., :-1, :]
    d[..., :, :-1] += px[..., :, :-1]
    d[..., :, 1:] -= px[..., :, :-1]
    return d


def tv_smooth(u: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Σ sqrt((∇_y u)² + (∇_x u)² + ε) over channels and pixels (a scalar).

    ε > 0 makes it differentiable at flat regions; ε → 0 gives :func:`tv_exact`."""
    if eps <= 0:
        raise GpdipError(f"tv eps={eps}: expected a positive smoothing constant")
    g = grad2d(u)
    return torch.sqrt(g.pow(2).sum(0) + eps).sum()


def tv_exact(u: torch.Tensor) -> torch.Tensor:
    """TV(u) = Σ |∇u|₂ (not differentiable where ∇u = 0)."""
    return grad2d(u).pow(2).sum(0).sqrt().sum()


def tv_prox(
    f: torch.Tensor,
    weight: float,
    *,
    iters: int = 100,
    tol: float = 0.0,
    p0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin_u ½‖u − f‖² + weight·TV(u) for ``f`` (..., H, W); returns ``(u, p)``.

    The dual: maximise D(p) ⇔ minimise ½‖f/w + div p‖² over |p| ≤ 1 (Chambolle 2004,
    Sec. 3), solved by Beck & Teboulle's fast gradient projection (FGP, IEEE TIP 18, 2009,
    Alg. 4; O(1/k²)): with ‖div‖² ≤ 8, step 1/8,

        p_k = Π(r_k + ∇(f/w + div r_k)/8),  t_{k+1} = (1 + sqrt(1 + 4t_k²))/2,
        r_{k+1} = p_k + ((t_k − 1)/t_{k+1})(p_k − p_{k−1}),       u = f + w·div p,

    Π the pixelwise projection p/max(1, |p|).  ``p0`` warm-starts the dual (DIP-ADMM reuses
    the previous call's ``p``: successive prox inputs differ little).  Stops after ``iters``
    steps or when max|Δu| < ``tol``.
    """
    if not weight > 0:
        raise GpdipError(f"tv_prox weight={weight}: expected a positive number")
    p = torch.zeros((2, *f.shape), dtype=f.dtype, device=f.device) if p0 is None else p0.clone()
    if p.shape != (2, *f.shape):
        raise GpdipError(f"tv_prox p0 has shape {tuple(p.shape)}; expected {(2, *f.shape)}")
    r, t = p, 1.0
    u = f + weight * div2d(p)
    for _ in range(iters):
        step = r + grad2d(f / weight + div2d(r)) / 8.0
        p_new = step / step.pow(2).sum(0, keepdim=True).sqrt().clamp(min=1.0)
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        r = p_new + ((t - 1.0) / t_new) * (p_new - p)
        p, t = p_new, t_new
        u_new = f + weight * div2d(p)
        change = float((u_new - u).abs().max()) if tol > 0 else 1.0
        u = u_new
        if change < tol:
            break
    return u, p


def tv_duality_gap(f: torch.Tensor, weight: float, p: torch.Tensor) -> float:
    """P(u) − D(p) for the ROF problem, u = f + w·div p, p projected onto |p| ≤ 1 first.

    P(u) = ½‖u − f‖² + w·TV(u);  D(p) = ½‖f‖² − ½‖f + w·div p‖²  (weak duality: D ≤ P* ≤ P).
    """
    norm = p.pow(2).sum(0, keepdim=True).sqrt().clamp(min=1.0)
    p = p / norm
    u = f + weight * div2d(p)
    primal = 0.5 * float((u - f).pow(2).sum()) + weight * float(tv_exact(u))
    dual = 0.5 * float(f.pow(2).sum()) - 0.5 * float(u.pow(2).sum())
    return primal - dual
