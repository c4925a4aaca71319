"""``parameterization="ntk"`` through the DIP network builders (2-D and 1-D).

Independent check: a standard-parameterised network whose weights are set to
√(weight_var/fan_in)·w_ntk and biases to √bias_var·b_ntk (the prior variances the standard
builder records, not the NTK module's own scale) computes the same function; and gradient
descent with rate η on the NTK network moves the function exactly as GD on the standard
one with per-tensor rates η·(its prior variance), as θ_std = s·θ_ntk implies
(∇_std = ∇_ntk/s, so θ_std − η s²∇_std = s·(θ_ntk − η∇_ntk))."""

from __future__ import annotations

import pytest
import torch

from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.dip.signal1d import make_network_1d
from gpdip.errors import GpdipError


def test_bad_parameterization_is_named():
    with pytest.raises(GpdipError, match="parameterization 'mup': expected one of standard, ntk"):
        make_network("unet2", (16, 16), 1, width=4, parameterization="mup")
    with pytest.raises(GpdipError, match="'dip-tiny' has only the standard one"):
        make_network("dip-tiny", (16, 16), 1, width=4, parameterization="ntk")
    with pytest.raises(GpdipError, match="parameterization 'x'"):
        make_network_1d("conv-d2", 16, width=4, parameterization="x")


def _pair(dims: int, seed: int):
    """(ntk net, standard net with its weights rescaled from the ntk net's, input)."""
    build = (
        (lambda p, g: make_network("unet2", (16, 16), 1, width=6, parameterization=p, generator=g))
        if dims == 2
        else (lambda p, g: make_network_1d("conv-d3", 32, width=6, parameterization=p, generator=g))
    )
    ntk, x = build("ntk", torch.Generator().manual_seed(seed))
    std, _ = build("standard", torch.Generator().manual_seed(seed + 1))  # other weights
    variances = std.prior_variances  # weight_var/fan_in per weight, bias_var per bias
    ntk_params = dict(ntk.named_parameters())
    with torch.no_grad():
        for name, p in std.named_parameters():
            p.copy_(ntk_params[name] * variances[name] ** 0.5)
    return ntk, std, x, variances


@pytest.mark.parametrize("dims", [1, 2])
def test_ntk_network_is_the_rescaled_standard_network(dims):
    ntk, std, x, _ = _pair(dims, seed=0)
    with torch.no_grad():
        f_ntk, f_std = ntk(x), std(x)
    assert f_ntk.abs().mean() > 1e-2  # a non-trivial function
    # float32, a few layers: relative rounding ~1e-6
    assert torch.allclose(f_ntk, f_std, rtol=1e-4, atol=1e-5 * float(f_std.abs().max()))


@pytest.mark.parametrize("dims", [1, 2])
def test_gd_on_ntk_network_is_gd_on_standard_with_scaled_rates(dims):
    ntk, std, x, variances = _pair(dims, seed=3)
    y = torch.randn(ntk(x).shape[1:], generator=torch.Generator().manual_seed(5))
    lr, steps = 1e-3, 3
    # the trainer's gd on the NTK-parameterised network
    res = fit(ntk, x, Problem(y), DIPConfig.build(method="gd", iters=steps, lr=lr), device="cpu")
    # hand-written GD on the standard one: per-tensor rate lr·(prior variance)
    groups = [{"params": [p], "lr": lr * variances[n]} for n, p in std.named_parameters()]
    opt = torch.optim.SGD(groups)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((std(x)[0] - y) ** 2).sum()).backward()
        opt.step()
    with torch.no_grad():
        want = std(x)[0]
    moved = float((want - y).abs().max())
    assert torch.allclose(res.final, want, rtol=1e-4, atol=1e-4 * moved)
