"""Each method's defining equation on a tiny case, against a hand computation (float64):
DIP-TV's loss, Self-Guided DIP's Monte Carlo mean and loss, aSeqDIP's input update, DOP's
s = g⊙g − h⊙h and its learning-rate ratio; SSIM against scikit-image; the runner."""

import pytest
import torch
from torch import nn

from gpdip.dip.methods import (
    DIPTV,
    DOP,
    ASeqDIP,
    Observation,
    SelfGuidedDIP,
    build_method,
    run_method,
    ssim,
)
from gpdip.errors import GpdipError

C, H, W = 2, 6, 5


def _obs(seed=0, masked=True):
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand((C, H, W), generator=gen, dtype=torch.float64)
    mask = (torch.rand((1, H, W), generator=gen) > 0.3) if masked else None
    return Observation(y, mask)


def _linear_net(seed=1, c_in=C):
    """A 1×1 conv without bias: f(z) = Mz per pixel, so E_η f(z + η) = f(z) + f(E η)."""
    net = nn.Conv2d(c_in, C, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(
            torch.randn(
                net.weight.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
            )
        )
    return net


def test_dip_tv_loss_is_data_term_plus_scaled_tv():
    obs = _obs()
    x = torch.randn((1, C, H, W), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    method = DIPTV(_linear_net(), x, obs, tv_weight=0.3, eps=1e-6)
    out = method.net(x)[0]
    dy = torch.diff(out, dim=1, append=out[:, -1:])  # zero difference at the last row
    dx = torch.diff(out, dim=2, append=out[:, :, -1:])
    tv = torch.sqrt(dy**2 + dx**2 + 1e-6).sum()
    data = ((out - obs.y) * obs.mask).pow(2).sum() / obs.n_obs
    expected = data + 0.3 * tv / (C * H * W)
    assert float(method.loss(out)) == pytest.approx(float(expected), rel=1e-12)


def test_self_guided_mean_output_and_loss():
    """With a linear f the Monte Carlo mean is f(z + η̄), η̄ the mean of the S draws, which
    the test redraws from the same seed; loss = ‖A x̄ − y‖²/n_obs + λ‖x̄ − z‖²/N."""
    obs = _obs()
    sg = SelfGuidedDIP(
        _linear_net(),
        obs,
        reg_weight=0.7,
        noise_std=0.2,
        n_samples=4,
        generator=torch.Generator().manual_seed(5),
    )
    z0 = sg.z.detach().clone()
    assert torch.equal(z0[0], obs.y * obs.mask)  # z starts at Aᵀy
    mean_out = sg.expected_output()
    eta = torch.randn((4, C, H, W), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = sg.net(z0 + 0.2 * eta.mean(0, keepdim=True))[0]
    assert torch.allclose(mean_out, expected, atol=1e-12)
    loss = ((expected - obs.y) * obs.mask).pow(2).sum() / obs.n_obs + 0.7 * (expected - z0[0]).pow(
        2
    ).sum() / (C * H * W)
    assert float(sg.loss(mean_out)) == pytest.approx(float(loss), rel=1e-12)
    sg.step()
    assert not torch.equal(sg.z.detach(), z0)  # z is trained, not only θ


def test_aseqdip_input_becomes_the_updated_networks_output():
    obs = _obs()
    method = ASeqDIP(_linear_net(), obs, reg_weight=0.5, inner_steps=3, lr=0.01)
    z_old = method.z.clone()
    estimate = method.step()
    with torch.no_grad():
        expected = method.net(z_old)[0]  # θ after the 3 steps, applied to the old input
    assert torch.allclose(estimate, expected, atol=1e-12)
    assert torch.allclose(method.z[0], expected, atol=1e-12)


def test_dop_models_sparse_noise_with_a_discrepant_learning_rate():
    """One SGD step.  Summed loss S = ‖m⊙r‖², r = f + g² − h² − y: ∂S/∂g = 2m⊙r·2g,
    ∂S/∂h = −2m⊙r·2h, so g moves by −s_lr·∂S/∂g; θ by −lr·∂(S/n_obs)/∂θ."""
    obs = _obs()
    x = torch.randn((1, C, H, W), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    dop = DOP(_linear_net(), x, obs, lr=0.1, s_lr=0.07, init_std=0.3, reg_noise_std=0.0)
    g0, h0 = dop.g.detach().clone(), dop.h.detach().clone()
    w0 = dop.net.weight.detach().clone()
    out = dop.net(x)[0].detach()
    assert torch.allclose(dop.sparse, g0 * g0 - h0 * h0)
    resid = (out + g0 * g0 - h0 * h0 - obs.y) * obs.mask
    dg, dh = 2 * resid * 2 * g0, -2 * resid * 2 * h0
    dop.step()
    assert torch.allclose(dop.g.detach(), g0 - 0.07 * dg, atol=1e-12)
    assert torch.allclose(dop.h.detach(), h0 - 0.07 * dh, atol=1e-12)
    # θ moved at rate lr (its gradient: (2/n_obs) Σ_pixels r ⊗ x)
    grad_w = 2 / obs.n_obs * torch.einsum("chw,khw->ck", resid, x[0])[..., None, None]
    assert torch.allclose(dop.net.weight.detach(), w0 - 0.1 * grad_w, atol=1e-12)


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(4)
    a = torch.rand((3, 20, 24), generator=gen, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ref = metrics.structural_similarity(
        a.numpy(),
        b.numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=0,
    )
    assert ssim(b, a) == pytest.approx(ref, abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(GpdipError, match="smaller than the 11×11 window"):
        ssim(a[:, :8, :8], a[:, :8, :8])


@pytest.mark.parametrize(
    "name", ["es-wmv", "dip-tv", "dip-admm-v1", "self-guided", "aseqdip", "dop"]
)
def test_every_method_runs_through_the_runner(name):
    """dip-tiny 8×8, a budget of 20 gradient steps: the bookkeeping (outer iterations of
    k steps, PSNR history, the WMV stop on a window of 3) is consistent."""
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand((1, 8, 8), generator=gen)
    obs = Observation(truth + 0.1 * torch.randn(truth.shape, generator=gen))
    hyper = {"optimizer": "adam", "lr": 0.003, "s_lr": 0.05} if name == "dop" else None
    method = build_method(name, obs, "dip-tiny", width=4, hyper=hyper)
    out = run_method(method, 20, truth=truth, window=3, patience=2, log_every=5)
    assert out.estimate.shape == (1, 8, 8) and out.grad_steps == 20
    assert out.best_iter is not None and 1 <= out.best_iter <= 20
    if out.wmv_psnr is not None:
        assert out.wmv_gap is not None and out.wmv_gap <= 0


def test_bad_method_requests_name_the_problem():
    obs = _obs(masked=False)
    with pytest.raises(GpdipError, match="method 'adam'"):
        build_method("adam", obs, "dip-tiny")
    with pytest.raises(GpdipError, match=r"method 'dip-tv'.*tv_wieght"):
        build_method("dip-tv", Observation(obs.y.float()), "dip-tiny", hyper={"tv_wieght": 1})
    with pytest.raises(GpdipError, match="lr=-1"):
        build_method("dop", Observation(obs.y.float()), "dip-tiny", hyper={"lr": -1})
