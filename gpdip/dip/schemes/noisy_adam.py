"""``noisy-adam``: the original GP-DIP code's scheme, an Adam step followed by
N(0, (noisy_adam_sigma·lr)²) added to the conv weights (4-D tensors) or to every trained
tensor.  Not a Langevin sampler (the noise scale ignores the step size's Langevin coupling
and the likelihood); kept for comparison.  Thinned post-burn-in outputs are averaged."""

from __future__ import annotations

from dataclasses import dataclass

from gpdip.dip.schemes import register
from gpdip.dip.schemes.base import RunState, SamplingOptions, Scheme, option
from gpdip.dip.sgld import Welford, perturb_noisy_adam
from gpdip.errors import GpdipError


@dataclass
class NoisyAdamOptions(SamplingOptions):
    noisy_adam_sigma: float = option(2.0, "noisy-adam: noise std = sigma·lr after each step")
    noisy_adam_params: str = option(
        "conv", "noisy-adam: perturb 4-D conv weights (original code) or all", ("conv", "all")
    )

    def validate(self) -> None:
        super().validate()
        if not self.noisy_adam_sigma >= 0:
            raise GpdipError(f"noisy_adam_sigma={self.noisy_adam_sigma}: expected ≥ 0")


@register
class NoisyAdam(Scheme):
    name = "noisy-adam"
    summary = "Adam plus N(0, (sigma·lr)²) on the weights (original GP-DIP code)"
    options_type = NoisyAdamOptions

    def setup(self, run: RunState) -> None:
        super().setup(run)
        self.samples = Welford()
        self.burn_in, self.thin = self.options.burn_in, self.options.thin

    def after_update(self, run: RunState) -> None:
        perturb_noisy_adam(
            self.params,
            self.options.noisy_adam_sigma * self.cfg.lr,
            run.gen,
            conv_only=self.options.noisy_adam_params == "conv",
        )
