"""Each linear map of the recursion against a brute-force reference.

The reference builds the full covariance matrix Σ of a (cyclo)stationary
process on a small window, applies the layer as an explicit matrix A (from
PyTorch's own ``F.interpolate`` / pooling / slicing applied to basis vectors),
and compares A Σ Aᵀ with the table map at interior positions.  The maps are
linear in C, so any symmetric table will do: a random one is used.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from gpdip.limit import covtable as ct
from gpdip.limit import resample_maps as rm
from gpdip.limit.nonlin import relu_expectation


def random_table(period: tuple[int, ...], radius: tuple[int, ...], seed: int) -> ct.CovTable:
    """A random symmetric table: C[p, r] = C[p + r, −r]."""
    g = torch.Generator().manual_seed(seed)
    shape = period + tuple(2 * r + 1 for r in radius)
    raw = torch.randn(shape, generator=g, dtype=torch.float64)
    mirrored = torch.empty_like(raw)
    for idx in itertools.product(*[range(n) for n in shape]):
        p, r = idx[: len(period)], idx[len(period) :]
        off = [ri - R for ri, R in zip(r, radius, strict=True)]
        q = tuple((pi + oi) % P for pi, oi, P in zip(p, off, period, strict=True))
        mirrored[idx] = raw[q + tuple(R - oi for oi, R in zip(off, radius, strict=True))]
    return ct.CovTable((raw + mirrored) / 2, period, radius)


def dense_covariance(table: ct.CovTable, n: int) -> torch.Tensor:
    """Σ[t, t'] = C[t mod P, t' − t] on an n^dims window (row-major positions)."""
    dims = table.dims
    positions = list(itertools.product(range(n), repeat=dims))
    sigma = torch.zeros(len(positions), len(positions), dtype=torch.float64)
    for i, t in enumerate(positions):
        for j, u in enumerate(positions):
            off = [b - a for a, b in zip(t, u, strict=True)]
            if all(abs(o) <= R for o, R in zip(off, table.radius, strict=True)):
                p = tuple(a % P for a, P in zip(t, table.period, strict=True))
                sigma[i, j] = table.values[
                    p + tuple(o + R for o, R in zip(off, table.radius, strict=True))
                ]
    return sigma


def operator_matrix(fn, n: int, dims: int) -> torch.Tensor:
    """The matrix of a linear map on n^dims signals, from its action on basis vectors."""
    basis = torch.eye(n**dims, dtype=torch.float64).reshape(n**dims, 1, *([n] * dims))
    out = fn(basis)
    return out.reshape(n**dims, -1).T


def compare(out_table: ct.CovTable, sigma_out: torch.Tensor, m: int, margin: int) -> None:
    """Check table entries against A Σ Aᵀ for output positions ≥ margin from the edges."""
    dims = out_table.dims
    positions = list(itertools.product(range(m), repeat=dims))
    index = {t: i for i, t in enumerate(positions)}
    checked = 0
    for t in positions:
        if not all(margin <= a < m - margin for a in t):
            continue
        for off in itertools.product(*[range(-R, R + 1) for R in out_table.radius]):
            u = tuple(a + o for a, o in zip(t, off, strict=True))
            if not all(margin <= b < m - margin for b in u):
                continue
            p = tuple(a % P for a, P in zip(t, out_table.period, strict=True))
            got = out_table.values[
                p + tuple(o + R for o, R in zip(off, out_table.radius, strict=True))
            ]
            want = sigma_out[index[t], index[u]]
            assert float(got) == pytest.approx(float(want), abs=1e-12), (t, off)
            checked += 1
    assert checked >= 4  # the comparison really ran


CASES_1D = [(1, 12), (2, 12), (3, 12)]


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("period", [1, 2])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_matches_interpolate(dims, period, mode):
    n, factor = (12 if dims == 1 else 8), 2
    table = random_table((period,) * dims, (n - 1,) * dims, seed=period + 10 * dims)
    torch_mode = mode if dims == 2 or mode == "nearest" else "linear"
    sources = rm.nearest_sources(factor) if mode == "nearest" else rm.bilinear_sources(factor)
    out = rm.upsample(table, factor, sources)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    A = operator_matrix(
        lambda x: F.interpolate(x, scale_factor=factor, mode=torch_mode, **kwargs), n, dims
    )
    sigma = dense_covariance(table, n)
    compare(out.crop((3,) * dims), A @ sigma @ A.T, n * factor, margin=2)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("period,factor", [(1, 2), (2, 2), (4, 2), (2, 3)])
def test_decimate_matches_slicing(dims, period, factor):
    n = 12 if dims == 1 else 8
    table = random_table((period,) * dims, (n - 1,) * dims, seed=3 * period + factor)
    out = rm.decimate(table, factor)
    A = operator_matrix(lambda x: x[(Ellipsis, *([slice(None, None, factor)] * dims))], n, dims)
    m = math.ceil(n / factor)
    compare(out.crop((1,) * dims), A @ dense_covariance(table, n) @ A.T, m, margin=0)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("period", [1, 2])
def test_avg_pool_matches_pooling(dims, period):
    n, factor = (12 if dims == 1 else 8), 2
    table = random_table((period,) * dims, (n - 1,) * dims, seed=7 + period)
    out = rm.decimate(rm.box_average(table, factor), factor)
    pool = F.avg_pool1d if dims == 1 else F.avg_pool2d
    A = operator_matrix(lambda x: pool(x, factor), n, dims)
    compare(out.crop((1,) * dims), A @ dense_covariance(table, n) @ A.T, n // factor, margin=0)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("period,kernel_size", [(2, 3), (4, 3), (3, 5), (1, 3)])
def test_conv_taps_is_expectation_over_iid_taps(dims, period, kernel_size):
    """E_w[A_w Σ A_wᵀ] with iid taps of variance 1/k^d equals the tap-averaged table."""
    n = 12 if dims == 1 else 8
    table = random_table((period,) * dims, (n - 1,) * dims, seed=period * kernel_size)
    out = ct.conv_taps(table, kernel_size)
    sigma = dense_covariance(table, n)
    half = kernel_size // 2
    expect = torch.zeros_like(sigma)
    for shift in itertools.product(range(-half, half + 1), repeat=dims):
        # Tap j reads x(t + j): a shift operator (zero outside the window).
        S = operator_matrix(lambda x, s=shift: _shift(x, s), n, dims)
        expect += S @ sigma @ S.T / kernel_size**dims
    compare(out.crop((2,) * dims), expect, n, margin=half)


def _shift(x: torch.Tensor, shift: tuple[int, ...]) -> torch.Tensor:
    out = torch.zeros_like(x)
    n = x.shape[-1]
    src, dst = [], []
    for s in shift:
        src.append(slice(max(s, 0), n + min(s, 0)))
        dst.append(slice(max(-s, 0), n + min(-s, 0)))
    out[(Ellipsis, *dst)] = x[(Ellipsis, *src)]
    return out


def test_diagonal_pairs_indexing():
    """The non-linearity reads E[z(t)²] and E[z(t+r)²] for each (phase, offset) pair."""
    table = random_table((3, 2), (4, 4), seed=1)
    table = ct.CovTable(table.values.abs() + 5.0, table.period, table.radius)  # valid variances
    k11, k22 = ct.diagonal_pairs(table)
    sigma = dense_covariance(table, 12)
    diag = torch.diagonal(sigma)
    new = relu_expectation(k11, k22, table.values)
    dense_new = relu_expectation(
        diag[:, None].expand_as(sigma), diag[None, :].expand_as(sigma), sigma
    )
    out = ct.CovTable(new, table.period, table.radius)
    compare(out, dense_new, 12, margin=0)


def test_sinc_upsample_matches_band_limited_torus():
    """Stationary compact kernel: the table map vs FFT zero-padding on a large torus."""
    from gpdip.layers.resampling import sinc_upsample

    n, factor = 256, 2
    kernel = torch.tensor([0.2, 0.6, 1.5, 0.6, 0.2], dtype=torch.float64)  # PSD, compact
    table = ct.stationary(F.pad(kernel, (14, 14)))
    out = rm.sinc_upsample(table, factor).crop((8,)).phase_mean()
    circ = torch.zeros(n, dtype=torch.float64)
    for r, v in zip(range(-2, 3), kernel, strict=True):
        circ[r % n] = v
    sigma = torch.stack([torch.roll(circ, i) for i in range(n)])
    A = operator_matrix(lambda x: sinc_upsample(x, factor, 1), n, 1)
    row = (A @ sigma @ A.T)[0]
    want = torch.cat([row[-8:], row[:9]])
    # Trig interpolation on a torus of n samples differs from sinc on the line by O(1/n).
    assert torch.allclose(out, want, atol=5e-3, rtol=0)
