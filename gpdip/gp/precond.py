"""Overlapping additive Schwarz preconditioner for ``K_oo + s^2 I`` on a pixel grid.

``P^{-1} = sum_i R_i^T (K_{o_i o_i} + s^2 I)^{-1} R_i``: the grid is covered by
overlapping ``b x b`` patches (start every ``stride`` pixels; the last patch of an
axis ends on the border), ``o_i`` are the observed pixels of patch ``i`` and ``R_i``
picks them.  Each local block is solved exactly (float64 Cholesky at set-up).

Why: for a smooth kernel at small noise the extension preconditioner
(:func:`gpdip.gp.cg.extension_preconditioner`) leaves a broad spread of eigenvalues
(0.08 to 840 on a 64x64 conv-d2-s6 Lena test at noise 1e-4), not a few outliers, and
the eigenvectors at both ends are high-frequency fields on the scattered mask (over
80% of their energy above 0.3 cycles/pixel): local couplings, which exact patch
solves capture (a coarse-grid correction would target the wrong modes).  With the
default ``b = 10, stride = 7`` CG needs 42-45 iterations for conv-d2-s6 at noise 1e-4
(Lena crops at 128^2 and 512^2, tol 1e-6) where the extension preconditioner needs
283-290, and about 30 for a Matern-5/2 + constant kernel at every noise from 1e-2 to
1e-5.  It is not bounded for analytic kernels (RBF, lengthscale 3: 31 -> 157
iterations from noise 1e-2 to 1e-5, against 95 -> > 3000).  For rough (DIP ``unet2``)
kernels or large noise the extension preconditioner needs fewer iterations and is
cheaper per iteration, hence :func:`schwarz_switch` (``precond="auto"``).

Symmetric positive definite: each term ``R_i^T A_i^{-1} R_i`` is positive
semi-definite (``A_i^{-1}`` from a float64 Cholesky factor, symmetric by construction)
and every observed pixel lies in some patch, so ``v^T P^{-1} v > 0`` for ``v != 0``.
The terms are summed once, at set-up, into one sparse CSR matrix (:func:`schwarz_matrix`):
row ``r`` holds the observed pixels sharing a patch with ``r``, about 85 per observed
pixel at ``b = 10, stride = 7`` and a 50% mask, 12 bytes each (float64 value, int32
column): 0.13 GB at 512^2, 0.53 GB at 1024^2.  An application is one sparse-dense
product: 2.5x faster than the earlier per-patch form (batched matmuls of the local
inverses, gathers and ``index_add_``: 0.37 s -> 0.15 s for 3 vectors at 1024^2, one
thread), for a set-up 1.25x longer (2.7 s -> 3.4 s; scripts/bench_precond_1024.py).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp.cg import MatVec, Switch
from gpdip.gp.grid import crop_table, dense_from_table
from gpdip.gp.gridcov import MaskedGridCovariance

#: Patch side and stride (overlap b - stride).  CG iterations on the 128^2 conv-d2-s6
#: Lena test at noise 1e-4 (tol 1e-6): b8/s8 (no overlap) 1903, b6/s3 75, b8/s4 56,
#: b8/s6 69, b10/s6 43, b10/s7 42, b12/s8 34; at 512^2 b8/s4 55, b10/s7 45.  Work per
#: pixel and application is about m^2 / s^2 (m ~ observed pixels per patch): b10/s7
#: (~81) is the cheapest of those under 50 iterations.
PATCH = 10
STRIDE = 7

#: Index counts below this use 32-bit indices (set-up arithmetic and the CSR matrix).
INT32_LIMIT = 2**31 - 1

#: Largest local-factor storage before refusing (bytes).
MAX_SCHWARZ_BYTES = 2 * 1024**3


def patch_starts(length: int, patch: int, stride: int) -> list[int]:
    """Start offsets of patches of side ``patch`` covering ``0 .. length - 1``."""
    if patch >= length:
        return [0]
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def _patch_pixels(size: tuple[int, ...], patch: int, stride: int) -> Tensor:
    """Row-major pixel indices ``(P, b^d)`` of every patch (local pixels row-major)."""
    sides = [min(patch, s) for s in size]
    local = torch.stack(
        torch.meshgrid(*[torch.arange(b) for b in sides], indexing="ij"), -1
    ).reshape(-1, len(size))  # (b^d, d) offsets inside a patch
    strides = torch.tensor([math.prod(size[a + 1 :]) for a in range(len(size))])
    starts = torch.tensor(
        list(
            itertools.product(
                *[patch_starts(s, b, stride) for s, b in zip(size, sides, strict=True)]
            )
        )
    )  # (P, d)
    pixels = ((starts[:, None, :] + local[None]) * strides).sum(-1)  # (P, b^d)
    return pixels


def schwarz_preconditioner(
    op: MaskedGridCovariance,
    patch: int = PATCH,
    stride: int = STRIDE,
    max_bytes: int | None = None,
) -> MatVec:
    """``v (B, H*W) -> P^{-1} v`` (see module doc); vectors vanish off the mask.

    One sparse-dense product with :func:`schwarz_matrix` (arguments there), in float64
    whatever the working precision: a float32 copy of ``A_i^{-1}`` could lose positive
    definiteness at small noise (entries ~ 1 / s2, smallest eigenvalue ~ 1 / (m k(0))).
    """
    matrix = schwarz_matrix(op, patch, stride, max_bytes)
    n = matrix.shape[0]

    def apply(v: Tensor) -> Tensor:
        rows = v.reshape(-1, n).to(torch.float64)
        out = (matrix @ rows.T).T.contiguous()
        return out.reshape(v.shape).to(v.dtype)

    return apply


def schwarz_matrix(
    op: MaskedGridCovariance,
    patch: int = PATCH,
    stride: int = STRIDE,
    max_bytes: int | None = None,
) -> Tensor:
    """``P^{-1}`` (see module doc) as a float64 ``(H*W, H*W)`` sparse CSR tensor.

    Set-up: one ``b^d x b^d`` dense covariance (the kernel is stationary, so every
    patch shares it), a batched Cholesky and inverse of the observed blocks, in
    :data:`BUCKETS` groups of patches with similar observed counts (each padded to its
    own largest count), summed into the CSR layout of :class:`_CsrLayout` (rows of
    unobserved pixels are empty).  ``max_bytes``: memory limit of the set-up (default
    :data:`MAX_SCHWARZ_BYTES`); above it, :class:`GpdipError`.  Grids have 1 or 2 axes
    (as :class:`GridKernelOperator` requires); a 1-D grid is the 2-D grid ``(1, L)``.
    """
    max_bytes = MAX_SCHWARZ_BYTES if max_bytes is None else max_bytes
    if patch < 1 or not 1 <= stride <= patch:
        raise GpdipError(
            f"schwarz_preconditioner: need patch >= 1 and 1 <= stride <= patch, "
            f"got patch={patch}, stride={stride}"
        )
    base = op.base
    size = tuple(base.grid_size)
    sides = tuple(min(patch, s) for s in size)
    k_pp = dense_from_table(crop_table(base.table.detach().to(torch.float64), sides), sides)
    size = (1, *size) if len(size) == 1 else size
    pixels = _patch_pixels(size, patch, stride)
    observed = op.mask[pixels]  # (P, b^d)
    by_count = torch.argsort(observed.sum(1))
    groups = [g for g in torch.tensor_split(by_count, BUCKETS) if g.numel()]
    tops = [int(observed[g].sum(1).max()) for g in groups]
    layout = _CsrLayout(op.mask.reshape(size), patch, stride)
    nnz = int(layout.crow[-1])
    # CSR values and columns, plus the largest bucket's temporaries: block, factor and
    # inverse (float64), gather indices, slots and columns source (int32), slots (int64)
    need = nnz * 12 + max(g.numel() * m * m * 44 for g, m in zip(groups, tops, strict=True))
    if need > max_bytes:
        raise GpdipError(
            f"schwarz preconditioner would need {need / 1024**3:.2f} GiB for "
            f"{pixels.shape[0]} patches of up to {max(tops)} observed pixels (limit "
            f"{max_bytes / 1024**3:.1f} GiB); use precond='extension'"
        )
    n = math.prod(size)
    values = torch.zeros(nnz, dtype=torch.float64)
    columns = torch.empty(nnz, dtype=layout.dtype)  # every slot is written (see _CsrLayout)
    for g, m in zip(groups, tops, strict=True):
        if m == 0:
            continue
        inverse, index = _local_inverses(k_pp, pixels[g], observed[g], m, float(op.noise), n)
        # padding rows/columns of A_i^{-1} are 0 but for 1 on the diagonal: drop those
        inverse.diagonal(dim1=1, dim2=2).mul_(index < n)
        slots, pixel = layout.slots(index)
        # A_i^{-1} is symmetric: read it in its storage order (LAPACK's is column-major)
        inverse = inverse.mT if inverse.mT.is_contiguous() else inverse
        values.index_add_(0, slots.reshape(-1), inverse.reshape(-1))
        # scatter_ with a materialised source beats a broadcast index_put_ by ~3x
        source = pixel[:, None, :].expand(-1, m, -1).reshape(-1)
        columns.scatter_(0, slots.reshape(-1).to(torch.int64), source)
    return _csr_matrix(layout.crow, columns, values, n)


#: Groups of patches (by observed count) with their own padding in the Schwarz set-up.
#: The local work is cubic in the padded count, so the padding of the widest groups
#: dominates: CPU seconds of the 1024^2 set-up (one thread, loaded machine) with 8 / 16 /
#: 24 / 32 / 48 / 64 groups: 5.3-5.6 / 3.8-4.2 / 3.5-3.6 / 3.5-3.7 / 2.8-3.4 / 3.5-3.6.
BUCKETS = 48


def _csr_matrix(crow: Tensor, columns: Tensor, values: Tensor, n: int) -> Tensor:
    """``(n, n)`` CSR tensor; 32-bit indices when they fit (3x faster products on CPU)."""
    index = torch.int32 if max(values.numel(), n) < INT32_LIMIT else torch.int64
    with warnings.catch_warnings():  # "sparse CSR support is in beta": used as documented
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow.to(index), columns.to(index), values, (n, n), check_invariants=False
        )


def _cover_box(length: int, patch: int, stride: int) -> tuple[Tensor, Tensor]:
    """Per coordinate ``t`` of an axis: ``[lo(t), hi(t))``, the union of covering patches.

    Patch starts step by ``stride <= patch``, so the patches covering ``t`` are
    consecutive and their union is one interval.
    """
    side = min(patch, length)
    starts = torch.tensor(patch_starts(length, side, stride))
    t = torch.arange(length)[:, None]
    cover = (starts <= t) & (t < starts + side)  # (length, n_starts)
    lo = torch.where(cover, starts, length).amin(1)
    hi = torch.where(cover, starts + side, 0).amax(1)
    return lo, hi


class _CsrLayout:
    """Sparsity pattern of ``P^{-1}`` on a 2-D grid and the slot of each block entry.

    The patches are the product of per-axis patch lists, so the patches covering pixel
    ``r`` cover the box ``[lo_y, hi_y) x [lo_x, hi_x)`` (:func:`_cover_box`) and every
    pixel ``c`` in that box shares a patch with ``r``: row ``r`` of ``P^{-1}`` holds
    exactly the observed pixels of its box, in row-major order.  With ``S[y, x]`` the
    observed count in rows ``< y`` and columns ``< x``, and ``R[y, x]`` that in row ``y``
    and columns ``< x``, the rank of ``c = (c_y, c_x)`` in row ``r`` is
    ``S[c_y, hi_x] - S[c_y, lo_x] - S[lo_y, hi_x] + S[lo_y, lo_x] + R[c_y, c_x] -
    R[c_y, lo_x]``: a per-row part, a per-column part ``R[c_y, c_x]`` and a table
    indexed by ``(c_y, r_x)``.
    """

    def __init__(self, mask: Tensor, patch: int, stride: int) -> None:
        height, width = mask.shape
        ly, hy = _cover_box(height, patch, stride)
        lx, hx = _cover_box(width, patch, stride)
        counts = mask.to(torch.int64)
        row_cum = torch.nn.functional.pad(counts.cumsum(1), (1, 0))  # R: (H, W + 1)
        area = torch.nn.functional.pad(row_cum.cumsum(0), (0, 0, 1, 0))  # S: (H + 1, W + 1)
        below_lo = area[ly[:, None], hx] - area[ly[:, None], lx]  # rows < lo_y of the box
        # (H, W): observed pixels in the box of r
        per_row = area[hy[:, None], hx] - area[hy[:, None], lx] - below_lo
        per_row = torch.where(mask, per_row, 0).reshape(-1)
        self.crow = torch.nn.functional.pad(per_row.cumsum(0), (1, 0))
        # 32-bit slot and pixel arithmetic when both fit (half the memory traffic)
        fits = max(int(self.crow[-1]), mask.numel()) < INT32_LIMIT
        self.dtype = torch.int32 if fits else torch.int64
        self.row_part = (self.crow[:-1] - below_lo.reshape(-1)).to(self.dtype)
        self.col_part = row_cum[:, :-1].reshape(-1).to(self.dtype)
        cross = area[:-1, hx] - area[:-1, lx] - row_cum[:, lx]  # (c_y, r_x): (H, W)
        self.cross = cross.reshape(-1).to(self.dtype)
        self.width, self.n = width, height * width
        self.anchor = int(torch.nonzero(mask.reshape(-1))[0]) if bool(mask.any()) else 0

    def slots(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(slots (P, m, m), pixels (P, m))`` of block entries ``(index[p, a], index[p, b])``.

        ``index`` (P, m) holds pixels, ``n`` on padding.  Padding becomes the patch's
        first pixel (or :attr:`anchor` if it has none), a pixel of the same box: its
        entries land in real slots of the same rows, so the caller must zero them.
        """
        pixel = torch.where(index < self.n, index, index[:, :1])
        pixel = torch.where(pixel < self.n, pixel, self.anchor).to(self.dtype)
        y = torch.div(pixel, self.width, rounding_mode="floor")
        x = pixel - y * self.width
        cross = (y * self.width)[:, None, :] + x[:, :, None]  # (c_y, r_x)
        slot = self.cross.index_select(0, cross.reshape(-1)).reshape(cross.shape)
        slot += self.row_part[pixel][:, :, None]
        slot += self.col_part[pixel][:, None, :]
        return slot, pixel


def _local_inverses(
    k_pp: Tensor, pixels: Tensor, observed: Tensor, m: int, noise: float, n: int
) -> tuple[Tensor, Tensor]:
    """``(A_i^{-1} (P, m, m), pixel index (P, m))`` for patches with at most ``m`` observed.

    ``A_i = K_{o_i o_i} + s2 I`` on the observed pixels (first, in patch order) and the
    identity on the padding slots, which read and write a dummy pixel ``n`` (a zero on
    input, dropped on output); ``A_i`` is block-diagonal, so its inverse never couples
    padding and observed pixels.
    """
    order = torch.argsort((~observed).to(torch.int8), dim=1, stable=True)[:, :m]
    valid = torch.gather(observed, 1, order)  # (P, m)
    nloc = k_pp.shape[0]
    k_pad = torch.zeros(nloc + 1, nloc + 1, dtype=torch.float64)  # row/col nloc: zeros
    k_pad[:nloc, :nloc] = k_pp
    local = torch.where(valid, order, nloc)
    local = local.to(torch.int32)  # 32-bit gather indices: less memory traffic
    pairs = (local * (nloc + 1))[:, :, None] + local[:, None, :]
    block = k_pad.reshape(-1).index_select(0, pairs.reshape(-1)).reshape(pairs.shape)
    block.diagonal(dim1=1, dim2=2).add_(torch.where(valid, noise, 1.0))
    chol, info = torch.linalg.cholesky_ex(block)
    if bool((info > 0).any()):
        raise GpdipError(
            f"schwarz preconditioner: a local block K_oo + s2 I is not positive definite "
            f"(noise {noise:.3e}); the kernel table is not a valid covariance"
        )
    index = torch.where(valid, torch.gather(pixels, 1, order), n)
    return torch.cholesky_inverse(chol), index


#: ``precond="auto"``: CG starts with the extension preconditioner (no set-up, cheapest
#: per iteration, best for rough kernels and large noise).  At iteration ``FIRST_PROBE``
#: and every ``PROBE`` iterations the residual decay since the last probe is
#: extrapolated; if it predicts more than ``SWITCH_REMAINING`` further iterations, the
#: Schwarz preconditioner takes over.  ``SWITCH_REMAINING``: the break-even of the
#: measured CPU costs (512^2: matvec 40 ms, extension 16 ms, Schwarz 60-70 ms per
#: application and 0.8-1.4 s set-up, 17-47 Schwarz iterations; see scripts/bench_gp.py
#: --precond-only), about 100 iterations; with the CSR apply (about 3x cheaper) it is
#: lower, so 100 stays on the safe side.  ``FIRST_PROBE``: on the small-noise conv-d4-s6
#: solves of scripts/bench_precond_1024.py the extension residual grows in the first
#: iterations (rho_5 = 2.2 at 512^2) and its 20 iterations before a switch at 20 saved
#: only 2-3 Schwarz iterations (56 iterations in all against 39-41 from the start).
FIRST_PROBE = 5
PROBE = 20
SWITCH_REMAINING = 100


def schwarz_switch(
    op: MaskedGridCovariance,
    tol: float,
    probe: int = PROBE,
    build: Callable[[MaskedGridCovariance], MatVec] | None = None,
    first: int = FIRST_PROBE,
) -> Switch:
    """A ``switch`` for :func:`gpdip.gp.cg.conjugate_gradients` (see :data:`PROBE`).

    Probes at iteration ``first`` (``<= probe``) and at multiples of ``probe``: at probe
    ``k`` with worst relative residual ``rho_k > tol`` and the previous probe ``j``
    (``j = 0``, ``rho_0 = 1`` at the first), the decay per iteration
    ``q = (rho_k / rho_j)^(1 / (k - j))`` predicts ``log(tol / rho_k) / log(q)`` more
    iterations (infinite if ``q >= 1``).  The Schwarz set-up is built once and shared by
    every solve of this operator; if it is refused (memory limit), a
    :class:`GpdipWarning` says so and CG keeps the extension preconditioner.
    ``build``: the Schwarz builder (default :func:`schwarz_preconditioner`; benchmarks
    pass other variants).
    """
    build = schwarz_preconditioner if build is None else build
    built: list[MatVec | None] = []
    last = [0.0, 1.0]  # iteration and rho of the last probe

    def decide(iteration: int, rel: Tensor) -> MatVec | None:
        if iteration != first and iteration % probe:
            return None
        worst = float(rel.max())
        # a new solve (mean="ml" runs two) starts again from rho_0 = 1 at iteration 0
        since, before = (0.0, 1.0) if iteration == first else last
        last[:] = [float(iteration), worst]
        if worst <= tol:
            return None
        decay = (worst / before) ** (1.0 / (iteration - since))
        if decay < 1.0 and math.log(tol / worst) / math.log(decay) <= SWITCH_REMAINING:
            return None
        return _built(built, build, op)

    return decide


def _built(
    built: list[MatVec | None], build: Callable[[MaskedGridCovariance], MatVec], op
) -> MatVec | None:
    """The Schwarz preconditioner, built on first use (None, with a warning, if refused)."""
    if not built:
        try:
            built.append(build(op))
        except GpdipError as exc:
            warnings.warn(
                f"precond='auto': keeping the extension preconditioner ({exc})",
                GpdipWarning,
                stacklevel=3,
            )
            built.append(None)
    return built[0]
