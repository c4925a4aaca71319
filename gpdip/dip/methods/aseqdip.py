"""aSeqDIP: autoencoding sequential DIP, the input updated to the network's own output.

Alkhouri, Liang, Wang, Qu & Ravishankar, "Image reconstruction via autoencoding sequential
deep image prior" (NeurIPS 2024), Algorithm 1: starting from z₀ = Aᵀy, for k = 0, 1, …

    θ ← ``inner_steps`` gradient steps on ‖A f_θ(z_k) − y‖² + λ‖f_θ(z_k) − z_k‖²,
    z_{k+1} = f_θ(z_k),

and the estimate is f_θ(z_k).  The autoencoding term needs z and f(z) in one space, so the
network's input has the image's channels
(:func:`~gpdip.dip.methods.base.make_image_input_network`).  gpdip's scaling: data term
/n_obs, autoencoding term /N.

Defaults here: λ = 1 and 2 θ-steps per input update (recalled from the paper, which is not
in ``shared/papers`` to check), Adam lr 0.001: at DIP's 0.01 the loop z ← f(z) diverged
(non-finite output at step 52, House 64×64 crop, unet2 width 32); at 0.001 it is stable.
"""

from __future__ import annotations

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_count, check_positive, make_optimizer


class ASeqDIP:
    """Alternates θ steps on the autoencoding loss with z ← f_θ(z)."""

    name = "aseqdip"

    def __init__(
        self,
        net: nn.Module,
        obs: Observation,
        *,
        reg_weight: float = 1.0,
        inner_steps: int = 2,
        lr: float = 0.001,
        optimizer: str = "adam",
    ) -> None:
        check_positive("reg_weight", reg_weight, allow_zero=True)
        check_count("inner_steps", inner_steps)
        check_positive("lr", lr)
        self.net, self.obs = net, obs
        self.reg_weight, self.inner_steps = reg_weight, inner_steps
        self.z = obs.adjoint()[None].clone()  # (1, C, H, W), not a trained parameter
        self.opt = make_optimizer(net.parameters(), optimizer, lr)

    def loss(self, out: torch.Tensor) -> torch.Tensor:
        reg = (out - self.z[0]).pow(2).sum() / self.obs.n_all
        return self.obs.data_term(out) + self.reg_weight * reg

    def step(self) -> torch.Tensor:
        """``inner_steps`` θ-steps, then z ← f_θ(z); returns the new z (= the estimate)."""
        for _ in range(self.inner_steps):
            out = self.net(self.z)[0]
            loss = self.loss(out)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.last_loss = float(loss.detach())
        with torch.no_grad():
            self.z = self.net(self.z).detach()
        return self.z[0].clone()
