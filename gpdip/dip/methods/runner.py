"""Build any method of :mod:`gpdip.dip.methods` by name and drive it, with ES-WMV on top.

``run_method`` counts *network gradient steps* (the cost unit): a method with k gradient
steps per outer iteration (DIP-ADMM v1, aSeqDIP) runs ``grad_steps // k`` outer iterations,
so every method gets the same compute.  It records the PSNR of every estimate (the oracle's
best along the run), feeds every estimate to a :class:`~gpdip.dip.methods.wmv.WMVStopper`
(window/patience counted in outer iterations) and reports the detected stop, its PSNR and
the oracle gap.  The run goes on after the detection (``stop_on_detect=False``) so that the
gap is measured against the whole run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from gpdip.dip.methods.admm import DIPADMM
from gpdip.dip.methods.aseqdip import ASeqDIP
from gpdip.dip.methods.base import Method, Observation, make_image_input_network
from gpdip.dip.methods.dip_tv import DIPTV
from gpdip.dip.methods.dop import DOP
from gpdip.dip.methods.plain import PlainDIP
from gpdip.dip.methods.self_guided import SelfGuidedDIP
from gpdip.dip.methods.wmv import WMVStopper, oracle_gap
from gpdip.errors import GpdipError
from gpdip.io.images import psnr

METHOD_NAMES = (
    "sgd",
    "es-wmv",
    "dip-tv",
    "dip-admm-v1",
    "dip-admm-v2",
    "self-guided",
    "aseqdip",
    "dop",
)
IMAGE_INPUT = ("self-guided", "aseqdip")  # networks whose input is the image itself


def build_method(
    name: str,
    obs: Observation,
    arch: str,
    *,
    width: int | None = None,
    seed: int = 0,
    hyper: dict[str, Any] | None = None,
) -> Method:
    """Method ``name`` on ``obs`` with a freshly initialised ``arch`` network (seed
    1000 + ``seed``, as the tables); ``hyper`` overrides the method's keyword defaults."""
    from gpdip.dip.nets import make_network

    if name not in METHOD_NAMES:
        raise GpdipError(f"method '{name}': expected one of {', '.join(METHOD_NAMES)}")
    hyper = dict(hyper or {})
    gen = torch.Generator().manual_seed(1000 + seed)
    c, h, w = obs.y.shape
    if name in IMAGE_INPUT:
        net = make_image_input_network(arch, (h, w), c, width=width, generator=gen)
        net = net.to(obs.y.device)
        noise_gen = torch.Generator().manual_seed(seed)
        if name == "self-guided":
            return SelfGuidedDIP(net, obs, generator=noise_gen, **hyper)
        return ASeqDIP(net, obs, **hyper)
    net, x = make_network(arch, (h, w), c, width=width, generator=gen)
    net, x = net.to(obs.y.device), x.to(obs.y.device)
    try:
        if name in ("sgd", "es-wmv"):
            return PlainDIP(net, x, obs, name=name, **hyper)
        if name == "dip-tv":
            return DIPTV(net, x, obs, **hyper)
        if name == "dop":
            return DOP(net, x, obs, generator=torch.Generator().manual_seed(seed), **hyper)
        hyper.setdefault("inner_steps", 10 if name == "dip-admm-v1" else 1)
        return DIPADMM(net, x, obs, **hyper)
    except TypeError as exc:  # an unknown hyperparameter name
        raise GpdipError(f"method '{name}': {exc}; expected its documented keywords") from None


def grads_per_iteration(method: Method) -> int:
    """Network gradient steps in one ``step()`` of ``method``."""
    return int(getattr(method, "inner_steps", 1))


@dataclass
class MethodOutcome:
    """One run: ``estimate`` is the method's answer (ES-WMV: its detected stop; every other
    method: its last estimate); ``best_*`` the oracle's best along the run; ``wmv_*`` what
    ES-WMV would have stopped at on this run (``None`` if it never detected a stop).
    Iteration numbers count network gradient steps."""

    name: str
    estimate: torch.Tensor
    final: torch.Tensor
    best_psnr: float | None
    best_iter: int | None
    wmv_iter: int | None
    wmv_psnr: float | None
    wmv_gap: float | None
    seconds: float
    seconds_to_wmv: float | None
    grad_steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_estimate: torch.Tensor | None = None
    wmv_estimate: torch.Tensor | None = None


def run_method(
    method: Method,
    grad_steps: int,
    *,
    truth: torch.Tensor | None = None,
    window: int = 100,
    patience: int = 1000,
    log_every: int = 25,
    stop_on_detect: bool = False,
) -> MethodOutcome:
    """Run ``method`` for ``grad_steps`` network gradient steps (see the module docstring)."""
    k = grads_per_iteration(method)
    if grad_steps < k:
        raise GpdipError(
            f"grad_steps={grad_steps}: expected at least one outer iteration "
            f"({k} steps) of {method.name}"
        )
    stopper = WMVStopper(window, patience)
    psnrs: list[float] = []
    history: list[dict[str, Any]] = []
    started, detected_at = time.perf_counter(), None
    est = torch.empty(0)
    best_est: torch.Tensor | None = None
    for it in range(1, grad_steps // k + 1):
        est = method.step()
        if not bool(torch.isfinite(est).all()):
            raise GpdipError(
                f"{method.name} diverged at step {it * k}: a non-finite output; "
                "expected finite values (lower the learning rate)"
            )
        stopper.push(est)
        if stopper.stopped and detected_at is None:
            detected_at = time.perf_counter() - started
        if truth is not None:
            psnrs.append(psnr(est, truth))
            if psnrs[-1] >= max(psnrs):
                best_est = est.clone()
            if it % max(1, log_every // k) == 0:
                history.append(
                    {"iter": it * k, "psnr": psnrs[-1], "loss": getattr(method, "last_loss", None)}
                )
        if stop_on_detect and stopper.stopped:
            break
    outcome = _outcome(
        method, est, k, psnrs, history, stopper, truth, time.perf_counter() - started, detected_at
    )
    outcome.best_estimate = None if best_est is None else best_est.cpu()
    return outcome


def _outcome(
    method: Method,
    final: torch.Tensor,
    k: int,
    psnrs: list[float],
    history: list[dict[str, Any]],
    stopper: WMVStopper,
    truth: torch.Tensor | None,
    seconds: float,
    detected_at: float | None,
) -> MethodOutcome:
    best = max(range(len(psnrs)), key=psnrs.__getitem__) if psnrs else None
    stop = stopper.best if stopper.stopped else None
    wmv_psnr = psnr(stop.estimate, truth) if stop is not None and truth is not None else None
    estimate = final
    if method.name == "es-wmv" and stop is not None:
        estimate = stop.estimate
    return MethodOutcome(
        name=method.name,
        estimate=estimate.cpu(),
        final=final.cpu(),
        best_psnr=None if best is None else psnrs[best],
        best_iter=None if best is None else (best + 1) * k,
        wmv_iter=None if stop is None else stop.iteration * k,
        wmv_psnr=wmv_psnr,
        wmv_gap=None if wmv_psnr is None else oracle_gap(wmv_psnr, psnrs),
        seconds=seconds,
        seconds_to_wmv=detected_at,
        grad_steps=len(psnrs) * k or k,
        history=history,
        wmv_estimate=None if stop is None else stop.estimate.cpu(),
    )
