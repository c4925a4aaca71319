"""Paper Fig. 2: PSNR over iterations of every inference scheme on one denoising image.

    python scripts/reproduce/fig2_schemes.py [--smoke] [--config cpu] [--image image_Peppers512rgb]

The paper's "peppers" image, σ = 25/255, under Table 1's configuration (``--config``): the
runs ``sgd-avg``, ``sgd-input-avg`` and ``sgld`` are Table 1's own jobs (the same folders
under results/table1/CONFIG/runs/, so whichever script runs first does the work and the
other reuses it), plus the original code's ``noisy-adam`` (Adam + N(0, (2·lr)²) on the conv
weights).  Plotted: SGD and SGD+Input (solid) with their exponential averages (dashed), SGLD
samples (solid) and its running posterior mean (dashed), noisy Adam.  Not plotted: the
paper's SGD+WD (MAP) curve; gpdip's SGD schemes have no weight-decay option.
Writes results/fig2/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, finish, output_dir, parser

from gpdip.dip.io import read_jsonl
from gpdip.experiments.tables import CONFIGS, TableTask, fit_scheme, load_problem, run_table_task
from gpdip.io.atomic import save_figure

STYLE = {  # run → (log key, label, matplotlib style)
    "sgd-avg": [("psnr", "SGD", "r-"), ("psnr_avg", "SGD + Avg", "r--")],
    "sgd-input-avg": [("psnr", "SGD + Input", "y-"), ("psnr_avg", "SGD + Input + Avg", "y--")],
    "sgld": [("psnr", "SGLD sample", "b-"), ("psnr_mean", "SGLD posterior mean", "b--")],
    "noisy-adam": [("psnr", "noisy Adam (original code)", "g-")],
}


def noisy_adam(image: str, config: str, folder: Path) -> Path:
    """The original code's scheme on Table 1's problem, with its SGD settings; returns its
    run folder."""
    cfg = CONFIGS[config].for_table("denoising")
    run = folder / "noisy-adam"
    fit_scheme(cfg, "denoising", "noisy-adam", load_problem("denoising", image, cfg, 0), run, 0)
    return run


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu", choices=sorted(CONFIGS))
    p.add_argument("--image", default="image_Peppers512rgb")
    args = p.parse_args()
    if args.smoke:
        args.config = "smoke"
    started = time.time()
    folder = output_dir("fig2", args)
    table_out = RESULTS / "table1" / args.config if not args.smoke else folder / "table1"
    runs = {}
    for run in ("sgd-avg", "sgd-input-avg", "sgld"):
        row = run_table_task(
            TableTask("denoising", args.image, run, 0, args.config, str(table_out))
        )
        runs[run] = (table_out / "runs" / args.image / f"{run}-s0", row)
    runs["noisy-adam"] = (noisy_adam(args.image, args.config, folder), None)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    summary = {}
    for run, (path, _) in runs.items():
        hist = read_jsonl(path / "log.jsonl")
        for key, label, style in STYLE[run]:
            pts = [(h["iter"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, lw=1, label=label)
                summary[label] = {
                    "best": max(v for _, v in pts),
                    "final": pts[-1][1],
                    "best_iter": max(pts, key=lambda t: t[1])[0],
                }
    cfg = CONFIGS[args.config].for_table("denoising")
    ax.set(
        xlabel="iteration",
        ylabel="PSNR vs clean (dB)",
        title=f"Fig. 2: {args.image}, σ = 25/255, config `{args.config}` "
        f"({cfg.arch} w{cfg.width}, {cfg.crop or 'full'} crop)",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(folder / "fig2.png", fig, dpi=110)
    plt.close(fig)
    finish(folder, args, started, {"curves": summary, "config": args.config, "image": args.image})


if __name__ == "__main__":
    main()
