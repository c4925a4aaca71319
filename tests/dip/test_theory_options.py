"""The trainer follows the theory when asked: ``gd`` is exactly gradient descent on
L = ½·Σ_observed (f − y)² (checked against the closed-form iterate of a linear model),
and ``centred`` trains f − f₀ (zero at step 0), for images and 1-D signals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.dip.signal1d import make_network_1d
from gpdip.dip.trainer import _Run
from gpdip.errors import GpdipError

H, W, P = 4, 5, 12  # image 4×5, 12 parameters


class LinearModel(nn.Module):
    """f(x; θ) = reshape(J θ) (1, 1, H, W), float64; the input is ignored (its NTK is J Jᵀ)."""

    def __init__(self, jac: torch.Tensor, theta0: torch.Tensor) -> None:
        super().__init__()
        self.jac = jac
        self.theta = nn.Parameter(theta0.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.jac @ self.theta).reshape(1, 1, H, W) + 0 * x.sum()


def closed_form_gd(jac, theta0, y, mask, lr, t, centred):
    """f_t = f₀ + Θ_{:,o} g_t(Θ_oo)(y_o − f₀,o), Θ = J Jᵀ, g_t(λ) = (1 − (1 − ηλ)^t)/λ,
    by a dense float64 eigendecomposition of Θ_oo (f₀ = 0 when centred)."""
    ntk = jac @ jac.T
    obs = mask.reshape(-1)
    f0 = torch.zeros(H * W, dtype=torch.float64) if centred else jac @ theta0
    lam, vec = torch.linalg.eigh(ntk[obs][:, obs])
    g = (1 - (1 - lr * lam) ** t) / lam
    resid = y.reshape(-1)[obs].double() - f0[obs]
    return (f0 + ntk[:, obs] @ (vec @ (g * (vec.T @ resid)))).reshape(1, H, W)


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("steps", [1, 7, 40])
def test_gd_is_the_closed_form_gradient_descent_iterate(centred, steps):
    gen = torch.Generator().manual_seed(0)
    jac = torch.randn(H * W, P, generator=gen, dtype=torch.float64)
    theta0 = torch.randn(P, generator=gen, dtype=torch.float64)
    y = torch.rand(1, H, W, generator=gen)
    mask = torch.rand(1, H, W, generator=gen) < 0.6
    ntk_oo = (jac @ jac.T)[mask.reshape(-1)][:, mask.reshape(-1)]
    lr = 1.0 / float(torch.linalg.eigvalsh(ntk_oo).max())  # stable: η < 2/λ_max
    net = LinearModel(jac, theta0)
    cfg = DIPConfig.build(method="gd", iters=steps, lr=lr, centred=centred, log_every=1)
    res = fit(
        net, torch.zeros(1, 1, H, W, dtype=torch.float64), Problem(y, mask), cfg, device="cpu"
    )
    want = closed_form_gd(jac, theta0, y, mask, lr, steps, centred)
    # float64 throughout: only rounding (‖Θ‖·t·1e-16) separates the two
    assert torch.allclose(res.final.double(), want, rtol=0, atol=1e-10)
    # the logged loss is ½·Σ_observed (f_0 − y)² at the first step (the sum, not the mean)
    f_first = torch.zeros(1, H, W, dtype=torch.float64) if centred else net_output(jac, theta0)
    half_sum = 0.5 * float(((f_first - y.double()) ** 2)[mask].sum())
    assert res.history[0]["loss"] == pytest.approx(half_sum, rel=1e-12)


def net_output(jac, theta):
    return (jac @ theta).reshape(1, H, W)


def test_gd_is_plain_sgd_without_momentum_or_decay():
    net, x = make_network("dip-tiny", (8, 8), 1, width=4)
    run = _Run(
        net,
        x,
        Problem(torch.rand(1, 8, 8)).validated(),
        DIPConfig.build(method="gd"),
        torch.device("cpu"),
    )
    group = run.scheme.opt.param_groups[0]
    assert isinstance(run.scheme.opt, torch.optim.SGD)
    assert (group["momentum"], group["weight_decay"], group["nesterov"]) == (0, 0, False)


def _image_case():
    gen = torch.Generator().manual_seed(3)
    net, x = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(1)
    )
    fresh, _ = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(1)
    )
    y = torch.rand(1, 8, 8, generator=gen)
    return net, fresh, x, y, torch.rand(1, 8, 8, generator=gen) < 0.7


def _signal_case():
    gen = torch.Generator().manual_seed(4)
    net, x = make_network_1d("conv-d2", 24, width=8, generator=torch.Generator().manual_seed(2))
    fresh, _ = make_network_1d("conv-d2", 24, width=8, generator=torch.Generator().manual_seed(2))
    y = torch.randn(1, 1, 24, generator=gen)
    return net, fresh, x, y, torch.rand(1, 1, 24, generator=gen) < 0.7


@pytest.mark.parametrize("case", [_image_case, _signal_case], ids=["image", "signal1d"])
@pytest.mark.parametrize("method", ["gd", "sgd", "sgld"])
def test_centred_output_is_zero_at_step_0_and_f_minus_f0_after(case, method):
    net, fresh, x, y, mask = case()
    f0 = fresh(x)[0].detach()
    assert f0.abs().max() > 1e-3  # the random f₀ that centring removes is really there
    cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=5,
        lr=1e-3,
        centred=True,
        log_every=1,
        noise_std=0.1,
        burn_in=0,
        thin=1,
    )
    res = fit(net, x, Problem(y, mask), cfg, device="cpu")
    # step 0's output is 0: the first record's mse is that of f = 0
    mse0 = float((y[mask.expand_as(y)] ** 2).mean())
    assert res.history[0]["mse_obs"] == pytest.approx(mse0, rel=1e-6)
    # the reported output is the trained network's minus f₀, f₀ from the initial weights
    with torch.no_grad():
        assert torch.allclose(res.final, net(x)[0] - f0, atol=1e-6)
        assert not torch.allclose(res.final, net(x)[0], atol=1e-3)


def test_centred_run_resumes_with_its_f0(tmp_path):
    """f₀ is checkpointed: a resumed centred run (re-built with another seed) gives the same
    output as an uninterrupted one."""
    net, _, x, y, mask = _image_case()
    cfg = DIPConfig.build(method="gd", iters=6, lr=1e-3, centred=True, checkpoint_every=3)
    ref = fit(net, x, Problem(y, mask), cfg, device="cpu")

    class StopError(Exception):
        pass

    def crash(t, rec):
        if t == 4:
            raise StopError

    net, _, x, y, mask = _image_case()
    with pytest.raises(StopError):
        fit(net, x, Problem(y, mask), cfg, out_dir=tmp_path, device="cpu", callback=crash)
    other, _ = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(9)
    )
    res = fit(other, x, Problem(y, mask), cfg, out_dir=tmp_path, device="cpu")
    assert torch.equal(res.final, ref.final)


def test_gd_on_a_signal_needs_no_noise_level():
    """σ cannot be estimated from a 1-D signal (no 2×2 blocks): gd does not use it and runs
    (σ reported as NaN); sgld, whose energy needs it, asks for --noise-std."""
    net, _, x, y, mask = _signal_case()
    res = fit(
        net, x, Problem(y, mask), DIPConfig.build(method="gd", iters=2, lr=1e-3), device="cpu"
    )
    assert res.iterations == 2 and res.sigma != res.sigma
    with pytest.raises(GpdipError, match="pass --noise-std"):
        fit(net, x, Problem(y, mask), DIPConfig.build(method="sgld", iters=2), device="cpu")
