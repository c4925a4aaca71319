"""``sgld``: stochastic-gradient Langevin dynamics (Cheng et al. 2019, Eq. 8) on the energy

    U(w) = ‖m⊙(ŷ − f(x; θ))‖²/(2σ²) + Σ_j λ_j‖w_j‖²/2,   w = (x, θ) (x only if optimised),

w ← w − (ε_t/2)∇U(w) + N(0, ε_t) (or pSGLD's preconditioned version, Li et al. 2016), with
ε_t = step_size·(1 + t/step_decay_b)^(−step_decay_gamma).  λ_j per tensor: the precision of
its initial distribution (``prior="init"``; exact 1/(weight_var/fan_in) when the network
carries its limit prior, tensors with prior variance 0 then held fixed) or ``weight_decay``
(``prior="isotropic"``).  Thinned post-burn-in outputs give the posterior mean and std.

When ``step_size`` is None it is matched to gradient descent with rate lr on the mean
loss: (ε/2)∇U = lr·∇MSE ⇔ ε = 4σ²·lr/n_obs; with the RMSprop preconditioner ε = 2·lr, so
the drift matches an Adam step of size lr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from gpdip.dip import sgld as samplers
from gpdip.dip.schemes import register
from gpdip.dip.schemes.base import RunState, SamplingOptions, Scheme, option
from gpdip.errors import GpdipError


@dataclass
class SGLDOptions(SamplingOptions):
    step_size: float | None = option(None, "SGLD ε0 (default 4σ²·lr/n_obs; pSGLD: 2·lr)")
    step_decay_b: float = option(1000.0, "SGLD step decay ε_t = ε0·(1 + t/b)^(−γ): b > 0")
    step_decay_gamma: float = option(0.0, "SGLD step decay exponent γ (0: constant step)")
    preconditioner: str = option(
        "none", "SGLD: none (Eq. 8) or rmsprop (pSGLD, Li et al.)", ("none", "rmsprop")
    )
    freeze_preconditioner: bool = option(
        False,
        "pSGLD: G follows an EMA with decay frozen_alpha after burn-in (exact; Li et al.'s "
        "always-adapting G is stable but over-disperses by 24-29%)",
    )
    frozen_alpha: float = option(1.0, "pSGLD: G's EMA decay after burn-in, in (0, 1] (1: frozen)")
    weight_decay: float = option(1.0, "SGLD prior precision λ (isotropic prior, zero tensors)")
    prior: str = option(
        "init",
        "SGLD prior: init (per tensor N(0, its init variance), the limit's) or isotropic (λ)",
        ("init", "isotropic"),
    )

    def validate(self) -> None:
        super().validate()
        if self.step_size is not None:
            _positive("step_size", self.step_size, upper=10.0)
        if not 0.0 < self.frozen_alpha <= 1.0:
            raise GpdipError(f"frozen_alpha={self.frozen_alpha}: expected a decay in (0, 1]")
        if not self.weight_decay >= 0:
            raise GpdipError(f"weight_decay={self.weight_decay}: expected a number ≥ 0")
        if not self.step_decay_b > 0:
            raise GpdipError(f"step_decay_b={self.step_decay_b}: expected a number > 0")


def _positive(name: str, value: float, upper: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= upper):
        raise GpdipError(f"{name}={value}: expected a number in (0, {upper}]")


def sgld_step_size(options: SGLDOptions, lr: float, t: int, sigma2: float, n_obs: int) -> float:
    """ε_t = ε_0·(1 + t/b)^(−γ), with ε_0 = step_size, 2·lr (pSGLD) or 4σ²·lr/n_obs."""
    if options.step_size is not None:
        eps0 = options.step_size
    elif options.preconditioner == "rmsprop":
        eps0 = 2.0 * lr  # G∇U ≈ sign(∇U): drift (ε/2)·G∇U ≈ an Adam step of size lr
    else:
        eps0 = 4.0 * sigma2 * lr / n_obs
    if options.step_decay_gamma == 0.0:
        return eps0
    return eps0 * (1.0 + t / options.step_decay_b) ** (-options.step_decay_gamma)


@register
class SGLDScheme(Scheme):
    name = "sgld"
    summary = "stochastic-gradient Langevin dynamics (pSGLD with --preconditioner rmsprop)"
    options_type = SGLDOptions
    uses_sigma = True

    def trainable(self, run: RunState) -> list[tuple[str, torch.Tensor]]:
        """Drop (and freeze) tensors whose exact limit prior is a point mass (variance 0)."""
        self.prior_vars: dict[str, float] = {}
        if self.options.prior == "init":
            self.prior_vars = dict(getattr(run.net, "prior_variances", None) or {})
        named = []
        for n, p in super().trainable(run):
            if n != "input" and self.prior_vars.get(n, 1) == 0:
                p.requires_grad_(False)
            else:
                named.append((n, p))
        return named

    def setup(self, run: RunState) -> None:
        super().setup(run)
        self.samples = samplers.Welford()
        self.burn_in, self.thin = self.options.burn_in, self.options.thin
        self.precisions = self._prior_precisions()

    def make_optimizer(self, run: RunState) -> torch.optim.Optimizer:
        eps = sgld_step_size(self.options, self.cfg.lr, 0, run.sigma**2, run.n_obs)
        return samplers.SGLD(self.params, eps, run.gen, self.options.preconditioner)

    def _prior_precisions(self) -> list[float]:
        """Per tensor: 1/(exact limit prior variance) when the network carries one, else
        1/mean(θ₀²) (the Gaussian the weights were drawn from); tensors initialised to zero
        and ``prior="isotropic"`` use ``weight_decay``."""
        out = []
        for name, p in zip(self.param_names, self.params, strict=True):
            if name in self.prior_vars:
                out.append(1.0 / self.prior_vars[name])
                continue
            ms = float(p.detach().pow(2).mean()) if p.numel() else 0.0
            use_init = self.options.prior == "init" and ms > 0
            out.append(1.0 / ms if use_init else self.options.weight_decay)
        return out

    def loss(self, run: RunState, out: torch.Tensor) -> torch.Tensor:
        """U(w) = ‖m⊙(ŷ − f)‖²/(2σ²) + Σ_j λ_j‖w_j‖²/2."""
        prior = sum(
            lam * p.pow(2).sum() for lam, p in zip(self.precisions, self.params, strict=True)
        )
        return run.squared_error(out) / (2 * run.sigma**2) + 0.5 * prior

    def before_update(self, run: RunState) -> None:
        opt = self.opt
        assert isinstance(opt, samplers.SGLD)
        opt.set_step_size(sgld_step_size(self.options, self.cfg.lr, run.t, run.sigma**2, run.n_obs))
        if self.options.freeze_preconditioner and run.t >= self.burn_in:
            opt.freeze(self.options.frozen_alpha)

    def divergence_hint(self) -> str:
        return f"lower lr={self.cfg.lr} or step_size={self.options.step_size}"

    def log_fields(self, run: RunState, truth: torch.Tensor | None) -> dict[str, Any]:
        assert self.opt is not None
        step_size = self.opt.param_groups[0]["step_size"]
        return {"step_size": step_size, **super().log_fields(run, truth)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "precisions": list(self.precisions)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        super().load_state_dict(state, device)
        self.precisions = list(state["precisions"])
