"""The DIP trainer: one scheme-agnostic loop for every registered inference scheme.

Model (Sec. 4 of Cheng et al. 2019): ŷ = f(x; θ) + ε, ε ~ N(0, σ²I) on the observed
entries (mask m).  What is minimised or sampled, how, and what is averaged is the
scheme's (:mod:`gpdip.dip.schemes`: the ``sgd*`` variants, ``sgld``, ``noisy-adam``,
``gd``, ...); the loop here owns the problem, the step counter, the best-PSNR and oracle
(``stop_iter``) iterates, logs and checkpoints.  With ``centred`` the network's output is
f(x; θ) − f(x; θ₀), θ₀ the initial weights (f₀ computed once, then fixed).

Everything random after the network's construction
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

from gpdip.dip.config import DIPConfig
from gpdip.dip.images import check_mask, estimate_noise_std
from gpdip.dip.io import JsonlLog, load_checkpoint
from gpdip.dip.schemes import Scheme, get_scheme
from gpdip.errors import GpdipError
from gpdip.io.atomic import save_torch
from gpdip.io.images import psnr
from gpdip.io.rundir import check_inputs, fingerprint, locked

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
    stop_reason: str | None = None  # the scheme's stopping rule ended the run before iters

    @property
    def estimate(self) -> torch.Tensor:
        """The method's answer: posterior/EMA mean if there is one, else the final iterate."""
        return self.mean if self.mean is not None else self.final


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _Run:
    """State of one run shared by every scheme (the scheme's own state lives in
    ``self.scheme``); implements :class:`gpdip.dip.schemes.RunState`."""

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
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.sigma = cfg.noise_std if cfg.noise_std is not None else _estimated_sigma(prob, cfg)
        self.t = 0
        self.f0: torch.Tensor | None = None
        if cfg.centred:  # f₀(z): the initial output, a fixed tensor subtracted from now on
            with torch.no_grad():
                self.f0 = self.net(self.x)[0].detach().clone()
        self.scheme: Scheme = get_scheme(cfg.method)(cfg)
        self.scheme.setup(self)
        self.best_psnr = float("-inf")
        self.best_iter: int | None = None
        self.best: torch.Tensor | None = None
        self.stop: torch.Tensor | None = None
        self.stop_reason: str | None = None
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """f(inp) (C, H, W), minus f₀(z) when centred."""
        out = self.net(inp)[0]
        return out if self.f0 is None else out - self.f0

    def squared_error(self, out: torch.Tensor) -> torch.Tensor:
        """‖m⊙(ŷ − out)‖²."""
        return ((out - self.y) * self.mask).pow(2).sum()

    def step(self) -> tuple[torch.Tensor, float, float]:
        """One update (t → t+1).  Returns the pre-update output f(x; θ_t), loss, mse."""
        res = self.scheme.step(self)
        self.t += 1
        return res.out, res.loss, res.mse

    def track(self, out: torch.Tensor) -> None:
        """Averages, sample accumulation, best/oracle iterates after step t."""
        self.scheme.observe(self, out)
        if self.truth is not None:
            p = psnr(out, self.truth)
            if p > self.best_psnr:
                self.best_psnr, self.best_iter, self.best = p, self.t, out.clone()
        if self.cfg.stop_iter == self.t:
            self.stop = self.scheme.current(out).clone()

    def record(self, out: torch.Tensor, loss: float, mse: float) -> dict[str, Any]:
        rec: dict[str, Any] = {"iter": self.t, "loss": loss, "mse_obs": mse}
        if self.truth is not None:
            rec["psnr"] = psnr(out, self.truth)
        rec.update(self.scheme.log_fields(self, self.truth))
        self.history.append(rec)
        return rec

    def state_dict(self, log_offset: int) -> dict[str, Any]:
        return {
            "t": self.t,
            "config": self.cfg.to_dict(),
            "net": self.net.state_dict(),
            "x": self.x.detach(),
            "f0": self.f0,
            "gen": self.gen.get_state(),
            "scheme": self.scheme.state_dict(),
            "best": (self.best_psnr, self.best_iter, self.best),
            "stop": self.stop,
            "stop_reason": self.stop_reason,
            "history": self.history,
            "log_offset": log_offset,
            "elapsed": self.elapsed,
            "sigma": self.sigma,
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.net.load_state_dict(s["net"])
        with torch.no_grad():
            self.x.copy_(s["x"])
        if s.get("f0") is not None:
            self.f0 = s["f0"].to(self.device)
        self.gen.set_state(s["gen"])
        # checkpoints written before the scheme registry keep these at the top level
        legacy = {k: s[k] for k in ("opt", "ema", "welford", "precisions") if k in s}
        self.scheme.load_state_dict(s.get("scheme", legacy), self.device)
        self.best_psnr, self.best_iter, self.best = s["best"]
        self.t, self.stop, self.history = s["t"], s["stop"], s["history"]
        self.stop_reason = s.get("stop_reason")
        self.elapsed, self.sigma = s["elapsed"], s["sigma"]
        self.best = None if self.best is None else self.best.to(self.device)
        self.stop = None if self.stop is None else self.stop.to(self.device)


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
    checkpoint when ``resume`` is true.  The folder is locked while the run writes, and a
    checkpoint of other inputs (image, mask, truth, network, configuration: fingerprints
    in ``out_dir/inputs.json``) is refused instead of resumed (:mod:`gpdip.io.rundir`).
    ``callback(t, record_or_None)`` is called after every step (tests use it to simulate
    interruptions).
    """
    from gpdip.dip.nets import check_output_size

    cfg = config.validate()
    prob = problem.validated()
    dev = torch.device(device) if device is not None else default_device()
    # the architecture: module tree, parameter shapes, input shape (not the initial values:
    # a resumed run takes every value from its checkpoint)
    net_fingerprint = fingerprint(
        repr(net),
        {k: (tuple(v.shape), str(v.dtype)) for k, v in net.state_dict().items()},
        tuple(net_input.shape),
    )
    run = _Run(net, net_input, prob, cfg, dev)
    check_output_size(
        run.net,
        run.x.detach(),
        tuple(prob.observed.shape),
        str(getattr(net, "arch_name", "network")),
    )
    if out_dir is None:
        _train(run, None, resume, progress, callback)
        return _result(run)
    out_dir = Path(out_dir)
    with locked(out_dir):
        resuming = resume and (out_dir / CHECKPOINT).exists()
        check_inputs(out_dir, _inputs(run, prob, net_fingerprint), resuming=resuming)
        _train(run, out_dir, resume, progress, callback)
    return _result(run)


def _inputs(run: _Run, prob: Problem, network: str) -> dict[str, str | None]:
    """Fingerprints of everything a resumed run must share with the checkpoint's run."""
    return {
        "observed": fingerprint(prob.observed),
        "mask": fingerprint(prob.mask),
        "truth": None if prob.truth is None else fingerprint(prob.truth),
        "network": network,
        "config": fingerprint(run.cfg.to_dict()),
    }


def _train(
    run: _Run,
    out_dir: Path | None,
    resume: bool,
    progress: bool,
    callback: Callable[[int, dict[str, Any] | None], None] | None,
) -> None:
    log = JsonlLog(out_dir / LOG if out_dir else None)
    try:
        _maybe_resume(run, out_dir, log, resume)
        _loop(run, log, out_dir, progress, callback)
    finally:
        log.close()


def _maybe_resume(run: _Run, out_dir: Path | None, log: JsonlLog, resume: bool) -> None:
    ckpt = out_dir / CHECKPOINT if out_dir else None
    if ckpt is not None and resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        # older checkpoints lack newer fields (compared at their defaults) and carry every
        # scheme's fields (only the run's scheme's are compared)
        if DIPConfig.from_dict(state["config"]).to_dict() != run.cfg.to_dict():
            raise GpdipError(
                f"checkpoint '{ckpt}' was written with a different configuration; "
                "expected the same options (or delete the folder to restart)"
            )
        run.load_state_dict(state)
        log.truncate(state["log_offset"])  # drop lines logged after the checkpoint
    else:
        log.truncate(0)


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
        while run.t < cfg.iters and run.stop_reason is None:
            out, loss, mse = run.step()
            if not math.isfinite(loss):
                raise GpdipError(
                    f"{cfg.method} diverged at step {run.t}: the energy is {loss}; expected "
                    f"a finite value ({run.scheme.divergence_hint()})"
                )
            run.track(out)
            run.stop_reason = run.scheme.should_stop(run)
            rec = None
            if run.t % cfg.log_every == 0 or run.t == cfg.iters:
                rec = run.record(out, loss, mse)
                log.write(rec)
                bar.set_postfix({k: f"{rec[k]:.2f}" for k in ("psnr", "psnr_mean") if k in rec})
            bar.update(1)
            run.elapsed = time.perf_counter() - start
            if out_dir and cfg.checkpoint_every and run.t % cfg.checkpoint_every == 0:
                save_torch(out_dir / CHECKPOINT, run.state_dict(log.offset()))
            if callback is not None:
                callback(run.t, rec)
            if run.stop_reason is not None:
                break
    finally:
        bar.close()


def _estimated_sigma(prob: Problem, cfg: DIPConfig) -> float:
    """σ̂ from the observed image (floored at 1e-3).  A scheme that does not use σ gets NaN
    where no estimate exists (e.g. a 1-D signal, an image of height 1)."""
    try:
        return max(estimate_noise_std(prob.observed, prob.mask), 1e-3)
    except GpdipError:
        if get_scheme(cfg.method).uses_sigma:
            raise
        return math.nan


@torch.no_grad()
def _result(run: _Run) -> DIPResult:
    final = run.forward(run.x).detach().cpu()
    mean, std, n_samples = run.scheme.estimate()
    cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
    return DIPResult(
        final=final,
        mean=cpu(mean),
        std=cpu(std),
        best=cpu(run.best),
        best_iter=run.best_iter,
        best_psnr=None if run.best_iter is None else run.best_psnr,
        stop=cpu(run.stop),
        sigma=run.sigma,
        iterations=run.t,
        seconds=run.elapsed,
        n_samples=n_samples,
        history=list(run.history),
        stop_reason=run.stop_reason,
    )
