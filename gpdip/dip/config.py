"""Configuration of a DIP run: inference scheme, step sizes, logging.

The inference schemes are those of Cheng et al. 2019, Sec. 5.2:

========================  ====================================================
``sgd``                   Adam on the masked MSE; early stopping (oracle
                          ``stop_iter``, best-PSNR iterate when the truth is
                          known) — "SGD+Early".
``sgd-avg``               as ``sgd`` plus an exponential moving average of the
                          outputs — "SGD+Early+Avg".
``sgd-input``             input perturbed by N(0, reg_noise_std²) every step —
                          "SGD+Input+Early".
``sgd-input-avg``         both — "SGD+Input+Early+Avg".
``sgld``                  true stochastic-gradient Langevin dynamics, Eq. (8):
                          w ← w − (ε/2)∇U(w) + N(0, ε) on all trained
                          parameters; posterior mean/variance from thinned
                          samples after burn-in.
``noisy-adam``            the original code's scheme: an Adam step followed by
                          N(0, (noisy_adam_sigma·lr)²) added to the conv
                          weights only (4-D tensors).  Not a Langevin sampler;
                          kept for comparison.
========================  ====================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from gpdip.errors import GpdipError

METHODS = ("sgd", "sgd-avg", "sgd-input", "sgd-input-avg", "sgld", "noisy-adam")
MAX_ITERS = 10_000_000


@dataclass
class DIPConfig:
    """All knobs of one DIP run (see the module docstring for ``method``).

    Step sizes: ``lr`` is the Adam (or SGD) learning rate on the mean squared
    error over observed entries.  For ``sgld`` the Langevin step is
    ε_t = step_size·(1 + t/step_decay_b)^(−step_decay_gamma) (γ = 0: constant,
    the default; γ ∈ (0.5, 1] satisfies Σε = ∞, Σε² < ∞).  When ``step_size``
    is None it is matched to gradient descent with rate ``lr`` on the mean
    loss: (ε/2)∇U = lr·∇MSE  ⇔  ε = 4σ²·lr/n_obs; with the RMSprop preconditioner
    (pSGLD) it is ε = 2·lr, so the drift matches an Adam step of size lr.
    """

    method: str = "sgd"
    iters: int = 3000
    lr: float = 0.01
    optimizer: str = "adam"  # for the sgd* methods: "adam" or "sgd"
    reg_noise_std: float = 1.0 / 30.0  # input perturbation for the *-input methods
    ema: float = 0.99  # exponential window of the *-avg methods (DIP code's exp_weight)
    stop_iter: int | None = None  # oracle early-stopping iteration (output recorded there)
    noise_std: float | None = None  # σ of the Gaussian likelihood; None: estimated
    step_size: float | None = None  # SGLD ε_0; None: 4σ²·lr/n_obs
    step_decay_b: float = 1000.0
    step_decay_gamma: float = 0.0
    preconditioner: str = "none"  # SGLD: "none" (Eq. 8) or "rmsprop" (pSGLD, Li et al.)
    # pSGLD after burn-in.  False (default): Li et al.'s always-adapting G: stable on every
    # DIP run so far, but over-dispersed (variances +24-29% on the test model).  True: G
    # then follows an EMA with decay frozen_alpha (1.0 = frozen): exact on the test model,
    # but 3 of 9 frozen and 2 of 2 slowly adapting 64×64 denoising chains blew up
    freeze_preconditioner: bool = False
    frozen_alpha: float = 1.0
    burn_in: int = 1000
    thin: int = 10
    weight_decay: float = 1.0  # prior precision λ: −log p(w) = λ‖w‖²/2 (SGLD energy)
    prior: str = "init"  # "init": per-tensor N(0, mean θ₀²) (the limit's prior); "isotropic": λ
    noisy_adam_sigma: float = 2.0  # noise std = sigma·lr in the noisy-adam variant
    noisy_adam_params: str = "conv"  # "conv" (4-D weights, as the original code) or "all"
    optimize_input: bool = False
    log_every: int = 50
    checkpoint_every: int = 0  # 0: no checkpoints
    seed: int = 0

    def validate(self) -> DIPConfig:
        """Check ranges; raise :class:`GpdipError` naming the offending field."""
        if self.method not in METHODS:
            raise GpdipError(f"method '{self.method}': expected one of {', '.join(METHODS)}")
        if not isinstance(self.iters, int) or not 1 <= self.iters <= MAX_ITERS:
            raise GpdipError(f"iters={self.iters}: expected an integer in [1, {MAX_ITERS}]")
        _positive("lr", self.lr, upper=10.0)
        if self.step_size is not None:
            _positive("step_size", self.step_size, upper=10.0)
        if self.noise_std is not None:
            _positive("noise_std", self.noise_std, upper=10.0)
        if self.optimizer not in ("adam", "sgd"):
            raise GpdipError(f"optimizer '{self.optimizer}': expected 'adam' or 'sgd'")
        if self.preconditioner not in ("none", "rmsprop"):
            raise GpdipError(
                f"preconditioner '{self.preconditioner}': expected 'none' or 'rmsprop'"
            )
        if self.prior not in ("init", "isotropic"):
            raise GpdipError(f"prior '{self.prior}': expected 'init' or 'isotropic'")
        if self.noisy_adam_params not in ("conv", "all"):
            raise GpdipError(
                f"noisy_adam_params '{self.noisy_adam_params}': expected 'conv' or 'all'"
            )
        if not 0.0 < self.frozen_alpha <= 1.0:
            raise GpdipError(f"frozen_alpha={self.frozen_alpha}: expected a decay in (0, 1]")
        if not 0.0 <= self.ema < 1.0:
            raise GpdipError(f"ema={self.ema}: expected a decay in [0, 1)")
        if self.reg_noise_std < 0 or self.weight_decay < 0:
            raise GpdipError("reg_noise_std and weight_decay must be >= 0")
        if self.stop_iter is not None and not 1 <= self.stop_iter <= self.iters:
            raise GpdipError(
                f"stop_iter={self.stop_iter}: expected 1 ≤ stop_iter ≤ iters={self.iters}"
            )
        for name in ("log_every", "thin"):
            if getattr(self, name) < 1:
                raise GpdipError(f"{name}={getattr(self, name)}: expected an integer ≥ 1")
        if self.burn_in < 0 or self.checkpoint_every < 0 or self.step_decay_b <= 0:
            raise GpdipError("burn_in, checkpoint_every must be ≥ 0 and step_decay_b > 0")
        return self

    @property
    def uses_input_noise(self) -> bool:
        return self.method in ("sgd-input", "sgd-input-avg")

    @property
    def uses_ema(self) -> bool:
        return self.method in ("sgd-avg", "sgd-input-avg")

    @property
    def is_sampler(self) -> bool:
        """Methods whose thinned post-burn-in iterates are averaged (Welford)."""
        return self.method in ("sgld", "noisy-adam")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DIPConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _positive(name: str, value: float, upper: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= upper):
        raise GpdipError(f"{name}={value}: expected a number in (0, {upper}]")


def sgld_step_size(cfg: DIPConfig, t: int, sigma2: float, n_obs: int) -> float:
    """ε_t = ε_0·(1 + t/b)^(−γ), with ε_0 = step_size or 4σ²·lr/n_obs (see :class:`DIPConfig`)."""
    if cfg.step_size is not None:
        eps0 = cfg.step_size
    elif cfg.preconditioner == "rmsprop":
        eps0 = 2.0 * cfg.lr  # G∇U ≈ sign(∇U): drift (ε/2)·G∇U ≈ an Adam step of size lr
    else:
        eps0 = 4.0 * sigma2 * cfg.lr / n_obs
    if cfg.step_decay_gamma == 0.0:
        return eps0
    return eps0 * (1.0 + t / cfg.step_decay_b) ** (-cfg.step_decay_gamma)
