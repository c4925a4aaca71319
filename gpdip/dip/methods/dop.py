"""DOP: double over-parameterisation of DIP for sparse (salt-and-pepper) corruption.

You, Zhu, Qu & Ma, "Robust recovery via implicit bias of discrepant learning rates for
double over-parameterization" (NeurIPS 2020), Eq. (8) for images: the observation is
y = x + s with s sparse, modelled as s = g⊙g − h⊙h, and

    min_{θ,g,h}  ‖A f_θ(z) + g⊙g − h⊙h − y‖²,

trained by gradient descent from g, h ~ N(0, (1e-5)²) (tiny: the implicit bias of gradient
flow from near zero is toward a sparse s), with a learning rate α times larger for (g, h)
than for θ; the ratio α plays the role of the ℓ1 weight (the paper's Thm. 1: larger α,
less sparsity penalised).  The estimate is f_θ(z).

Paper defaults (the official code, ``ChongYou/robust-image-recovery``): plain SGD on the
*mean* squared error over a 512×512×3 image, lr 1 for θ, lr 500 for (g, h) (α = 500),
150,000 iterations, input perturbation σ = 1/30 per step, a 5-scale skip network of width
128.  On the mean, a rate for (g, h) means less on a larger image (each entry's gradient
carries 1/n), so gpdip states the (g, h) rate ``s_lr`` on the *sum* of squared residuals,
which is size-free: the paper's 500/(512²·3) = 6.4e-4 is the default.  θ's rate ``lr``
stays on the mean loss (gpdip's convention, see :mod:`~gpdip.dip.methods.base`).
"""

from __future__ import annotations

import torch
from torch import nn

from gpdip.dip.methods.base import Observation, check_positive, make_optimizer


class DOP:
    """θ by ``optimizer`` at rate ``lr`` on the mean loss; (g, h) always by plain SGD at rate
    ``s_lr`` on the summed loss (the implicit ℓ1 bias is a property of gradient descent from
    a tiny start: Adam's normalised steps would move g, h by ~its rate per step whatever
    their gradient).  The ratio α = s_lr·n_obs/lr, for SGD on both.  Estimate f_θ(z)."""

    name = "dop"

    def __init__(
        self,
        net: nn.Module,
        net_input: torch.Tensor,
        obs: Observation,
        *,
        lr: float = 1.0,
        s_lr: float = 500.0 / (512 * 512 * 3),
        optimizer: str = "sgd",
        init_std: float = 1e-5,
        reg_noise_std: float = 1.0 / 30.0,
        generator: torch.Generator | None = None,
    ) -> None:
        check_positive("lr", lr)
        check_positive("s_lr", s_lr)
        check_positive("init_std", init_std)
        check_positive("reg_noise_std", reg_noise_std, allow_zero=True)
        self.net, self.z, self.obs = net, net_input, obs
        self.gen = generator if generator is not None else torch.Generator().manual_seed(0)
        shape = obs.y.shape
        self.g = (init_std * self._randn(shape)).requires_grad_(True)
        self.h = (init_std * self._randn(shape)).requires_grad_(True)
        self.reg_noise_std = reg_noise_std
        self.opt = make_optimizer(net.parameters(), optimizer, lr)
        # the loss is the mean over n_obs entries: a rate s_lr on the sum is s_lr·n_obs here
        self.opt_s = torch.optim.SGD([self.g, self.h], lr=s_lr * obs.n_obs)

    def _randn(self, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.gen, device=self.gen.device).to(self.obs.y)

    @property
    def sparse(self) -> torch.Tensor:
        """s = g⊙g − h⊙h, the modelled sparse corruption (C, H, W)."""
        return self.g * self.g - self.h * self.h

    def loss(self, out: torch.Tensor) -> torch.Tensor:
        return self.obs.data_term(out + self.sparse)

    def step(self) -> torch.Tensor:
        inp = self.z
        if self.reg_noise_std > 0:
            inp = inp + self.reg_noise_std * self._randn(self.z.shape)
        out = self.net(inp)[0]
        loss = self.loss(out)
        self.opt.zero_grad(set_to_none=True)
        self.opt_s.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.opt_s.step()
        self.last_loss = float(loss.detach())
        return out.detach()
