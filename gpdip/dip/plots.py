"""Figures: PSNR / MSE curves (paper Figs. 1a, 2) and PSNR vs channels (Fig. 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    histories: Mapping[str, Sequence[dict[str, Any]]],
    path: str | Path,
    sigma: float | None = None,
    title: str = "",
) -> None:
    """Two panels: PSNR vs clean (and of the averaged/mean estimate, dashed) and MSE vs
    the observations over iterations; the noise level σ² as a horizontal line."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, hist) in enumerate(histories.items()):
        c = f"C{i}"
        it = [h["iter"] for h in hist]
        if any("psnr" in h for h in hist):
            a.plot(it, [h.get("psnr", float("nan")) for h in hist], c, label=name)
        for key, style in (("psnr_avg", "--"), ("psnr_mean", ":")):
            pts = [(h["iter"], h[key]) for h in hist if key in h]
            if pts:
                a.plot(*zip(*pts, strict=True), c, ls=style, label=f"{name} ({key[5:]})")
        b.plot(it, [h["mse_obs"] for h in hist], c, label=name)
    if sigma is not None:
        b.axhline(sigma**2, color="k", lw=0.8, ls="--", label="σ²")
    a.set(xlabel="iteration", ylabel="PSNR vs clean (dB)", title=title)
    b.set(xlabel="iteration", ylabel="MSE vs observations", yscale="log")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """PSNR vs channels (mean ± std over seeds) for DIP, GP with the DIP kernel, GP-RBF,
    and the relative DIP–GP distance on missing pixels (paper Fig. 6, bottom left)."""
    import numpy as np

    plt = _plt()
    widths = sorted({r["width"] for r in rows})
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (
        ("psnr_dip", "DIP"),
        ("psnr_gp", "GP (DIP kernel)"),
        ("psnr_rbf", "GP (RBF)"),
        ("dist_dip_gp", None),
    ):
        stats = [
            [r[key] for r in rows if r["width"] == w and r.get(key) is not None] for w in widths
        ]
        ws = [w for w, s in zip(widths, stats, strict=True) if s]
        m = [float(np.mean(s)) for s in stats if s]
        e = [float(np.std(s)) for s in stats if s]
        ax = b if label is None else a
        ax.errorbar(ws, m, yerr=e, marker="o", capsize=3, label=label or "‖f_DIP − μ_GP‖/‖μ_GP‖")
    a.set(xscale="log", xlabel="channels", ylabel="PSNR (dB)", title="64×64 inpainting, 50% drop")
    b.set(xscale="log", yscale="log", xlabel="channels", ylabel="relative distance (missing px)")
    for ax in (a, b):
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
