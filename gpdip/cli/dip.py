"""``gpdip dip``: train a DIP (SGD variants or SGLD); ``gpdip dip-sweep``: the channel sweep.

    gpdip dip noisy.png --arch unet2 --method sgld --iters 3000 --noise-std 25/255 \\
        --truth clean.png --out runs/sgld
    gpdip dip image.png --mask mask.png --arch skip5-bilinear --method sgd-input-avg --out runs/inp
    gpdip dip image.png --mask mask.png --arch unet2 --method gd --lr 1e-3 --centred \
        --parameterization ntk --out runs/gd

The training arguments are generated from ``DIPConfig`` and the scheme registry
(``gpdip.dip.schemes``); each method option lists the methods that take it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gpdip.cli.args import MAX_SEED, check_device, check_ranges
from gpdip.errors import GpdipError


def register(subparsers: argparse._SubParsersAction) -> None:
    from gpdip.dip.arguments import add_config_arguments

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
    p.add_argument("--width", type=int, default=None, help="channels of the widest layer")
    add_config_arguments(p, defaults={"checkpoint_every": 500})
    p.add_argument(
        "--batchnorm", action="store_true", help="practical DIP: BatchNorm (departs from the limit)"
    )
    p.add_argument("--padding", choices=("zero", "reflect", "circular"), default=None)
    p.add_argument("--init", choices=("limit", "pytorch"), default="limit")
    p.add_argument(
        "--parameterization",
        choices=("standard", "ntk"),
        default="standard",
        help="ntk: weights and biases N(0, 1), scaled by √(weight_var/fan_in) and √bias_var "
        "in the forward pass (the NTK's; needs a catalog architecture)",
    )
    p.add_argument(
        "--input",
        choices=("limit", "uniform"),
        default="limit",
        help="network input: the limit's Gaussian noise or DIP's U[0, 0.1]",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_dip)

    from gpdip.experiments import sweep_cli as sweep

    s = subparsers.add_parser(
        "dip-sweep", help="channel sweep: DIP vs GP (paper Fig. 6)", description=sweep.__doc__
    )
    sweep.build_parser(s)
    s.set_defaults(func=lambda args: sweep.main(args=args))


def _config(args: argparse.Namespace):
    from gpdip.dip.arguments import config_from_args

    return config_from_args(args)


#: Ranges of the numeric arguments (attribute: kind, lo, hi, lo_open, hi_open); the
#: method-specific ones are skipped when a method does not declare them.
RANGES: tuple[tuple[str, tuple], ...] = (
    ("iters", (int, 1, 10_000_000, False, False)),
    ("lr", (float, 0.0, 10.0, True, False)),
    ("width", (int, 1, 4096, False, False)),
    ("noise_std", (float, 0.0, 10.0, True, False)),
    ("step_size", (float, 0.0, 10.0, True, False)),
    ("step_decay_gamma", (float, 0.0, 10.0, False, False)),
    ("frozen_alpha", (float, 0.0, 1.0, True, False)),
    ("burn_in", (int, 0, 10_000_000, False, False)),
    ("thin", (int, 1, 10_000_000, False, False)),
    ("weight_decay", (float, 0.0, 1e6, False, False)),
    ("stop_iter", (int, 1, 10_000_000, False, False)),
    ("reg_noise_std", (float, 0.0, 10.0, False, False)),
    ("log_every", (int, 1, 10_000_000, False, False)),
    ("checkpoint_every", (int, 0, 10_000_000, False, False)),
    ("seed", (int, 0, MAX_SEED, False, False)),
)


def check_args(args: argparse.Namespace) -> None:
    """Validation at the door: ranges, the device, SGLD's burn-in, the output folder."""
    check_ranges(args, RANGES)
    check_device(getattr(args, "device", None))
    iters, burn_in = args.iters, getattr(args, "burn_in", None)
    if args.method in ("sgld", "noisy-adam") and burn_in is not None and burn_in >= iters:
        raise GpdipError(
            f"argument --burn-in {burn_in}: expected fewer than --iters {iters} "
            f"steps, so that {args.method} keeps samples after the burn-in"
        )
    stop_iter = getattr(args, "stop_iter", None)
    if stop_iter is not None and stop_iter > iters:
        raise GpdipError(
            f"argument --stop-iter {stop_iter}: expected 1 ≤ stop-iter ≤ --iters {iters}"
        )


def _load_problem(args: argparse.Namespace):
    """(observed, mask, truth): observed (C, H, W), mask (1, H, W) bool or None, truth
    (C, H, W) converted to the observed image's channel count, all float32."""
    from gpdip.io.images import load_image, load_mask

    y = load_image(args.image)
    shape = (int(y.shape[1]), int(y.shape[2]))
    mask = load_mask(args.mask, shape)[None] if args.mask else None
    truth = load_image(args.truth, grey=y.shape[0] == 1) if args.truth else None
    if truth is not None and truth.shape != y.shape:
        raise GpdipError(
            f"--truth '{args.truth}' has shape {tuple(truth.shape)} (C, H, W); "
            f"expected {tuple(y.shape)} as the image '{args.image}'"
        )
    return y.float(), mask, None if truth is None else truth.float()


def run_dip(args: argparse.Namespace) -> int:
    """Load, build, train, write images, curves and summary.json to ``--out``."""

    from gpdip.io.rundir import locked

    check_args(args)
    cfg = _config(args)
    y, mask, truth = _load_problem(args)
    with locked(args.out) as out:  # one process per folder, from training to the last file
        return _train_and_write(args, cfg, y, mask, truth, out)


def _train_and_write(args, cfg, y, mask, truth, out: Path) -> int:
    from gpdip.dip import Problem, fit

    net, x = _network(args, cfg, y)
    res = fit(
        net,
        x,
        Problem(y, mask, truth),
        cfg,
        out_dir=out,
        device=args.device,
        progress=not args.no_progress,
    )
    _write_outputs(args, res, truth, out)
    if res.iterations < cfg.iters and res.stop_reason is None:
        raise GpdipError(f"run stopped at {res.iterations} of {cfg.iters} iterations")
    return 0


def _network(args, cfg, y):
    """(net, input) for an image y (C, H, W): the architecture's network, or for the schemes
    whose input z is an image (Self-Guided DIP, aSeqDIP) a network taking C channels."""
    import torch

    from gpdip.dip import make_network
    from gpdip.dip.schemes import get_scheme

    shape = (int(y.shape[1]), int(y.shape[2]))
    generator = torch.Generator().manual_seed(args.seed)
    if getattr(get_scheme(cfg.method), "image_input", False):
        from gpdip.dip.methods import make_image_input_network

        net = make_image_input_network(
            args.arch, shape, y.shape[0], width=args.width, generator=generator
        )
        return net, y[None].clone()  # only its channel count is used: z starts at Aᵀy
    return make_network(
        args.arch,
        shape,
        y.shape[0],
        width=args.width,
        init=args.init,
        parameterization=args.parameterization,
        batchnorm=args.batchnorm,
        padding=args.padding,
        input_kind=args.input,
        generator=generator,
    )


def _write_outputs(args, res, truth, out: Path) -> None:
    """Images (final, mean, best, stop, std), curves and summary.json, all atomic."""
    from gpdip.experiments.plots import plot_curves
    from gpdip.io.atomic import save_json, save_torch
    from gpdip.io.images import psnr, save_image

    for name in ("final", "mean", "best", "stop"):
        if getattr(res, name) is not None:
            save_image(out / f"{name}.png", getattr(res, name))
    if res.std is not None:
        save_image(out / "std.png", res.std / max(float(res.std.max()), 1e-12))
        save_torch(out / "std.pt", res.std)
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
    save_json(out / "summary.json", summary)
    print(json.dumps(summary))
