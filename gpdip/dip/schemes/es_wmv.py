"""``es-wmv``: DIP (Adam or SGD on the observed MSE) stopped by ES-WMV (Wang et al. 2023).

The stopping rule is :class:`gpdip.dip.methods.wmv.WMVStopper` (windowed moving variance of
the iterates, window W, patience P; paper defaults W = 100, P = 1000).  The run ends when
the rule fires (unless ``wmv_continue``) and the answer is the detected iterate; the log's
last record carries the detected stop, its PSNR and the oracle gap (stop PSNR − best PSNR so
far), when the truth is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gpdip.dip.methods.wmv import DEFAULT_PATIENCE, DEFAULT_WINDOW, WMVStopper
from gpdip.dip.schemes import register
from gpdip.dip.schemes.base import RunState, SchemeOptions, option
from gpdip.dip.schemes.sgd import SGD, SGDOptions
from gpdip.errors import GpdipError


@dataclass
class WMVOptions(SGDOptions):
    window: int = option(DEFAULT_WINDOW, "ES-WMV window W (iterates in the variance)")
    patience: int = option(DEFAULT_PATIENCE, "ES-WMV patience P (steps without a new minimum)")
    wmv_continue: bool = option(False, "keep training after the stop is detected")

    def validate(self) -> None:
        super().validate()
        WMVStopper(self.window, self.patience)  # raises GpdipError naming the field
        if not isinstance(self.wmv_continue, bool):
            raise GpdipError(f"wmv_continue={self.wmv_continue}: expected true or false")


@register
class ESWMV(SGD):
    name = "es-wmv"
    summary = "sgd stopped by the windowed moving variance of its iterates (ES-WMV)"
    options_type: ClassVar[type[SchemeOptions]] = WMVOptions

    def setup(self, run: RunState) -> None:
        super().setup(run)
        self.stopper = WMVStopper(self.options.window, self.options.patience)

    def observe(self, run: RunState, out: torch.Tensor) -> None:
        super().observe(run, out)
        self.stopper.push(out)

    def should_stop(self, run: RunState) -> str | None:
        if self.stopper.stopped and not self.options.wmv_continue:
            assert self.stopper.best is not None
            return f"ES-WMV stop detected at step {self.stopper.best.iteration}"
        return None

    def estimate(self) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
        best = self.stopper.best if self.stopper.stopped else None
        return (None, None, 0) if best is None else (best.estimate, None, 0)

    def log_fields(self, run: RunState, truth: torch.Tensor | None) -> dict[str, Any]:
        from gpdip.io.images import psnr

        rec = super().log_fields(run, truth)
        best = self.stopper.best if self.stopper.stopped else None
        if best is not None:
            rec["wmv_iter"] = best.iteration
            if truth is not None:
                rec["wmv_psnr"] = psnr(best.estimate, truth)
                best_so_far = getattr(run, "best_psnr", None)
                if best_so_far is not None:
                    rec["wmv_gap"] = rec["wmv_psnr"] - best_so_far
        return rec

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "wmv": self.stopper.state_dict()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        super().load_state_dict(state, device)
        self.stopper.load_state_dict(state["wmv"], device)
