"""The exact compiler: architecture → limiting stationary covariance of the output.

As every channel count goes to infinity, the output of the random network is
a zero-mean Gaussian process (paper Sec. 3, Theorem 1, Lemma 1; Novak et al.
2019 for deep convolutional nets).  The compiler propagates the per-channel
second moments C[p, r] = E[z(t) z(t+r)] (t ≡ p mod the period) through the
layers, each layer applying its map:

=================  ==========================================================
conv               C → weight_var·mean_taps(C) + bias_var (iid taps)
relu / leaky / erf C → E[φ(u)φ(v)] in closed form (:mod:`gpdip.limit.nonlin`)
downsample         decimation C[τq, τr]; ``avg``: box autocorrelation first
upsample           nearest / bilinear: exact phase-dependent map; sinc: K(r/τ)
skip add           C_shortcut + C_branch (the paths must be uncorrelated)
skip concat        channel groups kept apart; the next conv weights them by
                   their channel counts
=================  ==========================================================

and averages over the phase only at the output.  Everything is torch (float64
by default) and differentiable in the input ``sigma`` and the convs'
``weight_var`` and ``bias_var`` (see ``params`` in :func:`compile_kernel`).

    >>> K = compile_kernel("conv-d2", size=4, dims=1)
    >>> K.shape, bool(K[3] == K.max())
    (torch.Size([7]), True)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import torch

from gpdip.arch.spec import (
    Architecture,
    Block,
    Conv,
    Downsample,
    Erf,
    Layer,
    LeakyReLU,
    ReLU,
    Skip,
    Upsample,
)
from gpdip.errors import GpdipError
from gpdip.limit import covtable as ct
from gpdip.limit.farfield import extend, far_radius, input_radius
from gpdip.limit.nonlin import erf_expectation, leaky_relu_expectation, relu_expectation

# Coarse offsets kept beyond what a sinc upsampling needs: the band-limited
# interpolant sums K_x(m)·sinc(r/τ − m) over the table, and the part of K_x
# beyond it (after its constant floor is removed) is what is left out.
SINC_MARGIN = 32
DEFAULT_MAX_ENTRIES = int(os.environ.get("GPDIP_MAX_TABLE", 2**27))
PARAM_NAMES = ("sigma", "weight_var", "bias_var")


@dataclass(frozen=True)
class Group:
    """Channels that share one second-moment table.

    ``gaussian``: the channels are Gaussian in the limit (conv outputs and
    linear maps of them).  ``frontier``: the convs whose fresh zero-mean
    weights this group is a linear function of.  ``ancestry``: every conv (and
    the input, id 0) it depends on.  Both decide whether an ``add`` is exact.
    """

    table: ct.CovTable | None
    channels: float
    gaussian: bool
    frontier: frozenset[int]
    ancestry: frozenset[int]
    period: int = 1  # cyclostationary period (the same in every dimension)


def compile_kernel(arch: str | os.PathLike[str] | Architecture, size: int | tuple[int, ...],
                   dims: int = 2, params: dict[str, torch.Tensor | float] | None = None,
                   dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                   max_entries: int | None = None) -> torch.Tensor:
    """The limiting stationary output covariance on all offsets of an image of ``size``.

    Args:
        arch: an :class:`Architecture`, a TOML path or a catalog name.
        size: S (an S-sample signal or S×S image) or a tuple of ``dims`` sizes.
        dims: 1 or 2 spatial dimensions.
        params: optional overrides, torch scalars welcome (the result is
            differentiable in them): ``sigma`` (input), ``weight_var`` and
            ``bias_var`` (replace those of every conv).
        max_entries: refuse phase tables larger than this (default 2**27, 1 GiB in float64,
            or ``$GPDIP_MAX_TABLE``).

    Returns:
        K of shape (2H−1, 2W−1) (or (2S−1,) for dims=1) with
        ``K[H−1+dy, W−1+dx]`` = Cov(f(t), f(t + (dy, dx))).
    """
    from gpdip.arch.parse import load_architecture

    arch = load_architecture(arch)
    sizes = _sizes(size, dims)
    params = _check_params(params)
    want = tuple(s - 1 for s in sizes)
    # Offsets beyond the correlation radius follow by periodic continuation (farfield.py).
    sigma = float(torch.as_tensor(params.get("sigma", arch.input.sigma)).detach())
    far = far_radius(arch.layers, input_radius(sigma))
    period = _symbolic_output(arch).period
    if not math.isinf(far):
        want = tuple(min(w, int(far) + period) for w in want)
    radius = tuple(needed_radius(arch.layers, r) for r in want)
    walker = _Walker(params, max_entries or DEFAULT_MAX_ENTRIES, arch.name or "architecture")
    start = Group(input_table(arch, radius, params, dtype, device), float(arch.input.channels),
                  True, frozenset(), frozenset({0}))
    groups = walker.run(arch.layers, [start], "network.layers", want)
    out = _output_group(groups, "network.layers").table
    assert out is not None
    kernel = out.crop(want).phase_mean()
    return kernel if math.isinf(far) else extend(kernel, sizes, int(far), period)


def check_architecture(arch: Architecture) -> None:
    """Apply the limit's rules (Gaussian inputs to non-linearities, exact adds) without tables."""
    _symbolic_output(arch)


def _symbolic_output(arch: Architecture) -> Group:
    """The output group's flags and period, from a walk without tables."""
    prefix = f"{arch.source}: " if arch.source else ""
    start = Group(None, float(arch.input.channels), True, frozenset(), frozenset({0}))
    walker = _Walker({}, DEFAULT_MAX_ENTRIES, arch.name, prefix)
    return _output_group(walker.run(arch.layers, [start], "network.layers"), "network.layers",
                         prefix)


def input_table(arch: Architecture, radius: tuple[int, ...], params: dict,
                dtype: torch.dtype, device: torch.device | str | None) -> ct.CovTable:
    """K_x(r) = variance·exp(−|r|²/(4σ²)): white noise through a Gaussian filter of std σ."""
    sigma = params.get("sigma", arch.input.sigma)
    sigma = torch.as_tensor(sigma, dtype=dtype, device=device)
    grids = torch.meshgrid(*[torch.arange(-r, r + 1, dtype=dtype, device=device)
                             for r in radius], indexing="ij")
    dist2 = torch.stack([g * g for g in grids]).sum(0)
    if float(sigma.detach()) == 0.0:
        kernel = (dist2 == 0).to(dtype)
    else:  # (|r|/(2σ))² rather than |r|²/(4σ²): σ² may underflow for tiny σ
        kernel = torch.exp(-((dist2.sqrt() / (2 * sigma)) ** 2))
    return ct.stationary(arch.input.variance * kernel)


def needed_radius(layers: tuple[Layer, ...], radius: int) -> int:
    """Offsets the layers' input table needs so that the output has ``radius``."""
    for layer in reversed(layers):
        if isinstance(layer, Conv):
            radius *= layer.stride
        elif isinstance(layer, Downsample):
            radius = layer.factor * radius + (layer.factor - 1 if layer.mode == "avg" else 0)
        elif isinstance(layer, Upsample):
            extra = {"nearest": 0, "bilinear": 2, "sinc": SINC_MARGIN}[layer.mode]
            radius = math.ceil(radius / layer.factor) + extra
        elif isinstance(layer, Skip):
            radius = max(needed_radius(layer.branch, radius), needed_radius(layer.shortcut, radius))
        elif isinstance(layer, Block):
            radius = needed_radius(layer.layers, radius)
    return radius


def _sizes(size: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    if dims not in (1, 2):
        raise GpdipError(f"dims: expected 1 or 2, got {dims!r}")
    sizes = (size,) * dims if isinstance(size, int) and not isinstance(size, bool) else size
    if (not isinstance(sizes, tuple) or len(sizes) != dims
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)):
        raise GpdipError(f"size: expected a positive integer or a tuple of {dims}, got {size!r}")
    return sizes


def _check_params(params: dict | None) -> dict:
    params = dict(params or {})
    for key, value in params.items():
        if key not in PARAM_NAMES:
            raise GpdipError(f"params: unknown key {key!r}; expected {', '.join(PARAM_NAMES)}")
        if not torch.all(torch.as_tensor(value) >= 0):
            raise GpdipError(f"params[{key!r}]: must be >= 0, got {value!r}")
    return params


def _output_group(groups: list[Group], where: str, prefix: str = "") -> Group:
    if len(groups) != 1:
        raise GpdipError(f"{prefix}{where}: the network ends with a concat of {len(groups)} "
                         "groups of channels; end it with a conv to get one output")
    if not groups[0].gaussian:
        raise GpdipError(f"{prefix}{where}: the network output is not Gaussian in the limit "
                         "(it ends with a non-linearity); end it with a conv")
    return groups[0]


class _Walker:
    """Applies each layer's kernel map to the channel groups; tables may be None (checks only)."""

    def __init__(self, params: dict, max_entries: int, name: str, prefix: str = "") -> None:
        self.params = params
        self.max_entries = max_entries
        self.name = name
        self.prefix = prefix
        self.next_id = 1

    def fail(self, where: str, msg: str) -> GpdipError:
        return GpdipError(f"{self.prefix}{where}: {msg}")

    def run(self, layers: tuple[Layer, ...], groups: list[Group], where: str,
            want: tuple[int, ...] | None = None) -> list[Group]:
        """Apply ``layers``; ``want`` is the radius needed after the last one.

        After each layer the tables are cropped to the radius the remaining
        layers need: forward maps return every valid offset, and carrying the
        surplus through later phase tables would multiply the work.
        """
        for i, layer in enumerate(layers):
            here = f"{where}[{i}]"
            need = None if want is None else tuple(needed_radius(layers[i + 1:], r) for r in want)
            groups = self.layer(layer, groups, here, need)
            if need is not None:
                groups = [self.map_table(g, lambda t, n=need: t.crop(tuple(
                    min(a, b) for a, b in zip(t.radius, n, strict=True)))) for g in groups]
        return groups

    def layer(self, layer: Layer, groups: list[Group], here: str,
              need: tuple[int, ...] | None) -> list[Group]:
        """One layer's kernel map on every channel group."""
        if isinstance(layer, Conv):
            return [self.conv(layer, groups)]
        if isinstance(layer, (ReLU, LeakyReLU, Erf)):
            return [self.nonlinearity(layer, g, here) for g in groups]
        if isinstance(layer, Downsample):
            return [replace(self.map_table(g, lambda t: _downsample(t, layer)),
                            period=g.period // math.gcd(g.period, layer.factor)) for g in groups]
        if isinstance(layer, Upsample):
            return [self.upsample(layer, g, here) for g in groups]
        if isinstance(layer, Skip):
            return self.skip(layer, groups, here, need)
        assert isinstance(layer, Block)
        return self.run(layer.layers, groups, here, need)

    def map_table(self, group: Group, fn) -> Group:
        return group if group.table is None else replace(group, table=fn(group.table))

    def conv(self, conv: Conv, groups: list[Group]) -> Group:
        conv_id, self.next_id = self.next_id, self.next_id + 1
        ancestry = frozenset().union(*(g.ancestry for g in groups)) | {conv_id}
        table = None
        if groups[0].table is not None:
            total = sum(g.channels for g in groups)
            parts = ct.align([ct.conv_taps(g.table, conv.kernel_size) for g in groups
                              if g.table is not None])
            mixed = sum(p.values * (g.channels / total) for p, g in zip(parts, groups, strict=True))
            weight_var = self.params.get("weight_var", conv.weight_var)
            bias_var = self.params.get("bias_var", conv.bias_var)
            table = ct.CovTable(weight_var * mixed + bias_var, parts[0].period, parts[0].radius)
            if conv.stride > 1:
                table = ct.decimate(table, conv.stride)
        period = math.lcm(*(g.period for g in groups))
        return Group(table, float(conv.channels), True, frozenset({conv_id}), ancestry,
                     period // math.gcd(period, conv.stride))

    def nonlinearity(self, layer: Layer, group: Group, where: str) -> Group:
        if not group.gaussian:
            raise self.fail(where, f"{type(layer).__name__} needs a Gaussian input in the limit "
                            "(a conv output, or a sum, concat or resampling of conv outputs), "
                            "but its input passes through an earlier non-linearity without a "
                            "conv in between (e.g. an identity shortcut carrying a post-"
                            "activation); insert a conv")
        out = replace(group, gaussian=False, frontier=frozenset())
        if group.table is None:
            return out
        table = group.table
        k11, k22 = ct.diagonal_pairs(table)
        if isinstance(layer, ReLU):
            values = relu_expectation(k11, k22, table.values)
        elif isinstance(layer, LeakyReLU):
            values = leaky_relu_expectation(k11, k22, table.values, layer.negative_slope)
        else:
            values = erf_expectation(k11, k22, table.values)
        return replace(out, table=ct.CovTable(values, table.period, table.radius))

    def upsample(self, layer: Upsample, group: Group, where: str) -> Group:
        if layer.mode == "sinc" and group.period != 1:
            raise self.fail(where, "sinc upsampling needs a stationary input, but an earlier "
                            "nearest/bilinear upsampling made it cyclostationary; use sinc "
                            "throughout or nearest/bilinear here")
        if layer.mode != "sinc":
            group = replace(group, period=group.period * layer.factor)
        table = group.table
        if table is None:
            return group
        if layer.mode == "sinc":
            return replace(group, table=ct.sinc_upsample(table, layer.factor))
        span = 0 if layer.mode == "nearest" else 1
        entries = math.prod(layer.factor * p * (2 * layer.factor * (r - 2 * span) + 1)
                            for p, r in zip(table.period, table.radius, strict=True))
        if entries > self.max_entries:
            raise self.fail(where, f"compiling {self.name!r} at this size needs a phase table of "
                            f"{entries:,} entries (period {layer.factor * table.period[0]} per "
                            f"dimension), above the limit of {self.max_entries:,}; {layer.mode} "
                            "upsampling makes the kernel cyclostationary and the compiler keeps "
                            "every phase exactly. Use a smaller size, sinc upsampling, or raise "
                            "max_entries / $GPDIP_MAX_TABLE")
        sources = (ct.nearest_sources if layer.mode == "nearest" else ct.bilinear_sources)
        return replace(group, table=ct.upsample(table, layer.factor, sources(layer.factor)))

    def skip(self, layer: Skip, groups: list[Group], where: str,
             need: tuple[int, ...] | None) -> list[Group]:
        short = self.run(layer.shortcut, groups, f"{where}.shortcut", need)
        branch = self.run(layer.branch, groups, f"{where}.branch", need)
        if layer.mode == "concat":
            return short + branch
        if len(short) != 1 or len(branch) != 1:
            raise self.fail(where, "add needs each path to end with one group of channels "
                            "(end a concat path with a conv)")
        a, b = short[0], branch[0]
        if a.channels != b.channels:
            raise self.fail(where, f"add needs equal channel counts: shortcut has "
                            f"{a.channels:g}, branch has {b.channels:g}")
        if not (_uncorrelated(a, b) or _uncorrelated(b, a)):
            raise self.fail(where, "add of two correlated paths: the limit's sum rule needs one "
                            "path to end in a conv whose weights the other path never uses")
        gaussian = a.gaussian and b.gaussian
        table = None
        if a.table is not None and b.table is not None:
            ta, tb = ct.align([a.table, b.table])
            table = ct.CovTable(ta.values + tb.values, ta.period, ta.radius)
        return [Group(table, a.channels, gaussian,
                      a.frontier | b.frontier if gaussian else frozenset(),
                      a.ancestry | b.ancestry, math.lcm(a.period, b.period))]


def _uncorrelated(a: Group, b: Group) -> bool:
    """E[a b] = 0 when a is linear in fresh zero-mean weights that b never touches."""
    return a.gaussian and bool(a.frontier) and not (a.frontier & b.ancestry)


def _downsample(table: ct.CovTable, layer: Downsample) -> ct.CovTable:
    if layer.mode == "avg":
        table = ct.box_average(table, layer.factor)
    return ct.decimate(table, layer.factor)
