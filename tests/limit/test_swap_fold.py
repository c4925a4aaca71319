"""The swap fold (half the phases of a deep-decoder-like net's final table) against references.

The reference for the compiled kernels is the compiler's original path (every table on its
full box and every phase, no far-field continuation: ``reference_kernel`` of
test_phase_tables), which never uses the fold; agreement is to the project's exactness bound,
1e-12 relative (about 1e-15 in practice: the fold only reorders sums).  The index helpers
are checked on random tables built to have the symmetry, entry by entry.
"""

from __future__ import annotations

import pytest
import torch

from gpdip import compile_kernel, compile_kernels, load_architecture
from gpdip.arch.catalog import catalog_names
from gpdip.limit import compiler
from gpdip.limit import covtable as ct
from gpdip.limit import index_cache as ic
from gpdip.limit import phase_tables as pt
from gpdip.limit import swap_fold as sf
from tests.limit.test_phase_tables import EXACT, assert_exact, reference_kernel


@pytest.fixture(autouse=True)
def lists_for_every_size(monkeypatch):
    """Use offset lists even for the small tables of these tests (production: large only)."""
    monkeypatch.setattr(pt, "LIST_MIN_ENTRIES", 0)


def involution_symmetric(period: tuple[int, int], a: int, b: int, seed: int) -> torch.Tensor:
    """A random (P₀, P₁) table X with X[p₀, p₁] = X[(a − p₀) mod P₀, (b − p₁) mod P₁]."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.rand(period, generator=g, dtype=torch.float64)
    mirror0 = (a - torch.arange(period[0])) % period[0]
    mirror1 = (b - torch.arange(period[1])) % period[1]
    return raw + raw[mirror0][:, mirror1]


@pytest.mark.parametrize("period", [(2, 2), (4, 6), (8, 8), (32, 32)])
def test_rows_and_weights_give_the_phase_sum(period):
    """Σ over stored entries of weight·X = Σ over every phase, for every r₀ and centre."""
    for centre in ((0, 0), (period[0] - 1, 1), (3 % period[0], 2 % period[1])):
        r0 = torch.arange(-period[0] - 2, period[0] + 3)
        rows, weights = sf.swap_rows(r0, centre[0], period[0])
        assert rows.shape == (period[0] // 2 + 1, len(r0))
        for j, r in enumerate(r0.tolist()):
            for r1 in (0, 1, 5):
                a, b = (centre[0] - r) % period[0], (centre[1] - r1) % period[1]
                table = involution_symmetric(period, a, b, seed=j)
                stored = (table[rows[:, j]] * weights[:, j : j + 1]).sum()
                assert abs(float(stored - table.sum())) <= 1e-12 * float(table.sum())


def test_diagonal_and_pair_indices_read_the_full_table():
    """The variances gathered from the stored rows, and the (p, p + r) gathers, entry by entry."""
    period, centre = (8, 4), (5, 2)
    offsets = torch.tensor([[0, 0], [1, 0], [3, -2], [2, 2], [7, 1]])
    rows, _ = sf.swap_rows(offsets[:, 0], centre[0], period[0])
    # full[p, j] = C[p, r_j] with C[p, r] = C[(c − r − p) mod P, r]; the stored entries of it
    full = torch.stack(
        [
            involution_symmetric(period, (centre[0] - r0) % 8, (centre[1] - r1) % 4, seed=i)
            for i, (r0, r1) in enumerate(offsets.tolist())
        ],
        dim=-1,
    )
    values = torch.stack([full[rows[:, j], :, j] for j in range(len(offsets))], dim=-1)
    diag_index = sf.diagonal_index(rows, offsets, centre, period, 0)
    assert torch.equal(values.reshape(-1)[diag_index].reshape(period), full[..., 0])
    first, second = sf.pair_indices(rows, offsets, period)
    diag = full[..., 0].reshape(-1)
    for k in range(rows.shape[0]):
        for p1 in range(period[1]):
            for j, (r0, r1) in enumerate(offsets.tolist()):
                p0 = int(rows[k, j])
                assert diag[first[k, p1, j]] == full[p0, p1, 0]
                assert diag[second[k, p1, j]] == full[(p0 + r0) % 8, (p1 + r1) % 4, 0]


def test_only_deep_decoders_are_halved():
    """The fold needs every layer after the final upsampling to keep each entry's phase."""
    halved = {n for n in catalog_names() if compiler.swap_halvable(load_architecture(n).layers)}
    assert halved == {"deep-decoder", "deep-decoder-small"}


@pytest.mark.parametrize(
    "name,size",
    [
        ("deep-decoder-small", 20),  # period 8: far 21 + 8 > 19, whole box
        ("deep-decoder-small", 40),  # near box + far corner
        ("deep-decoder-small", (36, 22)),  # rectangular: quadrant fold
        ("deep-decoder", 16),  # period 32
        ("deep-decoder", (24, 20)),
    ],
)
def test_halved_kernels_match_the_full_recursion(name, size, monkeypatch):
    """NNGP and NTK through the halved final table against every phase on full boxes."""
    halved = []
    original = sf.swap_rows

    def spy(*args):
        halved.append(True)
        return original(*args)

    monkeypatch.setattr(sf, "swap_rows", spy)
    nngp, ntk = compile_kernels(name, size, ntk=True)
    assert halved, "the swap fold was not used"
    monkeypatch.setattr(sf, "swap_rows", original)
    assert_exact(nngp, reference_kernel(monkeypatch, name, size, far=False))
    assert_exact(ntk, reference_kernel(monkeypatch, name, size, far=False, kind="ntk"))


def test_halved_gradients_match(monkeypatch):
    """Overridden scalars and their gradients through the halved table (the autograd maps)."""

    def kernel_and_grads(fn):
        params = {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in (("weight_var", 1.3), ("bias_var", 0.2))
        }
        kernel = fn(params)
        grads = torch.autograd.grad((kernel * kernel).sum(), list(params.values()))
        return kernel.detach(), torch.stack(grads)

    name = "deep-decoder-small"
    fast = kernel_and_grads(lambda p: compile_kernel(name, 24, params=p))
    ref = kernel_and_grads(lambda p: reference_kernel(monkeypatch, name, 24, params=p))
    assert_exact(fast[0], ref[0])
    assert float((fast[1] - ref[1]).abs().max()) <= EXACT * float(ref[1].abs().max())


def test_halved_table_refuses_phase_mixing_maps():
    """A conv wider than 1×1 or a sum on a halved table would be wrong: both refuse."""
    period, centre = (4, 4), (1, 1)
    offsets = pt._fold_offsets((2, 2), "quadrant")
    zero = int((offsets.abs().sum(1) == 0).nonzero()[0, 0])
    rows, weights = sf.swap_rows(offsets[:, 0], centre[0], period[0])
    diag_index = sf.diagonal_index(rows, offsets, centre, period, zero)
    points = ct.OffsetSet(offsets, "quadrant", zero, centre, None, rows, weights, diag_index)
    table = ct.CovTable(torch.ones(3, 4, len(offsets), dtype=torch.float64), period, (2, 2), points)
    with pytest.raises(ct.FoldMismatchError):
        ct.conv_taps(table, 3)
    with pytest.raises(ct.FoldMismatchError):
        ct.align([table, table])
    assert torch.equal(ct.conv_taps(table, 1).values, table.values)


@pytest.mark.parametrize("period,centre", [((4, 4), (1, 1)), ((6, 6), (0, 0)), ((4, 4), (2, 2))])
def test_distinct_entries_counts_the_orbits(period, centre):
    """Burnside's count on the octant's offsets = orbits of (p, r) over the whole box found by
    following the generators (swap, reflections, transposition) from every entry."""
    radius = 3
    seen: set = set()
    orbits = 0
    for start in [
        (p0, p1, r0, r1)
        for p0 in range(period[0])
        for p1 in range(period[1])
        for r0 in range(-radius, radius + 1)
        for r1 in range(-radius, radius + 1)
    ]:
        if start in seen:
            continue
        orbits += 1
        stack = [start]
        while stack:
            p0, p1, r0, r1 = entry = stack.pop()
            if entry in seen:
                continue
            seen.add(entry)
            m0, m1 = period
            stack += [
                ((p0 + r0) % m0, (p1 + r1) % m1, -r0, -r1),  # pair swap
                ((centre[0] - p0) % m0, p1, -r0, r1),  # reflection, dimension 0
                (p0, (centre[1] - p1) % m1, r0, -r1),  # reflection, dimension 1
                (p1, p0, r1, r0),  # transposition
            ]
    listed = pt._fold_offsets((radius, radius), "octant")
    assert sf.distinct_entries(listed, centre, period, transpose=True) == orbits


def test_index_cache_is_bounded_in_bytes():
    cache = ic.IndexCache(max_bytes=1000)
    cache.put(("a",), torch.zeros(50, dtype=torch.long))  # 400 bytes
    cache.put(("b",), torch.zeros(50, dtype=torch.long))
    assert cache.get(("a",)) is not None  # now the most recent
    cache.put(("c",), torch.zeros(50, dtype=torch.long))  # 1200 > 1000: evicts "b"
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None
    big = torch.zeros(200, dtype=torch.long)
    assert cache.put(("d",), big) is big and cache.get(("d",)) is None  # never kept
    assert cache.held == 800


def test_kept_indices_give_the_same_kernels(monkeypatch):
    """Compiles that reuse kept layout indices equal compiles that build them afresh, also
    after other layouts went through the cache."""
    sizes = [40, (36, 22), 40, (36, 22)]
    monkeypatch.setattr(ic, "CACHE", ic.IndexCache(max_bytes=0))  # nothing kept
    fresh = [compile_kernels("deep-decoder-small", s, ntk=True) for s in sizes[:2]]
    monkeypatch.setattr(ic, "CACHE", ic.IndexCache())
    kept = [compile_kernels("deep-decoder-small", s, ntk=True) for s in sizes]
    assert len(ic.CACHE.store) > 0
    for i, pair in enumerate(kept):
        assert all(torch.equal(a, b) for a, b in zip(pair, fresh[i % 2], strict=True))
