"""``dop``: double over-parameterisation for sparse noise, s = g⊙g − h⊙h
(:mod:`gpdip.dip.methods.dop`; You et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gpdip.dip.methods.base import Observation, check_positive
from gpdip.dip.methods.dop import DOP
from gpdip.dip.schemes import register
from gpdip.dip.schemes._methods import MethodScheme
from gpdip.dip.schemes.base import RunState, SchemeOptions, option
from gpdip.dip.schemes.sgd import OPTIMIZER_HELP


@dataclass
class DOPOptions(SchemeOptions):
    optimizer: str = option("sgd", OPTIMIZER_HELP, choices=("adam", "sgd"))
    s_lr: float = option(
        500.0 / (512 * 512 * 3), "SGD rate of (g, h) on the summed squared error (paper: 6.4e-4)"
    )
    init_std: float = option(1e-5, "std of the initial g, h")
    reg_noise_std: float = option(1.0 / 30.0, "std of the input perturbation added each step")

    def validate(self) -> None:
        super().validate()
        check_positive("s_lr", self.s_lr)
        check_positive("init_std", self.init_std)
        check_positive("reg_noise_std", self.reg_noise_std, allow_zero=True)


@register
class DOPScheme(MethodScheme):
    name = "dop"
    summary = "DIP + sparse noise s = g⊙g − h⊙h, discrepant rates (You et al. 2020)"
    options_type: ClassVar[type[SchemeOptions]] = DOPOptions
    state_tensors = ("g", "h")

    def build(self, run: RunState, obs: Observation) -> Any:
        o = self.options
        return DOP(
            run.net,
            run.x,
            obs,
            lr=self.cfg.lr,
            s_lr=o.s_lr,
            optimizer=o.optimizer,
            init_std=o.init_std,
            reg_noise_std=o.reg_noise_std,
            generator=run.gen,
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "opt_s": self.method.opt_s}
