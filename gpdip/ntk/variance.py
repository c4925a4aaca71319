"""The initialisation's variance of an uncentred network trained by GD, in the NTK limit.

From a random initialisation ``f_0 ~ GP(0, K)`` (``K``: the NNGP kernel) the output is

    f_t = f_0 + Θ_{:,o} g_t(Θ_oo) (y − f_0(o))

(Lee et al. 2019, discrete time).  Its mean is the centred prediction of
:func:`gpdip.ntk.predict.predict_gd`; its random part is ``r_t = (I − A_t P) f_0`` with
``A_t = Θ_{:,o} g_t(Θ_oo)`` and ``P`` the restriction to the observed pixels, so

    Var f_t(x) = [(I − A_t P) K (I − A_t P)ᵀ]_xx.

:func:`gd_variance_dense` evaluates this exactly (dense float64, small grids).
:func:`gd_variance` estimates it at grid scale from exact prior samples ``f_0``
(circulant embedding) pushed through the same Krylov map: ``v̂ = mean_s r_t^{(s)}(x)²``.
Each ``r_t(x)`` is exactly Gaussian with mean 0, so ``S v̂ / v ~ χ²_S``: the relative
standard error of every pixel's estimate is ``sqrt(2/S)``, and ``v̂ · [S/χ²_{S,0.975},
S/χ²_{S,0.025}]`` is a 95% interval (plus the Lanczos error, ``<= tol`` per sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import scipy.stats
import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import TableFn, table_grid_size
from gpdip.gp.sampling import CirculantSampler
from gpdip.ntk.krylov import gd_filter
from gpdip.ntk.operators import CircularGridOperator, check_boundary, dense_theta
from gpdip.ntk.predict import check_lr, check_mask, check_steps, fit_gd

#: Largest grid (pixels) for the dense exact variance: O(n³) time, O(n²) memory.
DENSE_MAX = 4096


def gd_variance_dense(
    theta_table: Tensor,
    nngp_table: Tensor,
    lr: float,
    steps: int | Sequence[float],
    mask: Tensor | None = None,
    boundary: str = "toeplitz",
) -> Tensor:
    """Exact ``Var f_t(x)`` for every pixel and step: ``(len(steps), *grid)``, float64."""
    grid = table_grid_size(theta_table)
    n = math.prod(grid)
    if n > DENSE_MAX:
        raise GpdipError(
            f"gd_variance_dense: a {grid} grid has {n} pixels, more than "
            f"{DENSE_MAX}; use gd_variance (Monte Carlo) at this size"
        )
    if table_grid_size(nngp_table) != grid:
        raise GpdipError(
            f"nngp_table: expected the grid {grid} of theta_table, got "
            f"{table_grid_size(nngp_table)}"
        )
    lr, step_list = check_lr(lr), check_steps(steps)
    obs = check_mask(mask, grid).reshape(-1)
    theta, K = dense_theta(theta_table, boundary), dense_theta(nngp_table, boundary)
    lam, U = torch.linalg.eigh(theta[obs][:, obs])
    out = []
    for t in step_list:
        A = theta[:, obs] @ (U * gd_filter(lam, lr, torch.tensor(t))) @ U.T
        M = torch.eye(n, dtype=torch.float64)
        M[:, obs] -= A
        out.append(torch.einsum("ij,jk,ik->i", M, K, M).reshape(grid))
    return torch.stack(out)


@dataclass
class VarianceEstimate:
    """Monte Carlo estimate of ``Var f_t(x)``: ``variance`` has shape ``(len(steps), *grid)``.

    ``relative_std = sqrt(2/samples)`` per pixel; ``interval`` multiplies ``variance``
    into a 95% confidence interval (``S v̂ / v ~ χ²_S``, exact for Gaussian ``r_t``).
    """

    variance: Tensor
    samples: int
    relative_std: float
    interval: tuple[float, float]
    info: dict = field(default_factory=dict)


def sample_init(
    nngp: Tensor | TableFn,
    grid: tuple[int, ...],
    n: int,
    boundary: str,
    generator: torch.Generator | None,
) -> Tensor:
    """``n`` exact samples of ``f_0 ~ GP(0, K)`` on the grid (or torus): ``(n, *grid)``."""
    if check_boundary(boundary) == "circular":
        if not isinstance(nngp, Tensor):
            nngp = nngp(grid)
        op = CircularGridOperator(nngp.detach().to(torch.float64))
        w = torch.randn((n, *grid), generator=generator, dtype=torch.float64)
        return op.sqrt_matmul(w)
    return CirculantSampler(nngp, grid).sample(n, generator)


def gd_variance(
    theta_table: Tensor,
    nngp: Tensor | TableFn,
    lr: float,
    steps: int | Sequence[float],
    mask: Tensor | None = None,
    boundary: str = "toeplitz",
    samples: int = 32,
    generator: torch.Generator | None = None,
    tol: float = 1e-6,
    max_lanczos: int = 500,
    batch: int = 8,
) -> VarianceEstimate:
    """Monte Carlo ``Var f_t(x)`` from ``samples`` exact draws of ``f_0`` (see module doc).

    Args:
        nngp: the NNGP table of the grid, or a callable ``size -> table`` (lets the
            circulant embedding grow if the grid's own table is not enough).
        batch: samples fitted together (memory ``~ 2 · batch · m · n`` floats).
    """
    grid = table_grid_size(theta_table)
    lr, step_list = check_lr(lr), check_steps(steps)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise GpdipError(f"samples: expected an integer >= 2, got {samples!r}")
    mask = check_mask(mask, grid)
    total = torch.zeros(len(step_list), math.prod(grid), dtype=torch.float64)
    lanczos_steps, change = 0, 0.0
    for first in range(0, samples, batch):
        f0 = sample_init(nngp, grid, min(batch, samples - first), boundary, generator)
        f0 = f0.reshape(f0.shape[0], -1)
        fit, info = fit_gd(f0, theta_table, mask, lr, step_list, boundary, tol, max_lanczos)
        residual = f0[:, None, :] - fit.predict(torch.tensor(step_list))
        total += (residual**2).sum(0)
        lanczos_steps = max(lanczos_steps, info["lanczos_steps"])
        change = max(change, info["change"])
    chi2 = scipy.stats.chi2
    interval = (samples / chi2.ppf(0.975, samples), samples / chi2.ppf(0.025, samples))
    return VarianceEstimate(
        (total / samples).reshape(len(step_list), *grid),
        samples,
        math.sqrt(2 / samples),
        (float(interval[0]), float(interval[1])),
        {"lanczos_steps": lanczos_steps, "change": change},
    )
