"""The exact dense log marginal likelihood of a grid GP: the fit's reference.

``log N(y_o - mu; 0, K_oo + s2 I)`` by Cholesky on the observed block only, with a
closed-form gradient.  The window fit (:mod:`gpdip.gp.hyper`) and the SLQ estimate
(:mod:`gpdip.gp.slq`) are tested against it on small images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def exact_mll(table: Tensor, image: Tensor, mask: Tensor, noise: Tensor, mu: float) -> Tensor:
    """Exact log marginal likelihood (differentiable in ``table`` and ``noise``)."""
    idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
    coords = torch.nonzero(mask)  # (m, 2) observed pixels, same order as idx
    diff = coords[:, None, :] - coords[None, :, :] + torch.tensor(image.shape) - 1
    K = table[diff[..., 0], diff[..., 1]]  # only the observed block: m^2, not n^2
    A = K + noise * torch.eye(idx.numel(), dtype=K.dtype)
    r = image.reshape(-1)[idx].double() - mu
    return _GaussianLogLik.apply(A, r)


class _GaussianLogLik(torch.autograd.Function):
    """``log N(r; 0, A)`` with the closed-form gradient ``dA = 1/2 (alpha alpha^T - A^{-1})``.

    About 4x faster than differentiating through ``cholesky`` (one ``cholesky_inverse``
    instead of the generic Cholesky backward); ``r`` is data (no gradient).
    """

    @staticmethod
    def forward(ctx, A: Tensor, r: Tensor) -> Tensor:
        L = torch.linalg.cholesky(A)
        alpha = torch.cholesky_solve(r[:, None], L)[:, 0]
        ctx.save_for_backward(L, alpha)
        logdet = 2 * torch.log(L.diagonal()).sum()
        return -0.5 * (r @ alpha + logdet + r.numel() * math.log(2 * math.pi))

    @staticmethod
    def backward(ctx, grad: Tensor):
        L, alpha = ctx.saved_tensors
        dA = 0.5 * (torch.outer(alpha, alpha) - torch.cholesky_inverse(L))
        return grad * dA, None
