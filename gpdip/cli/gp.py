"""``gpdip inpaint``, ``gpdip sample`` and ``gpdip demo``: the GP engine's commands."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gpdip.cli.args import SEED, integer, real
from gpdip.errors import GpdipError
from gpdip.io.atomic import check_writable, ensure_dir, save_npy, save_text

MAX_SAMPLES = 10_000
MAX_SIZE = 2048  # a side; the circulant embedding of a larger grid would not fit in memory


def register(subparsers) -> None:
    """Add the ``inpaint``, ``sample`` and ``demo`` sub-commands."""
    p = subparsers.add_parser("inpaint", help="GP posterior inpainting of an image")
    p.add_argument("image")
    p.add_argument("--mask", required=True, help="PNG or NPY; nonzero = observed")
    p.add_argument("--kernel", default="auto", help="ARCH | rbf | matern52 | auto")
    p.add_argument(
        "--candidates",
        default=None,
        help="comma-separated kernels for --kernel auto (default: rbf, matern52, "
        "unet2, conv-d2, conv-d3, conv-d3-s2, conv-d3-s6)",
    )
    p.add_argument(
        "--noise", type=real(0, 1e6), default=None, help="noise variance > 0 (learned if absent)"
    )
    p.add_argument("--lengthscale", type=real(0, 1e6), default=None, help="> 0 (pixels)")
    p.add_argument("--backend", default="auto", choices=("auto", "dense", "gpytorch", "grid"))
    p.add_argument(
        "--tol", type=real(0, 1, hi_open=True), default=1e-6, help="CG relative residual, in (0, 1)"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--std-out", default=None)
    p.add_argument("--samples", type=integer(0, MAX_SAMPLES), default=0)
    p.add_argument("--samples-out", default=None)
    p.add_argument("--truth", default=None)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--png-bits", type=int, default=8, choices=(8, 16), help="PNG output depth")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_inpaint)

    s = subparsers.add_parser("sample", help="exact prior samples of an architecture's GP")
    s.add_argument("arch", help="architecture, rbf or matern52")
    s.add_argument("--size", type=integer(1, MAX_SIZE), required=True)
    s.add_argument("--n", type=integer(1, MAX_SAMPLES), default=4)
    s.add_argument("--lengthscale", type=real(0, 1e6), default=3.0, help="> 0 (pixels)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", required=True, help="figure .png, or .npy for the raw samples")
    s.set_defaults(func=run_sample)

    d = subparsers.add_parser("demo", help="inpaint the packaged house image (50%% dropped)")
    d.add_argument("--out-dir", default="gpdip-demo")
    d.set_defaults(func=run_demo)


def run_inpaint(args: argparse.Namespace) -> int:
    from gpdip.gp import inpaint
    from gpdip.io.images import channels_first, channels_last, psnr, save_image, ssim

    _check_inpaint_outputs(args)
    image, mask, truth = _inpaint_inputs(args)
    gen = torch.Generator().manual_seed(args.seed)
    kernel = args.kernel
    if args.candidates:
        if kernel != "auto":
            raise GpdipError("--candidates is only used with --kernel auto")
        kernel = f"auto:{args.candidates}"
    t0 = time.perf_counter()
    post = inpaint(
        channels_last(image),
        mask,
        kernel,
        args.noise,
        args.lengthscale,
        args.backend,
        args.tol,
        n_samples=args.samples,
        std=args.std_out is not None,
        generator=gen,
        progress=not args.json,
    )
    mean = channels_first(post.mean)
    save_image(args.out, mean, args.png_bits)
    if args.std_out and post.std is not None:
        save_image(args.std_out, channels_first(post.std), args.png_bits)
    if args.samples and post.samples is not None:
        for i, smp in enumerate(post.samples[: args.samples]):  # std may have drawn more
            save_image(Path(args.samples_out) / f"sample_{i:03d}.png", channels_first(smp))
    report = _report(post.info, time.perf_counter() - t0)
    if isinstance(post.info.get("hyper"), dict) and "candidates" in post.info["hyper"]:
        report["auto_candidates"] = {
            c["kernel"]: c["log_marginal_likelihood"] for c in post.info["hyper"]["candidates"]
        }
    if truth is not None:
        report["psnr"], report["ssim"] = psnr(mean, truth), ssim(mean, truth)
    if args.json:
        print(json.dumps(report, indent=1, default=float))
    return 0


def _inpaint_inputs(args: argparse.Namespace):
    """(image (C, H, W), mask (H, W), truth or None), checked against each other."""
    from gpdip.io.images import load_image, load_mask

    image = load_image(args.image)
    mask = load_mask(args.mask, (int(image.shape[1]), int(image.shape[2])))
    if args.png_bits == 16 and image.shape[0] != 1:
        raise GpdipError(
            f"--png-bits 16: image '{args.image}' has colour; a 16-bit PNG "
            "holds grey images only (use 8 or an .npy output)"
        )
    truth = load_image(args.truth) if args.truth else None
    if truth is not None and truth.shape != image.shape:
        raise GpdipError(
            f"--truth '{args.truth}' has shape {tuple(truth.shape)} (C, H, W), "
            f"expected {tuple(image.shape)} as the image"
        )
    return image, mask, truth


def _check_inpaint_outputs(args: argparse.Namespace) -> None:
    """Every output name and folder is checked before any computation."""
    from gpdip.io.images import check_image_suffix

    if args.samples and not args.samples_out:
        raise GpdipError("--samples needs --samples-out DIR")
    for flag, path in (("--out", args.out), ("--std-out", args.std_out)):
        if path is not None:
            check_image_suffix(path)
            check_writable(path, flag)
    if args.samples_out:
        ensure_dir(args.samples_out, "--samples-out folder")


def _report(info: dict, seconds: float) -> dict:
    chans = info.get("channels", [info])
    hyper = dict(info.get("hyper") or chans[0].get("hyper") or {})
    hyper.pop("candidates", None)
    mlls = [c.get("hyper", hyper).get("log_marginal_likelihood") for c in chans]
    return {
        "time_s": seconds,
        "backend": chans[0].get("backend"),
        "cg_iterations": [c.get("cg_iterations") for c in chans],
        "cg_residual": [c.get("cg_residual") for c in chans],
        "log_marginal_likelihood_crop": mlls,
        "hyperparameters": hyper,
    }


def _table_fn(arch: str, lengthscale: float):
    from gpdip.gp.tables import make_table

    k = make_table(arch, lengthscale)
    return lambda size: k.table(size).detach()


def run_sample(args: argparse.Namespace) -> int:
    from gpdip.gp import sample_prior
    from gpdip.io.images import check_image_suffix

    check_image_suffix(args.out)
    check_writable(args.out, "--out")
    gen = torch.Generator().manual_seed(args.seed)
    x = sample_prior(_table_fn(args.arch, args.lengthscale), (args.size, args.size), args.n, gen)
    if args.out.endswith(".npy"):
        save_npy(args.out, x.detach().cpu().numpy())  # (n, size, size)
        return 0
    _figure(args.out, [(f"sample {i}", s) for i, s in enumerate(x)], cmap="RdBu_r")
    return 0


def _figure(path: str, panels, cmap: str = "gray") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gpdip.io.atomic import save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2))
    for ax, (title, img) in zip(list(getattr(axes, "flat", [axes])), panels, strict=True):
        ax.imshow(img.detach().cpu().numpy(), cmap=cmap)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    save_figure(path, fig, dpi=100, bbox_inches="tight")
    plt.close(fig)


def run_demo(args: argparse.Namespace) -> int:
    from gpdip.gp import inpaint
    from gpdip.io.images import channels_last, load_image, psnr, ssim
    from gpdip.io.paths import packaged_asset

    out = ensure_dir(args.out_dir, "--out-dir")
    truth = channels_last(load_image(packaged_asset("house128.png")))  # (H, W) grey
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(truth.shape, generator=gen) < 0.5
    kernel = "unet2"
    t0 = time.perf_counter()
    post = inpaint(
        truth * mask,
        mask,
        kernel,
        backend="grid",
        std=True,
        n_samples=16,
        generator=gen,
        progress=True,
    )
    report = _report(post.info, time.perf_counter() - t0)
    report.update(kernel=kernel, psnr=psnr(post.mean, truth), ssim=ssim(post.mean, truth))
    _figure(
        str(out / "demo.png"),
        [
            ("input (50% observed)", truth * mask),
            ("posterior mean", post.mean.clamp(0, 1)),
            ("posterior std", post.std),
            ("truth", truth),
        ],
    )
    save_text(out / "demo.json", json.dumps(report, indent=1, default=float))
    print(json.dumps(report, indent=1, default=float))
    return 0
