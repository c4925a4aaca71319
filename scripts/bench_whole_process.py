"""Whole-process timings of the issue-9/12 targets, as a new user runs them: JSON out.

    python scripts/bench_whole_process.py [CASE ...] [--repeats 3]

Each case is a fresh ``gpdip`` process (imports included), median of ``--repeats``; each
repeat is preceded by a bare ``import torch`` process, the floor of every command.
Inputs: ``Lena512.png`` from the shared data (a 50% Bernoulli mask, seed 0, is written to a
temporary folder), and a 1024x1024 RGB image made by bicubic upsampling of
``image_Lena512rgb.png``.  Times on a shared machine need an idle rerun; ``load`` is the
1-minute load average after each case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpdip.io.paths import shared_data_dir


def make_inputs(folder: Path) -> dict[str, str]:
    data = shared_data_dir()
    rng = np.random.default_rng(0)
    for side in (512, 1024):
        mask = ((rng.random((side, side)) < 0.5) * 255).astype(np.uint8)
        Image.fromarray(mask).save(folder / f"mask{side}.png")
    rgb = Image.open(data / "denoising" / "image_Lena512rgb.png").convert("RGB")
    rgb.resize((1024, 1024), Image.BICUBIC).save(folder / "lena1024rgb.png")
    return {
        "grey": str(data / "inpainting" / "Lena512.png"),
        "mask512": str(folder / "mask512.png"),
        "rgb": str(folder / "lena1024rgb.png"),
        "mask1024": str(folder / "mask1024.png"),
        "out": str(folder / "out.png"),
    }


def cases(p: dict[str, str]) -> dict[str, list[str]]:
    grey = ["inpaint", p["grey"], "--mask", p["mask512"], "--out", p["out"], "--json"]
    rgb = ["inpaint", p["rgb"], "--mask", p["mask1024"]]
    ntk = ["ntk-predict", p["grey"], "--mask", p["mask512"], "--arch", "unet2", "--lr-fraction"]
    ntk.append("0.5")
    return {
        "help": ["--help"],
        "inpaint512_unet2": [*grey, "--kernel", "unet2"],
        "inpaint512_skip5-bilinear": [*grey, "--kernel", "skip5-bilinear"],
        "auto512_noise1e-2": [*grey, "--kernel", "auto", "--noise", "1e-2"],
        "auto512_noise1e-4": [*grey, "--kernel", "auto", "--noise", "1e-4"],
        "auto1024_rgb": [*rgb, "--kernel", "auto", "--out", p["out"], "--json"],
        "ntk_predict512": [*ntk, "--steps", "30,300,3000,10000", "--out", p["out"] + ".npy"],
    }


def run(args: list[str], repeats: int) -> dict:
    """Median wall time of ``repeats`` fresh processes; before each, a process that only
    imports torch and leaves without teardown (``os._exit``, as the ``gpdip`` script does):
    the floor of every command, 1.9-2.7 s on this machine within minutes."""
    walls, torch_walls = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import os, torch; os._exit(0)"], check=True)
        torch_walls.append(time.perf_counter() - start)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gpdip.cli", *args], capture_output=True)
        walls.append(time.perf_counter() - start)
        if done.returncode:
            return {"error": done.stderr.decode()[-400:]}
    row: dict = {"median_wall_s": round(statistics.median(walls), 2)}
    row["walls"] = [round(w, 2) for w in walls]
    row["import_torch_walls"] = [round(w, 2) for w in torch_walls]
    beyond = [w - t for w, t in zip(walls, torch_walls, strict=True)]
    row["median_beyond_import_torch_s"] = round(statistics.median(beyond), 2)
    row["load"] = round(os.getloadavg()[0], 2)
    if done.stdout.strip().startswith(b"{"):
        report = json.loads(done.stdout)
        row["cg_iterations"] = report.get("cg_iterations")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="*", help="case names (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = cases(make_inputs(Path(tmp)))
        result = {"start_load": os.getloadavg()[0]}
        for name, argv in table.items():
            if not args.case or name in args.case:
                result[name] = run(argv, args.repeats)
                print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
