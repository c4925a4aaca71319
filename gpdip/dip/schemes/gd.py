"""``gd``: plain full-batch gradient descent on L = ½·Σ_observed (f − y)², the loss whose
infinite-width limit is the NTK predictor f_t = Θ_{:,o} g_t(Θ_oo) y,
g_t(λ) = (1 − (1 − ηλ)^t)/λ (Jacot et al. 2018; Lee et al. 2019): θ ← θ − η∇L with
η = ``lr``, no momentum, no weight decay.  Note the sum, not the mean: η is on the scale of
1/λ_max(Θ_oo) (stable for η < 2/λ_max)."""

from __future__ import annotations

import torch

from gpdip.dip.schemes import register
from gpdip.dip.schemes.base import RunState, Scheme


@register
class GD(Scheme):
    name = "gd"
    summary = "full-batch gradient descent on ½·Σ_observed (f − y)² (the NTK's dynamics)"

    def make_optimizer(self, run: RunState) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.params, lr=self.cfg.lr, momentum=0.0, weight_decay=0.0)

    def loss(self, run: RunState, out: torch.Tensor) -> torch.Tensor:
        return 0.5 * run.squared_error(out)
