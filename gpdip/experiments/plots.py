"""Figures: PSNR / MSE curves (paper Figs. 1a, 2) and PSNR vs channels (Fig. 6)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def plot_sweep(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    group: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """PSNR vs channels (mean ± std over seeds) for DIP (one line per ``group(row)``, e.g.
    the DIP method), GP with the DIP kernel, GP-RBF, and the relative DIP–GP distance on
    missing pixels (paper Fig. 6, bottom left)."""
    import numpy as np

    plt = _plt()
    group = group or (lambda r: "DIP")
    widths = sorted({r["width"] for r in rows})
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))

    def line(ax: Any, rs: Sequence[dict[str, Any]], key: str, **kw: Any) -> None:
        ws = sorted({r["width"] for r in rs})
        stats = [[r[key] for r in rs if r["width"] == w] for w in ws]
        m = [float(np.mean(s)) for s in stats]
        e = [float(np.std(s)) for s in stats]
        ax.errorbar(ws, m, yerr=e, marker="o", capsize=3, **kw)

    for g in sorted({group(r) for r in rows}):
        rs = [r for r in rows if group(r) == g]
        line(a, rs, "psnr_dip", label=f"DIP: {g}")
        line(b, rs, "dist_dip_gp", label=g)
    gps: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        gps.setdefault(r.get("noise_var"), []).append(r)
    for nv, rs in gps.items():
        noise = "nugget 1e-6·K(0)" if nv is None else f"s²={nv:g}"
        line(a, rs, "psnr_gp", ls="--", label=f"GP (DIP kernel), {noise}")
    line(a, rows, "psnr_rbf", ls=":", color="k", label="GP (RBF)")
    a.set(xscale="log", xlabel="channels", ylabel="PSNR (dB)", title="64×64 inpainting, 50% drop")
    b.set(
        xscale="log",
        yscale="log",
        xlabel="channels",
        ylabel="‖f_DIP − μ_GP‖/‖μ_GP‖ (missing px)",
    )
    for ax in (a, b):
        ax.minorticks_off()  # log-axis minor labels would overprint the channel ticks
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.legend(fontsize=7)
    lo, hi = b.get_ylim()
    ticks = [t for t in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0) if lo <= t <= hi]
    b.set_yticks(ticks, [f"{t:g}" for t in ticks])
    b.set_ylim(lo, hi)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
