"""``dip-tv``: DIP with λ·TV(f(z)) added to the loss (:mod:`gpdip.dip.methods.dip_tv`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gpdip.dip.methods.base import Observation, check_positive
from gpdip.dip.methods.dip_tv import DIPTV
from gpdip.dip.schemes import register
from gpdip.dip.schemes._methods import MethodScheme
from gpdip.dip.schemes.base import RunState, SchemeOptions, option
from gpdip.dip.schemes.sgd import OPTIMIZER_HELP


@dataclass
class DIPTVOptions(SchemeOptions):
    optimizer: str = option("adam", OPTIMIZER_HELP, choices=("adam", "sgd"))
    tv_weight: float = option(
        0.1,
        "λ, the TV weight (dip-tv: of TV(f)/N beside the MSE; dip-admm: of TV(x), prox weight λ/ρ)",
    )
    tv_eps: float = option(1e-8, "ε of the differentiable TV, Σ sqrt(|∇f|² + ε)")

    def validate(self) -> None:
        super().validate()
        check_positive("tv_weight", self.tv_weight, allow_zero=True)
        check_positive("tv_eps", self.tv_eps)


@register
class DIPTVScheme(MethodScheme):
    name = "dip-tv"
    summary = "DIP + λ·TV(f(z)) (Liu et al. 2019)"
    options_type: ClassVar[type[SchemeOptions]] = DIPTVOptions

    def build(self, run: RunState, obs: Observation) -> Any:
        o = self.options
        return DIPTV(
            run.net,
            run.x,
            obs,
            tv_weight=o.tv_weight,
            eps=o.tv_eps,
            lr=self.cfg.lr,
            optimizer=o.optimizer,
        )
