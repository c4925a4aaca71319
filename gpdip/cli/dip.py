"""``gpdip dip``: train a DIP (SGD variants or SGLD); ``gpdip dip-sweep``: the channel sweep.

    gpdip dip noisy.png --arch unet2 --method sgld --iters 3000 --noise-std 25/255 \\
        --truth clean.png --out runs/sgld
    gpdip dip image.png --mask mask.png --arch skip5-bilinear --method sgd-input-avg --out runs/inp
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gpdip.errors import GpdipError


def _fraction(text: str) -> float:
    """A float or a fraction such as ``25/255``."""
    try:
        if "/" in text:
            a, b = text.split("/")
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}': expected a number or a fraction like 25/255"
        ) from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    from gpdip.dip.config import METHODS

    p = subparsers.add_parser(
        "dip",
        help="train a Deep Image Prior (SGD variants, SGLD)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", help="observed image (noisy for denoising; masked for inpainting)")
    p.add_argument("--mask", help="mask image, non-zero = observed (omit for denoising)")
    p.add_argument("--truth", help="clean image, for PSNR curves")
    p.add_argument("--arch", default="unet2", help="catalog name, TOML path, or 'dip-tiny'")
    p.add_argument("--method", choices=METHODS, default="sgd")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--width", type=int, default=None, help="channels of the widest layer")
    p.add_argument(
        "--noise-std",
        type=_fraction,
        default=None,
        help="σ of the observation noise in [0,1] units (e.g. 25/255); default: estimated",
    )
    p.add_argument("--step-size", type=float, default=None, help="SGLD ε0 (default 4σ²·lr/n_obs)")
    p.add_argument("--step-decay-gamma", type=float, default=0.0)
    p.add_argument("--preconditioner", choices=("none", "rmsprop"), default="none")
    p.add_argument("--freeze-preconditioner", action="store_true",
                   help="pSGLD: stop adapting G after burn-in (exact; Li et al.'s default "
                        "keeps adapting, which is stable but over-disperses)")
    p.add_argument("--frozen-alpha", type=float, default=1.0,
                   help="with --freeze-preconditioner: G's EMA decay after burn-in (1 = frozen)")
    p.add_argument("--burn-in", type=int, default=1000)
    p.add_argument("--thin", type=int, default=10)
    p.add_argument("--weight-decay", type=float, default=1.0, help="SGLD prior precision λ")
    p.add_argument("--stop-iter", type=int, default=None, help="oracle early-stopping iteration")
    p.add_argument("--reg-noise-std", type=_fraction, default=1 / 30)
    p.add_argument("--optimize-input", action="store_true")
    p.add_argument(
        "--batchnorm", action="store_true", help="practical DIP: BatchNorm (departs from the limit)"
    )
    p.add_argument("--padding", choices=("zero", "reflect", "circular"), default=None)
    p.add_argument("--init", choices=("limit", "pytorch"), default="limit")
    p.add_argument(
        "--input",
        choices=("limit", "uniform"),
        default="limit",
        help="network input: the limit's Gaussian noise or DIP's U[0, 0.1]",
    )
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_dip)

    from gpdip.experiments import sweep

    s = subparsers.add_parser(
        "dip-sweep", help="channel sweep: DIP vs GP (paper Fig. 6)", description=sweep.__doc__
    )
    sweep.build_parser(s)
    s.set_defaults(func=lambda args: sweep.main(args=args))


def _config(args: argparse.Namespace):
    from gpdip.dip.config import DIPConfig

    return DIPConfig(
        method=args.method,
        iters=args.iters,
        lr=args.lr,
        noise_std=args.noise_std,
        step_size=args.step_size,
        step_decay_gamma=args.step_decay_gamma,
        preconditioner=args.preconditioner,
        freeze_preconditioner=args.freeze_preconditioner,
        frozen_alpha=args.frozen_alpha,
        burn_in=args.burn_in,
        thin=args.thin,
        weight_decay=args.weight_decay,
        stop_iter=args.stop_iter,
        reg_noise_std=args.reg_noise_std,
        optimize_input=args.optimize_input,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    ).validate()


def run_dip(args: argparse.Namespace) -> int:
    """Load, build, train, write images, curves and summary.json to ``--out``."""
    import torch

    from gpdip.dip import Problem, fit, load_image, load_mask, make_network, psnr, save_image
    from gpdip.experiments.plots import plot_curves

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _config(args)
    y = load_image(args.image)
    mask = (
        load_mask(args.mask, (int(y.shape[1]), int(y.shape[2])), image_name=f"image '{args.image}'")
        if args.mask
        else None
    )
    truth = load_image(args.truth, grayscale=y.shape[0] == 1) if args.truth else None
    net, x = make_network(
        args.arch,
        (int(y.shape[1]), int(y.shape[2])),
        y.shape[0],
        width=args.width,
        init=args.init,
        batchnorm=args.batchnorm,
        padding=args.padding,
        input_kind=args.input,
        generator=torch.Generator().manual_seed(args.seed),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = fit(
        net,
        x,
        Problem(y, mask, truth),
        cfg,
        out_dir=out,
        device=args.device,
        progress=not args.no_progress,
    )
    save_image(res.final, out / "final.png")
    for name in ("mean", "best", "stop"):
        if getattr(res, name) is not None:
            save_image(getattr(res, name), out / f"{name}.png")
    if res.std is not None:
        save_image(res.std / max(float(res.std.max()), 1e-12), out / "std.png")
        torch.save(res.std, out / "std.pt")
    plot_curves(
        {args.method: res.history},
        out / "curves.png",
        sigma=res.sigma,
        title=f"{args.arch} {args.method}",
    )
    summary = {
        "method": args.method,
        "iterations": res.iterations,
        "seconds": res.seconds,
        "sigma": res.sigma,
        "n_samples": res.n_samples,
        "best_iter": res.best_iter,
        "best_psnr": res.best_psnr,
    }
    if truth is not None:
        summary.update(
            {
                f"psnr_{k}": psnr(getattr(res, k), truth)
                for k in ("final", "mean", "stop")
                if getattr(res, k) is not None
            }
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    if res.iterations < cfg.iters:
        raise GpdipError(f"run stopped at {res.iterations} of {cfg.iters} iterations")
    return 0
