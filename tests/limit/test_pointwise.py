"""The chunked, in-place pointwise maps against the unchunked general maps, bit for bit.

The reference is the general path of each layer: :func:`gpdip.limit.covtable.diagonal_pairs`
(itself checked against a dense covariance in test_covtable.py) and the separate closed forms
of :mod:`gpdip.limit.nonlin` (checked against quadrature in test_nonlin.py).  The chunked
maps perform the same floating-point operations per entry, so equality is exact, not a
tolerance; a tiny chunk size forces many chunks and a ragged last one.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from gpdip.layers.channel_norm import ChannelNorm
from gpdip.layers.elementwise import Erf, LeakyReLU, ReLU
from gpdip.limit import covtable as ct
from gpdip.limit import nonlin
from gpdip.limit import pointwise as pw
from gpdip.limit import resample_maps as rm
from gpdip.limit.state import Group, Walker
from tests.limit.test_covtable import random_table


def valid_table(period: tuple[int, ...], radius: tuple[int, ...], seed: int) -> ct.CovTable:
    """A symmetric table with |C[p, r]| well below the variances, and exact ±1 correlations.

    Offsets (1, ...) get C = +variance at phase 0 and −variance at phase 1 when the
    variances are equal (all set to 4), so arccos sees ρ = ±1 exactly.
    """
    table = cached_random_table(period, radius, seed)
    values = table.values * 0.3
    centre = (Ellipsis, *radius)
    values[centre] = 4.0
    if table.dims == 1:
        values[0, radius[0] + 1] = 4.0
        values[1 % period[0], radius[0] - 1] = 4.0  # its pair-swap partner: C[p, r] = C[p+r, −r]
    return ct.CovTable(values, period, radius)


@functools.cache
def cached_random_table(period: tuple[int, ...], radius: tuple[int, ...], seed: int):
    """random_table (a slow Python loop) once per argument; callers must not modify it."""
    return random_table(period, radius, seed)


def counted_chunks(monkeypatch, entries: int) -> list[int]:
    """Force chunks of ``entries`` entries and count the chunks the maps ask for."""
    monkeypatch.setattr(pw, "CHUNK_ENTRIES", entries)
    calls: list[int] = []
    original = pw.phase_chunks

    def counting(table, entries=None, shift=None):
        for chunk in original(table, entries, shift):
            calls.append(1)
            yield chunk

    monkeypatch.setattr(pw, "phase_chunks", counting)
    return calls


def listed(table: ct.CovTable) -> ct.CovTable:
    """The same table on a "half"-folded offset list (the layout of phase_tables)."""
    ranges = [torch.arange(0, table.radius[0] + 1)]
    ranges += [torch.arange(-r, r + 1) for r in table.radius[1:]]
    offsets = torch.cartesian_prod(*ranges).reshape(-1, table.dims)
    zero = int((offsets.abs().sum(dim=1) == 0).nonzero()[0, 0])
    return ct.at_points(table, ct.OffsetSet(offsets, "half", zero))


def group_of(table: ct.CovTable, theta: ct.CovTable) -> Group:
    return Group(table, theta, 8.0, True, frozenset({1}), frozenset({0, 1}), table.period[0])


def reference_nonlinearity(layer, table: ct.CovTable, theta: ct.CovTable):
    k11, k22 = ct.diagonal_pairs(table)
    k = layer.expectation(k11, k22, table.values)
    t = theta.values * layer.derivative_expectation(k11, k22, table.values)
    return k, t


CASES = [((3, 2), (2, 3)), ((4, 4), (3, 3)), ((5,), (6,)), ((1, 1), (4, 4))]


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.2), LeakyReLU(0.0), Erf()])
@pytest.mark.parametrize("period, radius", CASES)
@pytest.mark.parametrize("as_list", [False, True])
def test_chunked_nonlinearity_is_bit_identical(layer, period, radius, as_list, monkeypatch):
    chunks = counted_chunks(monkeypatch, 7)
    table = valid_table(period, radius, seed=3)
    theta = ct.CovTable(cached_random_table(period, radius, 4).values.abs() + 1, period, radius)
    if as_list:
        table, theta = listed(table), ct.at_points(theta, listed(table).points)
    walker = Walker({}, 2**20, "test", ntk=True)
    out = layer.limit([group_of(table, theta)], walker, "here", None)[0]
    k_ref, t_ref = reference_nonlinearity(layer, table, theta)
    assert torch.equal(out.nngp.values, k_ref)
    assert torch.equal(out.ntk.values, t_ref)
    assert out.nngp.points is table.points and out.ntk.points is theta.points
    # ReLU and leaky ReLU take the chunked path (a chunk per phase row here); erf does not
    assert len(chunks) == (0 if isinstance(layer, Erf) else period[0])


@pytest.mark.parametrize("period, radius", CASES)
@pytest.mark.parametrize("as_list", [False, True])
def test_chunked_channel_norm_is_bit_identical(period, radius, as_list, monkeypatch):
    chunks = counted_chunks(monkeypatch, 5)
    table = valid_table(period, radius, seed=5)
    theta = ct.CovTable(cached_random_table(period, radius, 6).values, period, radius)
    if as_list:
        table, theta = listed(table), ct.at_points(theta, listed(table).points)
    layer = ChannelNorm(eps=1e-3)
    out = layer.limit([group_of(table, theta)], Walker({}, 2**20, "t"), "here", None)[0]
    k11, k22 = ct.diagonal_pairs(table)
    scale = torch.rsqrt((k11 + 1e-3) * (k22 + 1e-3))
    assert torch.equal(out.nngp.values, table.values * scale)
    assert torch.equal(out.ntk.values, theta.values * scale)
    assert len(chunks) == period[0]


def test_zero_variance_falls_back_to_the_general_map():
    """A phase with zero variance (norm 0): the fused map declines, the general one answers."""
    table = valid_table((2,), (3,), seed=7)
    values = table.values.clone()
    values[1] = 0.0
    values[0, 3 + 1] = 0.0  # C[0, 1] = C[1, −1]: the pair that reads phase 1's variance
    values[0, 3 - 1] = 0.0
    table = ct.CovTable(values, table.period, table.radius)
    theta = ct.CovTable(torch.ones_like(values), table.period, table.radius)
    out = ReLU().limit([group_of(table, theta)], Walker({}, 2**20, "t", ntk=True), "x", None)[0]
    k_ref, t_ref = reference_nonlinearity(ReLU(), table, theta)
    assert torch.equal(out.nngp.values, k_ref) and torch.equal(out.ntk.values, t_ref)


@pytest.mark.parametrize("slope", [None, 0.2])
def test_relu_pair_matches_the_separate_closed_forms(slope):
    """Both expectations from one angle equal the separate functions, at ρ = ±1 as well."""
    g = torch.Generator().manual_seed(11)
    k11 = torch.rand(200, generator=g, dtype=torch.float64) + 0.1
    k22 = torch.rand(200, generator=g, dtype=torch.float64) + 0.1
    rho = torch.rand(200, generator=g, dtype=torch.float64) * 2 - 1
    rho[:4] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    k22[:4] = k11[:4]
    k12 = rho * torch.sqrt(k11 * k22)
    pair = nonlin.relu_pair_owned(k11, k22.clone(), k12, slope, True)
    assert pair is not None
    if slope is None:
        k_ref = nonlin.relu_expectation(k11, k22, k12)
        d_ref = nonlin.relu_derivative_expectation(k11, k22, k12)
    else:
        k_ref = nonlin.leaky_relu_expectation(k11, k22, k12, slope)
        d_ref = nonlin.leaky_relu_derivative_expectation(k11, k22, k12, slope)
    assert torch.equal(pair[0], k_ref) and torch.equal(pair[1], d_ref)
    # ρ = 1: E[φ'φ'] = P(u > 0) = 1/2 for ReLU; ρ = −1: 0 (never both positive)
    if slope is None:
        assert float(pair[1][0]) == 0.5 and float(pair[1][1]) == 0.0
        assert math.isclose(float(pair[0][0]), float(k11[0]) / 2, rel_tol=1e-15)


def test_sparse_columns_is_the_transposed_sparse_rows():
    """dense × CSRᵀ gives sparse_rows' sums in sparse_rows' order, with and without autograd."""
    g = torch.Generator().manual_seed(2)
    n_phase, n_off, n_out, width = 3, 5, 40, 6
    terms = []
    for _ in range(4):
        phase = torch.randint(0, n_phase, (n_out,), generator=g)
        off = torch.randint(0, n_off, (n_out,), generator=g)
        terms.append((phase, off, torch.randn(n_out, generator=g, dtype=torch.float64)))
    cols = torch.randn(width, n_phase * n_off, generator=g, dtype=torch.float64)
    expected = rm.sparse_rows(terms, n_off, cols.T.contiguous()).T
    # an explicit dense reference as well
    dense = torch.zeros(n_out, n_phase * n_off, dtype=torch.float64)
    for phase, off, weight in terms:
        dense.index_put_((torch.arange(n_out), phase * n_off + off), weight, accumulate=True)
    assert torch.equal(rm.sparse_columns(terms, n_off, cols), expected)
    assert float((expected - cols @ dense.T).abs().max()) <= 1e-13
    leaf = cols.clone().requires_grad_(True)
    out = rm.sparse_columns(terms, n_off, leaf)
    assert torch.equal(out.detach(), expected)
    out.sum().backward()
    assert float((leaf.grad - dense.sum(0).expand_as(cols)).abs().max()) <= 1e-13


@pytest.mark.parametrize("scale", [1.0, 1e-170])
def test_variance_products_decide_the_zero_variance_check(scale):
    """The per-chunk check is skipped only when the smallest variance squared is above 0
    (then every product of two variances is, rounding being monotone); at 1e-170 the
    squares underflow, the check runs and declines, and the general map answers."""
    table = valid_table((3, 2), (2, 3), seed=3)
    table = ct.CovTable(table.values * scale, table.period, table.radius)
    theta = ct.CovTable(torch.ones_like(table.values), table.period, table.radius)
    assert pw.positive_products(table) is (scale == 1.0)
    out = ReLU().limit([group_of(table, theta)], Walker({}, 2**20, "t", ntk=True), "x", None)[0]
    k_ref, t_ref = reference_nonlinearity(ReLU(), table, theta)
    assert torch.equal(out.nngp.values, k_ref) and torch.equal(out.ntk.values, t_ref)
    nan = ct.CovTable(torch.full_like(table.values, math.nan), table.period, table.radius)
    assert not pw.positive_products(nan)
