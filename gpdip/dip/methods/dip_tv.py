"""DIP-TV: the DIP loss plus a total-variation penalty on the output.

Liu, Sun, Xu & Kamilov, "Image restoration using total variation regularized deep image
prior" (ICASSP 2019), Eq. (3):

    θ* = argmin_θ ‖A f_θ(z) − y‖² + λ·TV(f_θ(z)),

with the isotropic TV in its differentiable form Σ sqrt(|∇f|² + ε)
(:func:`~gpdip.dip.methods.tv.tv_smooth`).  gpdip's scaling (see
:mod:`~gpdip.dip.methods.base`): loss = ‖A f − y‖²/n_obs + λ·TV_ε(f)/N, so for denoising
(n_obs = N) it is (2/N)·[½‖f − y‖² + (λ/2)·TV(f)], the ROF energy with weight λ/2.

Defaults here: λ = 0.1 (ROF weight 0.05, about half of what pure TV denoising of
σ = 25/255 wants, since the network regularises too), ε = 1e-8, Adam at lr 0.01 as DIP.
The paper's λ was not available to check (the paper is not in ``shared/papers``).
"""

from __future__ import annotations

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_positive, make_optimizer
from gpdip.dip.methods.tv import tv_smooth


class DIPTV:
    """Gradient steps on ‖A f_θ(z) − y‖²/n_obs + λ·TV_ε(f_θ(z))/N; estimate f_θ(z)."""

    name = "dip-tv"

    def __init__(
        self,
        net: nn.Module,
        net_input: torch.Tensor,
        obs: Observation,
        *,
        tv_weight: float = 0.1,
        eps: float = 1e-8,
        lr: float = 0.01,
        optimizer: str = "adam",
    ) -> None:
        check_positive("tv_weight", tv_weight, allow_zero=True)
        check_positive("eps", eps)
        check_positive("lr", lr)
        self.net, self.z, self.obs = net, net_input, obs
        self.tv_weight, self.eps = tv_weight, eps
        self.opt = make_optimizer(net.parameters(), optimizer, lr)

    def loss(self, out: torch.Tensor) -> torch.Tensor:
        """The DIP-TV objective of an output ``out`` (C, H, W)."""
        tv = tv_smooth(out, self.eps) / self.obs.n_all
        return self.obs.data_term(out) + self.tv_weight * tv

    def step(self) -> torch.Tensor:
        out = self.net(self.z)[0]
        loss = self.loss(out)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.last_loss = float(loss.detach())
        return out.detach()
