"""The batched-chain network and the Rao–Blackwellised readout (gpdip.experiments.sgld_study)."""

from __future__ import annotations

import pytest
import torch

from gpdip.errors import GpdipError
from gpdip.experiments import sgld_study as sg
from gpdip.finite.network import build_network, sample_input

BIASED = """
[input]
channels = 4
sigma = 1.0

[network]
layers = [
  { type = "conv", channels = 6, kernel_size = 3, weight_var = 2.0, bias_var = 0.5 },
  { type = "relu" },
  { type = "conv", channels = 1, kernel_size = 1, weight_var = 1.5, bias_var = 0.3 },
]
"""


def _nets(arch, width: int, chains: int, length: int):
    nets, zs = [], []
    for c in range(chains):
        gen = torch.Generator().manual_seed(c)
        net = build_network(
            arch, dims=1, width=width, parameterization="ntk", padding="circular", generator=gen
        ).double()
        nets.append(net)
        zs.append(sample_input(arch, (length,), width=width, periodic=True, generator=gen)[0])
    theta = torch.stack([sg.ChainNet.flatten(n) for n in nets])
    return nets, theta, torch.stack(zs).double()


@pytest.mark.parametrize("arch", ["conv-d3", "biased"])
def test_chain_net_equals_the_package_network(arch, tmp_path):
    """C chains in one batched call = C separate ``build_network`` modules (float64)."""
    if arch == "biased":
        arch = tmp_path / "biased.toml"
        arch.write_text(BIASED)
    width = 6 if arch != "conv-d3" else 8
    nets, theta, z = _nets(arch, width, 3, 20)
    chain_net = sg.ChainNet(nets[0])
    assert theta.shape == (3, chain_net.dim)
    f, phi = chain_net.output(theta, z)
    expected = torch.stack([net(z[c : c + 1]).reshape(-1) for c, net in enumerate(nets)])
    assert phi.shape == (3, width, 20)
    assert torch.allclose(f, expected, atol=1e-12, rtol=0)


def test_chain_net_rejects_what_it_does_not_cover():
    with pytest.raises(GpdipError, match="circular"):
        sg.ChainNet(build_network("conv-d2", dims=1, width=4, parameterization="ntk"))
    with pytest.raises(GpdipError, match="unsupported module"):
        sg.ChainNet(build_network("conv-d2", dims=1, width=4))  # standard Conv1d


def test_readout_conditional_equals_weight_space_regression():
    """E/Var[f | Φ, y] in function space = Bayesian linear regression on the readout weights
    (v ~ N(0, I), f = s_w·vᵀΦ + s_b·b): posterior S = (I + XᵀX/s²)⁻¹ on (v, b),
    X = [s_w Φ_oᵀ, s_b 1], so E f = Zm, Var f = diag(Z S Zᵀ), Z = [s_w Φᵀ, s_b 1]."""
    gen = torch.Generator().manual_seed(4)
    phi = torch.randn(2, 7, 12, generator=gen, dtype=torch.float64).relu()
    readout = sg.ConvSpec(1, 7, 1, weight_scale=0.6, bias_scale=0.4)
    observed = torch.tensor([0, 2, 3, 7, 8, 11])
    y = torch.randn(6, generator=gen, dtype=torch.float64)
    problem = sg.Posterior(observed, y, 0.3)
    mean, var = sg.readout_conditional(phi, readout, problem)
    for c in range(2):
        z = torch.cat([0.6 * phi[c].T, 0.4 * torch.ones(12, 1, dtype=torch.float64)], 1)
        x = z[observed]
        cov = torch.linalg.inv(torch.eye(8, dtype=torch.float64) + x.T @ x / 0.3)
        m = cov @ x.T @ y / 0.3
        assert torch.allclose(mean[c], z @ m, atol=1e-12)
        assert torch.allclose(var[c], torch.diagonal(z @ cov @ z.T), atol=1e-12)


def test_run_chains_keeps_the_planned_samples():
    nets, theta, z = _nets("conv-d2", 4, 2, 16)
    chain_net = sg.ChainNet(nets[0])
    problem = sg.Posterior(torch.arange(0, 16, 2), torch.linspace(-1, 1, 8), 0.5)
    config = sg.SamplerConfig("mala", eps=1e-3, steps=60, burn_in=20, thin=2, batches=4)
    stats, diag = sg.run_chains(
        chain_net, z, theta, problem, config, torch.Generator().manual_seed(0)
    )
    assert stats.n == 20 and stats.sums["raw"].shape == (2, 16)
    assert stats.sums["batch_n"].tolist() == [5.0, 5.0, 5.0, 5.0]
    assert 0.5 < diag["accept"] <= 1.0  # a tiny step: nearly every proposal accepted


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sampler": "hmc"}, "sampler"),
        ({"eps": 0.0}, "step size"),
        ({"burn_in": 60}, "burn_in"),
        ({"thin": 20}, "batch means"),
    ],
)
def test_sampler_config_errors(kwargs, match):
    base = {"sampler": "ula", "eps": 1e-3, "steps": 60, "burn_in": 20, "thin": 2}
    with pytest.raises(GpdipError, match=match):
        sg.SamplerConfig(**(base | kwargs)).validate()
