"""Figures of compiled kernels: the 2-D table and its radial profile beside a fitted RBF."""

from __future__ import annotations

import os

import numpy as np
from scipy.optimize import curve_fit

from gpdip.io.atomic import save_figure


def radial_profile(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a centred table over offsets with the same rounded |r|: (radii, values)."""
    centre = [(n - 1) // 2 for n in kernel.shape]
    grids = np.meshgrid(
        *[np.arange(n) - c for n, c in zip(kernel.shape, centre, strict=True)], indexing="ij"
    )
    radius = np.rint(np.sqrt(sum(g.astype(float) ** 2 for g in grids))).astype(int)
    limit = min(centre)
    keep = radius <= limit
    sums = np.bincount(radius[keep], weights=kernel[keep])
    counts = np.bincount(radius[keep])
    return np.arange(len(sums)), sums / np.maximum(counts, 1)


def fit_rbf(radii: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit of c + a·exp(−r²/(2ℓ²)) to a radial profile: (a, ℓ, c).

    The constant c absorbs the DIP kernel's floor (the shared output weights give
    every pair of pixels a common component), so the comparison is of the shapes:
    the DIP kernel's tail is heavier than the Gaussian's (paper Fig. 6 top).
    """

    def rbf(r: np.ndarray, a: float, ell: float, c: float) -> np.ndarray:
        return c + a * np.exp(-(r**2) / (2 * ell**2))

    floor = float(values[-1])
    half = floor + (values[0] - floor) / 2
    guess_ell = max(float(np.interp(-half, -values, radii)), 0.5)
    try:
        (a, ell, c), _ = curve_fit(
            rbf, radii, values, p0=(values[0] - floor, guess_ell, floor), maxfev=5000
        )
    except RuntimeError:  # no convergence: fall back to the half-height guess
        a, ell, c = values[0] - floor, guess_ell, floor
    return float(a), abs(float(ell)), float(c)


def plot_kernel(
    kernel: np.ndarray,
    path: str | os.PathLike[str],
    title: str = "",
    stderr: np.ndarray | None = None,
) -> None:
    """Write the table (2-D: an image) and its radial profile beside a fitted RBF (Fig. 6 top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    two_d = kernel.ndim == 2
    fig, axes = plt.subplots(
        1, 2 if two_d else 1, figsize=(10 if two_d else 5.5, 4.2), squeeze=False
    )
    ax_profile = axes[0, -1]
    if two_d:
        centre = (kernel.shape[0] - 1) // 2
        extent = (-centre - 0.5, centre + 0.5, centre + 0.5, -centre - 0.5)
        image = axes[0, 0].imshow(kernel / kernel.max(), extent=extent, cmap="viridis")
        axes[0, 0].set(title="K(dy, dx) / K(0)", xlabel="dx", ylabel="dy")
        fig.colorbar(image, ax=axes[0, 0], shrink=0.85)
        radii, values = radial_profile(kernel)
    else:
        centre = (kernel.shape[0] - 1) // 2
        radii, values = np.arange(centre + 1), kernel[centre:]
    a, ell, c = fit_rbf(radii, values)
    fine = np.linspace(0, radii[-1], 400)
    ax_profile.plot(radii, values / values[0], "o-", ms=3, label="compiled kernel")
    if stderr is not None and not two_d:
        err = stderr[centre:] / values[0]
        ax_profile.fill_between(
            radii,
            values / values[0] - 2 * err,
            values / values[0] + 2 * err,
            alpha=0.3,
            label="±2 s.e.",
        )
    ax_profile.plot(
        fine,
        (c + a * np.exp(-(fine**2) / (2 * ell**2))) / values[0],
        "--",
        label=f"fitted RBF + constant (ℓ = {ell:.2f})",
    )
    ax_profile.set(title="radial profile", xlabel="|r| (pixels)", ylabel="K(r) / K(0)")
    ax_profile.legend()
    ax_profile.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)
