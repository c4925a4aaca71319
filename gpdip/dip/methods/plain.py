"""Plain DIP (Ulyanov et al. 2018, Eq. 2): gradient steps on ‖A f_θ(z) − y‖², estimate f_θ(z).

The baseline the other methods modify, and the scheme ES-WMV watches ("es-wmv" =
this + :class:`~gpdip.dip.methods.wmv.WMVStopper`).  Same loss and Adam as the trainer's
``sgd`` method (without its input perturbation or averaging).
"""

from __future__ import annotations

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_positive, make_optimizer


class PlainDIP:
    """Adam (or SGD) on ‖A f_θ(z) − y‖²/n_obs."""

    def __init__(
        self,
        net: nn.Module,
        net_input: torch.Tensor,
        obs: Observation,
        *,
        lr: float = 0.01,
        optimizer: str = "adam",
        name: str = "sgd",
    ) -> None:
        check_positive("lr", lr)
        self.net, self.z, self.obs, self.name = net, net_input, obs, name
        self.opt = make_optimizer(net.parameters(), optimizer, lr)

    def step(self) -> torch.Tensor:
        out = self.net(self.z)[0]
        loss = self.obs.data_term(out)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.last_loss = float(loss.detach())
        return out.detach()
