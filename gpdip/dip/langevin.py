"""Exact (full-gradient) Langevin samplers on a batch of independent chains.

Both act on a flat parameter matrix ``theta`` of shape (C, d): C independent chains of a
d-dimensional state, with a potential U (the negative log density up to a constant) given as
a function ``potential(theta) -> (U, grad)`` of shapes (C,) and (C, d).

* :func:`ula_step` — the unadjusted Langevin algorithm (Euler–Maruyama for
  dθ = −½∇U dt + dW, the convention of :class:`gpdip.dip.sgld.SGLD` without a
  preconditioner):

      θ' = θ − (ε/2)∇U(θ) + √ε ξ,   ξ ~ N(0, I).

  Its stationary law is e^{−U} only up to an O(ε) bias: on a Gaussian with Hessian H it is
  exactly N(μ, Σ_ε), Σ_ε = (H(I − εH/4))⁻¹ (unbiased mean, inflated variances), and it is
  stable for ε < 4/λ_max(H).
* :func:`mala_step` — the Metropolis-adjusted version (Roberts & Tweedie 1996): the ULA move
  is a proposal q(θ'|θ) = N(θ − (ε/2)∇U(θ), εI), accepted with probability
  min(1, e^{−U(θ')}q(θ|θ') / (e^{−U(θ)}q(θ'|θ))).  Exact for every ε.

No stochastic gradients and no adaptive preconditioner, so both are reference samplers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gpdip.errors import GpdipError

Potential = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def autograd_potential(energy: Callable[[torch.Tensor], torch.Tensor]) -> Potential:
    """``potential(theta) -> (U, ∇U)`` from ``energy(theta) -> U`` of shape (C,) by autograd.

    The chains are independent (U_c depends on row c only), so ∇ of Σ_c U_c is the per-chain
    gradient, row by row."""

    def potential(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            leaf = theta.detach().requires_grad_(True)
            u = energy(leaf)
            (grad,) = torch.autograd.grad(u.sum(), leaf)
        return u.detach(), grad.detach()

    return potential


def check_step(eps: float) -> None:
    """A step size must be a finite number > 0."""
    if not (isinstance(eps, int | float) and math.isfinite(eps) and eps > 0):
        raise GpdipError(f"Langevin step size eps={eps}: expected a finite number > 0")


def ula_step(
    theta: torch.Tensor, grad: torch.Tensor, eps: float, generator: torch.Generator
) -> torch.Tensor:
    """θ − (ε/2)∇U + √ε ξ, shapes (C, d) in and out."""
    noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
    return theta - 0.5 * eps * grad + math.sqrt(eps) * noise


def _log_proposal(to: torch.Tensor, start: torch.Tensor, grad: torch.Tensor, eps: float):
    """log q(to | start) + const = −‖to − start + (ε/2)∇U(start)‖²/(2ε), shape (C,)."""
    return -(to - start + 0.5 * eps * grad).pow(2).sum(1) / (2 * eps)


def mala_step(
    theta: torch.Tensor,
    u: torch.Tensor,
    grad: torch.Tensor,
    eps: float,
    potential: Potential,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One MALA step per chain: (θ, U, ∇U, accepted), accepted a (C,) bool tensor.

    The acceptance ratio is computed in ``theta``'s dtype: use float64 when U is large
    (its round-off enters log α directly)."""
    proposal = ula_step(theta, grad, eps, generator)
    u_new, grad_new = potential(proposal)
    log_alpha = (
        u
        - u_new
        + _log_proposal(theta, proposal, grad_new, eps)
        - _log_proposal(proposal, theta, grad, eps)
    )
    uniform = torch.rand(u.shape, generator=generator, dtype=theta.dtype)
    # a non-finite proposal (overflow) is rejected: log_alpha is nan or -inf there
    accept = torch.log(uniform) < torch.nan_to_num(log_alpha, nan=-math.inf)
    keep = accept[:, None]
    return (
        torch.where(keep, proposal, theta),
        torch.where(accept, u_new, u),
        torch.where(keep, grad_new, grad),
        accept,
    )


def gaussian_ula_covariance(hessian: torch.Tensor, eps: float) -> torch.Tensor:
    """The exact stationary covariance of ULA on U = ½θᵀHθ: (H(I − εH/4))⁻¹, (d, d).

    From Σ = (I − εH/2)Σ(I − εH/2) + εI in H's eigenbasis: σ² = ε/(1 − (1 − εh/2)²)
    = 1/(h(1 − εh/4)).  A closed form to test :func:`ula_step` against."""
    check_step(eps)
    evals, evecs = torch.linalg.eigh(hessian.double())
    if float(evals[0]) <= 0 or eps * float(evals[-1]) >= 4:
        raise GpdipError(
            f"ULA on this Gaussian is unstable: need 0 < h and eps·h < 4, "
            f"got h in [{float(evals[0]):.3g}, {float(evals[-1]):.3g}], eps={eps}"
        )
    return (evecs / (evals * (1 - eps * evals / 4))) @ evecs.T
