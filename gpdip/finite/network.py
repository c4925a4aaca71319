"""The finite network of an architecture, with weights drawn as the limit assumes.

``build_network(arch)`` turns the same description the compiler reads into a
``torch.nn.Module``; :func:`sample_input` draws its random input.  With
``init="limit"`` every conv's weights are iid N(0, weight_var/fan_in) and its
bias N(0, bias_var), and no BatchNorm is used: as the channels grow, the output
covariance converges to :func:`gpdip.compile_kernel` (checked by
:mod:`gpdip.finite.montecarlo`).  The practical DIP variants (BatchNorm, reflection
padding, PyTorch's default init) are options that depart from the limit.

    >>> import torch
    >>> net = build_network("conv-d2", dims=1, width=16, generator=torch.Generator().manual_seed(0))
    >>> x = sample_input("conv-d2", (32,), width=16, generator=torch.Generator().manual_seed(1))
    >>> tuple(net(x).shape)
    (1, 1, 32)
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from gpdip.arch.parse import load_architecture
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

_PADDING_MODES = {"zero": "zeros", "reflect": "reflect", "circular": "circular"}
INITS = ("limit", "pytorch")


def build_network(arch: str | os.PathLike[str] | Architecture, *, dims: int = 2,
                  width: int | None = None, out_channels: int | None = None,
                  init: str = "limit", batchnorm: bool = False, padding: str | None = None,
                  generator: torch.Generator | None = None) -> nn.Module:
    """The finite network: (N, C_in, *spatial) → (N, C_out, *spatial).

    Args:
        arch: an Architecture, a TOML path or a catalog name.
        dims: 1 or 2 spatial dimensions.
        width: scale every layer's channels in proportion so the widest is ``width``.
        out_channels: replace the last conv's channel count (e.g. 3 for colour).
        init: ``"limit"`` (N(0, weight_var/fan_in) weights, N(0, bias_var) bias) or
            ``"pytorch"`` (PyTorch's default init; departs from the limit).
        batchnorm: BatchNorm after every conv but the last (departs from the limit).
        padding: override every conv's padding (``zero``, ``reflect``, ``circular``).
        generator: the random generator for the weights (seeded runs).
    """
    arch = load_architecture(arch)
    if width is not None:
        arch = arch.scaled(width)
    if dims not in (1, 2):
        raise GpdipError(f"dims: expected 1 or 2, got {dims!r}")
    if init not in INITS:
        raise GpdipError(f"init: expected one of {', '.join(INITS)}, got {init!r}")
    if padding is not None and padding not in _PADDING_MODES:
        raise GpdipError(f"padding: expected one of {', '.join(_PADDING_MODES)}, got {padding!r}")
    builder = _Builder(dims, init, batchnorm, padding, generator, out_channels, arch)
    body, _ = builder.sequence(arch.layers, arch.input.channels)
    return body


def sample_input(arch: str | os.PathLike[str] | Architecture, shape: tuple[int, ...], *,
                 batch: int = 1, width: int | None = None, generator: torch.Generator | None = None,
                 kind: str = "limit", periodic: bool = False, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The random input, shape (batch, C_in, *shape).

    ``kind="limit"``: each channel is zero-mean Gaussian with covariance
    K_x(r) = variance·exp(−|r|²/(4σ²)), i.e. white noise through a Gaussian
    filter of std σ.  The filter is the spectral square root of K_x, so the
    covariance is exact on the grid (not only in the continuum).  With
    ``periodic=True`` the input lives on the torus of ``shape`` (for circular
    padding); otherwise it is cut from a torus padded by 10σ, where wrap-around
    correlations are below exp(−25).
    ``kind="uniform"``: the original DIP input, U(0, 0.1) (mean 0.05); departs
    from the limit.
    """
    arch = load_architecture(arch)
    channels = (arch.scaled(width) if width else arch).input.channels
    full = (batch, channels, *shape)
    if kind == "uniform":
        return 0.1 * torch.rand(full, generator=generator, dtype=dtype).to(device)
    if kind != "limit":
        raise GpdipError(f"kind: expected 'limit' or 'uniform', got {kind!r}")
    sigma, variance = arch.input.sigma, arch.input.variance
    noise_shape = tuple(shape) if periodic or sigma == 0 else tuple(
        n + math.ceil(10 * sigma) for n in shape)
    white = torch.randn((batch, channels, *noise_shape), generator=generator, dtype=torch.float64)
    if sigma > 0:
        white = _gaussian_filter_periodic(white, sigma, len(shape))
    crop: tuple = (Ellipsis, *(slice(0, n) for n in shape))
    return (math.sqrt(variance) * white[crop]).to(dtype=dtype, device=device)


def _gaussian_filter_periodic(x: torch.Tensor, sigma: float, dims: int) -> torch.Tensor:
    """Circular filtering by the square root of K_x's spectrum (exact covariance K_x)."""
    spatial = x.shape[-dims:]
    grids = torch.meshgrid(*[torch.fft.fftfreq(n, d=1 / n, dtype=torch.float64) for n in spatial],
                           indexing="ij")
    # K_x on the torus (offsets wrapped to the nearest image) and its spectrum.
    dist2 = torch.stack([g * g for g in grids]).sum(0)
    spectrum = torch.fft.fftn(torch.exp(-dist2 / (4 * sigma**2))).real.clamp_min(0)
    axes = tuple(range(-dims, 0))
    return torch.fft.ifftn(torch.fft.fftn(x, dim=axes) * spectrum.sqrt(), dim=axes).real


class _Builder:
    """Walks the layers, tracking channel counts, and builds modules."""

    def __init__(self, dims: int, init: str, batchnorm: bool, padding: str | None,
                 generator: torch.Generator | None, out_channels: int | None,
                 arch: Architecture) -> None:
        self.dims, self.init, self.batchnorm = dims, init, batchnorm
        self.padding, self.generator = padding, generator
        self.out_channels = out_channels
        from gpdip.arch.spec import last_conv

        self.last = last_conv(arch.layers)

    def sequence(self, layers: tuple[Layer, ...], channels: int) -> tuple[nn.Sequential, int]:
        modules = []
        for layer in layers:
            module, channels = self.layer(layer, channels)
            modules.append(module)
        return nn.Sequential(*modules), channels

    def layer(self, layer: Layer, channels: int) -> tuple[nn.Module, int]:
        if isinstance(layer, Conv):
            return self.conv(layer, channels)
        if isinstance(layer, ReLU):
            return nn.ReLU(), channels
        if isinstance(layer, LeakyReLU):
            return nn.LeakyReLU(layer.negative_slope), channels
        if isinstance(layer, Erf):
            return ErfModule(), channels
        if isinstance(layer, Downsample):
            return Downsampler(layer.factor, layer.mode, self.dims), channels
        if isinstance(layer, Upsample):
            return Upsampler(layer.factor, layer.mode, self.dims), channels
        if isinstance(layer, Block):
            return self.sequence(layer.layers, channels)
        assert isinstance(layer, Skip)
        shortcut, c_short = self.sequence(layer.shortcut, channels)
        branch, c_branch = self.sequence(layer.branch, channels)
        out = c_short + c_branch if layer.mode == "concat" else c_branch
        return SkipModule(branch, shortcut, layer.mode), out

    def conv(self, conv: Conv, channels: int) -> tuple[nn.Module, int]:
        is_last = conv is self.last
        out = self.out_channels if (is_last and self.out_channels) else conv.channels
        cls = nn.Conv1d if self.dims == 1 else nn.Conv2d
        module = cls(channels, out, conv.kernel_size, stride=conv.stride,
                     padding=conv.kernel_size // 2,
                     padding_mode=_PADDING_MODES[self.padding or conv.padding])  # type: ignore[arg-type]
        if self.init == "limit":
            fan_in = channels * conv.kernel_size**self.dims
            with torch.no_grad():
                module.weight.normal_(0.0, math.sqrt(conv.weight_var / fan_in),
                                      generator=self.generator)
                assert module.bias is not None
                module.bias.normal_(0.0, math.sqrt(conv.bias_var), generator=self.generator)
        if self.batchnorm and not is_last:
            norm = nn.BatchNorm1d(out) if self.dims == 1 else nn.BatchNorm2d(out)
            return nn.Sequential(module, norm), out
        return module, out


class ErfModule(nn.Module):
    """Element-wise erf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


class Downsampler(nn.Module):
    """Decimation y(s) = x(τs) or average pooling y(s) = mean_{i<τ} x(τs + i)."""

    def __init__(self, factor: int, mode: str, dims: int) -> None:
        super().__init__()
        self.factor, self.mode, self.dims = factor, mode, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            pool = F.avg_pool1d if self.dims == 1 else F.avg_pool2d
            return pool(x, self.factor)
        index: tuple = (Ellipsis, *([slice(None, None, self.factor)] * self.dims))
        return x[index]


class Upsampler(nn.Module):
    """Nearest, (bi)linear (align_corners=False) or sinc (FFT zero-padding) upsampling."""

    def __init__(self, factor: int, mode: str, dims: int) -> None:
        super().__init__()
        self.factor, self.mode, self.dims = factor, mode, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.factor, mode="nearest")
        if self.mode == "bilinear":
            mode = "linear" if self.dims == 1 else "bilinear"
            return F.interpolate(x, scale_factor=self.factor, mode=mode, align_corners=False)
        return sinc_upsample(x, self.factor, self.dims)


def sinc_upsample(x: torch.Tensor, factor: int, dims: int) -> torch.Tensor:
    """Band-limited upsampling on the torus: zero-pad the spectrum (Nyquist bin split)."""
    for axis in range(x.dim() - dims, x.dim()):
        n = x.shape[axis]
        spec = torch.fft.fft(x, dim=axis)
        m = n * factor
        shape = list(spec.shape)
        shape[axis] = m
        out = spec.new_zeros(shape)
        half = n // 2
        idx_lo = torch.arange(0, (n + 1) // 2)
        idx_hi = torch.arange(n - half, n) if half else torch.arange(0)
        out.index_copy_(axis, idx_lo, spec.index_select(axis, idx_lo))
        out.index_copy_(axis, idx_hi + (m - n), spec.index_select(axis, idx_hi))
        if n % 2 == 0:  # split the Nyquist bin between +n/2 and −n/2
            nyq = spec.index_select(axis, torch.tensor([half])) / 2
            out.index_copy_(axis, torch.tensor([half]), nyq)
            out.index_copy_(axis, torch.tensor([m - half]), nyq)
        x = torch.fft.ifft(out, dim=axis).real * factor
    return x


class SkipModule(nn.Module):
    """Shortcut and branch from one input, added or concatenated as [shortcut, branch]."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module, mode: str) -> None:
        super().__init__()
        self.branch, self.shortcut, self.mode = branch, shortcut, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.shortcut(x), self.branch(x)
        if a.shape[2:] != b.shape[2:]:
            raise GpdipError(f"skip: shortcut gives spatial size {tuple(a.shape[2:])} but the "
                             f"branch gives {tuple(b.shape[2:])}; the input size must be a "
                             "multiple of the network's total downsampling")
        return torch.cat([a, b], dim=1) if self.mode == "concat" else a + b


def total_downsampling(arch: str | os.PathLike[str] | Architecture) -> int:
    """The factor the input size must be a multiple of (product of nested downsamplings)."""
    arch = load_architecture(arch)
    return _multiple(arch.layers)


def _multiple(layers: tuple[Layer, ...]) -> int:
    factor, best = 1, 1
    for layer in layers:
        if isinstance(layer, Conv):
            factor *= layer.stride
        elif isinstance(layer, Downsample):
            factor *= layer.factor
        elif isinstance(layer, Upsample):
            factor = max(1, factor // layer.factor)
        elif isinstance(layer, Block):
            best = max(best, factor * _multiple(layer.layers))
            factor *= _net_factor(layer.layers)
        elif isinstance(layer, Skip):
            best = max(best, factor * _multiple(layer.branch), factor * _multiple(layer.shortcut))
        best = max(best, factor)
    return best


def _net_factor(layers: tuple[Layer, ...]) -> int:
    num, den = 1, 1
    for layer in layers:
        if isinstance(layer, Conv):
            num *= layer.stride
        elif isinstance(layer, Downsample):
            num *= layer.factor
        elif isinstance(layer, Upsample):
            den *= layer.factor
        elif isinstance(layer, Block):
            num *= _net_factor(layer.layers)
    return max(1, num // den)
