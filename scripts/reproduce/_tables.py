"""Shared runner of the Table 1 and Table 2 scripts (see ``gpdip.experiments.tables``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import RESULTS, provenance

from gpdip.cli.args import integer
from gpdip.dip.io import read_jsonl
from gpdip.errors import GpdipError
from gpdip.experiments.sweep import execute
from gpdip.experiments.tables import (
    CONFIGS,
    DIP_RUNS,
    GP_RUNS,
    describe,
    run_table_task,
    summarize,
    table_tasks,
    task_key,
)
from gpdip.io.atomic import save_json, save_text
from gpdip.io.rundir import locked


def run(table: str, name: str, description: str) -> None:
    """Parse the command line and run the table; a bad request exits with its message."""
    try:
        _run(table, name, description)
    except GpdipError as exc:
        raise SystemExit(f"error: {exc}") from None


def _run(table: str, name: str, description: str) -> None:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    p.add_argument("--smoke", action="store_true", help="= --config smoke, 2 images (CI)")
    p.add_argument("--images", nargs="+", default=None, help="a subset (file stems)")
    p.add_argument(
        "--runs", nargs="+", default=[*DIP_RUNS, *GP_RUNS], choices=[*DIP_RUNS, *GP_RUNS]
    )
    p.add_argument("--jobs", type=integer(1, 256), default=2)
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--dask-address", default=None)
    p.add_argument("--report", action="store_true", help="run nothing; rebuild the table")
    p.add_argument("--out", default=None, help="default results/NAME/CONFIG")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.config = "smoke"
    started = time.time()
    folder = RESULTS / name / args.config if args.out is None else Path(args.out)
    with locked(folder):  # one driver per folder: rows are never duplicated
        _run_locked(table, args, folder, started)


def _run_locked(table: str, args: argparse.Namespace, folder: Path, started: float) -> None:
    results = folder / "results.jsonl"
    tasks = table_tasks(table, args.config, folder, args.runs, args.images)
    if args.smoke and args.images is None:
        tasks = [t for t in tasks if t.image in {tasks[0].image, tasks[-1].image}]
    done = {task_key(r) for r in read_jsonl(results)}
    todo = [] if args.report else [t for t in tasks if task_key(vars(t)) not in done]
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
        run=run_table_task,
        describe=describe,
    )
    text = summarize(read_jsonl(results), table, args.config)
    save_text(folder / "table.md", text)
    save_json(folder / "provenance.json", provenance(args, started))
    print(text)
