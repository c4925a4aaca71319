"""Folded offset lists and the last upsampling on the output's offsets, against the full recursion.

The reference is the compiler's original path: every table on its full box of offsets and
every phase (``final_upsamples`` and ``upsample_folded`` switched off) and, where marked,
no far-field continuation either (``far_radius`` = ∞): the plain recursion of the limit.
The fast path reorders sums (and folds by symmetries), so the two agree to rounding:
1e-12 relative is the project's exactness bound; they agree to about 1e-15 in practice.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpdip import compile_kernel, load_architecture
from gpdip.arch.catalog import catalog_names
from gpdip.errors import GpdipError
from gpdip.layers.base import far_radius
from gpdip.limit import compiler
from gpdip.limit import covtable as ct
from gpdip.limit import phase_tables as pt
from gpdip.limit import resample_maps as rm
from gpdip.limit.farfield import upsampled_radius
from tests.archgen import random_architecture
from tests.limit.test_covtable import random_table

REFERENCE = "tests/data/reference_kernels.npz"
EXACT = 1e-12


@pytest.fixture(autouse=True)
def lists_for_every_size(monkeypatch):
    """Use offset lists even for the small tables of these tests (production: large only)."""
    monkeypatch.setattr(pt, "LIST_MIN_ENTRIES", 0)


def reference_kernel(monkeypatch, arch, size, dims=2, params=None, far=True, kind="nngp"):
    """The original path: full boxes, all phases; optionally no far-field continuation."""
    with monkeypatch.context() as patch:
        patch.setattr(pt, "final_upsamples", lambda *args: frozenset())
        patch.setattr(
            pt,
            "upsample_folded",
            lambda table, factor, sources, *args: rm.upsample(table, factor, sources),
        )
        if not far:
            patch.setattr(compiler, "far_radius", lambda *args: math.inf)
        return compile_kernel(arch, size, dims=dims, params=params, max_entries=2**31, kind=kind)


def assert_exact(fast: torch.Tensor, ref: torch.Tensor) -> None:
    assert fast.shape == ref.shape
    assert float((fast - ref).abs().max()) <= EXACT * float(ref.abs().max())


@pytest.mark.parametrize("key", [k for k in np.load(REFERENCE).files if not k.endswith("_params")])
def test_matches_saved_reference_tables(key):
    """Every catalog net, 2-D (24, 20) and 1-D 96, against tables saved before this path."""
    name, kind = key.split("__")
    size, dims = ((24, 20), 2) if kind == "2d" else (96, 1)
    saved = torch.from_numpy(np.load(REFERENCE, allow_pickle=False)[key])
    assert_exact(compile_kernel(name, size, dims=dims), saved)


@pytest.mark.parametrize(
    "name,size,dims",
    [
        ("unet2", 20, 2),  # far 9 + period 4 < 19: near box + far corner, octant fold
        ("ae-d4", 40, 2),  # nearest, period 16: corner of 16×16
        ("ae-d3-s2", 30, 2),
        ("skip5-nearest", 24, 2),
        ("skip5-bilinear", 200, 1),  # far 93 + period 32 < 199: the corner in 1-D
        ("skip5-nearest", 120, 1),
    ],
)
def test_matches_full_recursion(name, size, dims, monkeypatch):
    fast = compile_kernel(name, size, dims=dims)
    assert_exact(fast, reference_kernel(monkeypatch, name, size, dims, far=False))


@pytest.mark.parametrize("seed", range(6))
def test_random_architectures(seed, monkeypatch):
    """Random nets (every layer type, upsampling anywhere): 2-D, rectangular and square."""
    arch = random_architecture(seed)
    for size in ((13, 11), 17):
        assert_exact(
            compile_kernel(arch, size, dims=2), reference_kernel(monkeypatch, arch, size, far=False)
        )


def test_params_and_gradients_match(monkeypatch):
    """Overridden scalars and their gradients: the folded path is differentiable alike."""

    def kernel_and_grads(fn):
        params = {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in (("sigma", 0.7), ("weight_var", 1.7), ("bias_var", 0.05))
        }
        kernel = fn(params)
        grads = torch.autograd.grad((kernel * kernel).sum(), list(params.values()))
        return kernel.detach(), torch.stack(grads)

    fast = kernel_and_grads(lambda p: compile_kernel("unet2", 20, params=p))
    ref = kernel_and_grads(lambda p: reference_kernel(monkeypatch, "unet2", 20, params=p))
    assert_exact(fast[0], ref[0])
    assert float((fast[1] - ref[1]).abs().max()) <= EXACT * float(ref[1].abs().max())


@pytest.mark.parametrize(
    "mode,factor", [("nearest", 2), ("bilinear", 2), ("bilinear", 3), ("nearest", 4)]
)
def test_upsampled_radius_is_the_support(mode, factor):
    """A table with entries up to |r| ≤ R only, upsampled: its last non-zero offset."""
    radius = 5
    g = torch.Generator().manual_seed(factor)
    table = ct.CovTable(
        torch.rand(3, 2 * radius + 11, generator=g, dtype=torch.float64), (3,), (radius + 5,)
    )
    table.values[:, :5] = 0  # zero beyond |r| = R, inside a box of R + 5
    table.values[:, -5:] = 0
    sources = (rm.nearest_sources if mode == "nearest" else rm.bilinear_sources)(factor)
    up = rm.upsample(table, factor, sources)
    nonzero = (up.values != 0).any(dim=0).nonzero().reshape(-1) - up.radius[0]
    assert int(nonzero.abs().max()) == upsampled_radius(radius, factor, mode)


def symmetric_table(seed: int) -> ct.CovTable:
    """A 2-D random table with the pair swap, reflections about centre 1, and transposition."""
    table = random_table((3, 3), (2, 2), seed)  # has the pair swap
    values = table.values
    mirror = (1 - torch.arange(3)) % 3
    for d in (0, 1):  # C[p, r] = C[(1 − p) mod 3, −r] per dimension
        values = (values + values.index_select(d, mirror).flip(2 + d)) / 2
    values = (values + values.permute(1, 0, 3, 2)) / 2
    return ct.CovTable(values, table.period, table.radius)


@pytest.mark.parametrize("symmetric", [True, False])
def test_fold_and_unfold_round_trip(symmetric):
    """Detect the fold, list its offsets, unfold: the box comes back entry for entry."""
    table = symmetric_table(0) if symmetric else random_table((3, 2), (2, 3), 1)
    fold, centre = pt._fold(table, table.radius)
    assert fold == ("octant" if symmetric else "half")
    listed = pt._fold_offsets(table.radius, fold)
    index = tuple(listed[:, d] + table.radius[d] for d in range(2))
    points = ct.OffsetSet(
        listed, fold, int((listed.abs().sum(1) == 0).nonzero()[0, 0]), centre, table.radius
    )
    folded = ct.CovTable(table.values[(Ellipsis, *index)], table.period, table.radius, points)
    assert len(listed) == (6 if symmetric else 3 * 7)  # of 25 and 35 offsets
    assert torch.equal(ct.to_box(folded).values, table.values)


def test_joining_table_without_the_symmetry_refolds(monkeypatch):
    """A joining table that breaks the fold's assumption makes the compiler fall back to
    the pair swap, which every table has: the result is still exact."""
    calls = []
    original = ct.at_points

    def asymmetric_join(table, points):
        calls.append(points.fold)
        if points.fold != "half":
            raise ct.FoldMismatchError("test")
        return original(table, points)

    monkeypatch.setattr(ct, "at_points", asymmetric_join)
    fast = compile_kernel("unet2", 20)
    monkeypatch.setattr(ct, "at_points", original)
    assert "octant" in calls and calls[-1] == "half"
    assert_exact(fast, reference_kernel(monkeypatch, "unet2", 20))


def test_asymmetric_stationary_table_is_refused():
    raw = torch.rand(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernel = raw + raw.flip(0, 1)  # K(r) = K(−r) but not even per dimension
    listed = pt._fold_offsets((1, 2), "quadrant")
    points = ct.OffsetSet(listed, "quadrant", 0, (0, 0), (1, 2))
    with pytest.raises(ct.FoldMismatchError):
        ct.at_points(ct.stationary(kernel), points)


def test_size_check_fires_before_any_table(monkeypatch):
    def no_tables(*args, **kwargs):
        raise AssertionError("a table was built before the size check")

    monkeypatch.setattr(compiler, "input_table", no_tables)
    with pytest.raises(GpdipError, match=r"phase table of [\d,]+ entries \(period \d+"):
        compile_kernel("skip5-bilinear", 64, max_entries=10**5)


@pytest.mark.parametrize("size", [512, 1024])
@pytest.mark.parametrize("name", ["skip5-bilinear", "skip5-nearest"])
def test_dip_networks_fit_the_default_limit(name, size, monkeypatch):
    """Full-size skip nets pass the default size checks (the compile itself: slow tests)."""

    class CheckedError(Exception):
        pass

    def stop(*args, **kwargs):
        raise CheckedError

    monkeypatch.setattr(compiler, "_compile", stop)
    with pytest.raises(CheckedError):
        compile_kernel(name, size)


def test_offset_list_is_much_smaller_than_the_box():
    arch = load_architecture("skip5-bilinear")
    far = far_radius(arch.layers, 0)
    plan = pt.OutputPlan((511, 511), far, 32)
    assert far == 93 and plan.split
    assert pt.offset_count(plan) < (2 * (far + 32) + 1) ** 2 / 3


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("skip5-bilinear", 128), ("skip5-nearest", 72)])
def test_skip5_2d_against_full_recursion(name, size, monkeypatch):
    """The DIP nets in 2-D with the far corner in use, against the full recursion."""
    fast = compile_kernel(name, size)
    assert_exact(fast, reference_kernel(monkeypatch, name, size, far=False))


@pytest.mark.parametrize("name", [n for n in catalog_names() if not n.startswith("skip5")])
def test_catalog_2d_square(name, monkeypatch):
    """Square 2-D sizes use the octant fold where the net has the symmetry."""
    assert_exact(compile_kernel(name, 20), reference_kernel(monkeypatch, name, 20))


@pytest.mark.parametrize("name", ["unet2", "ae-d3", "deep-decoder-small"])
def test_ntk_on_offset_lists_matches_full_boxes(name, monkeypatch):
    """The NTK table goes through the NNGP table's fold: same result as full boxes."""
    fast = compile_kernel(name, 20, kind="ntk")
    assert_exact(fast, reference_kernel(monkeypatch, name, 20, kind="ntk"))
