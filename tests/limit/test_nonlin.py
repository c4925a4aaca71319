"""Closed forms of the non-linearities against quadrature (rtol 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpdip.limit import nonlin

CASES = [  # (k11, k22, correlation)
    (1.0, 1.0, 0.0),
    (1.0, 1.0, 0.5),
    (2.0, 0.5, -0.3),
    (0.3, 3.0, 0.9),
    (1.5, 1.5, 0.999),
    (0.7, 1.2, -0.95),
    (4.0, 4.0, 0.2),
]


def _t(*values: float) -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float64) for v in values]


@pytest.mark.parametrize("k11,k22,rho", CASES)
@pytest.mark.parametrize("slope", [0.0, 0.2, 0.5])
def test_piecewise_linear_closed_form_vs_quadrature(k11, k22, rho, slope):
    k12 = rho * math.sqrt(k11 * k22)
    closed = nonlin.leaky_relu_expectation(*_t(k11, k22, k12), slope)
    if slope == 0.0:
        assert float(nonlin.relu_expectation(*_t(k11, k22, k12))) == float(closed)
    reference = nonlin.piecewise_linear_quadrature(k11, k22, k12, slope)
    assert float(closed) == pytest.approx(reference, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("k11,k22,rho", CASES[:-1])
def test_erf_closed_form_vs_gauss_hermite(k11, k22, rho):
    k12 = rho * math.sqrt(k11 * k22)
    closed = float(nonlin.erf_expectation(*_t(k11, k22, k12)))
    assert closed == pytest.approx(nonlin.erf_quadrature(k11, k22, k12), rel=1e-6, abs=1e-12)


def test_relu_exact_at_identical_inputs():
    """E[relu(u)²] = k/2 exactly (ρ = 1 uses the limit branch of arccos)."""
    k = torch.tensor(1.7, dtype=torch.float64)
    assert float(nonlin.relu_expectation(k, k, k)) == pytest.approx(0.85, rel=1e-15)
    assert float(nonlin.relu_expectation(k, k, -k)) == pytest.approx(0.0, abs=1e-15)


def test_relu_gradient_is_finite_at_unit_correlation():
    k12 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    one = torch.tensor(1.0, dtype=torch.float64)
    nonlin.relu_expectation(one, one, k12).backward()
    # d/dk12 of √(k11k22) J(ρ)/(2π) at ρ = 1 is J'(1)/(2π) = π/(2π) = 1/2.
    assert float(k12.grad) == pytest.approx(0.5, rel=1e-9)


def test_erf_exact_tends_to_theorem_1_for_large_variance():
    """Theorem 1's (2/π)·arcsin(K(r)/K(0)) is the K(0) → ∞ limit of Williams' form."""
    rho = 0.6
    for k0, tol in [(1.0, 0.2), (1e6, 1e-5)]:
        exact = float(nonlin.erf_expectation(*_t(k0, k0, rho * k0)))
        limit = 2 / math.pi * math.asin(rho)
        assert abs(exact - limit) < tol
    exact_unit = float(nonlin.erf_expectation(*_t(1.0, 1.0, rho)))
    assert abs(exact_unit - 2 / math.pi * math.asin(rho)) > 0.05  # they really differ


def test_quadrature_reference_is_itself_converged():
    """The reference changes by < 1e-10 when the node count doubles."""
    a = nonlin.piecewise_linear_quadrature(1.3, 0.8, 0.4, 0.2, n=200)
    b = nonlin.piecewise_linear_quadrature(1.3, 0.8, 0.4, 0.2, n=400)
    assert abs(a - b) < 1e-10
    assert np.isfinite(a)


# --- the NTK's derivative expectations E[φ'(u) φ'(v)] ----------------------------------------


@pytest.mark.parametrize("k11,k22,rho", CASES)
@pytest.mark.parametrize("slope", [0.0, 0.2, 0.5])
def test_piecewise_linear_derivative_vs_quadrature(k11, k22, rho, slope):
    k12 = rho * math.sqrt(k11 * k22)
    closed = float(nonlin.leaky_relu_derivative_expectation(*_t(k11, k22, k12), slope))
    if slope == 0.0:
        assert float(nonlin.relu_derivative_expectation(*_t(k11, k22, k12))) == closed
    reference = nonlin.piecewise_linear_derivative_quadrature(k11, k22, k12, slope)
    # φ'(v) jumps, so the inner Φ(m/s) is smooth but the reference converges slowly near
    # |ρ| = 1 (s → 0); 1e-6 still separates any wrong constant.
    assert closed == pytest.approx(reference, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("k11,k22,rho", CASES[:-1])
def test_erf_derivative_vs_gauss_hermite(k11, k22, rho):
    k12 = rho * math.sqrt(k11 * k22)
    closed = float(nonlin.erf_derivative_expectation(*_t(k11, k22, k12)))
    reference = nonlin.erf_derivative_quadrature(k11, k22, k12)
    assert closed == pytest.approx(reference, rel=1e-6, abs=1e-12)


def test_relu_derivative_at_unit_correlation_has_zero_gradient():
    """At ρ = ±1 (the diagonal) the value is exact and autograd gives no 0·∞ NaN."""
    k = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    value = nonlin.relu_derivative_expectation(k, k, k)
    assert float(value) == 0.5
    value.backward()
    assert float(k.grad) == 0.0  # ρ ≡ 1 for every k
    minus = nonlin.relu_derivative_expectation(*_t(1.0, 1.0, -1.0))
    assert float(minus) == 0.0
