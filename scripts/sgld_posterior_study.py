"""Exact Langevin on a finite conv net against the NNGP posterior, widths 16..512 (issue 9 (c)).

Task (fixed by the config below, recorded in every row, checked on resume): row 64 of the
packaged house128.png decimated by 4 (32 samples), standardised over the observed samples,
50% observed (random, seed 0); architecture ``conv-d3`` (three 3-tap convs + ReLU, white
input, 1×1 readout; reach 6 samples, so the 32-torus is exact), NTK parameterisation, every
weight N(0, 1) a priori, circular padding, periodic input z fixed per chain; Gaussian
likelihood with noise variance s² = ``NOISE_VAR``.  Sampler: plain full-gradient Langevin
(ULA) at a fixed step ε = ρ·4s²/λ_max(Θ_oo) (ULA is stable for ε < 4s²/λ_max), ``STEPS``
steps, the first third discarded, every 10th kept; MALA and ULA at ε/4 (4× the steps) at
width 16 measure the discretisation bias.  Each chain: its own weights, input z and noise.

  PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/sgld_posterior_study.py run
  PYTHONPATH=. python scripts/sgld_posterior_study.py report     # table + figure

``run`` appends one JSON row per (variant, width, chain) to results/convergence/sgld_1d.jsonl
as chains finish and skips the ones there (resumable); a row whose config differs from the
current one is an error, not silently mixed in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from gpdip.errors import GpdipError
from gpdip.experiments import ntk_study as study
from gpdip.experiments import sgld_study as sg
from gpdip.finite.network import build_network, sample_input
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import packaged_asset

OUT = Path("results/convergence/sgld_1d.jsonl")
BASE = {
    "arch": "conv-d3",
    "row": 64,
    "decimate": 4,
    "keep": 0.5,
    "mask_seed": 0,
    "noise_var": 0.25,
    "rho": 0.3,
    "steps": 4000,
    "burn_in_fraction": 1 / 3,
    "thin": 10,
    "batches": 4,
    "dtype": "float32",
}
# variant: (sampler, step-size factor, step-count factor); thinning scales with the step
VARIANTS = {
    "ula": ("ula", 1.0, 1),
    "ula-quarter": ("ula", 0.25, 4),
    "mala": ("mala", 1.0, 1),
    "ula-long": ("ula", 1.0, 2),
}
# (variant, widths, chains, chains per batched run), in this order
PLAN = [
    ("ula", [16, 32], 32, 32),
    ("ula", [64], 32, 16),
    ("mala", [16], 32, 32),
    ("ula", [128], 8, 8),
    ("ula", [256], 4, 4),
    ("ula", [512], 2, 2),
    ("ula-long", [16], 32, 32),
    ("ula", [512], 4, 2),
    ("ula-quarter", [16], 16, 16),
    ("ula", [256], 8, 4),
    ("ula", [128], 16, 8),
]


def task(cfg: dict) -> dict:
    """Signal, observed positions, standardised targets y, dense NNGP/NTK on the torus."""
    image = channels_last(load_image(packaged_asset("house128.png")))
    truth = image[cfg["row"], :: cfg["decimate"]].double()
    n = truth.numel()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg["mask_seed"]))
    observed = torch.sort(perm[: round(cfg["keep"] * n)]).values
    obs_vals = truth[observed]
    y = (obs_vals - obs_vals.mean()) / obs_vals.std()
    k, theta = study.torus_kernels(cfg["arch"], (n,))
    lam_max = float(torch.linalg.eigvalsh(theta[observed][:, observed])[-1])
    mu, sd = study.gp_posterior(k, observed, y, cfg["noise_var"])
    # the lazy (linearised) chain's mean, with the NTK as prior covariance
    ntk_ridge, _ = study.gp_posterior(theta, observed, y, cfg["noise_var"])
    return {
        "n": n,
        "observed": observed,
        "y": y,
        "lam_max": lam_max,
        "mu": mu,
        "sd": sd,
        "ntk_ridge": ntk_ridge,
    }


def variant_config(name: str, t: dict) -> dict:
    sampler, factor, more = VARIANTS[name]
    eps = BASE["rho"] * 4 * BASE["noise_var"] / t["lam_max"] * factor
    steps = round(BASE["steps"] * more)
    return {
        **BASE,
        "variant": name,
        "sampler": sampler,
        "eps": eps,
        "steps": steps,
        "burn_in": round(steps * BASE["burn_in_fraction"]),
        "thin": round(BASE["thin"] / factor),
        "lambda_max": t["lam_max"],
    }


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def load_rows(path: Path = OUT) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_resume(rows: list[dict], configs: dict[str, dict]) -> set[tuple]:
    """(variant, width, chain) already done; a stored row of another config is an error."""
    done = set()
    for r in rows:
        want = config_hash(configs[r["variant"]])
        if r["config_hash"] != want:
            raise GpdipError(
                f"{OUT}: row (variant {r['variant']}, width {r['width']}, chain {r['chain']}) "
                f"has config {r['config_hash']}, the current one is {want}: move the file "
                "away or restore the config"
            )
        done.add((r["variant"], r["width"], r["chain"]))
    return done


def start_state(cfg: dict, width: int, chains: list[int], n: int):
    """ChainNet, θ (C, d) prior draws and z (C, C_in, L): chain c's seeds are width·1000 + c."""
    dtype = getattr(torch, cfg["dtype"])
    nets, zs = [], []
    for c in chains:
        gen = torch.Generator().manual_seed(1000 * width + c)
        nets.append(
            build_network(
                cfg["arch"],
                dims=1,
                width=width,
                out_channels=1,
                parameterization="ntk",
                padding="circular",
                generator=gen,
            )
        )
        zs.append(sample_input(cfg["arch"], (n,), width=width, periodic=True, generator=gen)[0])
    theta = torch.stack([sg.ChainNet.flatten(net) for net in nets]).to(dtype)
    return sg.ChainNet(nets[0]), theta, torch.stack(zs).to(dtype)


def chain_rows(stats: sg.ChainStats, c: int) -> dict:
    """Per-chain mean and variance of f, raw and Rao-Blackwellised, and batch means."""
    s, n = stats.sums, stats.n
    mean_raw, mean_rb = s["raw"][c] / n, s["rb"][c] / n
    var_raw = s["raw_sq"][c] / n - mean_raw**2
    var_rb = s["rb_var"][c] / n + s["rb_sq"][c] / n - mean_rb**2
    counts = s["batch_n"][:, None]
    return {
        "kept": n,
        "mean_raw": mean_raw.tolist(),
        "var_raw": var_raw.clamp_min(0).tolist(),
        "mean_rb": mean_rb.tolist(),
        "var_rb": var_rb.clamp_min(0).tolist(),
        "batch_raw": (s["batch_raw"][:, c] / counts).tolist(),
        "batch_rb": (s["batch_rb"][:, c] / counts).tolist(),
    }


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    t = task(BASE)
    configs = {name: variant_config(name, t) for name in VARIANTS}
    done = check_resume(load_rows(), configs)
    problem = sg.Posterior(t["observed"], t["y"], BASE["noise_var"])
    for name, widths, n_chains, batch in PLAN:
        cfg = configs[name]
        sampler = sg.SamplerConfig(
            cfg["sampler"], cfg["eps"], cfg["steps"], cfg["burn_in"], cfg["thin"], cfg["batches"]
        )
        for width in widths:
            todo = [c for c in range(n_chains) if (name, width, c) not in done]
            for first in range(0, len(todo), batch):
                chains = todo[first : first + batch]
                net, theta, z = start_state(cfg, width, chains, t["n"])
                start = time.perf_counter()
                gen = torch.Generator().manual_seed(7919 * width + chains[0] + 1)
                stats, diag = sg.run_chains(net, z, theta, problem, sampler, gen)
                seconds = time.perf_counter() - start
                for i, c in enumerate(chains):
                    row = {
                        "variant": name,
                        "width": width,
                        "chain": c,
                        "config_hash": config_hash(cfg),
                        "config": cfg,
                        "params": net.dim,
                        "chains_in_batch": len(chains),
                        "seconds_batch": seconds,
                        "ms_per_chain_step": 1e3 * seconds / cfg["steps"] / len(chains),
                        **diag,
                        **chain_rows(stats, i),
                    }
                    OUT.parent.mkdir(parents=True, exist_ok=True)
                    with OUT.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    done.add((name, width, c))  # a later PLAN entry must not rerun it
                print(f"{name} width {width} chains {chains}: {seconds:.0f} s, {diag}", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("part", choices=["run", "report", "config"])
    args = p.parse_args(argv)
    if args.part == "run":
        run(args)
    elif args.part == "config":
        t = task(BASE)
        for name in VARIANTS:
            print(json.dumps(variant_config(name, t)))
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from sgld_posterior_report import report

        report(OUT, task(BASE), Path("docs/results/convergence"))


if __name__ == "__main__":
    main()
