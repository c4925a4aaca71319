"""Langevin sampler, the original code's noisy Adam, and running averages.

SGLD (Welling & Teh 2011; Cheng et al. 2019, Eq. 8) with w = (x, θ):

    Δw = (ε/2)·(∇_w log p(ŷ | w) + ∇_w log p(w)) + η,   η ~ N(0, ε I)
       = −(ε/2)·∇U(w) + η,   U(w) = ‖m⊙(ŷ − f(x; θ))‖²/(2σ²) + λ‖w‖²/2.

The trainer puts ∇U in ``p.grad``; :class:`SGLD` applies the update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class SGLD(torch.optim.Optimizer):
    """Stochastic-gradient Langevin dynamics on the parameters' ``.grad`` = ∇U.

    ``preconditioner="rmsprop"`` gives pSGLD (Li et al. 2016, the paper's [14]):
    Δw = −(ε/2)·G∇U + N(0, εG) with G = diag(1/(δ + √V)), V an EMA of (∇U)²
    (the Γ correction term is dropped, as in Li et al.'s experiments).
    With ``"none"`` G = I and the update is exactly Eq. (8).

    Why :meth:`freeze`: while G adapts, it follows the local gradient, which is larger away
    from the mode, and without the Γ term the chain's stationary density is ∝ e^{−U}/G
    (Fokker–Planck of dw = −(G/2)∇U dt + √G dW), i.e. tilted towards large |∇U|: on the
    linear-Gaussian test model its variances come out 24–29% too large, where the frozen
    sampler is exact within its 12% Monte Carlo tolerance (``tests/dip/test_sgld.py``).
    After :meth:`freeze` G is a constant matrix and the update is exact preconditioned
    Langevin (stationary density ∝ e^{−U} up to the O(ε) discretisation bias); the trainer
    freezes it at the end of burn-in when ``SGLDOptions.freeze_preconditioner`` is set.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        step_size: float,
        generator: torch.Generator,
        preconditioner: str = "none",
        alpha: float = 0.99,
        delta: float = 1e-8,
        delta_rel: float = 0.1,
    ) -> None:
        defaults = {"step_size": step_size, "alpha": alpha, "delta": delta, "delta_rel": delta_rel}
        super().__init__(params, defaults)
        self.generator = generator
        self.preconditioner = preconditioner

    def freeze(self, alpha: float = 1.0) -> None:
        """Stop (``alpha=1``) or slow down (``alpha`` < 1, e.g. 0.9999) the adaptation of G.

        ``alpha=1``: later steps use the last adapted G, each entry capped at the tensor's
        typical value 1/(δ + mean √v̂) (a weight whose gradient was near zero at freezing
        time would otherwise get G up to 1/δ).  Exact, but an unadjusted Langevin chain with
        a fixed step can still blow up on a non-convex energy: 3 of 9 64×64 denoising chains
        did (``gpdip.experiments.tables``).  ``alpha`` < 1: G keeps following the EMA of (∇U)² on a
        1/(1 − alpha)-step time scale, nearly constant at equilibrium (so nearly exact) yet
        a gradient burst still raises V at once and shrinks the step."""
        for group in self.param_groups:
            if group.get("frozen") or group["alpha"] == alpha:
                continue
            if alpha < 1.0:
                group["alpha_burn_in"] = group["alpha"]
                group["alpha"] = alpha
                continue
            group["frozen"] = True
            for p in group["params"]:
                state = self.state.get(p, {})
                if "v" not in state:
                    continue
                root = (state["v"] / (1 - group["alpha"] ** state["t"])).sqrt()
                cap = 1.0 / (max(group["delta"], float(root.mean())) + 1e-30)
                state["g"] = state["g"].clamp(max=cap)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            eps = group["step_size"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                noise = torch.randn(
                    p.shape, generator=self.generator, device=p.device, dtype=p.dtype
                )
                if self.preconditioner == "rmsprop":
                    g = self._preconditioner(p, group)
                    p.addcmul_(g, p.grad, value=-0.5 * eps)
                    p.addcmul_(g.sqrt(), noise, value=math.sqrt(eps))
                else:
                    p.add_(p.grad, alpha=-0.5 * eps)
                    p.add_(noise, alpha=math.sqrt(eps))

    def _preconditioner(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        """G = 1/(δ + √v̂), v̂ the bias-corrected EMA of (∇U)² (as Adam's); δ is floored at
        δ_rel·mean(√v̂) per tensor so entries with a vanishing gradient do not get
        an unbounded step and noise (G ≤ 1/(δ_rel·typical |∇U|))."""
        state = self.state[p]
        if group.get("frozen") and "g" in state:
            return state["g"]
        v = state.setdefault("v", torch.zeros_like(p))
        state["t"] = state.get("t", 0) + 1
        v.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
        # bias correction as Adam's; by the end of burn-in it is ≈ 1 and stays there
        root = (v / (1 - group.get("alpha_burn_in", group["alpha"]) ** state["t"])).sqrt()
        delta = max(group["delta"], group["delta_rel"] * float(root.mean()))
        state["g"] = 1.0 / (delta + root)
        return state["g"]

    def set_step_size(self, eps: float) -> None:
        for group in self.param_groups:
            group["step_size"] = eps


@torch.no_grad()
def perturb_noisy_adam(
    params: Iterable[torch.Tensor], std: float, generator: torch.Generator, conv_only: bool = True
) -> None:
    """The original GP-DIP code's "SGLD": after an Adam step add N(0, std²), std = 2·lr,
    to the convolution weights (4-D tensors) only.  Not a Langevin sampler: the noise
    scale ignores both the step size's Langevin coupling and the likelihood scale."""
    for p in params:
        if conv_only and p.dim() != 4:
            continue
        p.add_(torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype), alpha=std)


class Welford:
    """Running mean and variance of a stream of tensors (Welford 1962), numerically stable.

    ``update(x)``: n ← n+1, δ = x − μ, μ ← μ + δ/n, M₂ ← M₂ + δ⊙(x − μ);
    ``var`` = M₂/(n − 1).  Accumulates in float64.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        self.n += 1
        if self.mean is None or self.m2 is None:
            self.mean, self.m2 = x.clone(), torch.zeros_like(x)
            return
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def var(self) -> torch.Tensor | None:
        if self.m2 is None or self.n < 2:
            return None
        return self.m2 / (self.n - 1)

    def state_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, d: dict) -> None:
        self.n, self.mean, self.m2 = d["n"], d["mean"], d["m2"]


class EMA:
    """Exponential moving average a ← β·a + (1 − β)·x of the outputs (DIP's ``exp_weight``)."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.value: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach()
        if self.value is None:
            self.value = x.clone()
        else:
            self.value.mul_(self.beta).add_(x, alpha=1 - self.beta)

    def state_dict(self) -> dict:
        return {"beta": self.beta, "value": self.value}

    def load_state_dict(self, d: dict) -> None:
        self.beta, self.value = d["beta"], d["value"]
