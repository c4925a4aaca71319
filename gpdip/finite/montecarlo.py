"""Monte Carlo estimate of a finite network's output covariance, to check the compiler.

Each sample is a fresh network (weights drawn as the limit assumes) applied to
a fresh input; its output's spatial autocovariance is averaged over positions.
With ``circular`` padding and a periodic input the output is exactly
(cyclo)stationary on the torus, so every position counts; otherwise only
positions at least ``border`` pixels from the edge are used.  The samples are
iid, so the standard error of the mean is their std / √n.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from gpdip.arch.parse import load_architecture
from gpdip.arch.spec import Architecture
from gpdip.errors import GpdipError
from gpdip.finite.network import build_network, sample_input, total_downsampling


@dataclass
class MonteCarloEstimate:
    """Mean and standard error tables, each of shape (2S−1,)*dims like compile_kernel."""

    mean: torch.Tensor
    stderr: torch.Tensor
    samples: int
    width: int


def estimate_kernel(
    arch: str | os.PathLike[str] | Architecture,
    size: int,
    *,
    dims: int = 2,
    width: int = 256,
    samples: int = 100,
    seed: int = 0,
    periodic: bool = True,
    domain: int | None = None,
    border: int = 0,
    out_channels: int | None = None,
    progress: bool = False,
) -> MonteCarloEstimate:
    """Estimate Cov(f(t), f(t+r)) for |r_d| ≤ size−1 from ``samples`` sampled networks.

    Args:
        size: S; the tables have shape (2S−1,)*dims.
        width: every layer's channels scaled so the widest is ``width``.
        periodic: circular padding and a periodic input on a torus of ``domain``
            samples per side (default: 4S rounded up to the total downsampling).
        border: with ``periodic=False``, positions this close to an edge are dropped.
        out_channels: output channels of each sampled network (default ``width``).
            Channels are exchangeable draws of the last layer's weights, so
            averaging over them removes most of the variance of the random
            constant component (the ReLU mean times the output weights), which
            otherwise dominates the error: one channel per network needs ~100x
            more networks for the same accuracy.
    """
    arch = load_architecture(arch)
    if samples < 2:
        raise GpdipError(f"samples: need at least 2 for a standard error, got {samples}")
    multiple = total_downsampling(arch)
    n = domain or math.ceil(4 * size / multiple) * multiple
    if n % multiple:
        raise GpdipError(f"domain: {n} is not a multiple of the total downsampling {multiple}")
    if not periodic and n - 2 * border < 2 * size:
        raise GpdipError(f"domain {n} minus 2*border {border} leaves fewer than 2*size samples")
    generator = torch.Generator().manual_seed(seed)
    total = sum_sq = None
    steps = range(samples)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"Monte Carlo (width {width})", unit="net")
    for _ in steps:
        net = build_network(
            arch,
            dims=dims,
            width=width,
            generator=generator,
            out_channels=out_channels or width,
            padding="circular" if periodic else None,
        )
        x = sample_input(
            arch,
            (n,) * dims,
            width=width,
            generator=generator,
            periodic=periodic,
            dtype=torch.float64,
        )
        with torch.no_grad():
            y = net.double()(x)[0]  # (C_out, *spatial)
        if not periodic:
            y = y[(slice(None), *([slice(border, n - border)] * dims))]
        est = autocovariance(y, size, periodic)
        total = est if total is None else total + est
        sum_sq = est**2 if sum_sq is None else sum_sq + est**2
    assert total is not None and sum_sq is not None
    mean = total / samples
    var = (sum_sq / samples - mean**2).clamp_min(0) * samples / (samples - 1)
    return MonteCarloEstimate(mean, (var / samples).sqrt(), samples, width)


def autocovariance(y: torch.Tensor, size: int, periodic: bool) -> torch.Tensor:
    """mean_t y(t) y(t+r) over positions and channels for |r_d| < size; y: (C, *spatial).

    Periodic: circular autocorrelation by FFT.  Otherwise each offset is
    averaged over the pairs that lie inside the window (zero-padded FFT,
    divided by the count of such pairs).
    """
    dims = y.dim() - 1
    spatial = y.shape[1:]
    axes = tuple(range(1, dims + 1))
    if periodic:
        spec = torch.fft.rfftn(y, dim=axes)
        corr = torch.fft.irfftn(spec * spec.conj(), s=spatial, dim=axes).mean(0)
        corr = corr / math.prod(spatial)
    else:
        padded = [2 * n for n in spatial]
        spec = torch.fft.rfftn(y, s=padded, dim=axes)
        corr = torch.fft.irfftn(spec * spec.conj(), s=padded, dim=axes).mean(0)
        ones = torch.fft.rfftn(torch.ones(spatial, dtype=y.dtype), s=padded)
        counts = torch.fft.irfftn(ones * ones.conj(), s=padded).round()
        corr = corr / counts.clamp_min(1)
    # corr[k] holds offset +k (and −k at the end): roll so offset 0 is centred.
    shifts = tuple(size - 1 for _ in range(dims))
    corr = torch.roll(corr, shifts=shifts, dims=tuple(range(dims)))
    return corr[tuple(slice(0, 2 * size - 1) for _ in range(dims))]


def relative_error(estimate: torch.Tensor, exact: torch.Tensor, max_offset: int = 8) -> float:
    """‖K̂ − K‖_F / ‖K‖_F over offsets |r_d| ≤ max_offset (tables centred as compile_kernel)."""
    centre = [(n - 1) // 2 for n in exact.shape]
    index = tuple(slice(c - max_offset, c + max_offset + 1) for c in centre)
    a, b = estimate[index], exact[index].to(estimate)
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))
