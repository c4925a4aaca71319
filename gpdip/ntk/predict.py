"""What full-batch gradient descent makes of an infinitely wide DIP: the NTK prediction.

In the NTK limit a network trained by GD with rate ``η`` on ``L = ½ Σ_o (f − y)²``
follows kernel gradient descent with its neural tangent kernel ``Θ``.  From a centred
network (``f_0 = 0``) the output after ``t`` steps is (Lee et al. 2019, discrete time)

    f_t = Θ_{:,o} g_t(Θ_oo) y,   g_t(λ) = (1 − (1 − ηλ)^t) / λ,

which is also the mean of the uncentred network (:mod:`gpdip.ntk.variance` gives its
variance).  :func:`predict_gd` evaluates it for a list of step counts from one Krylov
basis (:mod:`gpdip.ntk.krylov`) or, for denoising on the torus, exactly by FFT; with a
ground truth it returns the PSNR per step and the step of highest PSNR.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import torch
from torch import Tensor

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.gp.grid import Size, table_grid_size
from gpdip.io.images import psnr
from gpdip.ntk.krylov import KrylovFit, check_stability, gd_filter, lanczos_gd
from gpdip.ntk.operators import (
    CircularGridOperator,
    ObservedBlock,
    grid_operator,
    lambda_max_bounds,
)


@dataclass
class GDPrediction:
    """The NTK-GD prediction for ``steps``.

    Attributes:
        steps: the step counts, as given.
        mean: ``(len(steps), *signal_shape)``: the centred network's output ``f_t``.
        psnr: PSNR (dB) of each ``f_t`` against the truth, if one was given
            (:func:`gpdip.gp.psnr`: prediction clipped to [0, 1], peak 1).
        best_step, best_psnr: the step of highest PSNR over a dense grid of steps up to
            ``max(steps)`` (log-spaced, then refined around its peak), if a truth was given.
        curve: ``(step, PSNR)`` pairs of that grid, sorted by step.
        info: method, Lanczos steps, convergence figure, ``λ_max`` bracket, time.
    """

    steps: list[int]
    mean: Tensor
    psnr: list[float] | None = None
    best_step: int | None = None
    best_psnr: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)
    info: dict = field(default_factory=dict)


class SpectralFit:
    """Exact ``f_t = h_t(Θ) y`` on the torus with every pixel observed, ``h_t = λ g_t(λ)``."""

    def __init__(self, op: CircularGridOperator, y: Tensor, lr: float):
        self.op, self.lr = op, lr
        dims = tuple(range(-len(op.grid_size), 0))
        self.y_hat = torch.fft.rfftn(y.reshape(y.shape[0], *op.grid_size), dim=dims)
        self.lanczos_steps, self.change, self.converged = 0, 0.0, True
        self.ritz_max = float(op.spectrum.max())

    def predict(self, steps: Tensor, chunk: int = 8) -> Tensor:
        """``(B, S, n)`` predictions for ``steps (S,)``, ``chunk`` steps per batched FFT."""
        lam, size = self.op.spectrum, self.op.grid_size
        dims = tuple(range(-len(size), 0))
        out = []
        for i in range(0, len(steps), chunk):
            t = steps[i : i + chunk].reshape(-1, *[1] * lam.dim())
            response = lam * gd_filter(lam, self.lr, t)  # (s, *spectrum)
            grid = torch.fft.irfftn(self.y_hat[:, None] * response, s=size, dim=dims)
            out.append(grid.reshape(*grid.shape[:2], -1))
        if not out:
            return lam.new_zeros(self.y_hat.shape[0], 0, math.prod(size))
        return torch.cat(out, 1)


def check_lr(lr: float) -> float:
    """``lr`` as a float; :class:`GpdipError` unless finite and > 0."""
    if isinstance(lr, bool) or not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise GpdipError(f"lr: expected a finite learning rate > 0, got {lr!r}")
    return float(lr)


def check_steps(steps: int | Sequence[float]) -> list[int]:
    """Step counts as ints; :class:`GpdipError` unless each is an integer >= 0."""
    items: list = [steps] if isinstance(steps, Real) else list(steps)  # type: ignore[arg-type]
    if not items:
        raise GpdipError("steps: expected at least one step count")
    out = []
    for s in items:
        ok = isinstance(s, Real) and not isinstance(s, bool) and math.isfinite(float(s))
        if not ok or float(s) < 0 or float(s) != math.floor(float(s)):
            raise GpdipError(f"steps: expected integers >= 0, got {s!r} in {items!r}")
        out.append(int(float(s)))
    return out


def as_batch(signal: Tensor, grid: Size, name: str = "signal") -> tuple[Tensor, int | None]:
    """``(H, W)``, ``(H, W, C)``, ``(N,)`` or ``(N, C)`` -> ``(B, n)`` and ``C`` (or None)."""
    shape = tuple(signal.shape)
    if shape == grid:
        return signal.reshape(1, -1).to(torch.float64), None
    if len(shape) == len(grid) + 1 and shape[:-1] == grid:
        return signal.reshape(-1, shape[-1]).T.to(torch.float64), shape[-1]
    raise GpdipError(
        f"{name}: expected shape {grid} or {(*grid, 'C')} to match the kernel "
        f"table's grid, got {shape}"
    )


def from_batch(x: Tensor, grid: Size, channels: int | None) -> Tensor:
    """``(B, S, n)`` -> ``(S, *grid)`` or ``(S, *grid, C)``."""
    if channels is None:
        return x[0].reshape(x.shape[1], *grid)
    return x.permute(1, 2, 0).reshape(x.shape[1], *grid, channels)


def check_mask(mask: Tensor | None, grid: Size) -> Tensor:
    """Boolean observed-pixel mask of shape ``grid`` (None: every pixel, i.e. denoising)."""
    if mask is None:
        return torch.ones(grid, dtype=torch.bool)
    if tuple(mask.shape) != grid:
        raise GpdipError(f"mask: expected the signal's grid {grid}, got {tuple(mask.shape)}")
    mask = mask != 0
    if not bool(mask.any()):
        raise GpdipError("mask: no observed pixel; GD has nothing to fit")
    return mask


def stable_lr(
    theta_table: Tensor, fraction: float, mask: Tensor | None = None, boundary: str = "toeplitz"
) -> float:
    """``fraction · 2/λ⁺``, with ``λ⁺ >= λ_max(Θ_oo)`` the cheap upper bound of
    :func:`gpdip.ntk.operators.lambda_max_bounds`: stable for any ``0 < fraction < 1``."""
    if not (isinstance(fraction, Real) and math.isfinite(fraction) and fraction > 0):
        raise GpdipError(f"lr fraction: expected a finite number > 0, got {fraction!r}")
    mask = check_mask(mask, table_grid_size(theta_table))
    block = ObservedBlock(grid_operator(theta_table, boundary), mask)
    return float(fraction) * 2 / lambda_max_bounds(block, theta_table, boundary)[1]


def _check_settings(tol: float, max_lanczos: int, curve_points: int) -> None:
    if not (isinstance(tol, Real) and math.isfinite(tol) and tol >= 0):
        raise GpdipError(f"tol: expected a finite number >= 0, got {tol!r}")
    for name, value, least in (("max_lanczos", max_lanczos, 1), ("curve_points", curve_points, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise GpdipError(f"{name}: expected an integer >= {least}, got {value!r}")


def fit_gd(
    y: Tensor,
    theta_table: Tensor,
    mask: Tensor,
    lr: float,
    steps: list[int],
    boundary: str = "toeplitz",
    tol: float = 1e-6,
    max_lanczos: int = 500,
    reorthogonalize: bool | None = None,
) -> tuple[KrylovFit | SpectralFit, dict]:
    """The evaluator of ``f_t = Θ_{:,o} g_t(Θ_oo) y`` for rows ``y (B, n)`` of full grids.

    Checks the stability bound (:func:`gpdip.ntk.krylov.check_stability`) with the cheap
    bracket of :func:`gpdip.ntk.operators.lambda_max_bounds`, refined by the Ritz values.
    """
    op = grid_operator(theta_table, boundary)
    block = ObservedBlock(op, mask)
    lower, upper = lambda_max_bounds(block, theta_table, boundary)
    if lr * lower >= 2:
        check_stability(lr, lower, upper)
    fit: KrylovFit | SpectralFit
    if isinstance(op, CircularGridOperator) and block.all_observed:
        fit, method = SpectralFit(op, y, lr), "fft"
        lower = upper = fit.ritz_max
    else:
        fit = lanczos_gd(
            block,
            block.gather(y),
            lr,
            torch.tensor(steps),
            tol,
            max_lanczos,
            reorthogonalize=reorthogonalize,
            lambda_upper=upper,
        )
        method, lower = "lanczos", max(lower, fit.ritz_max)
    check_stability(lr, lower, upper)
    info = {
        "method": method,
        "lanczos_steps": fit.lanczos_steps,
        "change": fit.change,
        "converged": fit.converged,
        "tol": tol,
        "lambda_max_lower": lower,
        "lambda_max_upper": upper,
        "stability_bound": [2 / upper, 2 / lower],
    }
    return fit, info


def predict_gd(
    signal: Tensor,
    theta_table: Tensor,
    lr: float,
    steps: int | Sequence[float],
    mask: Tensor | None = None,
    truth: Tensor | None = None,
    boundary: str = "toeplitz",
    tol: float = 1e-6,
    max_lanczos: int = 500,
    curve_points: int = 32,
) -> GDPrediction:
    """The infinite-width output of GD-trained DIP after each of ``steps`` (see module doc).

    Args:
        signal: observations ``y``: ``(H, W)``, ``(H, W, C)``, ``(N,)`` or ``(N, C)``;
            colour channels share the kernel and are fitted as a batch.
        theta_table: NTK table of the grid, ``(2H-1, 2W-1)`` or ``(2N-1,)``.
        lr: learning rate ``η > 0``, below the stability bound ``2/λ_max(Θ_oo)``.
        steps: step counts ``t >= 0``.
        mask: observed pixels, shape of the grid (default: all: denoising).
        truth: optional ground truth of the signal's shape, for PSNR and the best step.
        boundary: ``"toeplitz"`` (non-periodic grid) or ``"circular"`` (torus).
        tol: Lanczos stops when the prediction changes by ``<= tol · max|y|``.
        max_lanczos: Lanczos steps at most; if not converged a warning gives the figure.
        curve_points: points of each of the two grids searched for the best step.
    """
    start = time.perf_counter()
    grid = table_grid_size(theta_table)
    lr, step_list = check_lr(lr), check_steps(steps)
    _check_settings(tol, max_lanczos, curve_points)
    y, channels = as_batch(signal, grid)
    if not bool(torch.isfinite(y).all()):
        raise GpdipError("signal contains NaN or Inf values")
    mask = check_mask(mask, grid)
    fit, info = fit_gd(y, theta_table, mask, lr, step_list, boundary, tol, max_lanczos)
    if not info["converged"]:
        warnings.warn(
            f"NTK-GD prediction not converged after {info['lanczos_steps']} Lanczos "
            f"steps: last relative change {info['change']:.3e} > tol {tol:g}",
            GpdipWarning,
            stacklevel=2,
        )
    mean = fit.predict(torch.tensor(step_list))
    pred = GDPrediction(step_list, from_batch(mean, grid, channels), info=info)
    if truth is not None:
        target, _ = as_batch(truth, grid, "truth")
        if tuple(truth.shape) != tuple(signal.shape):
            raise GpdipError(
                f"truth: expected the signal's shape {tuple(signal.shape)}, "
                f"got {tuple(truth.shape)}"
            )
        pred.psnr = [psnr(mean[:, i], target) for i in range(len(step_list))]
        pred.curve = psnr_curve(fit, target, step_list, curve_points)
        pred.best_step, pred.best_psnr = max(pred.curve, key=lambda c: (c[1], -c[0]))
    info["time_s"] = time.perf_counter() - start
    return pred


def psnr_curve(
    fit: KrylovFit | SpectralFit, target: Tensor, steps: list[int], points: int = 32
) -> list[tuple[int, float]]:
    """PSNR at ``steps`` and on a log grid up to ``max(steps)``, refined around its peak.

    The refinement is a linear grid of ``points`` steps between the neighbours of the
    coarse maximum (its resolution is given by the spacing of the returned steps).  The
    Krylov basis was grown until the requested steps converged; the grid's smaller step
    counts are lower-degree polynomials, in practice converged earlier (not checked).
    """
    t_max = max(steps)

    def evaluate(ts: list[int]) -> dict[int, float]:
        if not ts:
            return {}
        preds = fit.predict(torch.tensor(ts))
        return {t: psnr(preds[:, i], target) for i, t in enumerate(ts)}

    curve = evaluate(sorted(set(steps)))
    if t_max >= 1:
        coarse = sorted({int(t) for t in np.round(np.geomspace(1, t_max, points))})
        curve.update(evaluate([t for t in coarse if t not in curve]))
        ranked = sorted(curve)
        peak = ranked.index(max(curve, key=lambda t: (curve[t], -t)))
        lo, hi = ranked[max(peak - 1, 0)], ranked[min(peak + 1, len(ranked) - 1)]
        fine = np.unique(np.round(np.linspace(lo, hi, points))).astype(int)
        curve.update(evaluate([int(t) for t in fine if int(t) not in curve]))
    return sorted(curve.items())
