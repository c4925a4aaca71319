"""Combinators: a skip (two paths from one input) and a block (a named sub-sequence).

Skip ``add``: K = K_shortcut + K_branch and Θ = Θ_shortcut + Θ_branch.  Exact when
the two paths are uncorrelated: one ends in a conv whose fresh zero-mean weights
the other never uses, so E[a b] = 0 and every cross term of the gradients carries
one such weight and vanishes in the limit.  Skip ``concat``: the channel groups are
kept apart ([shortcut, branch]) and the next conv weights them by their counts.
Both paths must end on the same grid and, for ``add``, with the same channels:
these structural rules are checked when the architecture is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gpdip.errors import GpdipError
from gpdip.layers.base import (
    Layer,
    check,
    far_radius,
    last_conv,
    needed_radius,
    nonlinear_depth,
    one_of,
    sequence_channels,
    sequence_factor,
    sequence_final_upsamples,
    sequence_keeps_offsets,
    sequence_swap_halvable,
)
from gpdip.limit import covtable as ct
from gpdip.limit.state import Group

if TYPE_CHECKING:
    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Walker

SKIP_MODES = ("add", "concat")


@dataclass(frozen=True)
class Skip(Layer):
    """Two paths from one input, combined by ``add`` or ``concat`` ([shortcut, branch]).

    ``shortcut`` defaults to the identity (an empty tuple).  ``branch_name`` and
    ``shortcut_name`` remember the block names they came from, for display.
    """

    type_name = "skip"

    mode: str
    branch: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()
    branch_name: str | None = field(default=None, compare=False)
    shortcut_name: str | None = field(default=None, compare=False)

    @classmethod
    def from_toml(cls, table: dict[str, Any], parser: Any, where: str) -> Skip:
        """``branch`` and ``shortcut`` are lists of layers or block names; ``mode`` add."""
        parser.keys(table, {"type", "mode", "branch", "shortcut"}, where)
        if "branch" not in table:
            raise parser.error(where, "missing key 'branch' (a list of layers or a block name)")
        mode = parser.typed(table.get("mode", "add"), f"{where}.mode", cls, "mode")
        branch, branch_name = parser.path(table["branch"], f"{where}.branch")
        shortcut, short_name = parser.path(table.get("shortcut", []), f"{where}.shortcut")
        return parser.build(
            cls,
            dict(
                mode=mode,
                branch=branch,
                shortcut=shortcut,
                branch_name=branch_name,
                shortcut_name=short_name,
            ),
            where,
        )

    def validate(self, where: str) -> None:
        one_of(self.mode, SKIP_MODES, where, "mode")

    def path_where(self, where: str, index: int) -> str:
        return f"{where}.{('branch', 'shortcut')[index]}"

    def paths(self) -> tuple[tuple[Layer, ...], ...]:
        return (self.branch, self.shortcut)

    def with_paths(self, paths: tuple[tuple[Layer, ...], ...]) -> Skip:
        return replace(self, branch=paths[0], shortcut=paths[1])

    def out_channels(self, channels: int, where: str) -> int:
        short = sequence_channels(self.shortcut, channels, f"{where}.shortcut")
        branch = sequence_channels(self.branch, channels, f"{where}.branch")
        if self.mode == "concat":
            return short + branch
        check(
            short == branch,
            where,
            f"add needs equal channel counts: shortcut has {short}, branch has {branch}",
        )
        return branch

    def spatial_factor(self, where: str) -> Fraction:
        short = sequence_factor(self.shortcut, f"{where}.shortcut")
        branch = sequence_factor(self.branch, f"{where}.branch")
        check(
            short == branch,
            where,
            f"the two paths end on different grids: the shortcut "
            f"changes the resolution by {_show(short)}, the branch by {_show(branch)}; no "
            "finite network can add or concatenate them",
        )
        return branch

    def nonlinear_depth(self) -> int:
        return max(nonlinear_depth(self.branch), nonlinear_depth(self.shortcut))

    def keeps_offsets(self) -> bool:
        return sequence_keeps_offsets(self.branch + self.shortcut)

    def final_upsamples(self, where: str, keeps: bool) -> set[str]:
        return sequence_final_upsamples(
            self.shortcut, f"{where}.shortcut", keeps
        ) | sequence_final_upsamples(self.branch, f"{where}.branch", keeps)

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        shortcut, c_short = builder.sequence(self.shortcut, channels)
        branch, c_branch = builder.sequence(self.branch, channels)
        out = c_short + c_branch if self.mode == "concat" else c_branch
        return SkipModule(branch, shortcut, self.mode), out

    def needed_radius(self, radius: int) -> int:
        return max(needed_radius(self.branch, radius), needed_radius(self.shortcut, radius))

    def far_radius(self, radius: float) -> float:
        return max(far_radius(self.branch, radius), far_radius(self.shortcut, radius))

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        short = walker.run(self.shortcut, groups, f"{where}.shortcut", need)
        branch = walker.run(self.branch, groups, f"{where}.branch", need)
        if self.mode == "concat":
            return short + branch
        if len(short) != 1 or len(branch) != 1:
            raise walker.fail(
                where,
                "add needs each path to end with one group of channels "
                "(end a concat path with a conv)",
            )
        a, b = short[0], branch[0]
        if not (_uncorrelated(a, b) or _uncorrelated(b, a)):
            raise walker.fail(
                where,
                "add of two correlated paths: the limit's sum rule needs "
                "one path to end in a conv whose weights the other path never "
                "uses",
            )
        gaussian = a.gaussian and b.gaussian
        return [
            Group(
                _sum(a.nngp, b.nngp),
                _sum(a.ntk, b.ntk),
                a.channels,
                gaussian,
                a.frontier | b.frontier if gaussian else frozenset(),
                a.ancestry | b.ancestry,
                math.lcm(a.period, b.period),
            )
        ]


@dataclass(frozen=True)
class Block(Layer):
    """A named sub-network, inlined where it is used."""

    type_name = "block"

    name: str
    layers: tuple[Layer, ...]

    @classmethod
    def from_toml(cls, table: dict[str, Any], parser: Any, where: str) -> Block:
        """``{ type = "block", name = "NAME" }`` inlines ``[blocks.NAME]``."""
        parser.keys(table, {"type", "name"}, where)
        name = table.get("name")
        if not isinstance(name, str):
            raise parser.error(where, f"'name' must be a block name, got {parser.show(name)}")
        return cls(name, parser.block(name, where))

    def paths(self) -> tuple[tuple[Layer, ...], ...]:
        return (self.layers,)

    def path_where(self, where: str, index: int) -> str:
        return f"{where}(block {self.name!r})"

    def with_paths(self, paths: tuple[tuple[Layer, ...], ...]) -> Block:
        return replace(self, layers=paths[0])

    def out_channels(self, channels: int, where: str) -> int:
        return sequence_channels(self.layers, channels, f"{where}(block {self.name!r})")

    def spatial_factor(self, where: str) -> Fraction:
        return sequence_factor(self.layers, f"{where}(block {self.name!r})")

    def nonlinear_depth(self) -> int:
        return nonlinear_depth(self.layers)

    def keeps_offsets(self) -> bool:
        return sequence_keeps_offsets(self.layers)

    def keeps_phases(self) -> bool:
        return all(layer.keeps_phases() for layer in self.layers)

    def swap_halvable(self) -> bool | None:
        return sequence_swap_halvable(self.layers)

    def final_upsamples(self, where: str, keeps: bool) -> set[str]:
        return sequence_final_upsamples(self.layers, where, keeps)  # the walker's names

    def output_layer(self) -> Layer | None:
        return last_conv(self.layers)

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return builder.sequence(self.layers, channels)

    def needed_radius(self, radius: int) -> int:
        return needed_radius(self.layers, radius)

    def far_radius(self, radius: float) -> float:
        return far_radius(self.layers, radius)

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        return walker.run(self.layers, groups, where, need)


class SkipModule(nn.Module):
    """Shortcut and branch from one input, added or concatenated as [shortcut, branch]."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module, mode: str) -> None:
        super().__init__()
        self.branch, self.shortcut, self.mode = branch, shortcut, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.shortcut(x), self.branch(x)
        if a.shape[2:] != b.shape[2:]:
            raise GpdipError(
                f"skip: shortcut gives spatial size {tuple(a.shape[2:])} but the "
                f"branch gives {tuple(b.shape[2:])}; the input size must be a "
                "multiple of the network's total downsampling"
            )
        return torch.cat([a, b], dim=1) if self.mode == "concat" else a + b


def _uncorrelated(a: Group, b: Group) -> bool:
    """E[a b] = 0 when a is linear in fresh zero-mean weights that b never touches."""
    return a.gaussian and bool(a.frontier) and not (a.frontier & b.ancestry)


def _sum(a: ct.CovTable | None, b: ct.CovTable | None) -> ct.CovTable | None:
    if a is None or b is None:
        return None
    ta, tb = ct.align([a, b])
    return replace(ta, values=ta.values + tb.values)  # keeps an offset list (phase_tables)


def _show(factor: Fraction) -> str:
    return f"1/{factor.numerator}" if factor > 1 else f"x{factor.denominator}"
