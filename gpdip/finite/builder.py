"""The finite-network builder: one walk that asks each layer for its module.

The builder holds the settings that are not part of the architecture (spatial
dims, initialisation, parameterisation, BatchNorm, a padding override, the
random generator) and builds convs, the only layers with weights.  Each conv
module records the prior variance of its parameters (``prior_weight_var``,
``prior_bias_var``), read by :func:`gpdip.finite.network.prior_variances`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gpdip.layers import Conv, Layer

PADDING_MODES = {"zero": "zeros", "reflect": "reflect", "circular": "circular"}
INITS = ("limit", "pytorch")
PARAMETERIZATIONS = ("standard", "ntk")


class Builder:
    """Builds the modules of a layer sequence, tracking channel counts."""

    def __init__(
        self,
        dims: int,
        init: str,
        batchnorm: bool,
        padding: str | None,
        generator: torch.Generator | None,
        out_channels: int | None,
        last: Layer | None,
        parameterization: str = "standard",
    ) -> None:
        self.dims, self.init, self.batchnorm = dims, init, batchnorm
        self.padding, self.generator = padding, generator
        self.out_channels, self.last = out_channels, last
        self.parameterization = parameterization

    def sequence(self, layers: tuple[Layer, ...], channels: int) -> tuple[nn.Sequential, int]:
        modules = []
        for layer in layers:
            module, channels = layer.module(self, channels)
            modules.append(module)
        return nn.Sequential(*modules), channels

    def conv(self, conv: Conv, channels: int) -> tuple[nn.Module, int]:
        """A conv with the limit's init (or PyTorch's), optionally NTK-parameterised."""
        is_last = conv is self.last
        out = self.out_channels if (is_last and self.out_channels) else conv.channels
        padding_mode = PADDING_MODES[self.padding or conv.padding]
        fan_in = channels * conv.kernel_size**self.dims
        module: nn.Module
        if self.parameterization == "ntk":
            module = NTKConv(channels, out, conv, self.dims, padding_mode, self.generator)
        else:
            cls = nn.Conv1d if self.dims == 1 else nn.Conv2d
            module = cls(
                channels,
                out,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.kernel_size // 2,
                padding_mode=padding_mode,  # type: ignore[arg-type]
            )
            if self.init == "limit":
                with torch.no_grad():
                    module.weight.normal_(
                        0.0, math.sqrt(conv.weight_var / fan_in), generator=self.generator
                    )
                    assert module.bias is not None
                    module.bias.normal_(0.0, math.sqrt(conv.bias_var), generator=self.generator)
                _annotate(module, conv.weight_var / fan_in, conv.bias_var)
        if self.batchnorm and not is_last:
            norm = nn.BatchNorm1d(out) if self.dims == 1 else nn.BatchNorm2d(out)
            return nn.Sequential(module, norm), out
        return module, out


def _annotate(module: nn.Module, weight_var: float, bias_var: float) -> None:
    object.__setattr__(module, "prior_weight_var", weight_var)  # plain attributes
    object.__setattr__(module, "prior_bias_var", bias_var)


class NTKConv(nn.Module):
    """A conv in the NTK parameterisation: y = √(weight_var/fan_in)·(w ⋆ x) + √bias_var·b.

    ``weight`` (out, in, *taps) and ``bias`` (out,) are iid N(0, 1), so the function at
    initialisation has the same law as the standard parameterisation's, while gradient
    descent with rate η moves it as the NTK of :func:`gpdip.compile_kernel` (``kind="ntk"``)
    predicts (Jacot et al. 2018).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv: Conv,
        dims: int,
        padding_mode: str,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        taps = (conv.kernel_size,) * dims
        self.weight = nn.Parameter(
            torch.randn((out_channels, in_channels, *taps), generator=generator)
        )
        self.bias = nn.Parameter(torch.randn((out_channels,), generator=generator))
        self.weight_scale = math.sqrt(conv.weight_var / (in_channels * conv.kernel_size**dims))
        self.bias_scale = math.sqrt(conv.bias_var)
        self.stride, self.dims, self.padding_mode = conv.stride, dims, padding_mode
        self.pad = conv.kernel_size // 2
        _annotate(self, 1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, (self.pad,) * (2 * self.dims), mode=mode)
        conv = F.conv1d if self.dims == 1 else F.conv2d
        return conv(
            x, self.weight * self.weight_scale, self.bias * self.bias_scale, stride=self.stride
        )
