"""Shared plumbing of the reproduction scripts: output folder, provenance, atomic writes.

Every script writes under ``results/<name>/`` (run logs, checkpoints, jsonl: never under
``docs/``): its figures, a ``results.json`` with the
numbers, and ``provenance.json`` with the command, seed, machine and git revision.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gpdip.io.atomic import atomic_write, save_json
from gpdip.io.paths import repo_root

RESULTS = repo_root() / "results"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny configuration for CI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME)")
    return p


def output_dir(name: str, args: argparse.Namespace) -> Path:
    folder = args.out or (RESULTS / name if not args.smoke else RESULTS / "smoke" / name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=repo_root(),
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def provenance(args: argparse.Namespace, started: float) -> dict[str, Any]:
    return {
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "seed": args.seed,
        "smoke": bool(args.smoke),
        "git": git_revision(),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "seconds": round(time.time() - started, 1),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def publish_figures(folder: Path) -> list[Path]:
    """Copy the PNG figures under ``results/...`` to the same path under ``docs/results/``.

    ``docs/`` holds the pages and the figures they show; everything else a run writes
    stays under ``results/``.  Folders outside ``results/`` (``--out``) are not published.
    """
    try:
        relative = folder.resolve().relative_to(RESULTS.resolve())
    except ValueError:
        return []
    published = []
    for png in sorted(folder.rglob("*.png")):
        target = repo_root() / "docs" / "results" / relative / png.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = png.read_bytes()
        atomic_write(target, lambda handle, data=data: handle.write(data))
        published.append(target)
    return published


def finish(folder: Path, args: argparse.Namespace, started: float, results: Any) -> None:
    save_json(folder / "results.json", results)
    save_json(folder / "provenance.json", provenance(args, started))
    if not args.smoke:
        publish_figures(folder)
    print(json.dumps({"folder": str(folder), "seconds": round(time.time() - started, 1)}))
