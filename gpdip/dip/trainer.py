"""The DIP trainer: one loop for the paper's inference schemes (Sec. 4, 5.2).

Model (Sec. 4): ŷ = f(x; θ) + ε, ε ~ N(0, σ²I) on the observed entries
(mask m).  The ``sgd*`` methods minimise the mean squared error over observed
entries, ‖m⊙(ŷ − f)‖²/n_obs (the MLE, Eq. in Sec. 4), and rely on early
stopping; ``sgld`` samples the posterior with Eq. (8) on the energy

    U(w) = ‖m⊙(ŷ − f(x; θ))‖² / (2σ²) + Σ_j λ_j‖w_j‖²/2,   w = (x, θ) (x only if optimised),

λ_j per tensor: the precision of its initial distribution (``prior="init"``) or
``weight_decay`` (``prior="isotropic"``),

and averages thinned post-burn-in samples (Welford) into a posterior mean and
per-pixel variance.  Everything random after the network's construction
(input perturbations, Langevin noise) comes from one seeded generator, whose
state is checkpointed, so an interrupted and resumed run reproduces an
uninterrupted one exactly (on the same device).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gpdip.dip.config import DIPConfig, sgld_step_size
from gpdip.dip.images import check_mask, estimate_noise_std, psnr
from gpdip.dip.io import JsonlLog, atomic_torch_save, load_checkpoint
from gpdip.dip.sgld import EMA, SGLD, Welford, perturb_noisy_adam
from gpdip.errors import GpdipError

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


@dataclass
class Problem:
    """A restoration task: ``observed`` ŷ (C, H, W) in [0, 1]; ``mask`` (1|C, H, W) bool
    (None: all observed, i.e. denoising); ``truth`` the clean image for PSNR, if known."""

    observed: torch.Tensor
    mask: torch.Tensor | None = None
    truth: torch.Tensor | None = None

    def validated(self) -> Problem:
        y = self.observed
        if y.dim() != 3:
            raise GpdipError(f"observed image has shape {tuple(y.shape)}; expected (C, H, W)")
        mask = (
            check_mask(self.mask, y)
            if self.mask is not None
            else torch.ones((1, *y.shape[1:]), dtype=torch.bool)
        )
        if self.truth is not None and tuple(self.truth.shape) != tuple(y.shape):
            raise GpdipError(
                f"truth image has shape {tuple(self.truth.shape)} but the observed "
                f"image has {tuple(y.shape)}; expected the same shape"
            )
        return Problem(y.float(), mask, None if self.truth is None else self.truth.float())


@dataclass
class DIPResult:
    """Outputs, each (C, H, W) on the CPU.  ``mean``: EMA (``*-avg``) or posterior mean
    (samplers); ``std``: posterior per-pixel std (samplers); ``best``: best-PSNR iterate;
    ``stop``: output at the oracle ``stop_iter``."""

    final: torch.Tensor
    mean: torch.Tensor | None
    std: torch.Tensor | None
    best: torch.Tensor | None
    best_iter: int | None
    best_psnr: float | None
    stop: torch.Tensor | None
    sigma: float
    iterations: int
    seconds: float
    n_samples: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def estimate(self) -> torch.Tensor:
        """The method's answer: posterior/EMA mean if there is one, else the final iterate."""
        return self.mean if self.mean is not None else self.final


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _Run:
    """State of one run; split out so each step function stays short."""

    def __init__(
        self, net: nn.Module, x: torch.Tensor, prob: Problem, cfg: DIPConfig, device: torch.device
    ) -> None:
        self.cfg, self.device = cfg, device
        self.net = net.to(device).train()
        self.y = prob.observed.to(device)
        assert prob.mask is not None  # Problem.validated() fills it
        self.mask = prob.mask.to(device).float()
        self.truth = None if prob.truth is None else prob.truth.to(device)
        self.n_obs = int(self.mask.expand_as(self.y).sum())
        self.x = x.detach().to(device).clone()
        if cfg.optimize_input:
            self.x.requires_grad_(True)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.sigma = (
            cfg.noise_std
            if cfg.noise_std is not None
            else max(estimate_noise_std(prob.observed, prob.mask), 1e-3)
        )
        self.prior_vars = self._prior_variances()
        named = [(n, p) for n, p in self.net.named_parameters() if self.prior_vars.get(n, 1) > 0]
        for n, p in self.net.named_parameters():
            if self.prior_vars.get(n, 1) == 0:
                p.requires_grad_(False)  # a point-mass prior (e.g. bias_var = 0): held fixed
        self.param_names = [n for n, _ in named] + (["input"] if cfg.optimize_input else [])
        self.params = [p for _, p in named] + ([self.x] if cfg.optimize_input else [])
        self.opt = self._optimizer()
        self.precisions = self._prior_precisions()
        self.ema, self.welford = EMA(cfg.ema), Welford()
        self.t, self.best_psnr = 0, float("-inf")
        self.best_iter: int | None = None
        self.best: torch.Tensor | None = None
        self.stop: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.method == "sgld":
            eps = sgld_step_size(cfg, 0, self.sigma**2, self.n_obs)
            return SGLD(self.params, eps, self.gen, cfg.preconditioner)
        if cfg.optimizer == "sgd" and cfg.method != "noisy-adam":
            return torch.optim.SGD(self.params, lr=cfg.lr)
        return torch.optim.Adam(self.params, lr=cfg.lr)

    def _prior_variances(self) -> dict[str, float]:
        """SGLD with ``prior="init"`` on a network that carries its exact limit prior
        (``net.prior_variances``, set by :func:`~gpdip.dip.nets.make_network`)."""
        if self.cfg.method != "sgld" or self.cfg.prior != "init":
            return {}
        return dict(getattr(self.net, "prior_variances", None) or {})

    def _prior_precisions(self) -> list[float]:
        """Per-tensor prior precision: "init" uses the network's exact limit prior
        1/(weight_var/fan_in) when it carries one, else 1/mean(θ₀²), i.e. the Gaussian the
        weights were drawn from; tensors initialised to zero and "isotropic" use
        ``weight_decay``."""
        out = []
        for name, p in zip(self.param_names, self.params, strict=True):
            if name in self.prior_vars:
                out.append(1.0 / self.prior_vars[name])
                continue
            ms = float(p.detach().pow(2).mean()) if p.numel() else 0.0
            use_init = self.cfg.prior == "init" and ms > 0
            out.append(1.0 / ms if use_init else self.cfg.weight_decay)
        return out

    def energy(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to differentiate, mse over observed entries).  SGLD: U(w); else MSE."""
        sq = ((out - self.y) * self.mask).pow(2).sum()
        mse = sq.detach() / self.n_obs
        if self.cfg.method != "sgld":
            return sq / self.n_obs, mse
        prior = sum(
            lam * p.pow(2).sum() for lam, p in zip(self.precisions, self.params, strict=True)
        )
        return sq / (2 * self.sigma**2) + 0.5 * prior, mse

    def step(self) -> tuple[torch.Tensor, float, torch.Tensor]:
        """One update (t → t+1).  Returns the pre-update output f(x; θ_t), loss, mse."""
        cfg = self.cfg
        inp = self.x
        if cfg.uses_input_noise:  # "SGD+Input": x + N(0, σ_p²) each step, x itself fixed
            inp = self.x + cfg.reg_noise_std * torch.randn(
                self.x.shape, generator=self.gen, device=self.device
            )
        out = self.net(inp)[0]
        loss, mse = self.energy(out)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.method == "sgld":
            self.opt.set_step_size(sgld_step_size(cfg, self.t, self.sigma**2, self.n_obs))  # type: ignore[attr-defined]
            if cfg.freeze_preconditioner and self.t >= cfg.burn_in:
                self.opt.freeze(cfg.frozen_alpha)  # type: ignore[attr-defined]
        self.opt.step()
        if cfg.method == "noisy-adam":
            perturb_noisy_adam(
                self.params,
                cfg.noisy_adam_sigma * cfg.lr,
                self.gen,
                conv_only=cfg.noisy_adam_params == "conv",
            )
        self.t += 1
        return out.detach(), float(loss.detach()), mse

    def track(self, out: torch.Tensor) -> None:
        """Averages, sample accumulation, best/oracle iterates after step t."""
        cfg = self.cfg
        if cfg.uses_ema:
            self.ema.update(out)
        if cfg.is_sampler and self.t > cfg.burn_in and (self.t - cfg.burn_in) % cfg.thin == 0:
            self.welford.update(out)
        if self.truth is not None:
            p = psnr(out, self.truth)
            if p > self.best_psnr:
                self.best_psnr, self.best_iter, self.best = p, self.t, out.clone()
        if cfg.stop_iter == self.t:
            current = self.ema.value if cfg.uses_ema and self.ema.value is not None else out
            self.stop = current.clone()

    def record(self, out: torch.Tensor, loss: float, mse: torch.Tensor) -> dict[str, Any]:
        rec: dict[str, Any] = {"iter": self.t, "loss": loss, "mse_obs": float(mse)}
        if self.cfg.method == "sgld":
            rec["step_size"] = self.opt.param_groups[0]["step_size"]
        if self.truth is not None:
            rec["psnr"] = psnr(out, self.truth)
            if self.cfg.uses_ema and self.ema.value is not None:
                rec["psnr_avg"] = psnr(self.ema.value, self.truth)
            if self.welford.mean is not None:
                rec["psnr_mean"] = psnr(self.welford.mean.float(), self.truth)
        self.history.append(rec)
        return rec

    def state_dict(self, log_offset: int) -> dict[str, Any]:
        return {
            "t": self.t,
            "config": self.cfg.to_dict(),
            "net": self.net.state_dict(),
            "x": self.x.detach(),
            "opt": self.opt.state_dict(),
            "gen": self.gen.get_state(),
            "ema": self.ema.state_dict(),
            "welford": self.welford.state_dict(),
            "best": (self.best_psnr, self.best_iter, self.best),
            "stop": self.stop,
            "history": self.history,
            "log_offset": log_offset,
            "elapsed": self.elapsed,
            "sigma": self.sigma,
            "precisions": self.precisions,
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.net.load_state_dict(s["net"])
        with torch.no_grad():
            self.x.copy_(s["x"])
        self.opt.load_state_dict(s["opt"])
        self.gen.set_state(s["gen"])
        self.ema.load_state_dict(s["ema"])
        self.welford.load_state_dict(s["welford"])
        self.best_psnr, self.best_iter, self.best = s["best"]
        self.t, self.stop, self.history = s["t"], s["stop"], s["history"]
        self.elapsed, self.sigma, self.precisions = s["elapsed"], s["sigma"], s["precisions"]
        _to(self, self.device)


def _to(run: _Run, device: torch.device) -> None:
    """Move restored tensors (loaded on the CPU) to the run's device."""
    for obj in (run.ema, run.welford):
        for k, v in vars(obj).items():
            if isinstance(v, torch.Tensor):
                setattr(obj, k, v.to(device))
    run.best = None if run.best is None else run.best.to(device)
    run.stop = None if run.stop is None else run.stop.to(device)


def fit(
    net: nn.Module,
    net_input: torch.Tensor,
    problem: Problem,
    config: DIPConfig,
    *,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    resume: bool = True,
    callback: Callable[[int, dict[str, Any] | None], None] | None = None,
) -> DIPResult:
    """Train ``net`` (input ``net_input`` of shape (1, C_in, H, W)) on ``problem``.

    With ``out_dir``: log records every ``log_every`` steps go to
    ``out_dir/log.jsonl``; checkpoints every ``checkpoint_every`` steps to
    ``out_dir/checkpoint.pt`` (atomic), and a run finds and resumes its
    checkpoint when ``resume`` is true.  ``callback(t, record_or_None)`` is
    called after every step (tests use it to simulate interruptions).
    """
    from gpdip.dip.nets import check_output_size

    cfg = config.validate()
    prob = problem.validated()
    dev = torch.device(device) if device is not None else default_device()
    run = _Run(net, net_input, prob, cfg, dev)
    check_output_size(
        run.net,
        run.x.detach(),
        tuple(prob.observed.shape),
        str(getattr(net, "arch_name", "network")),
    )
    out_dir = Path(out_dir) if out_dir is not None else None
    log = JsonlLog(out_dir / LOG if out_dir else None)
    try:
        _maybe_resume(run, out_dir, log, resume)
        _loop(run, log, out_dir, progress, callback)
    finally:
        log.close()
    return _result(run)


def _maybe_resume(run: _Run, out_dir: Path | None, log: JsonlLog, resume: bool) -> None:
    ckpt = out_dir / CHECKPOINT if out_dir else None
    if ckpt is not None and resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        # older checkpoints lack newer fields: compare with those at their defaults; the
        # SGLD-only pSGLD switches do not change any other method's run
        if _resume_key(DIPConfig.from_dict(state["config"])) != _resume_key(run.cfg):
            raise GpdipError(
                f"checkpoint '{ckpt}' was written with a different configuration; "
                "expected the same options (or delete the folder to restart)"
            )
        run.load_state_dict(state)
        log.truncate(state["log_offset"])  # drop lines logged after the checkpoint
    else:
        log.truncate(0)


def _resume_key(cfg: DIPConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    if cfg.method != "sgld":
        d.pop("freeze_preconditioner"), d.pop("frozen_alpha")
    return d


def _loop(
    run: _Run,
    log: JsonlLog,
    out_dir: Path | None,
    progress: bool,
    callback: Callable[[int, dict[str, Any] | None], None] | None,
) -> None:
    from tqdm import tqdm

    cfg = run.cfg
    bar = tqdm(total=cfg.iters, initial=run.t, disable=not progress, desc=cfg.method)
    start = time.perf_counter() - run.elapsed
    try:
        while run.t < cfg.iters:
            out, loss, mse = run.step()
            if not math.isfinite(loss):
                raise GpdipError(
                    f"{cfg.method} diverged at step {run.t}: the energy is {loss}; expected "
                    f"a finite value (lower lr={cfg.lr} or step_size={cfg.step_size})"
                )
            run.track(out)
            rec = None
            if run.t % cfg.log_every == 0 or run.t == cfg.iters:
                rec = run.record(out, loss, mse)
                log.write(rec)
                bar.set_postfix({k: f"{rec[k]:.2f}" for k in ("psnr", "psnr_mean") if k in rec})
            bar.update(1)
            run.elapsed = time.perf_counter() - start
            if out_dir and cfg.checkpoint_every and run.t % cfg.checkpoint_every == 0:
                atomic_torch_save(run.state_dict(log.offset()), out_dir / CHECKPOINT)
            if callback is not None:
                callback(run.t, rec)
    finally:
        bar.close()


@torch.no_grad()
def _result(run: _Run) -> DIPResult:
    final = run.net(run.x)[0].detach().cpu()
    w = run.welford
    mean = (
        w.mean.float().cpu()
        if w.mean is not None
        else (run.ema.value.cpu() if run.ema.value is not None else None)
    )
    std = w.var.sqrt().float().cpu() if w.var is not None else None
    cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
    return DIPResult(
        final=final,
        mean=mean,
        std=std,
        best=cpu(run.best),
        best_iter=run.best_iter,
        best_psnr=None if run.best_iter is None else run.best_psnr,
        stop=cpu(run.stop),
        sigma=run.sigma,
        iterations=run.t,
        seconds=run.elapsed,
        n_samples=w.n,
        history=list(run.history),
    )
