"""TV: the differentiable penalty by hand, the prox by a duality-gap certificate and against
scikit-image's independent Chambolle implementation."""

import numpy as np
import pytest
import torch

from gpdip.dip.methods.tv import div2d, grad2d, tv_duality_gap, tv_prox, tv_smooth
from gpdip.errors import GpdipError


def _image(seed, shape=(2, 12, 10)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_div_is_minus_the_adjoint_of_grad():
    u = _image(0)
    p = torch.randn((2, *u.shape), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert abs(float((grad2d(u) * p).sum() + (u * div2d(p)).sum())) < 1e-12


def test_smooth_tv_matches_a_pixel_loop():
    u, eps = _image(2), 1e-3
    a = u.numpy()
    total = 0.0
    for c in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                dy = a[c, i + 1, j] - a[c, i, j] if i + 1 < a.shape[1] else 0.0
                dx = a[c, i, j + 1] - a[c, i, j] if j + 1 < a.shape[2] else 0.0
                total += np.sqrt(dy * dy + dx * dx + eps)
    assert float(tv_smooth(u, eps)) == pytest.approx(total, rel=1e-12)


@pytest.fixture(scope="module")
def solved():
    """One ROF problem solved to a small duality gap (1000 FGP steps, ≈ 1-3 s)."""
    f, w = _image(3), 0.15
    u, p = tv_prox(f, w, iters=1000)
    return f, w, u, p


def test_prox_is_certified_optimal_by_its_duality_gap(solved):
    """½‖u − u*‖² ≤ P(u) − P* ≤ gap: a gap below 2e-6 puts u within sqrt(4e-6) = 2e-3 of
    the exact minimiser (in ℓ2, so in every pixel), whatever algorithm produced it."""
    f, w, _, p = solved
    assert 0 <= tv_duality_gap(f, w, p) < 2e-6
    # a point that is not the minimiser has a large gap: the certificate can fail
    assert tv_duality_gap(f, w, torch.zeros_like(p)) > 1e-2


def test_prox_matches_scikit_image(solved):
    skimage = pytest.importorskip("skimage.restoration")
    f, w, u, _ = solved
    ref = skimage.denoise_tv_chambolle(
        f.numpy(), weight=w, eps=1e-12, max_num_iter=500, channel_axis=0
    )
    # ours is within 2e-3 of u* (the gap test); skimage's Chambolle iteration after 500
    # steps is within 8e-4 of a 6000-step FGP solution (gap 2e-11), hence 3e-3
    assert np.abs(u.numpy() - ref).max() < 3e-3


def test_prox_warm_start_and_bad_arguments():
    f = _image(5)
    u1, p1 = tv_prox(f, 0.1, iters=200)
    u2, _ = tv_prox(f, 0.1, iters=1, p0=p1)
    assert float((u2 - u1).abs().max()) < 1e-3  # warm start resumes, not restarts
    with pytest.raises(GpdipError, match="weight=0"):
        tv_prox(f, 0.0)
    with pytest.raises(GpdipError, match="p0 has shape"):
        tv_prox(f, 0.1, p0=torch.zeros(3))
