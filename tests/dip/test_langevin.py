"""ULA and MALA (gpdip.dip.langevin) against a linear-Gaussian posterior known in closed form.

Model: θ ∈ R^3, prior N(0, I), y = Aθ + N(0, s²), so U(θ) = ½‖θ‖² + ‖Aθ − y‖²/(2s²) and the
posterior is N(m, P⁻¹), P = I + AᵀA/s², m = P⁻¹Aᵀy/s².  The step is half the ULA stability
bound (ε·λ_max(P) = 2), where ULA's stationary variance along P's top eigenvector is
1/(h(1 − εh/4)) = 2/h, twice the exact one: the test tells the two samplers apart.

Tolerances.  C = 4000 independent chains, started at 0 and run 100 steps before any is
kept (P's eigenvalues are 2.65..13.4, so the slowest mode decays by (1 − εh/2)^100 < 1e-9:
stationary).  The states of the C chains at
one step are independent draws, so a variance along an eigenvector has relative standard
error √(2/C) = 2.2% and a mean sd/√C; pooling 20 later steps (every 5th) only lowers the
error.  We allow 5 standard errors: 11% on variances, 5·sd/√C on means.
"""

from __future__ import annotations

import math

import pytest
import torch

from gpdip.dip import langevin
from gpdip.errors import GpdipError

CHAINS, BURN_IN, KEPT, THIN = 4000, 100, 20, 5
NOISE_VAR = 0.5


def _model():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, generator=gen, dtype=torch.float64)
    precision = torch.eye(3, dtype=torch.float64) + a.T @ a / NOISE_VAR
    mean = torch.linalg.solve(precision, a.T @ y / NOISE_VAR)

    def energy(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * theta.pow(2).sum(1) + 0.5 * (theta @ a.T - y).pow(2).sum(1) / NOISE_VAR

    return langevin.autograd_potential(energy), precision, mean


def _sample(sampler: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    """(samples (KEPT·C, 3), P, m, ε, acceptance rate)."""
    potential, precision, mean = _model()
    eps = 2.0 / float(torch.linalg.eigvalsh(precision)[-1])
    gen = torch.Generator().manual_seed(11)
    theta = torch.zeros(CHAINS, 3, dtype=torch.float64)
    u, grad = potential(theta)
    kept, accepted = [], 0.0
    for step in range(1, BURN_IN + KEPT * THIN + 1):
        if sampler == "mala":
            theta, u, grad, acc = langevin.mala_step(theta, u, grad, eps, potential, gen)
            accepted += float(acc.double().mean())
        else:
            theta = langevin.ula_step(theta, grad, eps, gen)
            u, grad = potential(theta)
        if step > BURN_IN and (step - BURN_IN) % THIN == 0:
            kept.append(theta)
    return torch.cat(kept), precision, mean, eps, accepted / (BURN_IN + KEPT * THIN)


def _moments_in_eigenbasis(samples, precision, mean):
    """Per eigenvector of P: (h, sample mean − m, sample variance)."""
    evals, evecs = torch.linalg.eigh(precision)
    proj = (samples - mean) @ evecs
    return evals, proj.mean(0), proj.var(0)


def test_mala_is_exact_at_a_large_step():
    samples, precision, mean, _, accept = _sample("mala")
    evals, mean_err, var = _moments_in_eigenbasis(samples, precision, mean)
    assert 0.3 < accept < 1.0
    exact_var = 1 / evals
    assert torch.all(mean_err.abs() < 5 * exact_var.sqrt() / math.sqrt(CHAINS))
    assert torch.allclose(var, exact_var, rtol=0.11)


def test_ula_has_its_closed_form_bias():
    samples, precision, mean, eps, _ = _sample("ula")
    evals, mean_err, var = _moments_in_eigenbasis(samples, precision, mean)
    ula_var = 1 / (evals * (1 - eps * evals / 4))
    # ULA's mean is exact on a Gaussian (the drift's fixed point is m)
    assert torch.all(mean_err.abs() < 5 * ula_var.sqrt() / math.sqrt(CHAINS))
    assert torch.allclose(var, ula_var, rtol=0.11)
    # and its top-mode variance is 2× the exact one: far outside the tolerance
    assert float(var[-1] * evals[-1]) > 1.6


def test_gaussian_ula_covariance_solves_the_recursion():
    """The closed form against the fixed point of Σ ← (I − εH/2)Σ(I − εH/2) + εI."""
    _, precision, _ = _model()
    eps = 1.5 / float(torch.linalg.eigvalsh(precision)[-1])
    step = torch.eye(3, dtype=torch.float64) - 0.5 * eps * precision
    sigma = torch.zeros(3, 3, dtype=torch.float64)
    for _ in range(20000):
        sigma = step @ sigma @ step + eps * torch.eye(3, dtype=torch.float64)
    closed = langevin.gaussian_ula_covariance(precision, eps)
    assert torch.allclose(closed, sigma, rtol=1e-9, atol=1e-12)


def test_gaussian_ula_covariance_rejects_an_unstable_step():
    _, precision, _ = _model()
    eps = 4.5 / float(torch.linalg.eigvalsh(precision)[-1])
    with pytest.raises(GpdipError, match="unstable"):
        langevin.gaussian_ula_covariance(precision, eps)


def test_mala_rejects_a_non_finite_proposal():
    """U = ∞ away from a tiny ball around the start: every proposal is rejected."""

    def energy(theta: torch.Tensor) -> torch.Tensor:
        outside = theta.norm(dim=1) > 1e-3
        return torch.where(outside, torch.inf, 0.0) + theta.pow(2).sum(1)

    potential = langevin.autograd_potential(energy)
    theta = torch.zeros(4, 2, dtype=torch.float64)
    u, grad = potential(theta)
    out, u_out, _, accepted = langevin.mala_step(
        theta, u, grad, 1.0, potential, torch.Generator().manual_seed(0)
    )
    assert not accepted.any()
    assert torch.equal(out, theta) and torch.equal(u_out, u)


@pytest.mark.parametrize("eps", [0.0, -1.0, math.nan, math.inf])
def test_bad_step_size(eps):
    with pytest.raises(GpdipError, match="step size"):
        langevin.check_step(eps)
