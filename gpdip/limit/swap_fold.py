"""The swap fold: half of the phases of an output table on a reflection-folded offset list.

Every second-moment table has the pair swap C[p, r] = C[(p + r) mod P, −r] (the pair
(t, t + r) read the other way).  A table on a ``"quadrant"`` or ``"octant"`` offset list
(:mod:`gpdip.limit.phase_tables`) also has the reflections C[p, r] = C[(c_d − p_d) mod P, −r_d]
in each dimension d.  Swap, then both reflections, keeps the offset r and moves the phase:

    C[p, r] = C[(c − r − p) mod P, r]        (both dimensions at once),

an involution on the P₀·P₁ phases of each listed offset.  In dimension 0 it is
p₀ → (a − p₀) mod P₀ with a = (c₀ − r₀) mod P₀; for even P₀ the P₀/2 + 1 rows

    p₀ = (⌈a/2⌉ + k) mod P₀,  k = 0 … P₀/2,

hold one member of every orbit: for even a, rows k = 0 and P₀/2 are fixed by the map (each
keeps both members of its dimension-1 pairs) and rows 1 … P₀/2 − 1 stand for themselves and
their partner rows; for odd a, rows 0 … P₀/2 − 1 stand for two rows each and row P₀/2 is the
partner of row P₀/2 − 1.  A swap-halved table keeps ``values`` of shape (P₀/2 + 1, P₁, n)
with these rows per offset (``rows`` (H, n)), and the phase mean weighs each stored entry by
``weights`` (H, n): the size of the part of its orbit it stands for (2, 1 or 0), so that
Σ_k Σ_p₁ weights[k, j]·C[rows[k, j], p₁, j] = Σ_p C[p, r_j].

The maps that read only C[p, r] and the variances C[p, 0], C[p + r, 0] (non-linearities,
channel normalisation, 1×1 convs) work on the stored entries as they are; they need the full
variance table, which :func:`diagonal_index` gathers from the stored offset-0 column.
"""

from __future__ import annotations

import torch


def swap_rows(
    first_offsets: torch.Tensor, centre: int, period: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, weights), each (P/2 + 1, n): the stored dimension-0 phases per offset and
    their orbit weights, for offsets whose dimension-0 part is ``first_offsets`` (n,).

    ``centre``: the reflection centre c₀ of dimension 0; ``period``: P₀ (even).
    """
    if period % 2:
        raise ValueError(f"the swap fold needs an even period, got {period}")
    a = (centre - first_offsets.to(torch.long)) % period  # (n,)
    k = torch.arange(period // 2 + 1, dtype=torch.long, device=a.device).reshape(-1, 1)
    rows = (torch.div(a + 1, 2, rounding_mode="floor") + k) % period
    even = (a % 2 == 0).reshape(1, -1)
    last = k == period // 2
    weights = torch.where(
        even,
        torch.where((k == 0) | last, 1.0, 2.0),
        torch.where(last, 0.0, 2.0),
    ).to(torch.float64)
    return rows, weights


def locate(
    rows: torch.Tensor,
    offsets: torch.Tensor,
    centre: tuple[int, ...],
    period: tuple[int, ...],
    phase0: torch.Tensor,
    phase1: torch.Tensor,
    column: int,
) -> torch.Tensor:
    """Flat index into values (H, P₁, n) of C[(phase0, phase1), r_column] (any phases).

    A phase whose dimension-0 part is not stored is read from its partner
    (c − r − p) mod P.  ``phase0``, ``phase1``: broadcastable long tensors.
    """
    n = rows.shape[1]
    p0, p1 = period
    start = int(rows[0, column])
    height = rows.shape[0]
    k = (phase0 - start) % p0
    stored = k < height
    r0, r1 = (int(v) for v in offsets[column])
    partner_k = ((centre[0] - r0 - phase0) - start) % p0
    partner_1 = (centre[1] - r1 - phase1) % p1
    k = torch.where(stored, k, partner_k)
    phase1 = torch.where(stored, phase1 + 0 * k, partner_1 + 0 * k)
    return (k * p1 + phase1) * n + column


def diagonal_index(
    rows: torch.Tensor,
    offsets: torch.Tensor,
    centre: tuple[int, ...],
    period: tuple[int, ...],
    zero: int,
) -> torch.Tensor:
    """Flat index (P₀·P₁,) into values (H, P₁, n) of the variances C[p, 0], p in row-major order."""
    p0 = torch.arange(period[0], dtype=torch.long, device=rows.device).reshape(-1, 1)
    p1 = torch.arange(period[1], dtype=torch.long, device=rows.device).reshape(1, -1)
    return locate(rows, offsets, centre, period, p0, p1, zero).reshape(-1)


def pair_indices(
    rows: torch.Tensor, offsets: torch.Tensor, period: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (H, P₁, n) into the variance table (P₀·P₁,) of C[p, 0] and C[p + r, 0].

    p = (rows[k, j], p₁) for the stored entry (k, p₁, j) and r = offsets[j].
    """
    p0, p1 = period
    phase1 = torch.arange(p1, dtype=torch.long, device=rows.device).reshape(1, -1, 1)
    r0 = offsets[:, 0].to(rows.device).reshape(1, -1)
    r1 = offsets[:, 1].to(rows.device).reshape(1, 1, -1)
    k11 = (rows * p1).unsqueeze(1) + phase1
    k22 = (((rows + r0) % p0) * p1).unsqueeze(1) + (phase1 + r1) % p1
    return k11, k22
