"""Which limit does a finite DIP follow?  Small, transparent pieces of the convergence study.

Everything here is dense and float64 on the torus, so it is an independent reference for
the grid-scale predictors (``gpdip.gp``) rather than a user of them:

* :func:`torus_matrix` wraps a compiled stationary table (``K[S-1+r]``) around a torus of
  ``shape``: M[i, j] = table[nearest-image offset of j - i].  For a circular-padded
  network fed a periodic input this is the exact limit kernel as long as the torus is
  wider than twice the correlation reach (then no receptive field meets its own image).
* :func:`ntk_gd_prediction`: the centred infinite-width network trained by full-batch GD
  on L = 1/2 sum_o (f - y)^2 with rate eta (NTK parameterisation),
  f_t = Theta_{:,o} g_t(Theta_oo) y,  g_t(l) = (1 - (1 - eta l)^t) / l,
  evaluated through the eigendecomposition of Theta_oo (g_t(0) = eta t, its limit).
* :func:`gp_posterior`: the NNGP posterior mean and std with noise variance s^2.
* :func:`train_network`: the finite network, centred (f(z) - f_0(z), f_0 detached), trained
  by a plain torch loop (GD or Adam), outputs recorded at given steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gpdip.arch.spec import Architecture
from gpdip.errors import GpdipError
from gpdip.finite.network import build_network, sample_input
from gpdip.limit.compiler import compile_kernels

ArchLike = str | os.PathLike[str] | Architecture


def torus_matrix(table: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Dense (N, N) kernel on the torus ``shape`` (N = prod(shape)) from a stationary table.

    ``table`` has shape (2S_d - 1,) per axis with offset r at index S_d - 1 + r, and needs
    S_d - 1 >= shape_d // 2 (every nearest-image offset present).  Row-major flattening.
    """
    shape = tuple(int(n) for n in shape)
    if table.dim() != len(shape):
        raise GpdipError(f"table: {table.dim()}-D for a {len(shape)}-D torus {shape}")
    grids = []
    for axis, n in enumerate(shape):
        half = (table.shape[axis] - 1) // 2
        if half < n // 2:
            raise GpdipError(
                f"table: axis {axis} reaches offset {half}, the torus of {n} "
                f"needs {n // 2}; compile with size >= {n // 2 + 1}"
            )
        pos = torch.arange(n)
        offset = (pos[None, :] - pos[:, None]) % n
        offset = torch.where(offset > n // 2, offset - n, offset)  # nearest image
        grids.append(offset + half)
    if len(shape) == 1:
        return table[grids[0]]
    rows = grids[0][:, None, :, None].expand(shape[0], shape[1], shape[0], shape[1])
    cols = grids[1][None, :, None, :].expand(shape[0], shape[1], shape[0], shape[1])
    n_total = shape[0] * shape[1]
    return table[rows, cols].reshape(n_total, n_total)


def torus_kernels(arch: ArchLike, shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, Theta): dense float64 NNGP and NTK matrices of ``arch`` on the torus ``shape``."""
    dims = len(shape)
    size = tuple(n // 2 + 1 for n in shape)
    nngp, ntk = compile_kernels(arch, size if dims == 2 else size[0], dims=dims)
    return torus_matrix(nngp, shape), torus_matrix(ntk, shape)


def stability_bound(theta_oo: torch.Tensor) -> float:
    """2 / lambda_max(Theta_oo): kernel GD diverges for rates above it."""
    return 2.0 / float(torch.linalg.eigvalsh(theta_oo)[-1])


def ntk_gd_prediction(
    theta: torch.Tensor,
    observed: torch.Tensor,
    y_obs: torch.Tensor,
    lr: float,
    steps: Sequence[int],
) -> torch.Tensor:
    """f_t = Theta_{:,o} g_t(Theta_oo) y for each t in ``steps``: shape (len(steps), N).

    theta: (N, N) NTK; observed: (n_o,) indices; y_obs: (n_o,) targets.  Exact in float64
    via Theta_oo = V diag(l) V^T, g_t(l) = (1 - (1 - lr l)^t)/l (= lr t at l = 0).
    """
    if lr <= 0:
        raise GpdipError(f"lr: expected > 0, got {lr}")
    if any(int(t) < 0 for t in steps):
        raise GpdipError(f"steps: expected non-negative step counts, got {list(steps)}")
    theta = theta.double()
    theta_oo = theta[observed][:, observed]
    evals, evecs = torch.linalg.eigh(theta_oo)
    evals = evals.clamp_min(0.0)  # round-off below zero; the NTK is PSD
    if lr * float(evals[-1]) >= 2:
        raise GpdipError(
            f"lr {lr} is above the stability bound 2/lambda_max = {2 / float(evals[-1]):.4g}"
        )
    coeff = evecs.T @ y_obs.double()
    out = []
    for t in steps:
        decay = (1 - lr * evals) ** int(t)
        small = evals < 1e-12
        g = torch.where(small, lr * int(t), (1 - decay) / torch.where(small, 1.0, evals))
        out.append(theta[:, observed] @ (evecs @ (g * coeff)))
    return torch.stack(out)


def kernel_gd_recursion(
    theta: torch.Tensor,
    observed: torch.Tensor,
    y_obs: torch.Tensor,
    lr: float,
    steps: Sequence[int],
) -> torch.Tensor:
    """Reference: f_{t+1} = f_t - lr Theta_{:,o} (f_t[o] - y), f_0 = 0, run step by step."""
    f = torch.zeros(theta.shape[0], dtype=torch.float64)
    out, wanted = {}, set(int(t) for t in steps)
    for t in range(max(wanted) + 1):
        if t in wanted:
            out[t] = f.clone()
        f = f - lr * theta[:, observed].double() @ (f[observed] - y_obs.double())
    return torch.stack([out[int(t)] for t in steps])


def gp_posterior(
    k: torch.Tensor, observed: torch.Tensor, y_obs: torch.Tensor, noise_var: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """NNGP posterior mean K_{:,o}(K_oo + s^2 I)^-1 y and std of f (no noise), shapes (N,)."""
    k = k.double()
    k_oo = k[observed][:, observed] + noise_var * torch.eye(len(observed), dtype=torch.float64)
    chol = torch.linalg.cholesky(k_oo)
    k_xo = k[:, observed]
    mean = k_xo @ torch.cholesky_solve(y_obs.double()[:, None], chol)[:, 0]
    half = torch.linalg.solve_triangular(chol, k_xo.T, upper=False)
    var = torch.diagonal(k) - (half * half).sum(0)
    return mean, var.clamp_min(0).sqrt()


@dataclass
class TrainResult:
    """Outputs of one training run: ``outputs[i]`` (N,) at ``steps[i]``; ``psnr`` per step."""

    steps: list[int]
    outputs: torch.Tensor
    psnr: np.ndarray
    seconds: float


def psnr(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """10 log10(1 / MSE) for signals in [0, 1]."""
    mse = float(((estimate.double() - truth.double()) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-30))


def train_network(
    arch: ArchLike,
    shape: Sequence[int],
    observed: torch.Tensor,
    y_obs: torch.Tensor,
    *,
    width: int,
    seed: int,
    lr: float,
    steps: Sequence[int],
    optimizer: str = "gd",
    parameterization: str = "ntk",
    truth: torch.Tensor | None = None,
) -> TrainResult:
    """Train a centred circular network on L = 1/2 sum_o (f(z) - f_0(z) - y)^2.

    ``optimizer="gd"``: theta <- theta - lr grad L (full batch); ``"adam"``: torch Adam on
    the same loss.  float32 network; the recorded outputs are float64 copies.  ``truth``
    (N,) adds the PSNR of every step (``psnr``, length max(steps) + 1).
    """
    if optimizer not in ("gd", "adam"):
        raise GpdipError(f"optimizer: expected 'gd' or 'adam', got {optimizer!r}")
    import time

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    net = build_network(
        arch,
        dims=len(shape),
        width=width,
        out_channels=1,
        parameterization=parameterization,
        padding="circular",
        generator=generator,
    )
    z = sample_input(arch, tuple(shape), width=width, periodic=True, generator=generator)
    with torch.no_grad():
        f_init = net(z).reshape(-1).clone()
    params = list(net.parameters())
    # Plain GD by hand: torch.optim's import pulls in dynamo (~40 s on a loaded machine).
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else None
    target = y_obs.float()
    wanted, recorded, curve = set(int(t) for t in steps), {}, []
    for t in range(max(wanted) + 1):
        for p in params:
            p.grad = None
        f = net(z).reshape(-1) - f_init
        if t in wanted:
            recorded[t] = f.detach().double().clone()
        if truth is not None:
            curve.append(psnr(f.detach(), truth))
        loss = 0.5 * ((f[observed] - target) ** 2).sum()
        loss.backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for p in params:
                    assert p.grad is not None  # every parameter reaches the output
                    p.sub_(lr * p.grad)
        if not math.isfinite(loss.item()):
            raise GpdipError(f"training diverged at step {t} (width {width}, lr {lr})")
    outputs = torch.stack([recorded[int(t)] for t in steps])
    return TrainResult(
        list(map(int, steps)), outputs, np.asarray(curve), time.perf_counter() - start
    )


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """Root mean square of a - b over all entries."""
    return float(((a.double() - b.double()) ** 2).mean().sqrt())


def loglog_slope(widths: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) against log(width)."""
    if len(widths) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(np.asarray(widths, float)), np.log(np.asarray(values, float)), 1)
    return float(slope)


def debiased_error(
    mean: torch.Tensor, stderr: torch.Tensor, exact: torch.Tensor, max_offset: int
) -> tuple[float, float]:
    """(bias, floor): the relative kernel bias with the Monte Carlo floor removed.

    E||mean - exact||^2 = ||bias||^2 + sum stderr^2, so ||bias||^2 is estimated without
    bias by the difference (clamped at 0); ``floor`` = sqrt(sum stderr^2), both divided by
    ||exact|| over offsets |r_d| <= max_offset.
    """
    centre = [(n - 1) // 2 for n in exact.shape]
    index = tuple(slice(c - max_offset, c + max_offset + 1) for c in centre)
    diff2 = float(((mean[index] - exact[index]) ** 2).sum())
    floor2 = float((stderr[index] ** 2).sum())
    norm = float(torch.linalg.norm(exact[index]))
    return math.sqrt(max(diff2 - floor2, 0.0)) / norm, math.sqrt(floor2) / norm
