"""The channel sweep's command line and report (``gpdip dip-sweep``, scripts/channel_sweep.py).

The sweep itself (tasks, the run of one task, the executors) is :mod:`gpdip.experiments.sweep`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpdip.cli.args import integer, real
from gpdip.dip.io import read_jsonl
from gpdip.errors import GpdipError
from gpdip.experiments.sweep import RESULTS, WIDTHS, SweepTask, execute, pending
from gpdip.io.atomic import save_text
from gpdip.io.rundir import check_inputs, locked


def _config(r: dict[str, Any]) -> tuple:
    """How the DIP side was run: (method, iters, lr, noise_var, lr_ref_width)."""
    m = r.get("method", "adam")
    if m == "readout":
        return (m, None, None, r.get("noise_var"), None)
    return (m, r["iters"], r["lr"], r.get("noise_var"), r.get("lr_ref_width"))


def config_label(c: tuple) -> str:
    m, it, lr, nv, ref = c
    noise = "" if nv is None else f", s²={nv:g}"
    if m == "readout":
        return f"{m}{noise}"
    rate = f"lr {lr:g}" if ref is None else f"lr {lr:g}·{ref}/C"
    return f"{m} {it} it, {rate}{noise}"


def _widths_by_config(rows: Sequence[dict[str, Any]], configs: list[tuple]) -> dict[str, set]:
    """Label suffix → widths run, per configuration (one unlabelled entry if none)."""
    if not configs:
        return {"": {r["width"] for r in rows}}
    return {f" ({config_label(c)})": {r["width"] for r in rows if _config(r) == c} for c in configs}


def summarize(rows: Sequence[dict[str, Any]], out: Path, widths_requested: Sequence[int]) -> str:
    """Markdown table (mean ± std over seeds per DIP configuration and width), plot, and the
    widths not run.  The GP column uses each configuration's noise variance."""
    import numpy as np

    from gpdip.experiments.plots import plot_sweep

    lines = [
        "| DIP method | channels | seeds | DIP PSNR | GP (DIP kernel) PSNR | GP-RBF PSNR | "
        "‖f_DIP−μ_GP‖/‖μ_GP‖ (missing px) | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    configs = sorted({_config(r) for r in rows}, key=str)
    for c in configs:
        crow = [r for r in rows if _config(r) == c]
        for w in sorted({r["width"] for r in crow}):
            rs = [r for r in crow if r["width"] == w]

            def ms(k: str, rs: list = rs) -> str:
                return f"{np.mean([r[k] for r in rs]):.2f} ± {np.std([r[k] for r in rs]):.2f}"

            dist = [r["dist_dip_gp"] for r in rs]
            lines.append(
                f"| {config_label(c)} | {w} | {len(rs)} | {ms('psnr_dip')} | {ms('psnr_gp')} | "
                f"{ms('psnr_rbf')} | {np.mean(dist):.3f} ± {np.std(dist):.3f} | "
                f"{np.mean([r['seconds'] for r in rs]):.0f} |"
            )
    lines.append("")
    for label, widths in _widths_by_config(rows, configs).items():
        missing = [w for w in widths_requested if w not in widths]
        lines.append(f"Widths not run{label}: {', '.join(map(str, missing)) or 'none'}.")
    text = "\n".join(lines) + "\n"
    if rows:
        plot_sweep(
            rows, out / "sweep_psnr_vs_channels.png", group=lambda r: config_label(_config(r))
        )
    save_text(out / "sweep_table.md", text)
    return text


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(
        description="Channel sweep: DIP vs its GP limit on 64×64 inpainting (paper Fig. 6)"
    )
    p.add_argument("--arch", default="unet2")
    p.add_argument("--widths", type=integer(1, 4096), nargs="+", default=list(WIDTHS))
    p.add_argument("--seeds", type=integer(0, 2**31 - 1), nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=integer(4, 1024), default=64)
    p.add_argument("--iters", type=integer(1, 10_000_000), default=1500)
    p.add_argument("--lr", type=real(0, 10), default=0.01)
    p.add_argument(
        "--lr-ref-width",
        type=integer(1, 4096),
        default=None,
        help="scale the lr as lr·REF/width (a stable per-weight step falls ∝ 1/width)",
    )
    p.add_argument("--method", choices=("adam", "sgld", "readout"), default="adam")
    p.add_argument(
        "--noise-var",
        type=real(0, 1e6),
        default=None,
        help="GP noise variance = the sgld/readout likelihood σ² (default: 1e-6·K(0) nugget)",
    )
    p.add_argument(
        "--drop",
        type=real(0, 1, lo_open=False, hi_open=True),
        default=0.5,
        help="probability of dropping a pixel, in [0, 1)",
    )
    p.add_argument("--image", default="house", help="'house' (packaged) or an image path")
    p.add_argument("--out", default="results/dip/sweep")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--dask-address", default=None)
    p.add_argument("--jobs", type=integer(1, 256), default=2)
    p.add_argument(
        "--report",
        action="store_true",
        help="run nothing: rebuild the table and plot from results.jsonl",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CI check: widths 8 16, one seed, 32×32, 30 iterations (< 2 min)",
    )
    return p


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args(argv)
    if args.smoke:
        args.widths, args.seeds, args.size, args.iters = [8, 16], [0], 32, 30
    if args.method in ("sgld",) and args.iters < 2:
        raise GpdipError(f"argument --iters {args.iters}: sgld needs ≥ 2 (burn-in iters // 2)")
    with locked(args.out) as out:  # one sweep per folder: no duplicated rows
        if not args.report:
            check_inputs(out, sweep_inputs(args), resuming=(out / RESULTS).exists())
        return _run_sweep(args, out)


def sweep_inputs(args: argparse.Namespace) -> dict[str, str]:
    """Fingerprints a resumed sweep must share with its rows: the image's bytes, the drop
    rate, and the architecture file behind the ``--arch`` name."""
    from gpdip.io.paths import packaged_asset
    from gpdip.io.rundir import file_fingerprint, fingerprint

    image = packaged_asset("house128.png") if args.image == "house" else Path(args.image)
    if not image.is_file():
        raise GpdipError(f"argument --image '{args.image}': not a file (or 'house')")
    return {
        "image": file_fingerprint(image),
        "drop": fingerprint(args.drop),
        f"arch {args.arch}": _arch_fingerprint(args.arch),
    }


def _arch_fingerprint(arch: str) -> str:
    from gpdip.arch.catalog import catalog_path
    from gpdip.io.rundir import file_fingerprint, fingerprint

    if Path(arch).is_file():
        return file_fingerprint(arch)
    try:
        return file_fingerprint(catalog_path(arch))
    except GpdipError:
        return fingerprint(arch)  # a built-in network such as 'dip-tiny'


def _run_sweep(args: argparse.Namespace, out: Path) -> int:
    tasks = [
        SweepTask(
            args.arch,
            w,
            s,
            args.size,
            args.iters,
            args.lr,
            args.drop,
            args.image,
            str(out),
            args.method,
            args.noise_var,
            args.lr_ref_width,
        )
        for w in args.widths
        for s in args.seeds
    ]
    # small widths first, so a time-limited sweep finishes whole widths early
    todo = [] if args.report else pending(tasks, out / RESULTS)
    print(f"{len(tasks) - len(todo)} of {len(tasks)} runs already done; running {len(todo)}")
    execute(todo, out / RESULTS, args.executor, args.jobs, args.dask_address)
    rows = [
        r
        for r in read_jsonl(out / RESULTS)
        if (r["arch"], r["size"], r["image"], r["drop"])
        == (args.arch, args.size, args.image, args.drop)
    ]
    print(summarize(rows, out, args.widths))
    return 0
