"""ES-WMV: early stopping of DIP by the windowed moving variance of its iterates.

Wang, Li, Zhuang, Chen, Liang & Sun, "Early stopping for deep image prior" (TMLR 2023),
Eq. (3) and Algorithm 1.  With iterates x_t (the network outputs) and a window of W of them,

    VAR(t) = (1/W) Σ_{w=0}^{W−1} ‖x_{t+w} − (1/W) Σ_{i=0}^{W−1} x_{t+i}‖²,

known once x_{t+W−1} has been computed.  The rule keeps the running minimum of VAR; when it
has not improved for P consecutive iterations it stops and returns x_t, the first iterate of
the minimising window (so the stop is reported W − 1 steps after it is reached, and the
run itself goes on for P more).  Paper
defaults: W = 100, P = 1000.  The rule only reads the outputs, so it sits on top of any
optimiser (Adam, SGD, any scheme).

The variance is computed exactly from running sums over a ring buffer, in float64:
Σ‖x − x̄‖² = Σ‖x‖² − W‖x̄‖², where x̄ = S/W and S = Σ x.  Because the subtraction can cancel,
S is re-summed from the buffer every W pushes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch

from gpdip.errors import GpdipError

DEFAULT_WINDOW = 100
DEFAULT_PATIENCE = 1000


def windowed_variance(window: list[torch.Tensor]) -> float:
    """(1/W) Σ_w ‖x_w − x̄‖² for a list of W same-shaped iterates (direct, two-pass)."""
    stack = torch.stack([w.double() for w in window])
    return float((stack - stack.mean(0)).pow(2).sum() / len(window))


@dataclass
class WMVStop:
    """A detected stop: ``iteration`` (1-based step count), the ``variance`` there and the
    iterate itself (``estimate``)."""

    iteration: int
    variance: float
    estimate: torch.Tensor


class WMVStopper:
    """Feed it every iterate (``push``); ``stopped`` turns true when VAR has not reached a
    new minimum for ``patience`` pushes; ``best`` holds the detected stop.

    Iterations are counted from 1 (the first pushed iterate is iteration 1), as the trainer
    counts steps."""

    def __init__(self, window: int = DEFAULT_WINDOW, patience: int = DEFAULT_PATIENCE) -> None:
        if not isinstance(window, int) or window < 2:
            raise GpdipError(f"ES-WMV window={window}: expected an integer ≥ 2")
        if not isinstance(patience, int) or patience < 1:
            raise GpdipError(f"ES-WMV patience={patience}: expected an integer ≥ 1")
        self.window, self.patience = window, patience
        self.buffer: deque[torch.Tensor] = deque()
        self.total: torch.Tensor | None = None  # Σ x over the buffer (float64)
        self.total_sq = 0.0  # Σ ‖x‖² over the buffer
        self.t = 0
        self.best: WMVStop | None = None
        self.since_best = 0
        self.variances: list[tuple[int, float]] = []  # (t, VAR(t)), t = window start

    @property
    def stopped(self) -> bool:
        return self.best is not None and self.since_best >= self.patience

    def push(self, x: torch.Tensor) -> float | None:
        """Add the next iterate; once W are held, return VAR of the window that ends with it
        (else None)."""
        x64 = x.detach().double()
        self.t += 1
        self.buffer.append(x64)
        self.total = x64.clone() if self.total is None else self.total + x64
        self.total_sq += float(x64.pow(2).sum())
        if len(self.buffer) > self.window:
            old = self.buffer.popleft()
            self.total -= old
            self.total_sq -= float(old.pow(2).sum())
        if self.t % self.window == 0:  # re-sum: the running differences accumulate rounding
            self.total = torch.stack(list(self.buffer)).sum(0)
            self.total_sq = float(sum(float(b.pow(2).sum()) for b in self.buffer))
        if len(self.buffer) < self.window:
            return None
        var = max(0.0, (self.total_sq - float(self.total.pow(2).sum()) / self.window))
        var /= self.window
        self.variances.append((self.t - self.window + 1, var))
        if self.best is None or var < self.best.variance:
            start = self.t - self.window + 1  # the window's first iterate: VAR(start)
            self.best = WMVStop(start, var, self.buffer[0].to(x.dtype).clone())
            self.since_best = 0
        else:
            self.since_best += 1
        return var

    def state_dict(self) -> dict:
        """Tensors and plain data only (checkpoints are read with ``weights_only=True``)."""
        best = self.best
        return {
            "buffer": list(self.buffer),
            "total": self.total,
            "total_sq": self.total_sq,
            "t": self.t,
            "since_best": self.since_best,
            "variances": list(self.variances),
            "best": None if best is None else (best.iteration, best.variance, best.estimate),
        }

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        move = (lambda v: v) if device is None else (lambda v: v.to(device))
        self.buffer = deque(move(b) for b in state["buffer"])
        self.total = None if state["total"] is None else move(state["total"])
        self.total_sq, self.t = state["total_sq"], state["t"]
        self.since_best = state["since_best"]
        self.variances = [tuple(v) for v in state["variances"]]  # type: ignore[misc]
        best = state["best"]
        self.best = None if best is None else WMVStop(best[0], best[1], move(best[2]))


def oracle_gap(stop_psnr: float, psnrs: list[float]) -> float:
    """Detected-stop PSNR minus the best PSNR along the run (≤ 0; 0 = the oracle's stop)."""
    if not psnrs:
        raise GpdipError("oracle gap: no PSNR was recorded along the run; expected a truth image")
    return stop_psnr - max(psnrs)
