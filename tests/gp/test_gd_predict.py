"""The NTK-GD predictor against dense float64 references (closed form and the GD recursion)."""

import itertools
import json
import math
import warnings

import numpy as np
import pytest
import torch

import gpdip
from gpdip.cli import main
from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp import dense_from_table
from gpdip.gp.toeplitz import GridKernelOperator
from gpdip.io.images import psnr
from gpdip.ntk import (
    gd_filter,
    gd_variance,
    gd_variance_dense,
    kernel_tables,
    lanczos_gd,
    predict_gd,
)
from gpdip.ntk.krylov import check_stability
from gpdip.ntk.operators import ObservedBlock

from .conftest import exp_const_table

TOL = 1e-6  # the bar for the predictor against the dense closed form


def torus_dense(table, size):
    """Reference Θ on the torus, pixel by pixel: the mean of θ over the minimal images."""
    grid = list(itertools.product(*[range(s) for s in size]))
    centre = [s - 1 for s in size]
    theta = torch.zeros(len(grid), len(grid), dtype=torch.float64)
    for i, p in enumerate(grid):
        for j, q in enumerate(grid):
            images = []
            for a, s in enumerate(size):
                d = (p[a] - q[a]) % s
                images.append([o for o in (d, d - s) if 2 * abs(o) <= s])
            vals = [
                table[tuple(c + o for c, o in zip(centre, off, strict=True))]
                for off in itertools.product(*images)
            ]
            theta[i, j] = sum(vals) / len(vals)
    return theta


def reference_theta(table, boundary):
    size = tuple((s + 1) // 2 for s in table.shape)
    return dense_from_table(table) if boundary == "toeplitz" else torus_dense(table, size)


def closed_form(theta, y, obs, lr, steps):
    """f_t = Θ_{:,o} U g_t(Λ) Uᵀ y_o by eigendecomposition, g_t(λ) = η Σ_{k<t} (1 − ηλ)^k."""
    lam, U = torch.linalg.eigh(theta[obs][:, obs])
    out = []
    for t in steps:
        g = lr * sum((1 - lr * lam) ** k for k in range(t)) if t else torch.zeros_like(lam)
        coef = U.T @ y[obs]
        out.append(theta[:, obs] @ (U @ (coef * (g if coef.dim() == 1 else g[:, None]))))
    return torch.stack(out)


def case(dims, boundary, masked, seed=0):
    """A small problem: DIP-like table (constant + exponential), signal, mask, lr."""
    gen = torch.Generator().manual_seed(seed)
    size = (23,) if dims == 1 else (6, 7)
    table = exp_const_table(size, ls=2.0, c=0.3)
    n = math.prod(size)
    y = torch.rand(n, generator=gen, dtype=torch.float64)
    obs = torch.rand(n, generator=gen) < 0.6 if masked else torch.ones(n, dtype=torch.bool)
    theta = reference_theta(table, boundary)
    lr = 1.0 / float(torch.linalg.eigvalsh(theta[obs][:, obs]).max())
    return size, table, y, obs, theta, lr


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("boundary", ["toeplitz", "circular"])
@pytest.mark.parametrize("masked", [True, False])
def test_matches_dense_closed_form(dims, boundary, masked):
    size, table, y, obs, theta, lr = case(dims, boundary, masked)
    steps = [0, 1, 7, 60, 400]
    pred = predict_gd(
        y.reshape(size), table, lr, steps, mask=obs.reshape(size), boundary=boundary, tol=1e-12
    )
    ref = closed_form(theta, y, obs, lr, steps).reshape(len(steps), *size)
    assert pred.mean.shape == (len(steps), *size)
    assert float((pred.mean - ref).abs().max()) <= TOL * float(y.abs().max())
    assert pred.info["converged"]


@pytest.mark.parametrize("boundary", ["toeplitz", "circular"])
def test_matches_gd_recursion_colour(boundary):
    """Literally run f_{k+1} = f_k + η Θ_{:,o} (y − f_k(o)) on two colour channels."""
    size, table, _, obs, theta, lr = case(2, boundary, True, seed=1)
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(*size, 2, generator=gen, dtype=torch.float64)
    lr *= 1.9  # close to the stability bound 2/λ_max: an alternating slowest mode
    y = image.reshape(-1, 2)
    f = torch.zeros_like(y)
    steps, runs = [3, 50, 300], {}
    for k in range(1, max(steps) + 1):
        f = f + lr * theta[:, obs] @ (y[obs] - f[obs])
        if k in steps:
            runs[k] = f.reshape(*size, 2).clone()
    with warnings.catch_warnings():  # near 2/λ_max the bracket may not prove stability
        warnings.simplefilter("ignore", GpdipWarning)
        pred = predict_gd(image, table, lr, steps, obs.reshape(size), boundary=boundary, tol=1e-12)
    for i, t in enumerate(steps):
        assert float((pred.mean[i] - runs[t]).abs().max()) <= TOL


def test_plain_lanczos_on_a_larger_grid():
    """The grid-scale path (no reorthogonalisation) against the dense closed form."""
    gen = torch.Generator().manual_seed(3)
    size = (24, 24)
    table = exp_const_table(size, ls=3.0, c=0.2)
    theta = dense_from_table(table)
    obs = torch.rand(size, generator=gen).reshape(-1) < 0.5
    y = torch.rand(math.prod(size), generator=gen, dtype=torch.float64)
    block = ObservedBlock(GridKernelOperator(table), obs.reshape(size))
    lam_max = float(torch.linalg.eigvalsh(theta[obs][:, obs]).max())
    steps = torch.tensor([10, 100, 1000])
    fit = lanczos_gd(block, y[obs][None], 1.0 / lam_max, steps, tol=1e-9, reorthogonalize=False)
    ref = closed_form(theta, y, obs, 1.0 / lam_max, steps.tolist())
    assert fit.converged and fit.lanczos_steps < obs.sum()
    assert float((fit.predict(steps)[0] - ref).abs().max()) <= TOL * float(y.max())


def test_gd_filter_matches_the_geometric_sum():
    lr = 0.5
    lam = torch.tensor([0.0, 1e-12, 1e-3, 0.7, 2.0, 3.9], dtype=torch.float64)
    for t in [0, 1, 5, 333]:
        ref = lr * sum((1 - lr * lam) ** k for k in range(t)) if t else torch.zeros_like(lam)
        got = gd_filter(lam, lr, torch.tensor(t))
        assert torch.allclose(got, ref, rtol=1e-10, atol=0)


def test_best_step_and_psnr():
    size, table, _, obs, theta, lr = case(1, "toeplitz", True, seed=4)
    gen = torch.Generator().manual_seed(5)
    truth = 0.5 + 0.3 * torch.sin(torch.linspace(0, 6, size[0], dtype=torch.float64))
    y = truth + 0.2 * torch.randn(size, generator=gen, dtype=torch.float64)
    lr *= 0.05  # slow GD: PSNR rises, then falls as the noise is fitted
    t_max = 2000
    pred = predict_gd(y, table, lr, [10, t_max], mask=obs.reshape(size), truth=truth, tol=1e-12)
    f, brute = torch.zeros_like(y), []  # every step of the literal GD recursion
    for _ in range(t_max):
        f = f + lr * theta[:, obs] @ (y[obs] - f[obs])
        brute.append(psnr(f, truth))
    assert pred.psnr == pytest.approx([brute[9], brute[-1]], abs=1e-8)
    peak = int(np.argmax(brute)) + 1
    assert 1 < peak < t_max  # an interior early-stopping peak, or the test proves nothing
    # the refined grid's spacing around the peak bounds how far the found step can be
    spacing = max(
        b - a
        for a, b in zip(
            [c[0] for c in pred.curve][:-1], [c[0] for c in pred.curve][1:], strict=True
        )
        if a <= peak <= b
    )
    assert abs(pred.best_step - peak) <= spacing
    assert pred.best_psnr == pytest.approx(brute[pred.best_step - 1], abs=1e-8)
    assert pred.best_psnr >= max(brute) - 1e-3


def test_variance_dense_matches_covariance_recursion():
    """Exact variance against propagating Cov(r_k) with r_{k+1} = r_k − η Θ_{:,o} r_k(o)."""
    for boundary in ("toeplitz", "circular"):
        size, table, _, obs, theta, lr = case(2, boundary, True, seed=6)
        nngp = exp_const_table(size, ls=1.5, c=0.4)
        K = reference_theta(nngp, boundary)
        M = torch.eye(theta.shape[0], dtype=torch.float64)
        steps, want = [0, 4, 90], []
        for k in range(max(steps) + 1):
            if k in steps:
                want.append(torch.einsum("ij,jk,ik->i", M, K, M).reshape(size))
            M = M - lr * theta[:, obs] @ M[obs]
        got = gd_variance_dense(table, nngp, lr, steps, obs.reshape(size), boundary)
        assert torch.allclose(got, torch.stack(want), rtol=1e-9, atol=1e-12)


def test_variance_estimator_within_its_chi2_error():
    size, table, _, obs, _, lr = case(2, "toeplitz", True, seed=7)
    nngp = exp_const_table(size, ls=1.5, c=0.4)
    steps = [5, 200]
    exact = gd_variance_dense(table, nngp, lr, steps, obs.reshape(size))
    samples = 1500
    est = gd_variance(
        table,
        nngp,
        lr,
        steps,
        obs.reshape(size),
        samples=samples,
        batch=samples,
        generator=torch.Generator().manual_seed(8),
        tol=1e-10,
    )
    # S v̂ / v ~ χ²_S per pixel: relative sd sqrt(2/S) = 0.037; a 5 sd excursion in any of
    # 42 pixels x 2 steps has probability < 84 · 1e-6 (χ² tails are close to normal here),
    # while a wrong map (e.g. no fit subtracted) changes observed pixels' variance many-fold
    assert est.relative_std == pytest.approx(math.sqrt(2 / samples))
    ratio = est.variance / exact
    assert float((ratio - 1).abs().max()) < 5 * est.relative_std
    assert est.interval[0] < 1 < est.interval[1]


def test_bad_inputs():
    size, table, y, obs, _, lr = case(2, "toeplitz", True)
    img, mask = y.reshape(size), obs.reshape(size)
    for bad_lr in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(GpdipError, match="lr"):
            predict_gd(img, table, bad_lr, [1], mask)
    for bad_steps in ([-1], [2.5], [], [float("nan")], [True]):
        with pytest.raises(GpdipError, match="steps"):
            predict_gd(img, table, lr, bad_steps, mask)
    with pytest.raises(GpdipError, match="mask"):
        predict_gd(img, table, lr, [1], torch.ones(6, 8, dtype=torch.bool))
    with pytest.raises(GpdipError, match="no observed"):
        predict_gd(img, table, lr, [1], torch.zeros(size, dtype=torch.bool))
    with pytest.raises(GpdipError, match="signal"):
        predict_gd(y.reshape(7, 6), table, lr, [1], mask)
    with pytest.raises(GpdipError, match="truth"):
        predict_gd(img, table, lr, [1], mask, truth=torch.zeros(6, 7, 2))
    with pytest.raises(GpdipError, match="boundary"):
        predict_gd(img, table, lr, [1], mask, boundary="reflect")
    with pytest.raises(GpdipError, match=r"stability bound.*2/λ_max"):
        predict_gd(img, table, 2.01 * lr, [1], mask)
    with pytest.warns(GpdipWarning, match=r"may exceed the stability bound"):
        check_stability(1.0, 1.5, 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_stability(1.0, 1.5, 1.9)  # provably stable: silent
    with pytest.warns(GpdipWarning, match=r"not converged after 4 Lanczos steps: last"):
        predict_gd(img, table, lr, [400], mask, tol=1e-14, max_lanczos=4)


def test_cli_matches_api(tmp_path):
    size = (9, 10)
    gen = torch.Generator().manual_seed(9)
    truth = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.7
    y = truth + 0.1 * torch.randn(size, generator=gen, dtype=torch.float64)
    np.save(tmp_path / "y.npy", y.numpy())
    np.save(tmp_path / "m.npy", mask.numpy())
    np.save(tmp_path / "t.npy", truth.numpy())
    theta, _ = kernel_tables("conv-d2", size, dims=2)
    lr = 0.5 / float(
        torch.linalg.eigvalsh(dense_from_table(theta)[mask.reshape(-1)][:, mask.reshape(-1)]).max()
    )
    args = [
        "ntk-predict",
        str(tmp_path / "y.npy"),
        "--mask",
        str(tmp_path / "m.npy"),
        "--arch",
        "conv-d2",
        "--lr",
        repr(lr),
        "--steps",
        "0,5,1e3",
        "--truth",
        str(tmp_path / "t.npy"),
        "--out",
        str(tmp_path / "p.npy"),
        "--plot",
        str(tmp_path / "psnr.png"),
        "--json",
    ]
    assert main(args) == 0
    out = np.load(tmp_path / "p.npy", allow_pickle=False)
    api = predict_gd(y, theta, lr, [0, 5, 1000], mask, truth)
    assert out.shape == (3, *size)
    assert np.allclose(out, api.mean.numpy(), atol=1e-12)
    assert (tmp_path / "psnr.png").stat().st_size > 0
    bad = [*args[:7], "-1", *args[8:]]
    assert main(bad) == 2


def test_cli_1d_signal_and_variance(tmp_path, capsys):
    gen = torch.Generator().manual_seed(10)
    y = torch.rand(16, generator=gen, dtype=torch.float64)
    np.save(tmp_path / "y.npy", y.numpy())
    theta, nngp = kernel_tables("conv-d2", 16, dims=1)
    torus = torus_dense(theta, (16,))
    assert (
        main(
            [
                "ntk-predict",
                str(tmp_path / "y.npy"),
                "--arch",
                "conv-d2",
                "--dims",
                "1",
                "--boundary",
                "circular",
                "--lr-fraction",
                "0.9",
                "--steps",
                "3,30",
                "--out",
                str(tmp_path / "p.npy"),
                "--variance-out",
                str(tmp_path / "v.npy"),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "fft"  # torus denoising is diagonal in Fourier space
    # on the whole torus the bound is the circulant's exact λ_max
    lr = report["lr"]
    assert lr == pytest.approx(0.9 * 2 / float(torch.linalg.eigvalsh(torus).max()), rel=1e-12)
    pred = np.load(tmp_path / "p.npy", allow_pickle=False)
    ref = closed_form(torus, y, torch.ones(16, dtype=torch.bool), lr, [3, 30])
    assert np.allclose(pred, ref.numpy(), rtol=0, atol=TOL)
    var = np.load(tmp_path / "v.npy", allow_pickle=False)
    exact = gd_variance_dense(theta, nngp, lr, [3, 30], boundary="circular")
    assert pred.shape == var.shape == (2, 16)
    assert np.allclose(var, exact.numpy(), rtol=1e-9)  # small grids: the exact variance


def test_kernel_tables_layout():
    theta, nngp = kernel_tables("conv-d2", (5, 6), dims=2)
    assert theta.shape == nngp.shape == (9, 11)
    assert torch.equal(nngp, gpdip.compile_kernel("conv-d2", (5, 6), dims=2))
    assert torch.equal(theta, gpdip.compile_kernel("conv-d2", (5, 6), dims=2, kind="ntk"))
    assert not torch.equal(theta, nngp)


def test_torus_init_samples_have_the_wrapped_covariance():
    """sample_init on the torus: empirical covariance of f_0 against the dense torus K."""
    from gpdip.ntk.variance import sample_init

    size = (12,)
    nngp = exp_const_table(size, ls=1.5, c=0.4)
    K = torus_dense(nngp, size)
    S = 20000
    f0 = sample_init(nngp, size, S, "circular", torch.Generator().manual_seed(11))
    emp = f0.T @ f0 / S  # mean is known to be 0
    # sd of a sample covariance entry is sqrt((K_ii K_jj + K_ij^2) / S) <= sqrt(2/S) max K
    sd = math.sqrt(2 / S) * float(K.max())
    assert float((emp - K).abs().max()) < 5 * sd
