"""Convolution: the only layer with weights.

Finite network (standard parameterisation): taps iid N(0, weight_var/fan_in), bias
N(0, bias_var).  NTK parameterisation: every weight and bias N(0, 1), and the conv
computes √(weight_var/fan_in)·Σ w·x + √bias_var·b (same function at init, gradients
scaled so that the NTK has a width-independent limit; Jacot et al. 2018).

Limit maps on the tables of its input groups (channel counts c_g, Σ c_g = c):

    K' = weight_var · Σ_g (c_g/c) · taps(K_g) + bias_var                 (paper Eq. 6)
    Θ' = weight_var · Σ_g (c_g/c) · taps(Θ_g) + K'                       (NTK)

where taps(C)[p, r] = mean_j C[p + j, r] averages over the kernel's taps (iid taps
correlate only equal taps, so offsets are kept and phases mixed).  The K' term of Θ'
is the gradient with respect to the conv's own weights and bias; taps(Θ) carries the
earlier layers' gradients through the fresh weights.  A stride decimates both tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from gpdip.layers.base import Layer, check, nonneg_float, one_of, positive_int
from gpdip.limit import covtable as ct
from gpdip.limit import resample_maps as rm
from gpdip.limit.state import Group

if TYPE_CHECKING:
    from torch import nn

    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Walker

PADDINGS = ("zero", "reflect", "circular")


@dataclass(frozen=True)
class Conv(Layer):
    """Convolution with iid N(0, weight_var/fan_in) taps and N(0, bias_var) bias."""

    type_name = "conv"

    channels: int
    kernel_size: int = 3
    stride: int = 1
    weight_var: float = 1.0
    bias_var: float = 0.0
    padding: str = "zero"

    def validate(self, where: str) -> None:
        positive_int(self.channels, where, "channels")
        positive_int(self.kernel_size, where, "kernel_size")
        check(
            self.kernel_size % 2 == 1,
            where,
            f"'kernel_size' must be odd (centred taps), got {self.kernel_size}",
        )
        positive_int(self.stride, where, "stride")
        nonneg_float(self.weight_var, where, "weight_var")
        nonneg_float(self.bias_var, where, "bias_var")
        one_of(self.padding, PADDINGS, where, "padding")

    def out_channels(self, channels: int, where: str) -> int:
        return self.channels

    def spatial_factor(self, where: str) -> Fraction:
        return Fraction(self.stride)

    def sets_channels(self) -> int | None:
        return self.channels

    def with_channels(self, channels: int) -> Conv:
        return replace(self, channels=channels)

    def output_layer(self) -> Layer:
        return self

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return builder.conv(self, channels)

    def needed_radius(self, radius: int) -> int:
        return radius * self.stride

    def far_radius(self, radius: float) -> float:
        return radius if math.isinf(radius) else math.floor(radius / self.stride)

    def keeps_offsets(self) -> bool:
        return self.stride == 1

    def keeps_phases(self) -> bool:
        return self.stride == 1 and self.kernel_size == 1

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        conv_id = walker.new_id()
        ancestry = frozenset().union(*(g.ancestry for g in groups)) | {conv_id}
        period = math.lcm(*(g.period for g in groups))
        nngp = ntk = None
        if groups[0].nngp is not None:
            weight_var = walker.param("weight_var", self.weight_var)
            bias_var = walker.param("bias_var", self.bias_var)
            nngp = self._mix([g.nngp for g in groups], groups, weight_var, bias_var)
            if walker.ntk:
                theta = self._mix([g.ntk for g in groups], groups, weight_var, 0.0)
                if theta.values.requires_grad or nngp.values.requires_grad:
                    ntk = replace(theta, values=theta.values + nngp.values)
                else:  # affine_mix returned a new tensor: add in place (same sums)
                    ntk = replace(theta, values=theta.values.add_(nngp.values))
        group = Group(
            nngp,
            ntk,
            float(self.channels),
            True,
            frozenset({conv_id}),
            ancestry,
            period // math.gcd(period, self.stride),
        )
        return [
            group.map_tables(lambda t: rm.decimate(t, self.stride)) if self.stride > 1 else group
        ]

    def _mix(self, tables: list, groups: list[Group], weight_var, bias_var) -> ct.CovTable:
        """weight_var·Σ_g (c_g/c)·taps(C_g) + bias_var: the tap average of the concatenation."""
        total = sum(g.channels for g in groups)
        parts = ct.align([ct.conv_taps(t, self.kernel_size) for t in tables], tile=False)
        return ct.affine_mix(parts, [g.channels / total for g in groups], weight_var, bias_var)
