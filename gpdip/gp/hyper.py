"""Hyperparameters by marginal likelihood, and kernel selection (``--kernel auto``).

The objective is the **composite log marginal likelihood** of ``n_crops`` windows
spread over the whole observed image (Varin, Reid & Firth 2011: a sum of exact
block likelihoods is an unbiased estimating equation, so its maximiser is a
consistent estimate of the hyperparameters of a stationary GP)::

    cl(s, s2) = sum_c log N(y_c - mu; 0, s K_c + s2 I),   K_c = unit kernel on window c's
                                                            observed pixels

Windows are chosen by observed pixels, not position: the image is tiled, tiles
with too few observed pixels are dropped, and ``n_crops`` tiles are taken at
even strides through the rest, so holes and borders never starve the fit.
Each window's unit covariance is diagonalised once, ``K_c = U diag(theta) U^T``;
with ``u = U^T r`` and ``lam = s2 / s`` every term is then closed form::

    log N = -1/2 [ sum_i u_i^2 / (s (theta_i + lam)) + sum_i log(s (theta_i + lam))
                   + m log 2 pi ]

and the output scale has the closed-form optimum ``s = Q(lam) / n`` with
``Q(lam) = sum_i u_i^2 / (theta_i + lam)``.  The noise ratio (or, with the
noise fixed, the output scale) is a 1-D search (log grid + golden section) on
this profile, exact to the window likelihoods.  A continuous kernel parameter
(RBF/Matern lengthscale, a learned DIP ``sigma``) is an outer 1-D golden search,
each point costing one eigendecomposition per window.  No stochastic optimiser
(``torch.optim`` would import ``torch._dynamo``: seconds of start-up).

Why windows and not the whole image: an SLQ log-determinant of the whole
observed operator (``slq.py``) costs ``probes x steps`` FFT matmuls per kernel,
about a minute per candidate at 512x512 on this CPU (9 vectors x 60 steps),
against about 1 s for the windows (12 candidates in 10 s at load 5).  The
windows' composite likelihood is what ``auto`` compares.  Against the exact
dense whole-image likelihood (``tests/gp/test_hyper.py``, 30x30 RBF sample)
the window fit lands 1.6e-3 nats per observed pixel below the maximum;
:func:`refine_on_whole_image` (opt-in SLQ refit of noise and scale) 3e-5 on a
24x24 test.  Selection never uses ground truth.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.tables import DIPGridTable, GridTable, make_table

if TYPE_CHECKING:
    from gpdip.gp.kernels import TableKernel

#: Anything with ``table(size)`` and a settable ``outputscale``: a GridTable or a TableKernel.
Kernel = Union[GridTable, "TableKernel"]

Window = tuple[int, int, int, int]  # (y0, x0, h, w)
#: Range of the noise-to-output-scale ratio searched when the noise is learned.  The floor
#: keeps the solves well posed: the rough kernels' likelihood keeps rising as the noise falls
#: to the 8-bit quantisation level (variance 1/(12 * 255^2) = 1.3e-6 on [0, 1] images).
RATIO_RANGE = (1e-5, 1e4)
#: Range searched for a lengthscale or a learned DIP parameter (log-uniform golden search).
PARAM_RANGE = (0.25, 32.0)
MIN_OBSERVED = 3


def fitting_windows(mask: Tensor, crop: int = 24, n_crops: int = 16) -> list[Window]:
    """Up to ``n_crops`` tiles of ``crop x crop`` chosen by observed pixels.

    Tiles of a regular tiling (the last row/column of tiles cut at the border, so no
    pixel counts twice) with at least a quarter of their pixels observed are kept (all
    tiles with any observed pixel if none qualifies), then ``n_crops`` are taken at even
    strides in raster order so they spread over the image.  Raises :class:`GpdipError` when the mask
    observes fewer than ``MIN_OBSERVED`` pixels.
    """
    n_obs = int(mask.sum())
    if n_obs < MIN_OBSERVED:
        raise GpdipError(
            f"hyperparameter fit needs at least {MIN_OBSERVED} observed pixels; "
            f"the mask observes {n_obs}"
        )
    H, W = mask.shape
    h, w = min(H, crop), min(W, crop)
    tiles = [(y, x, min(h, H - y), min(w, W - x)) for y in range(0, H, h) for x in range(0, W, w)]
    counts = [int(mask[y : y + a, x : x + b].sum()) for y, x, a, b in tiles]
    keep = [t for t, c in zip(tiles, counts, strict=True) if c >= max(2, t[2] * t[3] // 4)]
    if not keep:
        keep = [t for t, c in zip(tiles, counts, strict=True) if c > 0]
    if len(keep) > n_crops:
        step = len(keep) / n_crops
        keep = [keep[int(i * step + step / 2)] for i in range(n_crops)]
    return keep


class WindowData:
    """Observed pixels of the fitting windows: table indices of every pair, and residuals.

    Built once per image and mask (``select_kernel`` shares it between candidates), so a
    likelihood evaluation is a table lookup and one ``eigh`` per window.
    """

    def __init__(self, image: Tensor, mask: Tensor, windows: list[Window], mu: float):
        self.windows = windows
        self.size = (max(w[2] for w in windows), max(w[3] for w in windows))
        centre = torch.tensor([s - 1 for s in self.size])  # offset 0 in a table of ``size``
        self.pairs: list[tuple[Tensor, Tensor]] = []
        self.residuals: list[Tensor] = []
        for y, x, h, w in windows:
            coords = torch.nonzero(mask[y : y + h, x : x + w])  # (m, 2)
            diff = coords[:, None, :] - coords[None, :, :] + centre
            self.pairs.append((diff[..., 0], diff[..., 1]))
            self.residuals.append(image[y : y + h, x : x + w][mask[y : y + h, x : x + w]] - mu)

    @property
    def observed(self) -> int:
        return sum(r.numel() for r in self.residuals)

    def spectra(self, unit_table: Tensor) -> tuple[Tensor, Tensor]:
        """Eigenvalues ``theta`` of every window's unit ``K_oo`` and squared projections ``u^2``.

        ``unit_table`` covers the largest window (``(2h-1, 2w-1)`` for ``size = (h, w)``).
        Returns two 1-D float64 tensors of length ``sum_c m_c`` (all windows concatenated).
        """
        thetas, projs = [], []
        for (dy, dx), r in zip(self.pairs, self.residuals, strict=True):
            theta, U = torch.linalg.eigh(unit_table[dy, dx])
            thetas.append(theta.clamp_min(0.0))  # roundoff negatives of a PSD matrix
            projs.append((U.T @ r) ** 2)
        return torch.cat(thetas), torch.cat(projs)


def profile_mll(theta: Tensor, proj: Tensor, noise: float | None = None) -> dict:
    """Maximise the window likelihood over output scale and noise (see module doc).

    With ``noise`` None, a 1-D search over ``lam = s2 / s`` with ``s = Q(lam) / n``;
    otherwise a 1-D search over the output scale with ``s2 = noise``.
    Returns ``{"log_marginal_likelihood", "noise", "outputscale"}``.
    """
    n = theta.numel()
    const = n * math.log(2 * math.pi)
    if noise is None:

        def objective(log_lam: float) -> float:
            lam = math.exp(log_lam)
            scale = max(float((proj / (theta + lam)).sum()) / n, 1e-300)
            return -0.5 * (n * math.log(scale) + n + float(torch.log(theta + lam).sum()) + const)

        lo, hi = (math.log(v) for v in RATIO_RANGE)
        log_lam, best = _search_1d(objective, lo, hi)
        lam = math.exp(log_lam)
        scale = max(float((proj / (theta + lam)).sum()) / n, 1e-300)
        return {"log_marginal_likelihood": best, "noise": lam * scale, "outputscale": scale}

    def objective_fixed(log_scale: float) -> float:
        v = math.exp(log_scale) * theta + noise
        return -0.5 * (float((proj / v).sum()) + float(torch.log(v).sum()) + const)

    var = max(float(proj.sum()) / n, noise)
    log_scale, best = _search_1d(objective_fixed, math.log(var) - 12, math.log(var) + 6)
    return {"log_marginal_likelihood": best, "noise": noise, "outputscale": math.exp(log_scale)}


def _search_1d(
    f: Callable[[float], float], lo: float, hi: float, grid: int = 25, golden: int = 30
) -> tuple[float, float]:
    """Maximise ``f`` on ``[lo, hi]``: a grid, then golden section around the best point."""
    xs = [lo + (hi - lo) * i / (grid - 1) for i in range(grid)]
    vals = [f(x) for x in xs]
    i = max(range(grid), key=vals.__getitem__)
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, grid - 1)]
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(golden):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    x, fx = (c, fc) if fc > fd else (d, fd)
    return (x, fx) if fx >= vals[i] else (xs[i], vals[i])


def _free_parameters(kernel: Kernel) -> dict[str, Callable[[float], None]]:
    """Setters of the kernel's continuous parameters that the fit should search."""
    setters: dict[str, Callable[[float], None]] = {}
    raw = getattr(kernel, "raw_lengthscale", None) if kernel.has_lengthscale else None
    if raw is not None and raw.requires_grad:

        def set_lengthscale(v: float) -> None:
            kernel.lengthscale = torch.tensor(v, dtype=raw.dtype)  # type: ignore[union-attr]

        setters["lengthscale"] = set_lengthscale
    for name in getattr(kernel, "learn", ()):
        param = getattr(kernel, f"log_{name}")
        if param.requires_grad:
            setters[name] = _log_setter(param)
    return setters


def _log_setter(param: Tensor) -> Callable[[float], None]:
    def set_value(v: float) -> None:
        param.data.fill_(math.log(v))

    return set_value


def fit_hyperparameters(
    kernel: Kernel,
    image: Tensor,
    mask: Tensor,
    noise: float | None = None,
    crop: int = 24,
    n_crops: int = 16,
    data: WindowData | None = None,
    progress: bool = False,
) -> dict:
    """Fit output scale, kernel parameters and (if ``noise`` is None) the noise, in place.

    Maximises the composite likelihood of :func:`fitting_windows` (module doc).
    Returns ``{"noise", "outputscale", "lengthscale"?, <learned DIP params>?,
    "log_marginal_likelihood" (of the windows), "windows", "observed_in_fit", "crop"}``.
    """
    if data is None:
        data = window_data(image, mask, crop, n_crops)
    size = data.size
    setters = _free_parameters(kernel)

    def evaluate() -> dict:
        with torch.no_grad():
            kernel.outputscale = 1.0
            unit = kernel.table(size).detach().double()
            if not bool(torch.isfinite(unit).all()):
                raise GpdipError("kernel table has non-finite values at these parameters")
            return profile_mll(*data.spectra(unit), noise)

    best: dict = {}
    for _ in range(2 if len(setters) > 1 else 1):  # coordinate sweeps
        for name, setter in setters.items():
            lo, hi = (math.log(v) for v in PARAM_RANGE)

            def objective(log_v: float, setter=setter) -> float:
                setter(math.exp(log_v))
                return evaluate()["log_marginal_likelihood"]

            log_v, _ = _search_1d(objective, lo, hi, grid=7, golden=10)
            setter(math.exp(log_v))
            best[name] = math.exp(log_v)
    out = evaluate()
    with torch.no_grad():
        kernel.outputscale = out["outputscale"]
    out.update(best)
    out.update(
        windows=[list(w) for w in data.windows], crop=list(size), observed_in_fit=data.observed
    )
    return out


def refine_on_whole_image(
    kernel: Kernel,
    image: Tensor,
    mask: Tensor,
    noise: float | None = None,
    probes: int = 8,
    steps: int = 60,
    generator: torch.Generator | None = None,
) -> dict:
    """Re-fit output scale (and noise) on the whole observed image by SLQ, in place.

    Uses :class:`~gpdip.gp.slq.ShiftedQuadrature` of the unit observed operator: one
    Lanczos run of ``probes + 1`` vectors and ``steps`` FFT matmuls, then the same
    closed-form profile and 1-D search as the windows (kernel parameters stay as
    fitted).  Cost at 512x512: ``(probes + 1) x steps`` matmuls of a 1024^2 FFT, about a
    minute on this CPU, so ``auto`` ranks candidates on the windows and this is opt-in.
    Returns ``{"noise", "outputscale", "log_marginal_likelihood", "log_marginal_likelihood_se"}``.
    """
    from gpdip.gp.gridcov import GridCovariance, MaskedGridCovariance
    from gpdip.gp.slq import ShiftedQuadrature

    image, mask = image.double(), mask.bool()
    with torch.no_grad():
        kernel.outputscale = 1.0
        unit = kernel.table(tuple(image.shape)).detach().double()
    op = MaskedGridCovariance(GridCovariance(unit), mask, torch.tensor(0.0, dtype=torch.float64))
    y = image[mask]
    quad = ShiftedQuadrature(op.matvec, y - y.mean(), probes, steps, generator)
    n = quad.n

    def profile(log_lam: float) -> float:
        lam = math.exp(log_lam)
        scale = max(quad.quadratic(lam) / n, 1e-300)
        return -0.5 * (n * math.log(scale) + n + quad.logdet(lam)[0] + n * math.log(2 * math.pi))

    if noise is None:
        log_lam, best = _search_1d(profile, math.log(RATIO_RANGE[0]), math.log(RATIO_RANGE[1]))
        scale = max(quad.quadratic(math.exp(log_lam)) / n, 1e-300)
        noise = math.exp(log_lam) * scale
    else:
        var = max(float(y.var()), noise)
        log_s, best = _search_1d(
            lambda ls: quad.log_marginal_likelihood(math.exp(ls), noise),
            math.log(var) - 12,
            math.log(var) + 6,
        )
        scale = math.exp(log_s)
    with torch.no_grad():
        kernel.outputscale = scale
    se = 0.5 * quad.logdet(noise / scale)[1]
    return {
        "noise": noise,
        "outputscale": scale,
        "log_marginal_likelihood": best,
        "log_marginal_likelihood_se": se,
    }


def window_data(image: Tensor, mask: Tensor, crop: int = 24, n_crops: int = 16) -> WindowData:
    """:class:`WindowData` of :func:`fitting_windows`, centred on the observed mean."""
    image, mask = image.double(), mask.bool()
    if tuple(mask.shape) != tuple(image.shape):
        raise GpdipError(
            f"hyperparameter fit: mask shape {tuple(mask.shape)} does not match "
            f"image shape {tuple(image.shape)}"
        )
    windows = fitting_windows(mask, crop, n_crops)
    return WindowData(image, mask, windows, float(image[mask].mean()))


#: Default candidates of ``--kernel auto``: DIP kernels only (catalog architectures and a
#: grid of depth and input sigma), so that ``auto`` is "the best DIP kernel by marginal
#: likelihood" and the RBF/Matérn baselines stay separate comparisons.  Name them
#: explicitly (``auto:rbf,matern52,unet2``) to let a baseline compete.
DEFAULT_CANDIDATES: tuple[str, ...] = (
    "unet2",
    "ae-d2",
    "ae-d3",
    "conv-d2",
    "conv-d3",
    "conv-d4",
    "conv-d2-s2",
    "conv-d3-s2",
    "conv-d4-s2",
    "conv-d2-s6",
    "conv-d3-s6",
    "conv-d4-s6",
)


def select_kernel(
    image: Tensor,
    mask: Tensor,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    sigmas: tuple[float, ...] = (),
    noise: float | None = None,
    crop: int = 24,
    n_crops: int = 16,
    factory: Callable[..., Kernel] = make_table,
    progress: bool = False,
) -> tuple[Kernel, dict]:
    """Fit every candidate on the same windows; return the one with the highest likelihood.

    ``sigmas`` adds DIP candidates with the input sigma fixed at each value.
    Candidates whose construction fails (compiler missing, unknown name) are
    skipped with a warning; a mask that cannot be fitted raises at once.
    """
    data = window_data(image, mask, crop, n_crops)
    results, best, best_kernel = [], None, None
    trials: list[tuple[str, float | None]] = [(c, None) for c in candidates]
    trials += [(c, s) for c in candidates if c not in ("rbf", "matern52") for s in sigmas]
    for name, sigma in trials:
        try:
            kernel = factory(name) if sigma is None else _fixed_sigma(name, sigma)
            fit = fit_hyperparameters(kernel, image, mask, noise, data=data)
        except Exception as exc:  # a missing compiler or catalog entry is not fatal
            warnings.warn(f"kernel candidate '{name}' skipped: {exc}", stacklevel=2)
            continue
        fit["kernel"] = name if sigma is None else f"{name}(sigma={sigma})"
        results.append(fit)
        if best is None or fit["log_marginal_likelihood"] > best["log_marginal_likelihood"]:
            best, best_kernel = fit, kernel
    if best_kernel is None or best is None:
        raise GpdipError(f"--kernel auto: no candidate among {list(candidates)} could be fitted")
    return best_kernel, {"chosen": best, "candidates": results}


def _fixed_sigma(arch: str, sigma: float) -> DIPGridTable:
    """DIP kernel with the input sigma fixed (a grid point of the auto search)."""
    k = DIPGridTable(arch, learn=("sigma",), init={"sigma": sigma})
    k.log_sigma.requires_grad_(False)
    return k
