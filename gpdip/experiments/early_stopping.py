"""Experiment: SGLD removes the need for early stopping (paper Figs. 1a, 2; Sec. 5.2.1).

Denoising σ = 25/255 of a CPU-sized crop; SGD (Adam) and its variants versus
SGLD.  Each method runs in ``--out/<method>/`` (``log.jsonl`` as it goes,
checkpoints, resumable; ``row.json`` when finished), so methods can run as
separate processes; every invocation then rebuilds ``curves.png``,
``table.md`` and ``results.json`` from all finished methods in ``--out``
(``--report`` only rebuilds).

    python -m gpdip.experiments.early_stopping --image house --iters 8000 --methods sgd \
        --out results/dip/early_stopping
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from gpdip.dip.config import DIPConfig
from gpdip.dip.images import add_noise, resize
from gpdip.dip.io import read_jsonl
from gpdip.dip.nets import make_network
from gpdip.dip.trainer import Problem, fit
from gpdip.experiments.plots import plot_curves
from gpdip.io.atomic import ensure_dir, save_json, save_text
from gpdip.io.images import center_crop, load_image, psnr, save_image
from gpdip.io.paths import packaged_asset, shared_data_dir

PEPPERS = "denoising/image_Peppers512rgb.png"  # under the shared data folder


def _target(path: str, size: int) -> torch.Tensor:
    if path == "house":  # packaged grayscale 128×128, area-resized
        return resize(load_image(packaged_asset("house128.png")), size)
    if path == "peppers":
        data = shared_data_dir(required=True)
        assert data is not None
        path = str(data / PEPPERS)
    img = load_image(path)
    side = min(img.shape[1:])
    return resize(center_crop(img, side // 2), size)  # central half, area-downsampled


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--image",
        default="peppers",
        help="an image path (central half, area-resized), 'peppers' (the shared "
        f"data's {PEPPERS}) or 'house' (packaged, grayscale)",
    )
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--arch", default="unet2")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--iters", type=int, default=2400)
    p.add_argument("--methods", nargs="+", default=["sgd", "sgd-input-avg", "sgld"])
    p.add_argument("--sgd-lr", type=float, default=0.01)
    p.add_argument("--sgld-lr", type=float, default=0.003)
    p.add_argument("--burn-in-frac", type=float, default=1 / 3)
    p.add_argument("--report", action="store_true", help="only rebuild table/figure")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="results/dip/early_stopping")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    sigma = 25 / 255
    truth = _target(a.image, a.size)
    noisy = add_noise(truth, sigma, torch.Generator().manual_seed(0))
    out = Path(a.out)
    ensure_dir(out)
    args = argv if argv is not None else sys.argv[1:]
    cmd = "python -m gpdip.experiments.early_stopping " + " ".join(args)
    for method in [] if a.report else a.methods:
        row = _run_method(a, method, truth, noisy, sigma, out)
        save_json(out / method / "row.json", {**row, "command": cmd})
        print(json.dumps(row), flush=True)
    _report(a, out, truth, noisy, sigma)
    return 0


def _run_method(
    a: argparse.Namespace,
    method: str,
    truth: torch.Tensor,
    noisy: torch.Tensor,
    sigma: float,
    out: Path,
) -> dict:
    """Train one method (resumable under ``out/method``); its row of the table."""
    sampler = method == "sgld"
    cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=a.iters,
        lr=a.sgld_lr if sampler else a.sgd_lr,
        preconditioner="rmsprop",
        noise_std=sigma,
        burn_in=int(a.iters * a.burn_in_frac),
        thin=5,
        log_every=25,
        checkpoint_every=500,
        seed=0,
    )
    net, x = make_network(
        a.arch,
        (a.size, a.size),
        truth.shape[0],
        width=a.width,
        generator=torch.Generator().manual_seed(1),
    )
    r = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=out / method, device="cpu")
    save_image(out / f"{method}.png", r.estimate)
    return {
        "method": method,
        "lr": cfg.lr,
        "best_psnr": r.best_psnr,
        "best_iter": r.best_iter,
        "final_psnr": psnr(r.final, truth),
        "mean_psnr": None if r.mean is None else psnr(r.mean, truth),
        "final_mse_obs": r.history[-1]["mse_obs"],
        "min_mse_obs": min(h["mse_obs"] for h in r.history),
        "seconds": r.seconds,
        "iters": a.iters,
    }


def _report(
    a: argparse.Namespace, out: Path, truth: torch.Tensor, noisy: torch.Tensor, sigma: float
) -> None:
    """Rebuild the table, curves and results from every method's saved row and log."""
    rows, hist = [], {}
    for d in sorted(out.glob("*/row.json")):
        rows.append(json.loads(d.read_text()))
        hist[rows[-1]["method"]] = read_jsonl(d.parent / "log.jsonl")
    save_image(out / "clean.png", truth)
    save_image(out / "noisy.png", noisy)
    plot_curves(
        hist,
        out / "curves.png",
        sigma=sigma,
        title=f"{a.arch} w={a.width}, {a.size}×{a.size} denoising σ=25/255",
    )
    save_json(out / "results.json", {"args": vars(a), "rows": rows, "histories": hist})
    save_text(out / "table.md", _table(rows, sigma, a))


def _table(rows: list[dict], sigma: float, a: argparse.Namespace) -> str:
    f = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [
        f"{a.arch} width {a.width}, {a.size}×{a.size} `{a.image}`, σ = 25/255 "
        f"(σ² = {sigma**2:.5f}), one thread.  Commands (one process per method):",
        "",
        *sorted({f"    {r['command']}" for r in rows}),
        "",
        "| method | lr | iters | best PSNR (iter) | final iterate PSNR "
        "| EMA / posterior-mean PSNR | min MSE vs noisy | final MSE vs noisy | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['lr']} | {r['iters']} | "
            f"{f(r['best_psnr'])} ({r['best_iter']}) | "
            f"{f(r['final_psnr'])} | {f(r['mean_psnr'])} | {r['min_mse_obs']:.5f} | "
            f"{r['final_mse_obs']:.5f} | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
