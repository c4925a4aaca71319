"""``self-guided`` and ``aseqdip``: methods whose network input is an image (z with the
image's channels), from :mod:`gpdip.dip.methods.self_guided` and
:mod:`gpdip.dip.methods.aseqdip`.  ``gpdip dip`` builds their network with
:func:`gpdip.dip.methods.make_image_input_network`; their answer is E_η f(z + η) and
f(z_k), not f(x)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gpdip.dip.methods.aseqdip import ASeqDIP
from gpdip.dip.methods.base import Observation, check_count, check_positive
from gpdip.dip.methods.self_guided import SelfGuidedDIP
from gpdip.dip.schemes import register
from gpdip.dip.schemes._methods import MethodScheme
from gpdip.dip.schemes.base import RunState, SchemeOptions, option


@dataclass
class SelfGuidedOptions(SchemeOptions):
    reg_weight: float = option(
        1.0, "λ of the image-space term ‖x̂ − z‖²/N (x̂ = f(z), self-guided: E_η f(z + η))"
    )
    eta_std: float = option(0.05, "std of the input perturbation η")
    n_samples: int = option(3, "Monte Carlo draws of η per step")

    def validate(self) -> None:
        super().validate()
        check_positive("reg_weight", self.reg_weight, allow_zero=True)
        check_positive("eta_std", self.eta_std, allow_zero=True)
        check_count("n_samples", self.n_samples)


@dataclass
class ASeqDIPOptions(SchemeOptions):
    reg_weight: float = option(
        1.0, "λ of the image-space term ‖x̂ − z‖²/N (x̂ = f(z), self-guided: E_η f(z + η))"
    )
    inner_steps: int = option(
        2,
        "θ steps per outer step (dip-admm-v1: per ADMM iteration; aseqdip: per z ← f(z))",
    )

    def validate(self) -> None:
        super().validate()
        check_positive("reg_weight", self.reg_weight, allow_zero=True)
        check_count("inner_steps", self.inner_steps)


@register
class SelfGuidedScheme(MethodScheme):
    name = "self-guided"
    summary = "Self-Guided DIP: θ and z, loss on E_η f(z+η) (Liang et al. 2024)"
    options_type: ClassVar[type[SchemeOptions]] = SelfGuidedOptions
    image_input = True
    state_tensors = ("z",)

    def build(self, run: RunState, obs: Observation) -> Any:
        o = self.options
        return SelfGuidedDIP(
            run.net,
            obs,
            reg_weight=o.reg_weight,
            noise_std=o.eta_std,
            n_samples=o.n_samples,
            lr=self.cfg.lr,
            generator=run.gen,
        )


@register
class ASeqDIPScheme(MethodScheme):
    name = "aseqdip"
    summary = "autoencoding sequential DIP: θ steps, then z ← f(z) (Alkhouri et al. 2024)"
    options_type: ClassVar[type[SchemeOptions]] = ASeqDIPOptions
    image_input = True
    state_tensors = ("z",)

    def build(self, run: RunState, obs: Observation) -> Any:
        o = self.options
        return ASeqDIP(
            run.net, obs, reg_weight=o.reg_weight, inner_steps=o.inner_steps, lr=self.cfg.lr
        )
