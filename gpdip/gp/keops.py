"""Scattered (off-grid) inputs: kernel matmuls with KeOps, or chunked dense torch.

For points that do not lie on a grid there is no FFT; ``K(X1, X2) v`` is a sum
over pairs.  With pykeops installed the RBF and Matern-5/2 baselines use a
symbolic ``LazyTensor`` reduction (``O(n)`` memory, compiled once and cached by
KeOps); otherwise, or for table kernels (DIP, bilinear interpolation), the
product is computed by dense torch blocks of ``chunk`` rows.
:func:`scattered_posterior_mean` solves the GP regression with these matmuls and
the batched CG of :mod:`gpdip.gp.cg`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gpdip.gp.cg import CGInfo, conjugate_gradients
from gpdip.gp.kernels import Matern52Unit, RBFUnit, TableKernel, split_scale


def keops_available() -> bool:
    """True when ``pykeops.torch`` imports."""
    try:
        import pykeops.torch  # noqa: F401
    except Exception:  # ImportError, or a broken compiler setup
        return False
    return True


def _keops_matmul(kernel: TableKernel, x1: Tensor, x2: Tensor, v: Tensor) -> Tensor:
    from pykeops.torch import LazyTensor

    base, scale = split_scale(kernel)
    ls = base.lengthscale.detach().reshape(-1)  # one lengthscale, or one per axis (ARD)
    a = LazyTensor((x1[:, None, :] / ls).contiguous())
    b = LazyTensor((x2[None, :, :] / ls).contiguous())
    d2 = ((a - b) ** 2).sum(-1)
    if isinstance(base, RBFUnit):
        K = (-0.5 * d2).exp()
    else:  # Matern-5/2: (1 + sqrt5 u + 5u^2/3) exp(-sqrt5 u), u = r / l
        u = (d2 + 1e-30).sqrt() * math.sqrt(5.0)
        K = (1.0 + u + u * u / 3.0) * (-u).exp()
    return float(scale.detach()) * (K @ v.contiguous())


def kernel_matmul(
    kernel: TableKernel, x1: Tensor, x2: Tensor, v: Tensor, backend: str = "auto", chunk: int = 2048
) -> Tensor:
    """``K(x1, x2) @ v`` for points ``x1 (n, d)``, ``x2 (m, d)`` and ``v (m, k)``.

    ``backend``: ``"keops"``, ``"torch"`` (chunked dense) or ``"auto"`` (KeOps for
    RBF/Matern when available, else torch).
    """
    analytic = isinstance(split_scale(kernel)[0], RBFUnit | Matern52Unit)
    if backend == "keops" or (backend == "auto" and analytic and keops_available()):
        return _keops_matmul(kernel, x1, x2, v)
    out = []
    with torch.no_grad():
        for i in range(0, x1.shape[0], chunk):
            out.append(kernel(x1[i : i + chunk], x2).to_dense() @ v)
    return torch.cat(out)


def scattered_posterior_mean(
    kernel: TableKernel,
    x_obs: Tensor,
    y: Tensor,
    x_test: Tensor,
    noise: float,
    mu: float | None = None,
    tol: float = 1e-6,
    backend: str = "auto",
    max_iter: int = 2000,
) -> tuple[Tensor, CGInfo]:
    """``m(x*) = mu + K(x*, X) (K(X, X) + s^2 I)^{-1} (y - mu)`` by CG with kernel matmuls."""
    mu = float(y.mean()) if mu is None else mu
    r = (y - mu)[None]

    def matvec(v: Tensor) -> Tensor:  # v: (B, n)
        return kernel_matmul(kernel, x_obs, x_obs, v.T, backend).T + noise * v

    alpha, info = conjugate_gradients(matvec, r, tol=tol, max_iter=max_iter)
    return mu + kernel_matmul(kernel, x_test, x_obs, alpha.T, backend)[:, 0], info
