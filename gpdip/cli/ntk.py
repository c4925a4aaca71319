"""``gpdip ntk-predict``: what GD-trained DIP outputs in the infinite-width (NTK) limit."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from gpdip.errors import GpdipError
from gpdip.io.atomic import save_npy


def register(subparsers) -> None:
    """Add the ``ntk-predict`` sub-command."""
    p = subparsers.add_parser(
        "ntk-predict",
        help="predict the output of DIP trained by full-batch GD, in the NTK limit",
        description="f_t = Θ_{:,o} g_t(Θ_oo) y with g_t(λ) = (1 − (1 − ηλ)^t)/λ: the output of "
        "an infinitely wide DIP after t full-batch GD steps of rate η from a centred network.",
    )
    p.add_argument("signal", help="image (PNG or .npy (H, W[, C])) or 1-D signal (.npy (N[, C]))")
    p.add_argument("--mask", default=None, help="PNG or .npy; nonzero = observed (default: all)")
    p.add_argument("--arch", required=True, help="catalog name or TOML architecture")
    p.add_argument(
        "--dims",
        type=int,
        choices=(1, 2),
        default=None,
        help="spatial dimensions (default: 1 for a 1-D .npy array, else 2)",
    )
    p.add_argument(
        "--boundary",
        choices=("toeplitz", "circular"),
        default="toeplitz",
        help="toeplitz: the non-periodic grid (default); circular: the torus",
    )
    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument("--lr", type=float, help="GD learning rate η > 0")
    rate.add_argument(
        "--lr-fraction",
        type=float,
        help="η = F · 2/λ⁺ with λ⁺ >= λ_max(Θ_oo) a cheap upper bound: any "
        "0 < F < 1 is stable (the lr used is reported)",
    )
    p.add_argument("--steps", required=True, help="comma-separated step counts, e.g. 30,300,3000")
    p.add_argument("--truth", default=None, help="ground truth: PSNR per step and the best step")
    p.add_argument("--out", required=True, help=".npy of shape (len(steps), *signal_shape)")
    p.add_argument(
        "--plot", default=None, help="PNG of predicted PSNR against steps (needs --truth)"
    )
    p.add_argument(
        "--variance-out",
        default=None,
        help=".npy (len(steps), *grid): variance of the uncentred network's output",
    )
    p.add_argument(
        "--variance-samples",
        type=int,
        default=32,
        help="Monte Carlo samples of f_0 for grids too large for the exact variance",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-6, help="Lanczos tolerance (relative change)")
    p.add_argument("--max-lanczos", type=int, default=500)
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run_ntk_predict)


def load_signal(path: str, dims: int | None, what: str = "signal") -> tuple[torch.Tensor, int]:
    """A 1-D signal ``(N[, C])`` or an image ``(H, W[, C])`` and its number of dimensions."""
    from gpdip.io.images import channels_last, load_image

    if Path(path).suffix.lower() != ".npy":
        if dims == 1:
            raise GpdipError(f"{what} '{path}': a 1-D signal must be a .npy file")
        return channels_last(load_image(path)), 2
    if not Path(path).exists():
        raise GpdipError(f"{what} file '{path}' does not exist")
    arr = np.load(path, allow_pickle=False)
    dims = dims or (1 if arr.ndim == 1 else 2)
    if arr.ndim not in (dims, dims + 1):
        raise GpdipError(
            f"{what} '{path}': expected {dims} or {dims + 1} axes for --dims "
            f"{dims}, got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise GpdipError(
            f"{what} '{path}': expected finite numbers, got dtype {arr.dtype} or NaN/Inf values"
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)), dims


def parse_steps(text: str) -> list[int]:
    """``"30,300,1e4"`` -> ``[30, 300, 10000]`` (integers >= 0, checked by the predictor)."""
    from gpdip.ntk.predict import check_steps

    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise GpdipError(f"--steps: expected comma-separated integers, got {text!r}") from exc
    return check_steps(values)


def run_ntk_predict(args: argparse.Namespace) -> int:
    from gpdip.io.images import load_mask
    from gpdip.ntk import kernel_tables, predict_gd
    from gpdip.ntk.predict import stable_lr

    if Path(args.out).suffix.lower() != ".npy":
        raise GpdipError(f"--out '{args.out}': expected a .npy file name")
    if args.plot and not args.truth:
        raise GpdipError("--plot needs --truth (the plot shows PSNR against steps)")
    signal, dims = load_signal(args.signal, args.dims)
    truth = load_signal(args.truth, dims, "truth")[0] if args.truth else None
    mask = load_mask(args.mask) if args.mask else None
    steps = parse_steps(args.steps)
    t0 = time.perf_counter()
    theta, nngp = kernel_tables(args.arch, tuple(signal.shape[:dims]), dims=dims)
    compile_s = time.perf_counter() - t0
    if args.lr is None:
        args.lr = stable_lr(theta, args.lr_fraction, mask, args.boundary)
    pred = predict_gd(
        signal, theta, args.lr, steps, mask, truth, args.boundary, args.tol, args.max_lanczos
    )
    save_npy(args.out, pred.mean.detach().cpu().numpy())
    report = {
        "lr": args.lr,
        "steps": steps,
        "psnr": pred.psnr,
        "best_step": pred.best_step,
        "best_psnr": pred.best_psnr,
        "compile_s": compile_s,
        **pred.info,
    }
    if args.variance_out:
        report["variance"] = _variance(args, theta, nngp, steps, mask)
    if args.plot:
        _plot(args.plot, pred)
    if args.json:
        print(json.dumps(report, indent=1, default=float))
    else:
        for i, t in enumerate(steps):
            extra = f", PSNR {pred.psnr[i]:.2f} dB" if pred.psnr else ""
            print(f"step {t}: written to {args.out}[{i}]{extra}")
        if pred.best_step is not None:
            print(f"predicted best step {pred.best_step} (PSNR {pred.best_psnr:.2f} dB)")
    return 0


def _variance(args: argparse.Namespace, theta, nngp, steps: list[int], mask) -> dict:
    """Write the uncentred network's variance: exact on small grids, else Monte Carlo."""
    from gpdip.ntk import gd_variance, gd_variance_dense
    from gpdip.ntk.variance import DENSE_MAX

    grid = tuple((s + 1) // 2 for s in theta.shape)
    if math.prod(grid) <= DENSE_MAX:
        var = gd_variance_dense(theta, nngp, args.lr, steps, mask, args.boundary)
        save_npy(args.variance_out, var.detach().cpu().numpy())
        return {"method": "dense-exact"}
    from gpdip import compile_kernel

    gen = torch.Generator().manual_seed(args.seed)
    dims = theta.dim()
    est = gd_variance(
        theta,
        lambda size: compile_kernel(args.arch, size, dims=dims),  # the embedding may grow
        args.lr,
        steps,
        mask,
        args.boundary,
        args.variance_samples,
        gen,
        args.tol,
        args.max_lanczos,
    )
    save_npy(args.variance_out, est.variance.detach().cpu().numpy())
    return {
        "method": "monte-carlo",
        "samples": est.samples,
        "relative_std": est.relative_std,
        "interval_95": est.interval,
        **est.info,
    }


def _plot(path: str, pred) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gpdip.io.atomic import save_figure

    curve = [(t, p) for t, p in pred.curve if t >= 1]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([t for t, _ in curve], [p for _, p in curve], "-", color="C0", label="NTK-GD")
    marks = [(t, p) for t, p in zip(pred.steps, pred.psnr, strict=True) if t >= 1]
    ax.plot([t for t, _ in marks], [p for _, p in marks], "o", color="C0", label="requested")
    ax.axvline(
        pred.best_step,
        color="C3",
        ls="--",
        label=f"best step {pred.best_step} ({pred.best_psnr:.2f} dB)",
    )
    ax.set_xscale("log")
    ax.set_xlabel("GD steps t")
    ax.set_ylabel("predicted PSNR (dB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(path, fig, dpi=100)
    plt.close(fig)
