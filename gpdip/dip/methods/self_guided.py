"""Self-Guided DIP: train the network and its input, with a denoising-style regulariser.

Liang, Bell, Ravishankar et al., "Analysis of deep image prior and exploiting self-guidance
for image reconstruction" (2024), as summarised by the survey of Alkhouri et al., Sec. III:

    min_{θ,z}  ‖A·E_η f_θ(z + η) − y‖² + λ‖E_η f_θ(z + η) − z‖²,     η ~ N(0, σ_η² I),

the expectation a Monte Carlo average over ``n_samples`` draws of η per step, and the
output x̂ = E_η f_θ(z + η) (averaged over the same draws).  z is an image (the network's
input has the image's channels: :func:`~gpdip.dip.methods.base.make_image_input_network`),
initialised at Aᵀy.  gpdip's scaling: ‖·‖²/n_obs for the data term, ‖·‖²/N for the
regulariser.

Defaults here: λ = 1, σ_η = 0.05, 3 samples, Adam lr 0.01 for θ and z alike (gpdip's
choice: the paper is not in ``shared/papers``, its defaults were not checked).
"""

from __future__ import annotations

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_count, check_positive, make_optimizer


class SelfGuidedDIP:
    """θ and z by Adam on the Monte Carlo loss above; estimate E_η f_θ(z + η)."""

    name = "self-guided"

    def __init__(
        self,
        net: nn.Module,
        obs: Observation,
        *,
        reg_weight: float = 1.0,
        noise_std: float = 0.05,
        n_samples: int = 3,
        lr: float = 0.01,
        optimizer: str = "adam",
        generator: torch.Generator | None = None,
    ) -> None:
        check_positive("reg_weight", reg_weight, allow_zero=True)
        check_positive("noise_std", noise_std, allow_zero=True)
        check_count("n_samples", n_samples)
        check_positive("lr", lr)
        self.net, self.obs = net, obs
        self.reg_weight, self.noise_std, self.n_samples = reg_weight, noise_std, n_samples
        self.z = obs.adjoint()[None].clone().requires_grad_(True)  # (1, C, H, W)
        self.gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.opt = make_optimizer([*net.parameters(), self.z], optimizer, lr)

    def expected_output(self) -> torch.Tensor:
        """(1/S) Σ_s f_θ(z + η_s), η_s ~ N(0, σ_η²): one batched forward pass, (C, H, W)."""
        shape = (self.n_samples, *self.z.shape[1:])
        eta = torch.randn(shape, generator=self.gen, device=self.gen.device, dtype=self.z.dtype)
        eta = eta.to(self.z.device)
        return self.net(self.z + self.noise_std * eta).mean(0)

    def loss(self, mean_out: torch.Tensor) -> torch.Tensor:
        reg = (mean_out - self.z[0]).pow(2).sum() / self.obs.n_all
        return self.obs.data_term(mean_out) + self.reg_weight * reg

    def step(self) -> torch.Tensor:
        mean_out = self.expected_output()
        loss = self.loss(mean_out)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.last_loss = float(loss.detach())
        return mean_out.detach()
