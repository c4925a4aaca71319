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
    from gpdip.dip.arguments import config_from_args

    return config_from_args(args)


def run_dip(args: argparse.Namespace) -> int:
    """Load, build, train, write images, curves and summary.json to ``--out``."""
    import torch

    from gpdip.dip import Problem, fit, load_image, load_mask, make_network, psnr, save_image
    from gpdip.dip.schemes import get_scheme
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
        parameterization=args.parameterization,
        batchnorm=args.batchnorm,
        padding=args.padding,
        input_kind=args.input,
        generator=torch.Generator().manual_seed(args.seed),
    )
    if getattr(get_scheme(cfg.method), "image_input", False):  # z is an image: C channels in
        from gpdip.dip.methods import make_image_input_network

        shape = (int(y.shape[1]), int(y.shape[2]))
        net = make_image_input_network(args.arch, shape, y.shape[0], width=args.width,
                                       generator=torch.Generator().manual_seed(args.seed))
        x = y[None].clone()  # only its channel count is used: the scheme's z starts at Aᵀy
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
    if res.iterations < cfg.iters and res.stop_reason is None:
        raise GpdipError(f"run stopped at {res.iterations} of {cfg.iters} iterations")
    return 0
