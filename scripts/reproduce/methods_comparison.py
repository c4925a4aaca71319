"""Issue 13: DIP's other cures for overfitting against SGLD and the GP, on the table crops.

    python scripts/reproduce/methods_comparison.py [--config cpu|full|smoke] [--jobs 2]
        [--tasks denoising inpainting salt-pepper] [--images ...] [--runs ...]
        [--import-tables] [--executor local|dask --dask-address tcp://...] [--report]
        [--seeds ...] [--list] [--steps N --out DIR]

Rows: SGD+Early (oracle), ES-WMV, DIP-TV, DIP-ADMM v1/v2, Self-Guided DIP, aSeqDIP, DOP
(salt-and-pepper only), SGLD, GP-DIP, GP-RBF (``gpdip.experiments.methods_table``).  Every
finished job appends a row to results/methods/CONFIG/results.jsonl (a rerun skips finished
jobs); table.md, the PSNR curves and a montage are rebuilt from the results files.
``--import-tables`` takes the SGLD and GP rows of results/table1|table2/CONFIG (the same
computation: same crops, network, seeds and noise draws) instead of rerunning them.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, provenance, publish_figures

from gpdip.dip.io import read_jsonl
from gpdip.errors import GpdipError
from gpdip.experiments.methods_report import (
    import_table_rows,
    plot_curves,
    plot_montage,
    summarize,
)
from gpdip.experiments.methods_table import (
    CONFIGS,
    RUNS,
    TASKS,
    comparison_tasks,
    describe,
    run_comparison_task,
    task_key,
)
from gpdip.experiments.sweep import execute
from gpdip.io.atomic import save_json, save_text

TABLE_RESULTS = {"denoising": "table1", "inpainting": "table2"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    p.add_argument(
        "--smoke", action="store_true", help="= --config smoke, one image per task, every run (CI)"
    )
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--images", nargs="+", default=None, help="a subset (file stems)")
    p.add_argument("--runs", nargs="+", default=None, choices=RUNS)
    p.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="a subset of the config's seeds"
    )
    p.add_argument(
        "--import-tables",
        action="store_true",
        help="SGLD/GP rows from results/table1|2/CONFIG instead of running them",
    )
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--dask-address", default=None)
    p.add_argument("--report", action="store_true", help="run nothing; rebuild table, figures")
    p.add_argument(
        "--list", action="store_true", help="run nothing; print the jobs (done / to do) and exit"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="override the DIP methods' gradient-step budget (a quick check at the config's "
        "scale; needs --out, so its rows never join the config's results)",
    )
    p.add_argument("--out", default=None, help="default results/methods/CONFIG")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.config = "smoke"
    if args.steps is not None and args.out is None:
        p.error("--steps needs --out (a short run's rows must not join the config's results)")
    try:
        run(args)
    except GpdipError as exc:
        raise SystemExit(f"error: {exc}") from None


def run(args: argparse.Namespace) -> None:
    started = time.time()
    folder = RESULTS / "methods" / args.config if args.out is None else Path(args.out)
    if not args.list:
        folder.mkdir(parents=True, exist_ok=True)
    results = folder / "results.jsonl"
    tasks = comparison_tasks(
        args.tasks, args.config, folder, args.runs, args.images, steps=args.steps
    )
    if args.seeds is not None:
        unknown = sorted(set(args.seeds) - {t.seed for t in tasks})
        if unknown:
            raise GpdipError(f"--seeds {unknown}: config '{args.config}' has no such seed")
        tasks = [t for t in tasks if t.seed in args.seeds]
    if args.smoke and args.images is None:  # the first image of each task
        firsts = {t.table: t.image for t in reversed(tasks)}
        tasks = [t for t in tasks if t.image == firsts[t.table]]
    imported = []
    if args.import_tables:
        for name in TABLE_RESULTS.values():
            imported += import_table_rows(
                read_jsonl(RESULTS / name / args.config / "results.jsonl"), args.config
            )
        have = {(r["table"], r["image"], r["run"], r["seed"]) for r in imported}
        tasks = [t for t in tasks if (t.table, t.image, t.run, t.seed) not in have]
    done = {task_key(r) for r in read_jsonl(results)}
    todo = [] if args.report else [t for t in tasks if task_key(vars(t)) not in done]
    if args.list:
        list_jobs(tasks, done, args.config)
        return
    print(
        f"{len(tasks) - len(todo)} of {len(tasks)} jobs already done; running {len(todo)}",
        flush=True,
    )
    execute(
        todo,
        results,
        args.executor,
        args.jobs,
        args.dask_address,
        run=run_comparison_task,
        describe=describe,
    )
    rows = read_jsonl(results)
    ran = {(r["table"], r["image"]) for r in rows}
    rows += [r for r in imported if (r["table"], r["image"]) in ran]
    text = summarize(rows, args.config)
    save_text(folder / "table.md", text)
    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    for table in args.tasks:
        images = sorted({r["image"] for r in rows if r["table"] == table})
        if images:
            plot_curves(folder, table, images[0], figures / f"curves_{table}.png")
            plot_montage(folder, table, figures / f"montage_{table}.png")
    save_json(folder / "provenance.json", provenance(args, started))
    if args.out is None:
        publish_figures(figures)
    print(text)


def list_jobs(tasks: list, done: set, config: str) -> None:
    """Print every job (``done`` / ``todo``) and the count per task: a dry run."""
    steps = CONFIGS[config].grad_steps
    for t in tasks:
        state = "done" if task_key(vars(t)) in done else "todo"
        print(f"{state}  {t.table:>11s}  {t.image:>20s}  {t.run:>14s}  seed {t.seed}")
    for table in sorted({t.table for t in tasks}):
        mine = [t for t in tasks if t.table == table]
        todo = sum(task_key(vars(t)) not in done for t in mine)
        print(f"{table}: {len(mine)} jobs ({todo} to do), DIP budget {steps} gradient steps")
    print(f"total: {len(tasks)} jobs", flush=True)


if __name__ == "__main__":
    main()
