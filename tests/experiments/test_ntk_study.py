"""The convergence study's pieces against independent references (gpdip.experiments.ntk_study)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpdip.errors import GpdipError
from gpdip.experiments import ntk_study as study
from gpdip.finite.network import build_network, sample_input


def _random_psd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / n


def test_closed_form_equals_kernel_gd_recursion() -> None:
    """Eigendecomposition closed form vs running f_{t+1} = f_t - lr Θ_:o (f_o - y) in float64."""
    theta = _random_psd(24, 0)
    observed = torch.arange(0, 24, 2)
    y = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lr = 0.9 * study.stability_bound(theta[observed][:, observed])
    steps = [0, 1, 7, 50, 400]
    closed = study.ntk_gd_prediction(theta, observed, y, lr, steps)
    loop = study.kernel_gd_recursion(theta, observed, y, lr, steps)
    assert torch.allclose(closed, loop, atol=1e-10, rtol=0)
    # A singular Θ_oo (rank 6 < 12): the null space takes g_t(0) = lr·t, no division by 0.
    low = torch.randn(24, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    theta = low @ low.T
    lr = 0.5 * study.stability_bound(theta[observed][:, observed])
    closed = study.ntk_gd_prediction(theta, observed, y, lr, steps)
    assert torch.allclose(
        closed, study.kernel_gd_recursion(theta, observed, y, lr, steps), atol=1e-9, rtol=0
    )


def test_prediction_on_compiled_torus_ntk_and_bad_input() -> None:
    """On a compiled torus NTK the closed form equals the recursion; bad lr/steps raise."""
    _, theta = study.torus_kernels("conv-d2", (16,))
    observed = torch.tensor([0, 3, 4, 9, 12, 15])
    y = torch.linspace(-1, 1, 6, dtype=torch.float64)
    bound = study.stability_bound(theta[observed][:, observed])
    closed = study.ntk_gd_prediction(theta, observed, y, 0.5 * bound, [3, 40])
    loop = study.kernel_gd_recursion(theta, observed, y, 0.5 * bound, [3, 40])
    assert torch.allclose(closed, loop, atol=1e-10, rtol=0)
    with pytest.raises(GpdipError, match="stability bound"):
        study.ntk_gd_prediction(theta, observed, y, 1.01 * bound, [3])
    with pytest.raises(GpdipError, match="lr"):
        study.ntk_gd_prediction(theta, observed, y, 0.0, [3])
    with pytest.raises(GpdipError, match="steps"):
        study.ntk_gd_prediction(theta, observed, y, 0.5 * bound, [-1])


def test_torus_matrix_wraps_the_table() -> None:
    """M[i, j] = table[S-1 + nearest image of j - i]; 2-D is the row-major Kronecker layout."""
    table = torch.arange(9, dtype=torch.float64)  # offsets -4..4, value = offset + 4
    m = study.torus_matrix(table, (6,))
    assert m[0].tolist() == [4, 5, 6, 7, 2, 3]  # offsets 0, 1, 2, -3 (image of 3), -2, -1
    assert m[2, 1] == 3 and m[5, 0] == 5
    with pytest.raises(GpdipError, match="size >= 6"):
        study.torus_matrix(table, (10,))
    # 2-D separable table a(r) b(s): the torus matrix is kron(A, B).
    a, b = torch.rand(7, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    m2 = study.torus_matrix(a[:, None] * b[None, :], (6, 4))
    expected = torch.kron(study.torus_matrix(a, (6,)), study.torus_matrix(b, (4,)))
    assert torch.equal(m2, expected)


def test_gd_with_tiny_rate_matches_first_order_expansion() -> None:
    """One GD step of the centred network: f_1 = lr·Θ̂_:o y + O(lr²), Θ̂ = J Jᵀ of that network.

    Θ̂ here comes from an explicit float64 Jacobian of the same seeded network, so it is
    independent of the training loop.  The second-order term is ~lr·λ_max ≈ 1e-3 relative
    and float32 rounding of f(z) − f_0(z) ~1e-7/|f_1| ≈ 1e-4 relative, so 1e-2 is safe
    while a wrong parameterisation or a missed centring is off by O(1).
    """
    arch, shape, width, seed = "conv-d2", (16,), 8, 3
    observed = torch.tensor([1, 2, 5, 8, 11, 14])
    y = torch.linspace(0.2, 0.9, 6, dtype=torch.float64)
    lr = 1e-4
    res = study.train_network(arch, shape, observed, y, width=width, seed=seed, lr=lr, steps=[0, 1])
    assert torch.equal(res.outputs[0], torch.zeros(16, dtype=torch.float64))
    generator = torch.Generator().manual_seed(seed)
    net = build_network(
        arch,
        dims=1,
        width=width,
        out_channels=1,
        parameterization="ntk",
        padding="circular",
        generator=generator,
    ).double()
    z = sample_input(
        arch, shape, width=width, periodic=True, generator=generator, dtype=torch.float64
    )
    out = net(z).reshape(-1)
    j = torch.stack(
        [
            torch.cat(
                [
                    g.reshape(-1)
                    for g in torch.autograd.grad(out[i], list(net.parameters()), retain_graph=True)
                ]
            )
            for i in range(16)
        ]
    )  # (16, P)
    first_order = lr * (j @ j[observed].T) @ y
    rel = float(torch.linalg.norm(res.outputs[1] - first_order) / torch.linalg.norm(first_order))
    assert rel < 1e-2


def test_gp_posterior_against_direct_solve() -> None:
    k = _random_psd(10, 4) + 0.1 * torch.eye(10, dtype=torch.float64)
    observed = torch.tensor([0, 2, 3, 7])
    y = torch.tensor([0.5, -0.2, 0.1, 0.3], dtype=torch.float64)
    mean, std = study.gp_posterior(k, observed, y, 0.01)
    k_oo = k[observed][:, observed] + 0.01 * torch.eye(4, dtype=torch.float64)
    k_xo = k[:, observed]
    assert torch.allclose(mean, k_xo @ torch.linalg.solve(k_oo, y), atol=1e-12)
    cov = k - k_xo @ torch.linalg.solve(k_oo, k_xo.T)
    assert torch.allclose(std, torch.diagonal(cov).sqrt(), atol=1e-12)


def test_debiased_error_removes_the_monte_carlo_floor() -> None:
    """Synthetic estimates: exact + known bias + noise of known stderr → bias recovered."""
    gen = torch.Generator().manual_seed(5)
    exact = torch.ones(201, dtype=torch.float64)
    bias = 0.01 * torch.ones(201, dtype=torch.float64)
    stderr = 0.03 * torch.ones(201, dtype=torch.float64)
    mean = exact + bias + stderr * torch.randn(201, generator=gen, dtype=torch.float64)
    est_bias, floor = study.debiased_error(mean, stderr, exact, max_offset=100)
    assert floor == pytest.approx(0.03, rel=1e-12)
    # The raw error is ~0.032; the debiased one is 0.01 up to the scatter of a χ² with 201
    # degrees of freedom: sd of ‖noise‖² ≈ 0.03²·√(2/201) ≈ 0.1·0.03², i.e. ±0.01 on 0.01²
    # would be too loose, so compare squares with that sd ×3.
    assert abs(est_bias**2 - 0.01**2) < 3 * 0.03**2 * math.sqrt(2 / 201)


def test_loglog_slope() -> None:
    widths = [16, 32, 64, 128]
    assert study.loglog_slope(widths, [3 / math.sqrt(w) for w in widths]) == pytest.approx(-0.5)
    assert math.isnan(study.loglog_slope([16], [1.0]))


@pytest.mark.slow
def test_wide_centred_network_follows_the_ntk_prediction() -> None:
    """A width-256 centred NTK-parameterised network trained by GD stays near the limit.

    Tolerance derived from the width: the finite-width deviation is c/√width (Jacot et al.
    2018; measured slope −0.5 in docs/which-limit.md), with c measured here at width 64 over
    three seeds.  At width 256 the expected distance is c/16 = d(64)/2.  The seed-to-seed
    spread of the distance measured in the study is ~±25% (results/convergence, 4 seeds per
    width), so 1.5× covers the scatter of both means; a network that does not follow the
    NTK (standard parameterisation, uncentred, wrong rate) stays at d(64) or above.
    """
    shape, arch = (64,), "conv-d3-s2"
    truth = torch.linspace(0, 1, 64, dtype=torch.float64) ** 2
    observed = torch.arange(0, 64, 2)
    _, theta = study.torus_kernels(arch, shape)
    lr = 0.5 * study.stability_bound(theta[observed][:, observed])
    steps = [30, 300]
    pred = study.ntk_gd_prediction(theta, observed, truth[observed], lr, steps)

    def mean_distance(width: int) -> float:
        dist = []
        for seed in range(3):
            res = study.train_network(
                arch, shape, observed, truth[observed], width=width, seed=seed, lr=lr, steps=steps
            )
            dist.append(np.mean([study.rms(res.outputs[i], pred[i]) for i in range(2)]))
        return float(np.mean(dist))

    d64, d256 = mean_distance(64), mean_distance(256)
    assert d256 < 1.5 * d64 * math.sqrt(64 / 256), (d64, d256)
    assert d256 < 0.1 * float(truth.pow(2).mean().sqrt())
