"""DIP-ADMM: DIP with an explicit prior by variable splitting, v1 (inner loop) and v2 (one step).

The hybrid-priors thesis's DIP-ADMM (after Cascarano et al., "Combining weighted total
variation and deep image prior for natural and medical image restoration via ADMM", 2021):

    min_θ,x  ½‖A f_θ(z) − y‖² + λ·R(x)   subject to   x = f_θ(z),

with the scaled augmented Lagrangian ½‖A f − y‖² + λR(x) + (ρ/2)‖f − x + u‖², alternating

    network step:  θ ← a few gradient steps on ½‖A f_θ(z) − y‖² + (ρ/2)‖f_θ(z) − x + u‖²,
    prior step:    x ← prox_{(λ/ρ)R}(f_θ(z) + u)            (R = TV: the ROF problem),
    dual update:   u ← u + f_θ(z) − x.

v1 runs ``inner_steps`` network steps per ADMM iteration (the thesis's inner loop; default
10 here); v2 one step per iteration (``inner_steps=1``).  A plug-and-play variant replaces
the prox by any denoiser ``prior_step(v) -> x`` (e.g. scikit-image's ``denoise_tv_chambolle``
or a wavelet denoiser).  The network loss is divided by n_obs/2 (gpdip's scaling, see
:mod:`~gpdip.dip.methods.base`; the minimiser is unchanged).

Defaults here (gpdip's choice; the thesis is not in ``shared/papers`` to check): ρ = 1,
λ = 0.05 (an ROF weight λ/ρ = 0.05, below the ≈ 0.1 that TV alone wants at σ = 25/255),
Adam at lr 0.01, 5 warm-started FGP iterations per prox (inexact prox steps: ADMM tolerates
summable errors, and the dual carried between calls makes each one nearly converged).
The estimate is f_θ(z).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_count, check_positive, make_optimizer
from gpdip.dip.methods.tv import tv_prox

PriorStep = Callable[[torch.Tensor], torch.Tensor]


class DIPADMM:
    """ADMM on the split x = f_θ(z); ``x``, ``u`` (C, H, W) start at f_θ₀(z) and 0."""

    def __init__(
        self,
        net: nn.Module,
        net_input: torch.Tensor,
        obs: Observation,
        *,
        rho: float = 1.0,
        tv_weight: float = 0.05,
        inner_steps: int = 10,
        lr: float = 0.01,
        optimizer: str = "adam",
        prox_iters: int = 5,
        prior_step: PriorStep | None = None,
    ) -> None:
        check_positive("rho", rho)
        check_positive("tv_weight", tv_weight)
        check_count("inner_steps", inner_steps)
        check_count("prox_iters", prox_iters)
        check_positive("lr", lr)
        self.net, self.z, self.obs = net, net_input, obs
        self.rho, self.tv_weight, self.inner_steps = rho, tv_weight, inner_steps
        self.prox_iters = prox_iters
        self.prior_step = prior_step
        self.name = "dip-admm-v1" if inner_steps > 1 else "dip-admm-v2"
        self.opt = make_optimizer(net.parameters(), optimizer, lr)
        with torch.no_grad():
            self.x = self.net(self.z)[0].detach().clone()
        self.u = torch.zeros_like(self.x)
        self.dual: torch.Tensor | None = None  # Chambolle's p, warm start of the next prox

    def network_loss(self, out: torch.Tensor) -> torch.Tensor:
        """(‖A f − y‖² + ρ‖f − x + u‖²)/n_obs: the θ-part of the augmented Lagrangian."""
        split = (out - self.x + self.u).pow(2).sum() / self.obs.n_obs
        return self.obs.data_term(out) + self.rho * split

    def prox(self, v: torch.Tensor) -> torch.Tensor:
        """x-update: the plug-and-play ``prior_step`` or prox_{(λ/ρ)TV}(v)."""
        if self.prior_step is not None:
            return self.prior_step(v)
        x, self.dual = tv_prox(v, self.tv_weight / self.rho, iters=self.prox_iters, p0=self.dual)
        return x

    def step(self) -> torch.Tensor:
        """One ADMM iteration (network steps, prior step, dual update); returns f_θ(z)."""
        for _ in range(self.inner_steps):
            out = self.net(self.z)[0]
            loss = self.network_loss(out)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.last_loss = float(loss.detach())
        with torch.no_grad():
            f = self.net(self.z)[0]
            self.x = self.prox(f + self.u)
            self.u = self.u + f - self.x
        return f.detach()
