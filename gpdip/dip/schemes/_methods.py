"""The adapter between :mod:`gpdip.dip.methods` (each method's mathematics, tested on its
own) and the trainer's :class:`~gpdip.dip.schemes.base.Scheme` contract.

A :class:`MethodScheme` builds its method object in :meth:`setup` from the run (network,
input, ŷ, mask, the run's seeded generator), delegates one trainer step to the method's
``step()`` (one outer iteration: DIP-ADMM v1 and aSeqDIP take several gradient steps in it)
and checkpoints the method's optimisers and tensors.  The answer a method reports
(:meth:`estimate`) is its current estimate where that is not f(x) (Self-Guided DIP's
E_η f(z + η), aSeqDIP's f(z_k), ES-WMV's detected stop).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from gpdip.dip.methods.base import Observation
from gpdip.dip.schemes.base import RunState, Scheme, StepOutput
from gpdip.errors import GpdipError

IMAGE_INPUT_HELP = (
    "needs a network whose input has the image's channels (gpdip dip builds one for it)"
)


class MethodScheme(Scheme):
    """A scheme that runs a :mod:`gpdip.dip.methods` object; subclasses implement
    :meth:`build` and list the method's checkpointed tensors in ``state_tensors``."""

    image_input: ClassVar[bool] = False  # network input = the image (C channels)
    state_tensors: ClassVar[tuple[str, ...]] = ()  # attributes of the method to checkpoint

    def build(self, run: RunState, obs: Observation) -> Any:
        raise NotImplementedError

    def setup(self, run: RunState) -> None:
        if self.cfg.centred or self.cfg.optimize_input:
            raise GpdipError(
                f"method '{self.name}' runs its own update: --centred and --optimize-input "
                "do not apply to it; expected neither"
            )
        if self.image_input and run.x.shape[1] != run.y.shape[0]:
            raise GpdipError(
                f"method '{self.name}' {IMAGE_INPUT_HELP}: the input has {run.x.shape[1]} "
                f"channels, the image {run.y.shape[0]}; expected equal "
                "(gpdip.dip.methods.make_image_input_network)"
            )
        self.method = self.build(run, Observation(run.y, run.mask))
        self.opt = self.method.opt
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        self.latest: torch.Tensor | None = None

    def step(self, run: RunState) -> StepOutput:
        est = self.method.step()
        self.latest = est
        mse = float(run.squared_error(est) / run.n_obs)
        return StepOutput(est, float(getattr(self.method, "last_loss", mse)), mse)

    def estimate(self) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
        if self.image_input and self.latest is not None:
            return self.latest, None, 0
        return super().estimate()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt} if self.opt is not None else {}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {k: o.state_dict() for k, o in self.optimizers().items()}
        state["tensors"] = {k: _detach(getattr(self.method, k)) for k in self.state_tensors}
        state["latest"] = self.latest
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        for k, o in self.optimizers().items():
            o.load_state_dict(state[k])
        for k, v in state["tensors"].items():
            current = getattr(self.method, k)
            if isinstance(current, torch.Tensor) and current.requires_grad:
                with torch.no_grad():
                    current.copy_(v.to(device))  # a trained leaf: keep the optimiser's tensor
            else:
                setattr(self.method, k, None if v is None else v.to(device))
        self.latest = None if state["latest"] is None else state["latest"].to(device)


def _detach(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else value
