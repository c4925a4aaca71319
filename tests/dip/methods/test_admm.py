"""DIP-ADMM's fixed point on problems with a known answer: the "network" f(z) = θ."""

import pytest
import torch
from torch import nn

from gpdip.dip.methods.admm import DIPADMM
from gpdip.dip.methods.base import Observation
from gpdip.dip.methods.tv import tv_duality_gap, tv_prox

RHO, MU = 1.0, 0.5


class Identity(nn.Module):
    """f(z) = θ: the network is the image itself (float64)."""

    def __init__(self, shape):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros((1, *shape), dtype=torch.float64))

    def forward(self, z):
        return self.theta


def _problem(seed, masked=True):
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand((2, 6, 5), generator=gen, dtype=torch.float64)
    mask = (torch.rand((1, 6, 5), generator=gen) > 0.4) if masked else None
    return Observation(y, mask)


@pytest.mark.parametrize("inner_steps", [10, 1], ids=["v1", "v2"])
def test_quadratic_prior_converges_to_the_closed_form(inner_steps):
    """min_θ ½‖m⊙(θ − y)‖² + (μ/2)‖θ‖² has θ* = m⊙y/(m + μ).  ADMM with the prior step
    x = prox_{R/ρ}(v) = ρv/(ρ + μ) must reach it, v1 (10 inner steps) and v2 (one) alike.
    SGD at rate n_obs/(2(1+ρ)) is an exact Newton step on observed pixels and halves the
    error on unobserved ones, so v2 is linearised ADMM with a contraction < 1."""
    obs = _problem(0)
    net = Identity(obs.y.shape)
    admm = DIPADMM(
        net,
        torch.zeros(1),
        obs,
        rho=RHO,
        inner_steps=inner_steps,
        optimizer="sgd",
        lr=obs.n_obs / (2 * (1 + RHO)),
        prior_step=lambda v: RHO * v / (RHO + MU),
    )
    for _ in range(60):  # measured: error 3e-13 after 40 iterations, 1e-16 after 60
        admm.step()
    expected = obs.mask * obs.y / (obs.mask + MU)
    assert float((net.theta[0].detach() - expected).abs().max()) < 1e-9
    assert float((admm.x - expected).abs().max()) < 1e-9  # the split is closed: x = f


def test_tv_prior_fixed_point_is_the_rof_solution():
    """Denoising (A = I) with λTV: the problem is min ½‖θ − y‖² + λTV(θ), whose minimiser is
    prox_{λTV}(y), solved independently by 2000 FGP steps to a duality gap ≤ 1e-9 (so
    within sqrt(2e-9) ≈ 4.5e-5 of the minimiser).  ADMM's own prox is inexact (5
    warm-started steps per call); measured: 1.4e-7 from the reference after 200 iterations."""
    obs = _problem(1, masked=False)
    lam = 0.1
    ref, p = tv_prox(obs.y, lam, iters=2000)
    assert tv_duality_gap(obs.y, lam, p) < 1e-9
    net = Identity(obs.y.shape)
    admm = DIPADMM(
        net,
        torch.zeros(1),
        obs,
        rho=RHO,
        tv_weight=lam,
        inner_steps=3,
        optimizer="sgd",
        lr=obs.n_obs / (2 * (1 + RHO)),
    )
    for _ in range(200):
        admm.step()
    assert float((net.theta[0].detach() - ref).abs().max()) < 1e-4
    # and it is not the trivial answer: TV moved the image away from y
    assert float((ref - obs.y).abs().max()) > 0.05


def test_names_and_bad_hyperparameters():
    from gpdip.errors import GpdipError

    obs = _problem(2)
    net = Identity(obs.y.shape)
    assert DIPADMM(net, torch.zeros(1), obs).name == "dip-admm-v1"
    assert DIPADMM(net, torch.zeros(1), obs, inner_steps=1).name == "dip-admm-v2"
    with pytest.raises(GpdipError, match="rho=0"):
        DIPADMM(net, torch.zeros(1), obs, rho=0)
    with pytest.raises(GpdipError, match="inner_steps=0"):
        DIPADMM(net, torch.zeros(1), obs, inner_steps=0)
