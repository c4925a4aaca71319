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
from torch import nn

from gpdip.arch.parse import load_architecture
from gpdip.arch.spec import Architecture
from gpdip.errors import GpdipError
from gpdip.finite.builder import INITS, PADDING_MODES, PARAMETERIZATIONS, Builder
from gpdip.layers import base as layer_fold


def build_network(
    arch: str | os.PathLike[str] | Architecture,
    *,
    dims: int = 2,
    width: int | None = None,
    out_channels: int | None = None,
    init: str = "limit",
    batchnorm: bool = False,
    padding: str | None = None,
    generator: torch.Generator | None = None,
    parameterization: str = "standard",
) -> nn.Module:
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
        parameterization: ``"standard"`` (the weights carry the variance) or ``"ntk"``
            (weights and biases N(0, 1), the conv scales by √(weight_var/fan_in) and
            √bias_var): the same function at init, and gradient descent then follows the
            NTK of ``compile_kernel(..., kind="ntk")``.  Needs ``init="limit"``.
    """
    arch = load_architecture(arch)
    if width is not None:
        arch = arch.scaled(width)
    if dims not in (1, 2):
        raise GpdipError(f"dims: expected 1 or 2, got {dims!r}")
    if init not in INITS:
        raise GpdipError(f"init: expected one of {', '.join(INITS)}, got {init!r}")
    if padding is not None and padding not in PADDING_MODES:
        raise GpdipError(f"padding: expected one of {', '.join(PADDING_MODES)}, got {padding!r}")
    if parameterization not in PARAMETERIZATIONS:
        raise GpdipError(
            f"parameterization: expected one of {', '.join(PARAMETERIZATIONS)}, "
            f"got {parameterization!r}"
        )
    if parameterization == "ntk" and init != "limit":
        raise GpdipError(
            "parameterization='ntk' draws every weight N(0, 1): it needs "
            f"init='limit', got init={init!r}"
        )
    builder = Builder(
        dims,
        init,
        batchnorm,
        padding,
        generator,
        out_channels,
        layer_fold.last_conv(arch.layers),
        parameterization,
    )
    body, _ = builder.sequence(arch.layers, arch.input.channels)
    return body


def sample_input(
    arch: str | os.PathLike[str] | Architecture,
    shape: tuple[int, ...],
    *,
    batch: int = 1,
    width: int | None = None,
    generator: torch.Generator | None = None,
    kind: str = "limit",
    periodic: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
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
    noise_shape = (
        tuple(shape) if periodic or sigma == 0 else tuple(n + math.ceil(10 * sigma) for n in shape)
    )
    white = torch.randn((batch, channels, *noise_shape), generator=generator, dtype=torch.float64)
    if sigma > 0:
        white = _gaussian_filter_periodic(white, sigma, len(shape))
    crop: tuple = (Ellipsis, *(slice(0, n) for n in shape))
    return (math.sqrt(variance) * white[crop]).to(dtype=dtype, device=device)


def _gaussian_filter_periodic(x: torch.Tensor, sigma: float, dims: int) -> torch.Tensor:
    """Circular filtering by the square root of K_x's spectrum (exact covariance K_x)."""
    spatial = x.shape[-dims:]
    grids = torch.meshgrid(
        *[torch.fft.fftfreq(n, d=1 / n, dtype=torch.float64) for n in spatial], indexing="ij"
    )
    # K_x on the torus (offsets wrapped to the nearest image) and its spectrum.
    dist2 = torch.stack([g * g for g in grids]).sum(0)
    spectrum = torch.fft.fftn(torch.exp(-dist2 / (4 * sigma**2))).real.clamp_min(0)
    axes = tuple(range(-dims, 0))
    return torch.fft.ifftn(torch.fft.fftn(x, dim=axes) * spectrum.sqrt(), dim=axes).real


def total_downsampling(arch: str | os.PathLike[str] | Architecture) -> int:
    """The factor the input size must be a multiple of (product of nested downsamplings)."""
    return layer_fold.total_downsampling(load_architecture(arch).layers)


def prior_variances(net: nn.Module) -> dict[str, float] | None:
    """Per-parameter prior variance of a limit-initialised network, by parameter name.

    weight_var/fan_in for conv weights and bias_var for biases (standard parameterisation;
    1 for both in the NTK parameterisation), as recorded by the builder on each conv.
    Exact, unlike the sample second moment of a small tensor (a 1×16 readout's is off by
    ~35%).  None when some parameter has no recorded prior (BatchNorm, PyTorch's init).
    """
    out: dict[str, float] = {}
    for prefix, module in net.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            prior = getattr(module, f"prior_{name}_var", None)
            if prior is None:
                return None
            out[f"{prefix}.{name}" if prefix else name] = float(prior)
    return out
