"""The SGD variants of Cheng et al. 2019, Sec. 5.2 (Adam, or plain SGD, on the observed MSE).

========================  ====================================================
``sgd``                   Adam on ‖m⊙(ŷ − f)‖²/n_obs; early stopping (oracle
                          ``stop_iter``, best-PSNR iterate when the truth is
                          known): "SGD+Early".
``sgd-avg``               plus an exponential moving average of the outputs,
                          a ← β·a + (1 − β)·f: "SGD+Early+Avg".
``sgd-input``             input x + N(0, reg_noise_std²) at every step (x itself
                          fixed): "SGD+Input+Early".
``sgd-input-avg``         both: "SGD+Input+Early+Avg".
========================  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from gpdip.dip.schemes import register
from gpdip.dip.schemes.base import RunState, Scheme, SchemeOptions, option
from gpdip.dip.sgld import EMA
from gpdip.errors import GpdipError

OPTIMIZER_HELP = "optimiser of the network weights θ (Adam or plain SGD)"


@dataclass
class SGDOptions(SchemeOptions):
    optimizer: str = option("adam", OPTIMIZER_HELP, choices=("adam", "sgd"))


@dataclass
class SGDAvgOptions(SGDOptions):
    ema: float = option(0.99, "decay β of the output average (DIP code's exp_weight), in [0, 1)")

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.ema < 1.0:
            raise GpdipError(f"ema={self.ema}: expected a decay in [0, 1)")


@dataclass
class SGDInputOptions(SGDOptions):
    reg_noise_std: float = option(1.0 / 30.0, "std of the input perturbation added each step")

    def validate(self) -> None:
        super().validate()
        if not self.reg_noise_std >= 0:
            raise GpdipError(f"reg_noise_std={self.reg_noise_std}: expected a number ≥ 0")


@dataclass
class SGDInputAvgOptions(SGDInputOptions, SGDAvgOptions):
    pass


@register
class SGD(Scheme):
    name = "sgd"
    summary = "Adam (or SGD) on the observed MSE, early stopping"
    options_type: ClassVar[type[SchemeOptions]] = SGDOptions

    def make_optimizer(self, run: RunState) -> torch.optim.Optimizer:
        if self.options.optimizer == "sgd":
            return torch.optim.SGD(self.params, lr=self.cfg.lr)
        return torch.optim.Adam(self.params, lr=self.cfg.lr)


@register
class SGDAvg(SGD):
    name = "sgd-avg"
    summary = "sgd plus an exponential moving average of the outputs"
    options_type: ClassVar[type[SchemeOptions]] = SGDAvgOptions

    def setup(self, run: RunState) -> None:
        super().setup(run)
        self.ema = EMA(self.options.ema)


@register
class SGDInput(SGD):
    name = "sgd-input"
    summary = "sgd with the input perturbed by N(0, reg_noise_std²) every step"
    options_type: ClassVar[type[SchemeOptions]] = SGDInputOptions

    def net_input(self, run: RunState) -> torch.Tensor:
        noise = torch.randn(run.x.shape, generator=run.gen, device=run.device)
        return run.x + self.options.reg_noise_std * noise


@register
class SGDInputAvg(SGDInput):
    name = "sgd-input-avg"
    summary = "sgd-input plus an exponential moving average of the outputs"
    options_type: ClassVar[type[SchemeOptions]] = SGDInputAvgOptions

    def setup(self, run: RunState) -> None:
        super().setup(run)
        self.ema = EMA(self.options.ema)
