"""Element-wise non-linearities: ReLU, leaky ReLU, erf.

For a zero-mean Gaussian pair (u, v) = (z(t), z(t + r)) with second moments
k11, k22, k12 taken from the input NNGP table, a non-linearity φ maps

    K'[p, r] = E[φ(u) φ(v)]                       (paper Eq. 7, Theorem 1)
    Θ'[p, r] = Θ[p, r] · E[φ'(u) φ'(v)]           (NTK; Jacot et al. 2018)

entry by entry, both in closed form (:mod:`gpdip.limit.nonlin`, each with a
quadrature reference).  The limit needs u, v Gaussian: the input must be a conv
output or a linear map of conv outputs, never an earlier non-linearity's output.
A new non-linearity is one subclass of :class:`Elementwise` with its two
expectations and its torch function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from gpdip.layers.base import Layer, check, nonneg_float
from gpdip.limit import covtable as ct
from gpdip.limit import nonlin
from gpdip.limit import pointwise as pw
from gpdip.limit.state import Group

if TYPE_CHECKING:
    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Walker


@dataclass(frozen=True)
class Elementwise(Layer):
    """A pointwise non-linearity φ; subclasses give E[φφ], E[φ'φ'] and the torch module."""

    fused: ClassVar[bool] = False  # offers pair_owned (the chunked, in-place path)

    def expectation(self, k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor) -> torch.Tensor:
        """E[φ(u) φ(v)] for the zero-mean Gaussian pair with these second moments."""
        raise NotImplementedError

    def derivative_expectation(
        self, k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor
    ) -> torch.Tensor:
        """E[φ'(u) φ'(v)] (the NTK's factor)."""
        raise NotImplementedError

    def pair_owned(
        self,
        k11: torch.Tensor,
        k22: torch.Tensor,
        k12: torch.Tensor,
        derivative: bool,
        out: torch.Tensor,
        positive: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """Both expectations at once without autograd, overwriting ``k22``; E[φφ] into ``out``.

        Subclasses whose two expectations share work (ReLU's angle) override it and set
        ``fused``; None declines (e.g. a zero variance) and the general maps are used.
        ``positive``: every k11·k22 is known to be above 0."""
        return None

    def torch_module(self) -> nn.Module:
        raise NotImplementedError

    def nonlinear_depth(self) -> int:
        return 1

    def keeps_offsets(self) -> bool:
        return True

    def keeps_phases(self) -> bool:
        return True

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return self.torch_module(), channels

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        return [self._map(group, walker, where) for group in groups]

    def _map(self, group: Group, walker: Walker, where: str) -> Group:
        if not group.gaussian:
            raise walker.fail(
                where,
                f"{type(self).__name__} needs a Gaussian input in the "
                "limit (a conv output, or a sum, concat or resampling of conv "
                "outputs), but its input passes through an earlier non-linearity "
                "without a conv in between (e.g. an identity shortcut carrying a "
                "post-activation); insert a conv",
            )
        out = replace(group, gaussian=False, frontier=frozenset())
        table = group.nngp
        if table is None:
            return out
        if self.fused and pw.no_grad_tables(table, group.ntk):
            fused = self._chunked(table, group.ntk)
            if fused is not None:
                return replace(out, nngp=fused[0], ntk=fused[1])
        k11, k22 = ct.diagonal_pairs(table)
        # replace(): a table on an offset list (phase_tables) keeps its list
        nngp = replace(table, values=self.expectation(k11, k22, table.values))
        ntk = None
        if group.ntk is not None:
            factor = self.derivative_expectation(k11, k22, table.values)
            ntk = replace(group.ntk, values=group.ntk.values * factor)
        return replace(out, nngp=nngp, ntk=ntk)

    def _chunked(
        self, table: ct.CovTable, theta: ct.CovTable | None
    ) -> tuple[ct.CovTable, ct.CovTable | None] | None:
        """K' and Θ' chunk by chunk (:mod:`gpdip.limit.pointwise`) with :meth:`pair_owned`."""
        values = table.values
        if theta is not None and theta.values.shape != values.shape:
            return None
        k_out = torch.empty(values.shape, dtype=values.dtype, device=values.device)
        theta_out = torch.empty_like(k_out) if theta is not None else None
        positive = pw.positive_products(table)
        for rows, k11, k22 in pw.phase_chunks(table):
            pair = self.pair_owned(k11, k22, values[rows], theta is not None, k_out[rows], positive)
            if pair is None:
                return None
            if theta is not None and theta_out is not None and pair[1] is not None:
                torch.mul(theta.values[rows], pair[1], out=theta_out[rows])
        ntk = None
        if theta is not None and theta_out is not None:
            ntk = replace(theta, values=theta_out)
        return replace(table, values=k_out), ntk


@dataclass(frozen=True)
class ReLU(Elementwise):
    """max(0, x)."""

    type_name = "relu"
    fused = True

    def expectation(self, k11, k22, k12):
        return nonlin.relu_expectation(k11, k22, k12)

    def derivative_expectation(self, k11, k22, k12):
        return nonlin.relu_derivative_expectation(k11, k22, k12)

    def pair_owned(self, k11, k22, k12, derivative, out, positive):
        return nonlin.relu_pair_owned(k11, k22, k12, None, derivative, out, positive)

    def torch_module(self) -> nn.Module:
        return nn.ReLU()


@dataclass(frozen=True)
class LeakyReLU(Elementwise):
    """max(0, x) + negative_slope·min(0, x); the DIP code's default, slope 0.2."""

    type_name = "leaky_relu"
    fused = True

    negative_slope: float = 0.2

    def validate(self, where: str) -> None:
        nonneg_float(self.negative_slope, where, "negative_slope")
        check(
            self.negative_slope <= 1,
            where,
            f"'negative_slope' must be in [0, 1], got {self.negative_slope}",
        )

    def expectation(self, k11, k22, k12):
        return nonlin.leaky_relu_expectation(k11, k22, k12, self.negative_slope)

    def derivative_expectation(self, k11, k22, k12):
        return nonlin.leaky_relu_derivative_expectation(k11, k22, k12, self.negative_slope)

    def pair_owned(self, k11, k22, k12, derivative, out, positive):
        slope = self.negative_slope
        return nonlin.relu_pair_owned(k11, k22, k12, slope, derivative, out, positive)

    def torch_module(self) -> nn.Module:
        return nn.LeakyReLU(self.negative_slope)


@dataclass(frozen=True)
class Erf(Elementwise):
    """The error function, Williams' (1997) sigmoid."""

    type_name = "erf"

    def expectation(self, k11, k22, k12):
        return nonlin.erf_expectation(k11, k22, k12)

    def derivative_expectation(self, k11, k22, k12):
        return nonlin.erf_derivative_expectation(k11, k22, k12)

    def torch_module(self) -> nn.Module:
        return ErfModule()


class ErfModule(nn.Module):
    """Element-wise erf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)
