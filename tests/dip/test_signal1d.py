"""1-D signals through the 2-D trainer (paper Fig. 3d)."""

import torch

from gpdip.dip.signal1d import make_network_1d, pool_chains
from gpdip.finite.network import build_network


def test_wrapper_is_the_1d_network_on_a_row():
    net, x = make_network_1d("conv-d2", 40, width=8, generator=torch.Generator().manual_seed(0))
    bare = build_network("conv-d2", dims=1, width=8, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 8, 1, 40)
    assert torch.equal(net(x)[:, :, 0], bare(x[:, :, 0]))
    # the exact limit prior travels with it: weight_var/fan_in per weight, 0 for bias
    var = net.prior_variances
    weights = [n for n in var if n.endswith("weight")]
    assert weights and all(var[n] > 0 for n in weights)


def test_pooled_chains_are_the_mixture_of_their_samples():
    """Mean and std of K equal chains = mean and std of all their samples pooled."""
    gen = torch.Generator().manual_seed(1)
    samples = (
        torch.randn(3, 500, 7, generator=gen, dtype=torch.float64)
        * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)[:, None, None]
        + torch.arange(3.0)[:, None, None]
    )
    means, stds = samples.mean(1), samples.std(1, unbiased=False)
    mean, std = pool_chains(means, stds)
    flat = samples.reshape(-1, 7)
    assert torch.allclose(mean, flat.mean(0)) and torch.allclose(std, flat.std(0, unbiased=False))
