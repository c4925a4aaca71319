"""Monte-Carlo floor of the sweep's SGLD posterior means: two chains that differ only in the
Langevin-noise seed (same mask, same network init, same settings as the sweep's sgld rows).

    OMP_NUM_THREADS=1 python docs/results/dip/sweep/mc_check.py WIDTH SEED CHAIN_SEED

Prints a JSON line with the relative distance (missing pixels) of this chain's posterior
mean to the GP mean, and saves the mean to mc_<width>_<seed>_<chain>.pt next to this file;
run twice with different CHAIN_SEED and compare the saved means.
"""

import json
import sys
from pathlib import Path

import torch

from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.dip.images import bernoulli_mask, psnr
from gpdip.experiments.sweep import SweepTask, _gp_means, load_target

torch.set_num_threads(1)
width, seed, chain = (int(a) for a in sys.argv[1:4])
here = Path(__file__).parent
task = SweepTask("unet2", width, seed, 64, 3000, 0.001, 0.5, "house", str(here), "sgld", 0.0025, 16)
truth = load_target("house", 64)
mask = bernoulli_mask((64, 64), 0.5, torch.Generator().manual_seed(seed))
gp = _gp_means(task, truth, mask)["gp"]
net, x = make_network(
    "unet2", (64, 64), 1, width=width, generator=torch.Generator().manual_seed(1000 + seed)
)
cfg = DIPConfig(
    method="sgld",
    iters=3000,
    lr=task.effective_lr,
    noise_std=0.05,
    preconditioner="rmsprop",
    burn_in=1500,
    thin=5,
    log_every=150,
    seed=chain,
)
res = fit(net, x, Problem(truth * mask, mask, truth), cfg, device="cpu")
miss = ~mask.expand_as(truth)
d = float(
    torch.linalg.norm(res.mean[miss].double() - gp[miss].double())
    / torch.linalg.norm(gp[miss].double())
)
torch.save(res.mean, here / f"mc_{width}_{seed}_{chain}.pt")
print(
    json.dumps(
        {"width": width, "seed": seed, "chain": chain, "psnr": psnr(res.mean, truth), "dist_gp": d}
    )
)
