"""The salt-and-pepper GP rows (``gpdip.experiments.salt_pepper_gp``): the impulse mask
against the noise generator's own record, the impulse posterior against a dense float64
posterior written out here, and the Gaussian row's fitted noise against the observation's
actual error (the old row returned the input)."""

import math

import pytest
import torch

from gpdip.dip.images import salt_and_pepper
from gpdip.errors import GpdipError
from gpdip.experiments.salt_pepper_gp import impulse_mask, salt_pepper_gp_mean


def _smooth_image(size: int, channels: int = 2) -> torch.Tensor:
    """(C, size, size) values in [0.2, 0.8]: no true entry is 0 or 1."""
    t = torch.linspace(0, 1, size, dtype=torch.float64)
    rows, cols = torch.meshgrid(t, t, indexing="ij")
    chans = [0.5 + 0.3 * torch.sin(3 * rows + 2 * (c + 1) * cols) for c in range(channels)]
    return torch.stack(chans)


def _noisy(truth: torch.Tensor, amount: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The salt-and-pepper image and the entries it hit, re-drawn from the same generator
    state (salt_and_pepper draws the hit uniforms first)."""
    noisy = salt_and_pepper(truth, amount, torch.Generator().manual_seed(seed))
    hit = torch.rand(truth.shape, generator=torch.Generator().manual_seed(seed)) < amount
    return noisy, hit


def test_impulse_mask_is_the_complement_of_the_hit_entries():
    truth = _smooth_image(12, channels=3)
    noisy, hit = _noisy(truth, 0.5, seed=3)
    assert torch.equal(impulse_mask(noisy), ~hit)  # truth avoids 0 and 1, so exactly


def _rbf_dense_mean(y: torch.Tensor, mask: torch.Tensor, ell: float, scale: float, s2: float):
    """m = mu + K_xo (K_oo + s2 I)^-1 (y_o - mu), mu = mean of y_o, K = scale exp(-r^2/2l^2)."""
    h, w = y.shape
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pts = torch.stack([ii.reshape(-1), jj.reshape(-1)], 1).double()
    k = scale * torch.exp(-(torch.cdist(pts, pts) ** 2) / (2 * ell**2))
    obs = mask.reshape(-1)
    y_o = y.reshape(-1)[obs]
    mu = y_o.mean()
    alpha = torch.linalg.solve(k[obs][:, obs] + s2 * torch.eye(int(obs.sum())), y_o - mu)
    return (mu + k[:, obs] @ alpha).reshape(h, w)


def test_impulse_mean_is_the_gp_conditioned_on_the_non_impulse_entries():
    truth = _smooth_image(10)
    noisy, hit = _noisy(truth, 0.5, seed=0)
    ell, s2 = 2.0, 1e-3
    mean, info = salt_pepper_gp_mean("rbf", noisy, "impulse", noise=s2, lengthscale=ell, fit=False)
    for c in range(truth.shape[0]):
        ref = _rbf_dense_mean(noisy[c], ~hit[c], ell, info["outputscale"][c], s2)
        # dense Cholesky on ~50 points against a float64 solve: float32 output rounding only
        assert torch.allclose(mean[c].double(), ref, atol=1e-5), (
            (mean[c].double() - ref).abs().max()
        )
    # the impulse values carry no information: flipping salt and pepper changes nothing
    flipped = torch.where(hit, 1 - noisy, noisy)
    again, _ = salt_pepper_gp_mean("rbf", flipped, "impulse", noise=s2, lengthscale=ell, fit=False)
    assert torch.equal(again, mean)


def test_gaussian_row_fits_the_impulses_as_noise_and_smooths():
    truth = _smooth_image(16, channels=1)
    noisy, _ = _noisy(truth, 0.5, seed=1)
    mean, info = salt_pepper_gp_mean("rbf", noisy, "gaussian")
    assert not torch.allclose(mean.double(), noisy, atol=1e-3)  # the old row returned y
    # a Gaussian likelihood explains the impulses as white noise: its fitted variance should
    # be the observation's mean squared error (about 0.5 * E[(s - x)^2] ~ 0.1 here), up to
    # the fit's spread over 256 entries and the smooth part it leaves in; a factor 2 either
    # way separates it from both the interpolating (~0) and the signal-free (var y) fits
    for c in range(truth.shape[0]):
        mse = float(((noisy[c] - truth[c]) ** 2).mean())
        assert 0.5 * mse < info["noise"][c] < 2 * mse, (info["noise"][c], mse)
    err_in = float(((noisy - truth) ** 2).mean())
    err_out = float(((mean.double() - truth) ** 2).mean())
    # smoothing beats the input by > 4.8 dB (seeds 1-3 measured 6.3-11.6 dB)
    assert err_out < err_in / 3, (err_out, err_in)
    assert math.isfinite(err_out)


def test_bad_requests_are_named():
    with pytest.raises(GpdipError, match="likelihood 'laplace'"):
        salt_pepper_gp_mean("rbf", torch.full((1, 4, 4), 0.5), "laplace")
    with pytest.raises(GpdipError, match="channel 0: every entry is an impulse"):
        salt_pepper_gp_mean("rbf", torch.ones((1, 4, 4)), "impulse")
    with pytest.raises(GpdipError, match="\\(C, H, W\\)"):
        salt_pepper_gp_mean("rbf", torch.full((4, 4), 0.5), "impulse")
