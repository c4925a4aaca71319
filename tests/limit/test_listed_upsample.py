"""The final upsampling on listed offsets (listed_upsample) against the box upsampling.

The reference is :func:`gpdip.limit.resample_maps.upsample` on the table's full box (one
term matrix per dimension, itself checked against the dense resampling operator in
test_covtable.py), read at the listed fine offsets and, for a swap-halved table, at the
stored rows.  listed_upsample does the same sums in the same order per entry, with other
layouts in between (and the coarse box gathered from a folded list), so the two must agree
bit for bit, with and without autograd.
"""

from __future__ import annotations

import functools

import pytest
import torch

from gpdip.limit import covtable as ct
from gpdip.limit import index_cache as ic
from gpdip.limit import listed_upsample as lu
from gpdip.limit import phase_tables as pt
from gpdip.limit import resample_maps as rm
from gpdip.limit import swap_fold as sf
from tests.limit.test_covtable import random_table

PERIOD, RADIUS, CENTRE = (3, 3), (5, 5), (1, 1)


@functools.cache
def symmetric_box() -> ct.CovTable:
    """A 2-D random table with the pair swap, reflections about centre 1, and transposition
    (every fold of phase_tables holds for it)."""
    values = random_table(PERIOD, RADIUS, 7).values
    mirror = (CENTRE[0] - torch.arange(PERIOD[0])) % PERIOD[0]
    for d in (0, 1):  # C[p, r] = C[(c − p) mod P, −r] per dimension
        values = (values + values.index_select(d, mirror).flip(2 + d)) / 2
    values = (values + values.permute(1, 0, 3, 2)) / 2
    return ct.CovTable(values, PERIOD, RADIUS)


def on_list(box: ct.CovTable, fold: str) -> ct.CovTable:
    """The box table kept on its fold's offset list (the layout upsample_folded leaves)."""
    listed = pt._fold_offsets(box.radius, fold)
    index = tuple(listed[:, d] + box.radius[d] for d in range(2))
    zero = int((listed.abs().sum(1) == 0).nonzero()[0, 0])
    centre = () if fold == "half" else CENTRE
    points = ct.OffsetSet(listed, fold, zero, centre, box.radius)
    return ct.CovTable(box.values[(Ellipsis, *index)], box.period, box.radius, points)


def box_reference(box, factor, sources, listed, rows):
    """rm.upsample on the whole box, read at the listed offsets (and stored rows)."""
    up = rm.upsample(box, factor, sources)
    r0 = listed[:, 0] + up.radius[0]
    r1 = listed[:, 1] + up.radius[1]
    values = up.values[:, :, r0, r1]  # (τP₀, τP₁, n)
    if rows is None:
        return values
    # stored entry (k, p₁, j) = C[(rows[k, j], p₁), r_j]
    columns = torch.arange(len(listed)).expand_as(rows)
    return values[rows, :, columns].permute(0, 2, 1)


@pytest.mark.parametrize("coarse_fold", [None, "half", "quadrant", "octant"])
@pytest.mark.parametrize("fine_fold", ["half", "octant"])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("halve", [False, True])
def test_listed_upsampling_is_the_box_upsampling(coarse_fold, fine_fold, mode, halve):
    box = symmetric_box()
    table = box if coarse_fold is None else on_list(box, coarse_fold)
    factor = 2
    sources = (rm.nearest_sources if mode == "nearest" else rm.bilinear_sources)(factor)
    fine_radius = rm.upsample(box, factor, sources).radius
    listed = pt._fold_offsets(tuple(r - 1 for r in fine_radius), fine_fold)
    rows = None
    if halve:
        fine_centre = (factor * CENTRE[0] + factor - 1) % (factor * PERIOD[0])
        rows, _ = sf.swap_rows(listed[:, 0], fine_centre, factor * PERIOD[0])
    expected = box_reference(box, factor, sources, listed, rows)
    out = lu.upsample_points(table, factor, sources, listed, rows)
    assert out.shape == expected.shape and out.is_contiguous()
    assert torch.equal(out, expected)
    again = lu.upsample_points(table, factor, sources, listed, rows)  # kept plan and index
    assert torch.equal(again, expected)


def test_listed_upsampling_differentiates_alike():
    """Under autograd (the product comes back transposed): same values, same gradient with
    respect to the folded table's values."""
    folded = on_list(symmetric_box(), "octant")
    sources = rm.bilinear_sources(2)
    listed = pt._fold_offsets((6, 6), "octant")
    g = torch.Generator().manual_seed(3)
    weight = torch.rand(6, 6, len(listed), generator=g, dtype=torch.float64)
    results = []
    for fn in (
        lambda t: lu.upsample_points(t, 2, sources, listed),
        lambda t: box_reference(ct.to_box(t), 2, sources, listed, None),
    ):
        leaf = folded.values.clone().requires_grad_(True)
        out = fn(ct.CovTable(leaf, folded.period, folded.radius, folded.points))
        assert out.is_contiguous()
        (grad,) = torch.autograd.grad((out * weight).sum(), leaf)
        results.append((out.detach(), grad))
    assert torch.equal(results[0][0], results[1][0])
    # the gradients sum the same terms in another order: rounding only
    scale = float(results[1][1].abs().max())
    assert float((results[0][1] - results[1][1]).abs().max()) <= 1e-13 * scale


def test_kept_box_index_is_per_window(monkeypatch):
    """Two windows of the same folded table keep two gather indices, each correct."""
    monkeypatch.setattr(ic, "CACHE", ic.IndexCache())
    table = on_list(symmetric_box(), "octant")
    full = ct.box_values(table)
    for low, high in ((0, 10), (4, 7)):
        rows = lu._coarse_rows(table, low, high)
        expected = full[..., low : high + 1].movedim(2, 1).reshape(rows.shape)
        assert torch.equal(rows, expected)
    assert sum(key[0] == "box-rows" for key in ic.CACHE.store) == 2
