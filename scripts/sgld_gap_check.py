"""Is the residual SGLD gap of docs/dip-sgld.md the NTK showing through?  (issue 9, item 4c)

Hypothesis: a Langevin chain started at a prior draw first fits the data in the lazy
(linearised) regime, whose stationary law has the NTK as prior covariance, so its mean is
m_ntk = c + sΘ_:o (sΘ_oo + σ²I)^-1 (y − c); only the O(1)-time re-sampling of the weights by
the prior term moves it to the NNGP posterior mean m_nngp = c + sK_:o (sK_oo + σ²I)^-1 (y − c).
This compares the stored chains of scripts/channel_sweep_1d.py (results/dip/sweep1d/chains)
with both, on the missing samples, with the Monte Carlo floor removed as in that script.

    PYTHONPATH=. python scripts/sgld_gap_check.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from channel_sweep_1d import gp, problem

from gpdip.limit.compiler import compile_kernels


def main() -> None:
    noise_var = 0.0025
    signal, mask = problem()
    n = signal.numel()
    scale, post = gp(noise_var)
    _, ntk = compile_kernels("unet2", n, dims=1)
    pos = torch.arange(n)
    offset = pos[None, :] - pos[:, None] + n - 1  # dense Toeplitz from the stationary table
    observed, miss = mask.nonzero()[:, 0], ~mask
    c = signal[mask].mean()

    def posterior_mean(table: torch.Tensor) -> torch.Tensor:
        m = scale * table[offset]
        a = m[observed][:, observed] + noise_var * torch.eye(len(observed), dtype=torch.float64)
        return c + m[:, observed] @ torch.linalg.solve(a, signal[observed] - c)

    mu = post.mean[miss]
    m_ntk = posterior_mean(ntk)[miss]
    norm = float(mu.norm())
    theta_oo = scale * ntk[offset][observed][:, observed]
    lam_max = float(torch.linalg.eigvalsh(theta_oo)[-1])
    # Plain Langevin in the NTK parameterisation: stable steps eps < 2 sigma^2 / lam_max; the
    # prior's re-sampling of the weights relaxes at rate 1/2, so ~2 relaxation times (t = 4)
    # need 4 / eps = 2 lam_max / sigma^2 steps, whatever the width.
    print(
        json.dumps(
            {
                "ntk_ridge_vs_nngp_mean": float((m_ntk - mu).norm()) / norm,
                "lambda_max_theta_oo": lam_max,
                "langevin_steps_to_mix": 2 * lam_max / noise_var,
            }
        )
    )
    chains = Path("results/dip/sweep1d/chains")
    for width in (16, 32, 64, 128, 256):
        for iters in (4000, 12000):
            files = sorted(chains.glob(f"w{width}_c*_i{iters}.pt"))
            if len(files) < 2:
                continue
            means = torch.stack(
                [torch.load(f, weights_only=True)["mean"][miss] for f in files]
            ).double()
            k, pooled = len(files), means.mean(0)
            floor2 = float((means - pooled).pow(2).sum()) / (k - 1) / k
            bias = {
                name: max(float((pooled - ref).pow(2).sum()) - floor2, 0.0) ** 0.5 / norm
                for name, ref in (("to_nngp_mean", mu), ("to_ntk_ridge_mean", m_ntk))
            }
            print(
                json.dumps(
                    {
                        "width": width,
                        "iters": iters,
                        "chains": k,
                        "floor": floor2**0.5 / norm,
                        **bias,
                    }
                )
            )


if __name__ == "__main__":
    main()
