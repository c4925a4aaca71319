"""Closed-form Gaussian expectations of the non-linearities, with quadrature references.

For a zero-mean Gaussian pair (u, v) with second moments k11 = E[u²],
k22 = E[v²], k12 = E[uv], each function returns E[φ(u)φ(v)].  These are the
layer maps of the limit recursion (paper Eq. 7 and Theorem 1).  Every closed
form has a reference ``*_quadrature`` implemented independently by numerical
integration; ``tests/test_nonlin.py`` checks them against each other.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# Correlations this close to ±1 use the limit's Taylor form: arccos has an
# infinite derivative at ±1 that would turn autograd's 0·∞ into NaN, while the
# arc-cosine function J(ρ) itself is smooth there: J(ρ) = πρ + O((1-ρ)^{3/2})
# near 1 and J(ρ) = O((1+ρ)^{3/2}) near -1, so the error is below 1e-18.
_EDGE = 1e-12


def arccos_j1(rho: torch.Tensor) -> torch.Tensor:
    """J(θ) = sin θ + (π − θ) cos θ with θ = arccos ρ (Cho & Saul 2009, degree 1)."""
    if not rho.requires_grad:  # fast path: no derivative, so no 0·∞ to avoid
        rho = rho.clamp(-1.0, 1.0)
        return torch.sqrt(1 - rho * rho).add_((math.pi - torch.arccos(rho)).mul_(rho))
    near_one = rho > 1 - _EDGE
    near_minus_one = rho < -1 + _EDGE
    inner = near_one | near_minus_one
    safe = torch.where(inner, torch.zeros_like(rho), rho)
    theta = torch.arccos(safe)
    value = torch.sqrt(1 - safe * safe) + (math.pi - theta) * safe
    edge = torch.where(near_one, math.pi * rho, torch.zeros_like(rho))
    return torch.where(inner, edge, value)


def _arccos_j1_owned(rho: torch.Tensor) -> torch.Tensor:
    """:func:`arccos_j1` without autograd, overwriting ``rho`` (same operations, fewer copies)."""
    rho = rho.clamp_(-1.0, 1.0)
    value = torch.arccos(rho).neg_().add_(math.pi).mul_(rho)
    return value.add_(rho.mul_(rho).neg_().add_(1.0).sqrt_())


def relu_expectation(k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor) -> torch.Tensor:
    """E[relu(u) relu(v)] = √(k11 k22)/(2π) · (sin θ + (π − θ) cos θ), cos θ = k12/√(k11 k22).

    The arc-cosine kernel of degree 1 (Cho & Saul 2009; the paper's Eq. 7).
    """
    norm = torch.sqrt(k11 * k22)
    if not (norm.requires_grad or k12.requires_grad) and bool(norm.min() > 0):
        return _arccos_j1_owned(k12 / norm).mul_(norm).div_(2 * math.pi)
    rho = torch.clamp(k12 / torch.where(norm > 0, norm, torch.ones_like(norm)), -1.0, 1.0)
    return torch.where(norm > 0, norm * arccos_j1(rho) / (2 * math.pi), torch.zeros_like(norm))


def relu_pair_owned(
    k11: torch.Tensor,
    k22: torch.Tensor,
    k12: torch.Tensor,
    negative_slope: float | None,
    derivative: bool,
    out: torch.Tensor | None = None,
    positive: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """E[φ(u)φ(v)] and (with ``derivative``) E[φ'(u)φ'(v)] from one angle θ, no autograd.

    φ is ReLU (``negative_slope`` None) or leaky ReLU.  Both expectations need
    θ = arccos(k12/√(k11 k22)): E[φφ] through J(θ) = sin θ + (π − θ) cos θ and
    E[φ'φ'] through (π − θ)/(2π), so θ is computed once.  The operations per entry are
    those of :func:`relu_expectation` / :func:`leaky_relu_expectation` and of the
    derivative functions (arccos(±1) is exactly 0 and π, as :func:`_angle` sets them), so
    the results are the same bits.  ``k22`` is overwritten; E[φφ] is written to ``out``
    when given.  None when a variance is 0 (the caller then uses the general functions);
    ``positive``: the caller has shown that every k11·k22 is above 0 (the check is skipped).
    """
    norm = k22.mul_(k11).sqrt_()
    if not (positive or bool(norm.min() > 0)):
        return None
    rho = torch.div(k12, norm).clamp_(-1.0, 1.0)
    # θ − π instead of π − θ saves a pass: negation is exact, so (θ − π)·ρ = −((π − θ)·ρ),
    # (θ − π)/(−2π) = (π − θ)/(2π) and a − (θ − π)·ρ = a + (π − θ)·ρ, bit for bit.
    theta_minus_pi = torch.arccos(rho).sub_(math.pi)
    factor = None
    if derivative:
        factor = theta_minus_pi / (-2 * math.pi)
        if negative_slope is not None:
            a = negative_slope
            factor.mul_((1 - a) ** 2).add_(a * a + a * (1 - a))
    minus_cos_term = theta_minus_pi.mul_(rho)
    sine = rho.mul_(rho).neg_().add_(1.0).sqrt_()
    value = sine.sub_(minus_cos_term) if out is None else torch.sub(sine, minus_cos_term, out=out)
    value.mul_(norm).div_(2 * math.pi)
    if negative_slope is not None:
        a = negative_slope
        value.mul_((1 - a) ** 2).add_(k12, alpha=a)
    return value, factor


def leaky_relu_expectation(
    k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor, negative_slope: float
) -> torch.Tensor:
    """E[φ(u)φ(v)] for φ(x) = max(x, 0) + a·min(x, 0): (1 − a)²·E[relu relu] + a·k12.

    From φ(x) = (1 − a)·relu(x) + a·x and E[u relu(v)] = k12/2 (the pair is
    symmetric under (u, v) → (−u, −v)).
    """
    a = negative_slope
    relu = relu_expectation(k11, k22, k12)
    if not (relu.requires_grad or k12.requires_grad):  # in place: the tables are large
        return relu.mul_((1 - a) ** 2).add_(k12, alpha=a)
    return (1 - a) ** 2 * relu + a * k12


def erf_expectation(k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor) -> torch.Tensor:
    """E[erf(u) erf(v)] = (2/π)·arcsin(2 k12 / √((1 + 2 k11)(1 + 2 k22))) (Williams 1997).

    Exact for any variance.  The paper's Theorem 1 prints (2/π)·arcsin(K(r)/K(0)),
    which is this expression's limit as K(0) → ∞; for unit input variance the
    two differ by up to 0.2 in correlation (docs/architecture-format.md).
    """
    return (2 / math.pi) * torch.arcsin(2 * k12 / torch.sqrt((1 + 2 * k11) * (1 + 2 * k22)))


# --- derivative expectations: the NTK's factor E[φ'(u) φ'(v)] ------------------------------


def _angle(k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor) -> torch.Tensor:
    """θ = arccos(k12/√(k11 k22)), with a zero gradient where |cos θ| = 1 exactly.

    There (the diagonal, r = 0) the correlation is 1 for every parameter value, so its
    derivative is 0 but arccos' is infinite; masking it keeps autograd free of 0·∞.
    """
    norm = torch.sqrt(k11 * k22)
    rho = torch.clamp(k12 / torch.where(norm > 0, norm, torch.ones_like(norm)), -1.0, 1.0)
    edge = rho.abs() >= 1.0
    theta = torch.arccos(torch.where(edge, torch.zeros_like(rho), rho))
    return torch.where(
        edge, torch.where(rho > 0, torch.zeros_like(rho), torch.full_like(rho, math.pi)), theta
    )


def relu_derivative_expectation(
    k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor
) -> torch.Tensor:
    """E[1(u > 0) 1(v > 0)] = (π − θ)/(2π) (Cho & Saul 2009, degree 0)."""
    return (math.pi - _angle(k11, k22, k12)) / (2 * math.pi)


def leaky_relu_derivative_expectation(
    k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor, negative_slope: float
) -> torch.Tensor:
    """E[φ'(u)φ'(v)] for φ' = a + (1 − a)·1(x > 0): a² + a(1 − a) + (1 − a)²·(π − θ)/(2π).

    The cross terms are a(1 − a)·(P(u > 0) + P(v > 0)) = a(1 − a).
    """
    a = negative_slope
    return a * a + a * (1 - a) + (1 - a) ** 2 * relu_derivative_expectation(k11, k22, k12)


def erf_derivative_expectation(
    k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor
) -> torch.Tensor:
    """E[erf'(u) erf'(v)] = (4/π)·((1 + 2k11)(1 + 2k22) − 4k12²)^(−1/2).

    erf'(x) = (2/√π)·exp(−x²), and E[exp(−u² − v²)] = det(I + 2Σ)^(−1/2).
    """
    return (4 / math.pi) / torch.sqrt((1 + 2 * k11) * (1 + 2 * k22) - 4 * k12 * k12)


# ----------------------------------------------------------------------------
# Independent references by quadrature (numpy / scipy, float64).
# ----------------------------------------------------------------------------


def _legendre_half_lines(n: int, half_width: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes on [-L, 0] ∪ [0, L] for standard-normal integrals with a kink at 0."""
    x, w = np.polynomial.legendre.leggauss(n)
    pos = (x + 1) * half_width / 2
    nodes = np.concatenate([-pos, pos])
    weights = np.concatenate([w, w]) * half_width / 2
    return nodes, weights * np.exp(-(nodes**2) / 2) / math.sqrt(2 * math.pi)


def piecewise_linear_quadrature(
    k11: float, k22: float, k12: float, negative_slope: float, n: int = 200
) -> float:
    """E[φ(u)φ(v)] for leaky ReLU (slope 0 = ReLU) by quadrature.

    u = √k11·z, and given z, v ~ N(m, s²) with m = k12/√k11·z and
    s² = k22 − k12²/k11; E[φ(v) | z] = m + (1 − a)(s·pdf(m/s) − m·cdf(−m/s))
    is smooth in z.  The outer integral over z has φ(u)'s kink at 0, where
    Gauss–Hermite converges only algebraically, so it is split there and each
    half-line is integrated by Gauss–Legendre on [0, 12] (the Gaussian tail
    beyond 12 is below 1e-31).
    """
    from scipy import special  # lazy: references only, not the compile path

    a = negative_slope
    z, w = _legendre_half_lines(n)
    u = math.sqrt(k11) * z
    m = k12 / math.sqrt(k11) * z
    s = math.sqrt(max(k22 - k12**2 / k11, 0.0))
    if s > 0:
        inner = m + (1 - a) * (
            s * np.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi) - m * special.ndtr(-m / s)
        )
    else:
        inner = np.where(m > 0, m, a * m)
    phi_u = np.where(u > 0, u, a * u)
    return float(np.sum(w * phi_u * inner))


def gauss_hermite_pair(fn, k11: float, k22: float, k12: float, n: int = 120) -> float:
    """E[fn(u) fn(v)] for the zero-mean Gaussian pair, by tensor-product Gauss–Hermite.

    (u, v) = L·(z1, z2) with L the Cholesky factor of [[k11, k12], [k12, k22]] and z iid
    N(0, 1); accurate for smooth ``fn`` (numpy-vectorised).
    """
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2 * math.pi)
    chol = np.linalg.cholesky(np.array([[k11, k12], [k12, k22]]) + 0.0)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    u = chol[0, 0] * z1
    v = chol[1, 0] * z1 + chol[1, 1] * z2
    return float(np.sum(np.outer(w, w) * fn(u) * fn(v)))


def erf_quadrature(k11: float, k22: float, k12: float, n: int = 120) -> float:
    """E[erf(u) erf(v)] by Gauss–Hermite (the integrand is smooth)."""
    from scipy import special  # lazy: references only, not the compile path

    return gauss_hermite_pair(special.erf, k11, k22, k12, n)


def piecewise_linear_derivative_quadrature(
    k11: float, k22: float, k12: float, negative_slope: float, n: int = 200
) -> float:
    """E[φ'(u)φ'(v)] for leaky ReLU (slope 0 = ReLU) by quadrature.

    φ'(x) = a + (1 − a)·1(x > 0); given u = √k11·z, v ~ N(m, s²) as in
    :func:`piecewise_linear_quadrature`, E[φ'(v) | z] = a + (1 − a)·Φ(m/s), integrated
    over z on the two half-lines (φ'(u) jumps at 0).
    """
    from scipy import special  # lazy: references only, not the compile path

    a = negative_slope
    z, w = _legendre_half_lines(n)
    m = k12 / math.sqrt(k11) * z
    s = math.sqrt(max(k22 - k12**2 / k11, 0.0))
    above = special.ndtr(m / s) if s > 0 else (m > 0).astype(float)
    phi_u = np.where(z > 0, 1.0, a)
    return float(np.sum(w * phi_u * (a + (1 - a) * above)))


def erf_derivative_quadrature(k11: float, k22: float, k12: float, n: int = 120) -> float:
    """E[erf'(u) erf'(v)] by Gauss–Hermite, erf'(x) = (2/√π)·exp(−x²)."""
    return gauss_hermite_pair(lambda t: 2 / math.sqrt(math.pi) * np.exp(-t * t), k11, k22, k12, n)
