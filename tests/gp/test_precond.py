"""Schwarz preconditioner and the switching CG (issue 12 item 4: small-noise solves).

References: dense float64 matrices built independently of the patch code (explicit
loops over patches, ``torch.linalg.inv``), ``torch.linalg.solve`` and the dense
Cholesky posterior.
"""

import math
import warnings

import pytest
import torch

import gpdip.gp.precond as precond_module
from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp.cg import conjugate_gradients
from gpdip.gp.grid import dense_from_table, table_from_offsets
from gpdip.gp.posterior import dense_posterior, grid_posterior
from gpdip.gp.precond import (
    FIRST_PROBE,
    SWITCH_REMAINING,
    patch_starts,
    schwarz_matrix,
    schwarz_preconditioner,
    schwarz_switch,
)
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

from .conftest import exp_const_table


def matern52_const_table(size, ls=5.0, weight=0.6, const=0.5):
    """A smooth kernel with a constant part (like the conv-d*-s6 tables ``auto`` picks)."""

    def k(r):
        a = 5**0.5 * r / ls
        return weight * (1 + a + a * a / 3) * torch.exp(-a) + const

    return table_from_offsets(k, size)


def smooth_image(size=32):
    """A deterministic smooth-plus-edges test field in [0, 1] (seeded)."""
    g = torch.Generator().manual_seed(3)
    y, x = torch.meshgrid(
        *[torch.linspace(0, 1, s, dtype=torch.float64) for s in size], indexing="ij"
    )
    field = 0.5 + 0.3 * torch.sin(6 * x) * torch.cos(4 * y) + 0.2 * (x + y > 1.0)
    return field + 0.01 * torch.randn(size, generator=g, dtype=torch.float64)


def patch_lists(size, patch, stride):
    """Pixel lists of every patch of a 2-D grid (row-major), by loops."""
    return [
        [
            (y0 + dy) * size[1] + x0 + dx
            for dy in range(min(patch, size[0]))
            for dx in range(min(patch, size[1]))
        ]
        for y0 in patch_starts(size[0], patch, stride)
        for x0 in patch_starts(size[1], patch, stride)
    ]


def dense_schwarz(table, mask, noise, patch, stride):
    """``sum_i R_i^T (K_{o_i o_i} + s2 I)^{-1} R_i`` on the observed pixels, by loops."""
    size = mask.shape
    K = dense_from_table(table, size if table.dim() == 2 else (size[1],))
    obs = torch.nonzero(mask.reshape(-1)).reshape(-1)
    pos = {int(p): i for i, p in enumerate(obs)}
    out = torch.zeros(len(obs), len(obs), dtype=torch.float64)
    for y0 in patch_starts(size[0], patch, stride):
        for x0 in patch_starts(size[1], patch, stride):
            pix = [
                (y0 + dy) * size[1] + x0 + dx
                for dy in range(min(patch, size[0]))
                for dx in range(min(patch, size[1]))
                if mask[y0 + dy, x0 + dx]
            ]
            if not pix:
                continue
            idx = torch.tensor(pix)
            local = torch.linalg.inv(K[idx][:, idx] + noise * torch.eye(len(pix)))
            rows = torch.tensor([pos[p] for p in pix])
            out[rows[:, None], rows[None, :]] += local.double()
    return out, obs


@pytest.mark.parametrize("patch,stride", [(4, 3), (5, 5), (6, 2)])
def test_schwarz_matches_dense_sum_and_is_spd(patch, stride):
    size = (11, 13)  # not a multiple of the stride: the last patch ends on the border
    mask = torch.rand(size, generator=torch.Generator().manual_seed(0)) < 0.5
    table = matern52_const_table(size)
    noise = 1e-4
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(noise))
    apply = schwarz_preconditioner(op, patch, stride)
    ref, obs = dense_schwarz(table, mask, noise, patch, stride)
    eye = torch.zeros(len(obs), size[0] * size[1], dtype=torch.float64)
    eye[torch.arange(len(obs)), obs] = 1.0
    got = apply(eye)[:, obs]
    assert torch.allclose(got, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))
    assert float((got - got.T).abs().max()) <= 1e-12 * float(got.abs().max())
    assert float(torch.linalg.eigvalsh(0.5 * (got + got.T)).min()) > 0.0
    off = apply(eye)[:, ~mask.reshape(-1)]  # nothing leaks to unobserved pixels
    assert float(off.abs().max()) == 0.0


def test_switching_cg_solves_the_same_system():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(60, 60, generator=g, dtype=torch.float64)
    a = q @ q.T + 1e-3 * torch.eye(60, dtype=torch.float64)
    b = torch.randn(3, 60, generator=g, dtype=torch.float64)
    diag = 1.0 / a.diagonal()
    seen = []

    def switch(it, rel):
        seen.append(it)
        return (lambda v: v * diag) if it == 5 else None

    x, info = conjugate_gradients(lambda v: v @ a, b, None, tol=1e-10, max_iter=2000, switch=switch)
    ref = torch.linalg.solve(a, b.T).T
    assert info.switched_at == 5 and seen == [1, 2, 3, 4, 5]  # not asked again once switched
    assert info.converged
    # x - ref = A^{-1} r with ||r|| <= 1e-10 ||b||: bounded by ||A^{-1}|| 1e-10 ||b||
    bound = float(torch.linalg.eigvalsh(a).min()) ** -1 * 1e-10 * float(b.norm(dim=1).max())
    assert float((x - ref).norm(dim=1).max()) <= 2 * bound


@pytest.mark.parametrize("precond", ["schwarz", "auto"])
def test_grid_mean_equals_dense_float64(precond):
    size = (24, 24)
    img = smooth_image(size)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(2)) < 0.5
    table = matern52_const_table(size)
    noise, tol = 1e-4, 1e-9
    dense = dense_posterior(table, img, mask, noise)
    grid = grid_posterior(table, img, mask, noise, tol=tol, max_iter=500, precond=precond)
    # mean error = K_{:o} A^{-1} r with ||r|| <= tol ||y - mu||; bound it with the dense norm
    K = dense_from_table(table, size)
    obs = torch.nonzero(mask.reshape(-1)).reshape(-1)
    gain = torch.linalg.matrix_norm(
        torch.linalg.solve(K[obs][:, obs] + noise * torch.eye(len(obs)), K[obs]), ord=2
    )
    y = img.reshape(-1)[obs] - dense.info["mean_constant"]
    bound = 2 * float(gain) * tol * float(y.norm())
    assert float((grid.mean - dense.mean).abs().max()) <= bound
    assert bound < 1e-5  # the comparison is meaningful


def _iterations(table, img, mask, noise, precond):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extension may hit max_iter: counted, not an error
        # float64 CG: the counts below are the preconditioners' (mixed precision adds a few,
        # tests/gp/test_refine.py)
        post = grid_posterior(
            table, img, mask, noise, tol=1e-6, max_iter=400, precond=precond, precision="float64"
        )
    return post.info["cg_iterations"], post.info["cg_switched_at"]


def test_schwarz_iterations_bounded_as_noise_falls():
    """Smooth kernel: extension's iterations grow as the noise falls; Schwarz's do not.

    Measured (32x32, 50% mask, tol 1e-6), noise 1e-2 / 1e-3 / 1e-4 / 1e-5: extension
    52 / 119 / 209 / 258, schwarz 24 / 25 / 28 / 28, auto 52 (kept extension: the
    extrapolated remainder stayed under SWITCH_REMAINING) / 29 / 32 / 33 (switched at
    the first probe, iteration 5; with the first probe at 20: 52 / 119 / 44 / 46).
    """
    size = (32, 32)
    img = smooth_image(size)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(0)) < 0.5
    table = matern52_const_table(size)
    counts = {p: [] for p in ("extension", "schwarz", "auto")}
    for noise in (1e-2, 1e-4, 1e-5):
        for p in counts:
            counts[p].append(_iterations(table, img, mask, noise, p))
    ext = [it for it, _ in counts["extension"]]
    assert ext[-1] > 150 and ext[-1] > 2 * ext[0]  # the old preconditioner is not bounded
    assert all(it <= 40 for it, _ in counts["schwarz"])
    assert all(it <= 60 for it, _ in counts["auto"])
    # switched where it was slow, at the first probe
    assert [at for _, at in counts["auto"][1:]] == [FIRST_PROBE, FIRST_PROBE]
    assert all(it <= 40 for it, _ in counts["auto"][1:])


def test_auto_keeps_extension_for_rough_kernel():
    size = (32, 32)
    img = smooth_image(size)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(0)) < 0.5
    table = exp_const_table(size)
    for noise in (1e-2, 1e-4):
        it_ext, _ = _iterations(table, img, mask, noise, "extension")
        it_auto, at = _iterations(table, img, mask, noise, "auto")
        assert at is None and it_auto == it_ext <= 40


def test_auto_keeps_extension_when_schwarz_is_refused(monkeypatch):
    size = (32, 32)
    img = smooth_image(size)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(0)) < 0.5
    table = matern52_const_table(size)
    monkeypatch.setattr(precond_module, "MAX_SCHWARZ_BYTES", 10)
    with pytest.warns(GpdipWarning, match="keeping the extension"):
        post = grid_posterior(table, img, mask, 1e-4, tol=1e-6, max_iter=1000, precond="auto")
    assert post.info["cg_switched_at"] is None and post.info["cg_residual"] <= 1e-6


def test_bad_arguments_raise():
    size = (8, 8)
    mask = torch.ones(size, dtype=torch.bool)
    op = MaskedGridOperator(
        GridKernelOperator(matern52_const_table(size)), mask, torch.tensor(1e-3)
    )
    with pytest.raises(GpdipError, match="stride"):
        schwarz_preconditioner(op, patch=4, stride=5)
    with pytest.raises(GpdipError, match="GiB"):
        schwarz_preconditioner(op, max_bytes=10)
    with pytest.raises(GpdipError, match="precond"):
        grid_posterior(matern52_const_table(size), torch.zeros(size), mask, 1e-3, precond="x")


@pytest.mark.parametrize("precision,tol", [("float32", 1e-4), ("float64", 1e-8)])
def test_schwarz_colour_batch_matches_dense_per_channel(precision, tol):
    """Three channels are one batched CG; float32 vectors still use float64 local solves."""
    size = (20, 20)
    g = torch.Generator().manual_seed(4)
    img = torch.stack([smooth_image(size), smooth_image(size).flip(0), smooth_image(size).T], -1)
    mask = torch.rand(size, generator=g) < 0.5
    table = matern52_const_table(size)
    noise = 1e-4
    post = grid_posterior(
        table, img, mask, noise, tol=tol, max_iter=500, precond="schwarz", precision=precision
    )
    K = dense_from_table(table, size)
    obs = torch.nonzero(mask.reshape(-1)).reshape(-1)
    gain = torch.linalg.matrix_norm(
        torch.linalg.solve(K[obs][:, obs] + noise * torch.eye(len(obs)), K[obs]), ord=2
    )
    for c in range(3):
        ref = dense_posterior(table, img[..., c], mask, noise)
        y = img[..., c].reshape(-1)[obs] - ref.info["mean_constant"]
        # same bound as above, with the working precision's own residual tolerance
        bound = 2 * float(gain) * tol * float(y.norm())
        assert float((post.mean[..., c] - ref.mean).abs().max()) <= bound


def _apply_dense(apply, mask, n_obs_dtype=torch.float64):
    """``P^{-1}`` restricted to the observed pixels, column by column (unit vectors)."""
    obs = torch.nonzero(mask.reshape(-1)).reshape(-1)
    eye = torch.zeros(len(obs), mask.numel(), dtype=n_obs_dtype)
    eye[torch.arange(len(obs)), obs] = 1.0
    return apply(eye), obs


@pytest.mark.parametrize(
    "case", ["empty-corner", "all-observed", "one-pixel", "stripes", "one-row-grid"]
)
def test_schwarz_edge_masks_match_dense_sum(case):
    """Masks that leave patches empty or full, one observed pixel, a (1, W) grid."""
    size = (1, 23) if case == "one-row-grid" else (12, 14)
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(size, generator=g) < 0.5
    if case == "empty-corner":  # whole patches without an observed pixel
        mask[:8, :9] = False
    elif case == "all-observed":
        mask[:] = True
    elif case == "one-pixel":
        mask[:] = False
        mask[5, 7] = True
    elif case == "stripes":  # observed counts differ a lot between buckets
        mask[:, ::3] = True
        mask[::2] = False
    table = matern52_const_table(size)
    noise = 1e-5
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(noise))
    ref, _ = dense_schwarz(table, mask, noise, 5, 3)
    full, obs = _apply_dense(schwarz_preconditioner(op, 5, 3), mask)
    got = full[:, obs]
    assert torch.allclose(got, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))
    if not bool(mask.all()):
        assert float(full[:, ~mask.reshape(-1)].abs().max()) == 0.0


def test_schwarz_64_bit_indices_match_dense_sum(monkeypatch):
    """The 64-bit index path (huge grids) on a small one, forced by the limit."""
    monkeypatch.setattr(precond_module, "INT32_LIMIT", 10)
    size = (11, 13)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(10)) < 0.5
    table = matern52_const_table(size)
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(1e-4))
    matrix = schwarz_matrix(op, 4, 3)
    assert matrix.col_indices().dtype == torch.int64
    ref, obs = dense_schwarz(table, mask, 1e-4, 4, 3)
    got = matrix.to_dense()[obs][:, obs]
    assert torch.allclose(got, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


def test_schwarz_one_axis_grid_matches_dense_sum():
    """A 1-D grid: patches are intervals (the reference loops over a (1, L) grid)."""
    length = 40
    mask = torch.rand(length, generator=torch.Generator().manual_seed(6)) < 0.6
    table = matern52_const_table((length,))
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(1e-4))
    ref, _ = dense_schwarz(table, mask[None], 1e-4, 7, 4)
    full, obs = _apply_dense(schwarz_preconditioner(op, 7, 4), mask)
    assert torch.allclose(full[:, obs], ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


def test_schwarz_sparsity_pattern_is_pixels_sharing_a_patch():
    """Row r of the CSR matrix lists exactly the observed pixels sharing a patch with r.

    Reference by loops over patches; this also checks that every stored column was
    written (the set-up leaves the column array uninitialised until the blocks land).
    """
    size, patch, stride = (17, 19), 6, 4
    mask = torch.rand(size, generator=torch.Generator().manual_seed(7)) < 0.5
    table = matern52_const_table(size)
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(1e-3))
    matrix = schwarz_matrix(op, patch, stride)
    flat = mask.reshape(-1)
    neighbours: dict[int, set[int]] = {p: set() for p in range(flat.numel())}
    for pix in patch_lists(size, patch, stride):
        seen = [p for p in pix if flat[p]]
        for r in seen:
            neighbours[r].update(seen)
    crow, columns = matrix.crow_indices(), matrix.col_indices()
    assert columns.dtype == torch.int32  # the fast path (see the 64-bit test below)
    for r, cols in neighbours.items():
        assert columns[int(crow[r]) : int(crow[r + 1])].tolist() == sorted(cols)
    ref, obs = dense_schwarz(table, mask, 1e-3, patch, stride)
    dense = matrix.to_dense()[obs][:, obs]
    assert torch.allclose(dense, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


def test_schwarz_batch_and_float32_vectors():
    """A batch of vectors equals the columns applied one by one; float32 in, float32 out."""
    size = (16, 16)
    mask = torch.rand(size, generator=torch.Generator().manual_seed(8)) < 0.5
    op = MaskedGridOperator(
        GridKernelOperator(matern52_const_table(size)), mask, torch.tensor(1e-4)
    )
    apply = schwarz_preconditioner(op)
    v = torch.randn(3, 256, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    v = v * mask.reshape(-1)
    batch = apply(v)
    for b in range(3):
        assert torch.equal(apply(v[b : b + 1])[0], batch[b])
    single = apply(v.float())
    assert single.dtype == torch.float32
    # products in float64, one rounding to float32 at the end: relative error <= 2^-24
    assert float((single.double() - batch).abs().max()) <= 2**-23 * float(batch.abs().max())


def test_switch_rule_extrapolates_decay_since_the_last_probe():
    """Probes at 5, 20, 40: switch iff ``log(tol / rho_k) / log(q) > SWITCH_REMAINING``.

    ``q = (rho_k / rho_j)^(1 / (k - j))`` from the previous probe ``j`` (``rho_0 = 1``);
    the residuals below sit on either side of that threshold.
    """
    size = (8, 8)
    op = MaskedGridOperator(
        GridKernelOperator(matern52_const_table(size)),
        torch.ones(size, dtype=torch.bool),
        torch.tensor(1e-3),
    )
    builds = []

    def build(o):
        builds.append(o)
        return lambda v: v

    tol = 1e-6

    def rho_at_20(remaining):
        """rho_20 after rho_5 = 0.2 for which the rule predicts ``remaining`` more."""
        # log(tol / rho) = remaining * log(rho / 0.2) / 15, solved for log(rho)
        return math.exp((15 * math.log(tol) + remaining * math.log(0.2)) / (15 + remaining))

    for remaining, switches in ((0.9 * SWITCH_REMAINING, False), (1.1 * SWITCH_REMAINING, True)):
        decide = schwarz_switch(op, tol, probe=20, build=build, first=5)
        # fast at 5: q = 0.2^(1/5), remaining = log(5e-6) / log(q) = 38 <= 100: keep
        assert decide(5, torch.tensor([0.2, 0.1])) is None
        assert all(decide(k, torch.tensor([0.1])) is None for k in (6, 19))  # not probes
        got = decide(20, torch.tensor([rho_at_20(remaining), 0.0]))
        assert (got is not None) == switches
    assert len(builds) == 1
    # a residual that grew by the first probe switches at once
    decide = schwarz_switch(op, tol, probe=20, build=build, first=5)
    assert decide(5, torch.tensor([2.0, 0.5])) is not None and len(builds) == 2
    decide = schwarz_switch(op, tol, probe=20, build=build, first=5)
    assert decide(5, torch.tensor([1e-7])) is None  # converged: nothing to switch
    assert len(builds) == 2
