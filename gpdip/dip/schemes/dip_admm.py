"""``dip-admm-v1`` / ``dip-admm-v2``: DIP with a TV prior (or a plug-and-play denoiser) by
ADMM on the split x = f(z) (:mod:`gpdip.dip.methods.admm`).  One trainer step is one ADMM
iteration: ``inner_steps`` network gradient steps (v1; v2 takes one), a prior step and the
dual update, so ``iters`` counts ADMM iterations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gpdip.dip.methods.admm import DIPADMM
from gpdip.dip.methods.base import Observation, check_count, check_positive
from gpdip.dip.schemes import register
from gpdip.dip.schemes._methods import MethodScheme
from gpdip.dip.schemes.base import RunState, SchemeOptions, option
from gpdip.dip.schemes.sgd import OPTIMIZER_HELP
from gpdip.errors import GpdipError


@dataclass
class ADMMv2Options(SchemeOptions):
    optimizer: str = option("adam", OPTIMIZER_HELP, choices=("adam", "sgd"))
    rho: float = option(1.0, "ADMM penalty ρ of ‖f − x + u‖²")
    tv_weight: float = option(
        0.05,
        "λ, the TV weight (dip-tv: of TV(f)/N beside the MSE; dip-admm: of TV(x), prox weight λ/ρ)",
    )
    prox_iters: int = option(5, "warm-started FGP steps per TV prox")
    denoiser: str = option(
        "tv",
        "prior step: gpdip's TV prox, or scikit-image's TV denoiser (plug-and-play)",
        choices=("tv", "skimage-tv"),
    )

    def validate(self) -> None:
        super().validate()
        check_positive("rho", self.rho)
        check_positive("tv_weight", self.tv_weight)
        check_count("prox_iters", self.prox_iters)


@dataclass
class ADMMv1Options(ADMMv2Options):
    inner_steps: int = option(
        10,
        "θ steps per outer step (dip-admm-v1: per ADMM iteration; aseqdip: per z ← f(z))",
    )

    def validate(self) -> None:
        super().validate()
        check_count("inner_steps", self.inner_steps)


def skimage_tv(weight: float):
    """scikit-image's ``denoise_tv_chambolle`` as a plug-and-play prior step (per channel)."""
    try:
        from skimage.restoration import denoise_tv_chambolle
    except ImportError as exc:  # an optional third-party package, not gpdip's own module
        raise GpdipError(
            "denoiser 'skimage-tv' needs scikit-image; expected it installed "
            "(pip install scikit-image)"
        ) from exc

    def step(v: torch.Tensor) -> torch.Tensor:
        out = denoise_tv_chambolle(v.detach().cpu().double().numpy(), weight=weight, channel_axis=0)
        return torch.from_numpy(out).to(v)

    return step


@register
class DIPADMMv2(MethodScheme):
    name = "dip-admm-v2"
    summary = "DIP + TV prior by ADMM, one network step per iteration (hybrid-priors thesis)"
    options_type: ClassVar[type[SchemeOptions]] = ADMMv2Options
    state_tensors = ("x", "u", "dual")

    def build(self, run: RunState, obs: Observation) -> Any:
        o = self.options
        prior = skimage_tv(o.tv_weight / o.rho) if o.denoiser == "skimage-tv" else None
        return DIPADMM(
            run.net,
            run.x,
            obs,
            rho=o.rho,
            tv_weight=o.tv_weight,
            inner_steps=getattr(o, "inner_steps", 1),
            lr=self.cfg.lr,
            optimizer=o.optimizer,
            prox_iters=o.prox_iters,
            prior_step=prior,
        )


@register
class DIPADMMv1(DIPADMMv2):
    name = "dip-admm-v1"
    summary = "DIP + TV prior by ADMM, an inner loop of network steps (hybrid-priors thesis)"
    options_type: ClassVar[type[SchemeOptions]] = ADMMv1Options
