"""The last upsampling's phase table, computed only on the offsets the output needs.

After the last nearest/bilinear upsampling of a network (the *final* one:
every later layer keeps each offset — stride-1 convs, non-linearities, sums and
concats), the table C[p, r] is only ever averaged over phase at the output.
Each offset r is then independent of the others: conv taps mix the phases at
the same r, a non-linearity reads C[p, r] and the variances C[p, 0] and
C[p + r, 0].  So the finest table, which holds most of the cost (period 32 in
each dimension for the 5-scale skip nets: 1,024 phases), is computed and
carried on a short list of offsets (a :class:`~gpdip.limit.covtable.OffsetSet`):

* **pair swap**: K(r) = K(−r) for every second-moment table, since
  C[p, r] = C[p + r, −r]; half the offsets (``fold="half"``) always suffice;
* **reflections**: when the coarse table is symmetric under a reflection of
  one dimension (C[p, r] = C[(c − p) mod P, −r] for some centre c), so is its
  nearest/bilinear upsampling (centre τc + τ − 1), and K is even in that
  dimension: a quadrant suffices (``"quadrant"``).  With a transposition
  symmetry as well, an octant (``"octant"``).  Both are tested numerically on
  the coarse table, and every table that joins later is checked when it meets
  the list (:func:`gpdip.limit.covtable.at_points`); a failure there makes the
  compiler start again with ``"half"``;
* **swap fold**: swap and both reflections together keep r and move the phase,
  C[p, r] = C[(c − r − p) mod P, r]; when every layer after the final upsampling reads each
  entry at its own phase (1×1 convs, non-linearities, channel norms: the deep decoders),
  the final table keeps only P₀/2 + 1 of the P₀ rows of dimension 0 per offset
  (:mod:`gpdip.limit.swap_fold`, ``OutputPlan.halve``);
* **far field**: beyond the correlation radius R, C[p, r] depends only on the
  phases p and (p + r) mod P (:mod:`gpdip.limit.farfield`).  So when the output
  needs offsets up to R + P, only |r_d| ≤ R is computed in full, and one P×…×P
  corner (R, R + P]^d gives every far offset by its residue mod P.

:func:`output_kernel` turns the list back into the centred box K[r], |r_d| ≤ want_d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gpdip.layers.base import Layer, sequence_final_upsamples
from gpdip.limit import covtable as ct
from gpdip.limit import listed_upsample as lu
from gpdip.limit import swap_fold as sf

SYMMETRY_TOL = ct.SYMMETRY_TOL


# Upsampled boxes smaller than this are computed whole: the symmetry tests and unfolding
# cost more than they save on small tables.
LIST_MIN_ENTRIES = 2**16


def worth_listing(table: ct.CovTable, factor: int, radius: tuple[int, ...]) -> bool:
    """Whether the upsampled box of ``radius`` is large enough for an offset list."""
    phases = math.prod(factor * p for p in table.period)
    return phases * math.prod(2 * r + 1 for r in radius) >= LIST_MIN_ENTRIES


@dataclass(frozen=True)
class OutputPlan:
    """What the output needs: box radius ``want`` per dimension, far radius, period.

    ``folds``: allow the reflection/transposition folds (``False`` after a
    :class:`~gpdip.limit.covtable.FoldMismatchError`).  ``halve``: keep the final table
    swap-halved (:mod:`gpdip.limit.swap_fold`) when its fold allows it; only for networks
    whose layers after the final upsampling read each entry at its own phase (the compiler
    decides).
    """

    want: tuple[int, ...]
    far: float
    period: int
    folds: bool = True
    halve: bool = False

    @property
    def split(self) -> bool:
        """Near box |r| ≤ far plus one far corner, instead of the whole box."""
        return not math.isinf(self.far) and all(w >= self.far + self.period for w in self.want)

    @property
    def near(self) -> tuple[int, ...]:
        return tuple(int(self.far) for _ in self.want) if self.split else self.want


def final_upsamples(layers: tuple[Layer, ...], where: str = "network.layers") -> frozenset[str]:
    """Paths (as the compiler names them) of the upsamplings after which every offset is kept.

    Each layer type says whether it keeps offsets and where its final upsamplings are
    (:meth:`gpdip.layers.base.Layer.final_upsamples`).
    """
    return frozenset(sequence_final_upsamples(layers, where, True))


def offset_count(plan: OutputPlan) -> int:
    """Offsets listed under the ``"half"`` fold (an upper bound for the others)."""
    near = plan.near
    count = (near[0] + 1) * math.prod(2 * n + 1 for n in near[1:])
    return count + (plan.period ** len(near) if plan.split else 0)


Fold = tuple[str, tuple[int, ...]]  # (fold name, reflection centres)


def upsample_final(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    plan: OutputPlan,
    fold_of: Fold | None = None,
) -> ct.CovTable:
    """The last upsampling's table on the output's offset list (see the module docstring).

    ``fold_of``: the fold to use (default: the table's own, :func:`known_fold`); the NTK
    table goes through the same fold as the NNGP table it travels with.
    """
    fold, centre = fold_of or known_fold(table, plan.near, plan.folds)
    listed = _fold_offsets(plan.near, fold)
    if plan.split:
        far = int(plan.far)
        corner = torch.arange(far + 1, far + plan.period + 1)
        corner = torch.cartesian_prod(*[corner] * table.dims).reshape(-1, table.dims)
        if fold == "octant":
            corner = corner[corner[:, 0] >= corner[:, 1]]
        listed = torch.cat([listed, corner])
    halve = (
        plan.halve
        and table.dims == 2
        and fold in ("quadrant", "octant")
        and (factor * table.period[0]) % 2 == 0
    )
    return _upsampled(table, factor, sources, listed, fold, centre, None, halve)


def upsample_folded(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    radius: tuple[int, ...],
    folds: bool = True,
    fold_of: Fold | None = None,
) -> ct.CovTable:
    """An upsampling's table on the box of ``radius``, kept on the offsets of its fold.

    The layers up to the next map that moves offsets (which unfolds it with
    :func:`~gpdip.limit.covtable.to_box`) then work on 1/2 to 1/8 of the box.
    ``fold_of`` as in :func:`upsample_final`.
    """
    fold, centre = fold_of or known_fold(table, radius, folds)
    listed = _fold_offsets(radius, fold)
    return _upsampled(table, factor, sources, listed, fold, centre, radius)


def _upsampled(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    listed: torch.Tensor,
    fold: str,
    centre: tuple[int, ...],
    box: tuple[int, ...] | None,
    halve: bool = False,
) -> ct.CovTable:
    zero = int((listed.abs().sum(dim=1) == 0).nonzero()[0, 0])
    period = tuple(factor * p for p in table.period)
    # Reflection t → c − t at the coarse level is t → τc + τ − 1 − t at the fine one.
    fine_centre = tuple((factor * c + factor - 1) % p for c, p in zip(centre, period, strict=False))
    rows = weights = diag_index = None
    if halve:
        device = table.values.device
        rows, weights = sf.swap_rows(listed[:, 0].to(device), fine_centre[0], period[0])
        diag_index = sf.diagonal_index(rows, listed, fine_centre, period, zero)
    values = lu.upsample_points(table, factor, sources, listed, rows)
    points = ct.OffsetSet(listed, fold, zero, fine_centre, box, rows, weights, diag_index)
    radius = tuple(int(v) for v in listed.abs().amax(dim=0))
    return ct.CovTable(values, period, radius, points)


def _fold_offsets(radius: tuple[int, ...], fold: str) -> torch.Tensor:
    """The listed offsets (n, dims) of the box |r_d| ≤ radius_d under the fold."""
    ranges = [torch.arange(0, radius[0] + 1)]
    ranges += [torch.arange(-n if fold == "half" else 0, n + 1) for n in radius[1:]]
    listed = torch.cartesian_prod(*ranges).reshape(-1, len(radius))
    if fold == "octant":  # keep r₀ ≥ r₁: the rest follow by transposition
        listed = listed[listed[:, 0] >= listed[:, 1]]
    return listed


def known_fold(
    table: ct.CovTable, radius: tuple[int, ...], folds: bool
) -> tuple[str, tuple[int, ...]]:
    """The fold of a coarse table kept folded (its symmetry carries over), else tested."""
    if not folds:
        return "half", ()
    points = table.points
    if points is None:
        return _fold(ct.to_box(table), radius)
    if points.fold == "octant" and radius[0] != radius[1]:
        return "quadrant", points.centre
    return points.fold, points.centre


def _fold(table: ct.CovTable, radius: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """The largest fold the coarse table's symmetries allow, and its reflection centres."""
    if table.dims == 1:
        return "half", ()
    centre = []
    for d in range(table.dims):
        c = _reflection_centre(table, d)
        if c is None:
            return "half", ()
        centre.append(c)
    values = table.values.detach()
    if (
        table.dims == 2
        and table.radius[0] == table.radius[1]
        and centre[0] == centre[1]
        and table.period[0] == table.period[1]
        and radius[0] == radius[1]
    ):
        tol = SYMMETRY_TOL * float(values.abs().max())
        if float((values - values.permute(1, 0, 3, 2)).abs().max()) <= tol:
            return "octant", tuple(centre)
    return "quadrant", tuple(centre)


def _reflection_centre(table: ct.CovTable, d: int) -> int | None:
    """A centre c with C[p, r] = C[(c − p) mod P, −r] in dimension d, or None.

    The reflection t → c − t maps the pair (t, t + r) to (c − t, c − t − r).
    Candidate centres are screened on the variances (r = 0) first.
    """
    values = table.values.detach()
    period = table.period[d]
    tol = SYMMETRY_TOL * float(values.abs().max())
    diag = table.diagonal().detach()
    flipped = values.flip(table.offset_axis(d))
    phases = torch.arange(period, device=values.device)
    for centre in range(period):
        mirror = (centre - phases) % period
        if float((diag - diag.index_select(d, mirror)).abs().max()) > tol:
            continue
        if float((values - flipped.index_select(d, mirror)).abs().max()) <= tol:
            return centre
    return None


def output_kernel(table: ct.CovTable, plan: OutputPlan) -> torch.Tensor:
    """The phase-mean kernel K[want + r] on the centred box |r_d| ≤ want_d (``plan.want``).

    A box table is cropped and averaged; a table on an offset list is averaged,
    and every offset of the box is read from its representative: the corner
    offset with the same residues mod the period when the pair is beyond the
    far radius in some dimension, else the folded offset.
    """
    want = plan.want
    if table.points is None:
        return table.crop(want).phase_mean()
    points = table.points
    kernel = table.phase_mean()
    device = kernel.device
    grids = torch.meshgrid(*[torch.arange(-w, w + 1, device=device) for w in want], indexing="ij")
    r = torch.stack(grids, dim=-1)  # (*box, dims)
    canon = _canonical(r, points.fold)
    if plan.split:
        far = int(plan.far)
        beyond = (r.abs() > far).any(dim=-1, keepdim=True)
        corner = far + 1 + (r - far - 1) % plan.period
        corner = _canonical(corner, points.fold) if points.fold == "octant" else corner
        canon = torch.where(beyond, corner, canon)
    # Look the representatives up in a dense box holding the listed offsets.
    lookup_radius = [max(w, int(points.offsets[:, d].abs().max())) for d, w in enumerate(want)]
    shape = [2 * w + 1 for w in lookup_radius]
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    offsets = points.offsets.to(device)

    def flat(x: torch.Tensor) -> torch.Tensor:
        index = torch.zeros(x.shape[:-1], dtype=torch.long, device=device)
        for d, stride in enumerate(strides):
            index += (x[..., d] + lookup_radius[d]) * stride
        return index

    dense = torch.full((math.prod(shape),), math.nan, dtype=kernel.dtype, device=device)
    dense = dense.index_put((flat(offsets),), kernel)
    out = dense[flat(canon)]
    if bool(torch.isnan(out.detach()).any()):
        raise AssertionError("an output offset has no representative in the offset list")
    return out


def _canonical(r: torch.Tensor, fold: str) -> torch.Tensor:
    """The listed representative of each offset under the fold (r: (..., dims))."""
    if fold == "half":
        flip = r[..., :1] < 0
        return torch.where(flip, -r, r)
    r = r.abs()
    if fold == "octant":
        r = torch.sort(r, dim=-1, descending=True).values
    return r
