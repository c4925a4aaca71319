"""What the limit compiler carries between layers: channel groups and the walker.

A :class:`Group` is a set of channels that share one NNGP table
K[p, r] = E[z(t) z(t + r)] and, when the NTK is tracked, one NTK table
Θ[p, r] = E[⟨∂z(t)/∂θ, ∂z(t + r)/∂θ⟩] (t ≡ p mod the period).  A concat keeps
its two paths as separate groups; the next conv weights them by their channel
counts.  The :class:`Walker` applies each layer's own ``limit`` map in turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from gpdip.errors import GpdipError
from gpdip.layers.base import Layer, needed_radius
from gpdip.limit.covtable import CovTable

if TYPE_CHECKING:  # a type only: phase_tables imports the layers, which import this module
    from gpdip.limit.phase_tables import OutputPlan


@dataclass(frozen=True)
class Group:
    """Channels that share one pair of tables (``None``: a symbolic walk, rules only).

    ``gaussian``: the channels are Gaussian in the limit (conv outputs and linear
    maps of them).  ``frontier``: the convs whose fresh zero-mean weights this
    group is a linear function of.  ``ancestry``: every conv (and the input, id 0)
    it depends on.  Both decide whether an ``add`` is exact.
    """

    nngp: CovTable | None
    ntk: CovTable | None
    channels: float
    gaussian: bool
    frontier: frozenset[int]
    ancestry: frozenset[int]
    period: int = 1  # cyclostationary period (the same in every dimension)

    def map_tables(self, fn: Callable[[CovTable], CovTable]) -> Group:
        """Apply one linear map to both tables (resampling, cropping)."""
        return replace(
            self,
            nngp=None if self.nngp is None else fn(self.nngp),
            ntk=None if self.ntk is None else fn(self.ntk),
        )


class Walker:
    """Applies the layers' maps; holds the parameter overrides and the size limit."""

    def __init__(
        self,
        params: dict,
        max_entries: int,
        name: str,
        prefix: str = "",
        ntk: bool = False,
        final: frozenset[str] = frozenset(),
        plan: OutputPlan | None = None,
    ) -> None:
        self.params = params
        self.max_entries = max_entries
        self.name = name
        self.prefix = prefix
        self.ntk = ntk
        self.next_id = 1
        self.largest_variance = 0.0  # for overflow messages
        self.final = final  # upsamplings computed on the output's offsets only (phase_tables)
        self.plan = plan

    def fail(self, where: str, msg: str) -> GpdipError:
        return GpdipError(f"{self.prefix}{where}: {msg}")

    def new_id(self) -> int:
        """A fresh id for a conv (its weights are independent of every other conv's)."""
        self.next_id += 1
        return self.next_id - 1

    def param(self, name: str, default: float) -> float | torch.Tensor:
        """A conv hyperparameter, or its override from ``compile_kernel(params=...)``."""
        return self.params.get(name, default)

    def run(
        self,
        layers: tuple[Layer, ...],
        groups: list[Group],
        where: str,
        want: tuple[int, ...] | None = None,
    ) -> list[Group]:
        """Apply ``layers``; ``want`` is the radius needed after the last one.

        After each layer the tables are cropped to the radius the remaining
        layers need (forward maps return every valid offset, and carrying the
        surplus through later phase tables would multiply the work), and checked
        to be finite, so that overflow is reported at the layer where it began.
        """
        for i, layer in enumerate(layers):
            here = f"{where}[{i}]"
            need = None if want is None else tuple(needed_radius(layers[i + 1 :], r) for r in want)
            groups = layer.limit(groups, self, here, need)
            if need is not None:
                groups = [g.map_tables(_cropper(need)) for g in groups]
            self.check_finite(groups, here, layer)
        return groups

    def check_finite(self, groups: list[Group], where: str, layer: Layer) -> None:
        """Raise at the first layer whose second moments overflow.

        Only the diagonal K[p, 0] (and Θ[p, 0]) is checked per layer: |C[p, r]| ≤
        √(C[p, 0] C[p + r, 0]) (Cauchy–Schwarz), so off-diagonal entries stay finite while
        it does, and checking it costs a sliver of the table; the compiler checks the whole
        output table once at the end.
        """
        for group in groups:
            for kind, table in (("NNGP", group.nngp), ("NTK", group.ntk)):
                if table is None:
                    continue
                diagonal = table.diagonal().detach()
                largest = float(diagonal.abs().max())  # NaN or inf when some entry is
                if not math.isfinite(largest):
                    raise self.fail(
                        where,
                        f"the {kind} kernel becomes non-finite at this "
                        f"{layer.type_name} layer (largest variance before it: "
                        f"{self.largest_variance:.3g}, beyond float64's range "
                        "once squared or summed); lower weight_var, bias_var or "
                        "the input variance",
                    )
                self.largest_variance = max(self.largest_variance, largest)


def _cropper(need: tuple[int, ...]) -> Callable[[CovTable], CovTable]:
    """Crop a table to at most ``need`` offsets per dimension."""
    return lambda t: t.crop(tuple(min(a, b) for a, b in zip(t.radius, need, strict=True)))
