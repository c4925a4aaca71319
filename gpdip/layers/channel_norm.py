"""Channel normalisation (Deep Decoder, Heckel & Hand 2019): each pixel divided by its norm.

Finite network: y_c(t) = x_c(t) / √(mean_c' x_c'(t)² + eps) over the C channels.

Limit: given the layer before, the channels are iid, so mean_c' x_c'(t)² → E[x(t)²]
= K[p, 0] (law of large numbers, fluctuation O(1/√C)): the norm is deterministic and
the layer is an exact, phase-dependent rescaling, ν(p) = √(K[p, 0] + eps):

    K'[p, r] = K[p, r] / (ν(p) ν(p + r)),      Θ'[p, r] = Θ[p, r] / (ν(p) ν(p + r)).

For Θ, the derivative of the norm adds −x_c Σ_c' x_c' ∂x_c'/(C ν³), whose pairing with
another gradient keeps one channel-diagonal NTK term out of C and vanishes as 1/C.  A
rescaling by a constant keeps the input Gaussian if it was; the layer has no weights,
moves no correlation radius and needs no extra offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from gpdip.layers.base import Layer, check, nonneg_float
from gpdip.limit import covtable as ct
from gpdip.limit import pointwise as pw
from gpdip.limit.state import Group

if TYPE_CHECKING:
    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Walker


@dataclass(frozen=True)
class ChannelNorm(Layer):
    """x / √(mean over channels of x² + eps), per pixel (Deep Decoder's normalisation)."""

    type_name = "channel_norm"

    eps: float = 1e-5

    def validate(self, where: str) -> None:
        nonneg_float(self.eps, where, "eps")
        check(self.eps <= 1.0, where, f"'eps' must be in [0, 1], got {self.eps}")

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return ChannelNormModule(self.eps), channels

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        if len(groups) != 1:
            raise walker.fail(
                where,
                "channel_norm after a concat: put a conv first, so that "
                "every channel has the same law",
            )
        (group,) = groups
        if group.nngp is None:
            return groups
        same_layout = group.ntk is None or group.ntk.values.shape == group.nngp.values.shape
        if same_layout and pw.no_grad_tables(group.nngp, group.ntk):
            return [self._chunked(group)]
        k11, k22 = ct.diagonal_pairs(group.nngp)
        scale = torch.rsqrt((k11 + self.eps) * (k22 + self.eps))
        return [group.map_tables(lambda t: replace(t, values=t.values * scale))]

    def keeps_offsets(self) -> bool:
        return True

    def keeps_phases(self) -> bool:
        return True

    def _chunked(self, group: Group) -> Group:
        """The same rescaling chunk by chunk, without autograd (:mod:`gpdip.limit.pointwise`)."""
        assert group.nngp is not None
        tables = [t for t in (group.nngp, group.ntk) if t is not None]
        outs = [torch.empty_like(t.values, memory_format=torch.contiguous_format) for t in tables]
        for rows, k11, k22 in pw.phase_chunks(group.nngp, shift=self.eps):
            # rsqrt((k11 + eps)(k22 + eps)): the unchunked map's operations, in place (eps is
            # added to the variances once, before they are gathered)
            scale = k22.mul_(k11).rsqrt_()
            for table, out in zip(tables, outs, strict=True):
                torch.mul(table.values[rows], scale, out=out[rows])
        new = [replace(t, values=o) for t, o in zip(tables, outs, strict=True)]
        return replace(group, nngp=new[0], ntk=new[1] if group.ntk is not None else None)


class ChannelNormModule(nn.Module):
    """y_c(t) = x_c(t) / √(mean_c' x_c'(t)² + eps); x: (N, C, *spatial)."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
