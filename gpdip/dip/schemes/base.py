"""The contract between the trainer and an inference scheme (SGD variants, SGLD, GD, ...).

The trainer (:mod:`gpdip.dip.trainer`) owns what every run shares: the network, its input
``x``, the problem (ŷ, mask m, n_obs), the noise level σ, the seeded generator, the step
counter, best/oracle iterates, logging and checkpoints.  A :class:`Scheme` owns the rest:

- which tensors it trains (:meth:`Scheme.trainable`; the input x only when asked);
- its loss (:meth:`Scheme.loss`, default the mean squared error over observed entries,
  ‖m⊙(ŷ − f)‖²/n_obs), to which a method may add terms (e.g. total variation);
- its update (:meth:`Scheme.step`: by default one optimiser step; a method may alternate
  several sub-steps or update x separately);
- its running answer: an exponential moving average (``self.ema``) and/or a Welford
  posterior accumulator (``self.samples``, thinned after burn-in);
- an optional stopping rule (:meth:`Scheme.should_stop`);
- its checkpointable state (:meth:`Scheme.state_dict`: tensors and plain data only,
  as checkpoints are read with ``torch.load(weights_only=True)``);
- its own options: a dataclass subclassing :class:`SchemeOptions` whose fields carry
  ``metadata={"help": ...}`` (see :func:`option`); the ``gpdip dip`` arguments are
  generated from them.

A new scheme is one module in :mod:`gpdip.dip.schemes` with a class decorated by
:func:`gpdip.dip.schemes.register`; the package imports its modules on first use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from gpdip.dip.sgld import EMA, Welford
from gpdip.errors import GpdipError

if TYPE_CHECKING:
    from gpdip.dip.config import DIPConfig


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A scheme option: a dataclass field whose ``help`` (and ``choices``) become the
    ``gpdip dip`` argument's help text (and choices) and drive :meth:`SchemeOptions.validate`."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class SchemeOptions:
    """Options of one scheme; subclasses add fields made with :func:`option`."""

    def validate(self) -> None:
        """Check every field with ``choices``; subclasses extend this with ranges and
        raise :class:`GpdipError` naming the field."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices is not None and value not in choices:
                raise GpdipError(
                    f"{f.name} '{value}': expected one of {', '.join(map(repr, choices))}"
                )


@dataclass
class SamplingOptions(SchemeOptions):
    """Which iterates enter the posterior mean/std (Welford): t > burn_in, every thin-th."""

    burn_in: int = option(1000, "steps before samples are averaged")
    thin: int = option(10, "keep every thin-th iterate after burn-in")

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.burn_in, int) or self.burn_in < 0:
            raise GpdipError(f"burn_in={self.burn_in}: expected an integer ≥ 0")
        if not isinstance(self.thin, int) or self.thin < 1:
            raise GpdipError(f"thin={self.thin}: expected an integer ≥ 1")


class RunState(Protocol):
    """What a scheme sees of the run (implemented by the trainer's ``_Run``).

    ``x``: the network input (1, C_in, H, W); ``y``: observed ŷ (C, H, W); ``mask``: float
    (1|C, H, W), 1 = observed; ``n_obs``: observed entries; ``sigma``: noise std σ (NaN
    when neither given nor estimable, for schemes whose ``uses_sigma`` is False);
    ``gen``: the run's seeded generator (all randomness after construction); ``t``: steps
    done so far (the step being taken is t → t+1)."""

    cfg: DIPConfig
    net: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    n_obs: int
    sigma: float
    gen: torch.Generator
    device: torch.device
    t: int

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """f(inp) (C, H, W), minus the initial output when the run is centred."""
        ...

    def squared_error(self, out: torch.Tensor) -> torch.Tensor:
        """‖m⊙(ŷ − out)‖², differentiable."""
        ...


@dataclass
class StepOutput:
    """One step's pre-update output f(x; θ_t) (C, H, W, detached), its loss (the value
    differentiated) and the mean squared error over observed entries."""

    out: torch.Tensor
    loss: float
    mse: float


class Scheme:
    """Base inference scheme: Adam on the observed mean squared error, no averaging.

    Subclasses set ``name``, ``summary`` (one line for the CLI) and ``options_type``, and
    override the hooks they change.  ``self.ema`` / ``self.samples`` (None by default) are
    updated, checkpointed, logged and reported by the base class when a subclass sets them.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options_type: ClassVar[type[SchemeOptions]] = SchemeOptions
    uses_sigma: ClassVar[bool] = False  # needs the noise level σ (given or estimated)

    def __init__(self, cfg: DIPConfig) -> None:
        self.cfg = cfg
        self.options: Any = cfg.options
        self.ema: EMA | None = None
        self.samples: Welford | None = None
        self.burn_in, self.thin = 0, 1  # Welford: keep t > burn_in, (t − burn_in) % thin = 0
        self.opt: torch.optim.Optimizer | None = None
        self.param_names: list[str] = []
        self.params: list[torch.Tensor] = []

    # --- set-up -------------------------------------------------------------------------
    def trainable(self, run: RunState) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) pairs to train: every network parameter, and the input x
        (named "input") when ``cfg.optimize_input``."""
        named: list[tuple[str, torch.Tensor]] = list(run.net.named_parameters())
        if self.cfg.optimize_input:
            run.x.requires_grad_(True)
            named.append(("input", run.x))
        return named

    def make_optimizer(self, run: RunState) -> torch.optim.Optimizer:
        """The optimiser over ``self.params`` (default Adam with rate ``cfg.lr``)."""
        return torch.optim.Adam(self.params, lr=self.cfg.lr)

    def setup(self, run: RunState) -> None:
        """Choose the trained tensors and build the optimiser (called once, before any
        step and before a checkpoint is restored)."""
        named = self.trainable(run)
        self.param_names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.opt = self.make_optimizer(run)

    # --- one step -----------------------------------------------------------------------
    def net_input(self, run: RunState) -> torch.Tensor:
        """The input of this step's forward pass (default x itself)."""
        return run.x

    def loss(self, run: RunState, out: torch.Tensor) -> torch.Tensor:
        """The loss to differentiate (default ‖m⊙(ŷ − f)‖²/n_obs)."""
        return run.squared_error(out) / run.n_obs

    def step(self, run: RunState) -> StepOutput:
        """One update t → t+1: forward, loss, backward, :meth:`before_update`, optimiser
        step, :meth:`after_update`.  Returns the pre-update output."""
        assert self.opt is not None, "setup() first"
        out = run.forward(self.net_input(run))
        loss = self.loss(run, out)
        mse = float(run.squared_error(out.detach()) / run.n_obs)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.before_update(run)
        self.opt.step()
        self.after_update(run)
        return StepOutput(out.detach(), float(loss.detach()), mse)

    def before_update(self, run: RunState) -> None:
        """Hook between backward and the optimiser step (e.g. a step-size schedule)."""

    def after_update(self, run: RunState) -> None:
        """Hook after the optimiser step (e.g. noise injection)."""

    # --- after a step (run.t is the new step count) ---------------------------------------
    def observe(self, run: RunState, out: torch.Tensor) -> None:
        """Update the EMA and (thinned, after burn-in) the posterior accumulator."""
        if self.ema is not None:
            self.ema.update(out)
        if (
            self.samples is not None
            and run.t > self.burn_in
            and (run.t - self.burn_in) % self.thin == 0
        ):
            self.samples.update(out)

    def current(self, out: torch.Tensor) -> torch.Tensor:
        """The running answer at this step (recorded at the oracle ``stop_iter``): the EMA
        when there is one, else the iterate."""
        if self.ema is not None and self.ema.value is not None:
            return self.ema.value
        return out

    def log_fields(self, run: RunState, truth: torch.Tensor | None) -> dict[str, Any]:
        """Extra log-record fields: PSNR of the EMA (``psnr_avg``) and of the posterior
        mean (``psnr_mean``) when the truth is known."""
        from gpdip.dip.images import psnr

        rec: dict[str, Any] = {}
        if truth is None:
            return rec
        if self.ema is not None and self.ema.value is not None:
            rec["psnr_avg"] = psnr(self.ema.value, truth)
        if self.samples is not None and self.samples.mean is not None:
            rec["psnr_mean"] = psnr(self.samples.mean.float(), truth)
        return rec

    def divergence_hint(self) -> str:
        """What to change when the loss becomes non-finite (part of the error message)."""
        return f"lower lr={self.cfg.lr}"

    def should_stop(self, run: RunState) -> str | None:
        """A stopping rule: a reason (str) to end the run before ``iters``, else None."""
        return None

    def estimate(self) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
        """(mean, per-entry std, samples): posterior mean/std when sampling, else the EMA."""
        w = self.samples
        if w is not None and w.mean is not None:
            var = w.var
            return w.mean.float(), None if var is None else var.sqrt().float(), w.n
        if self.ema is not None and self.ema.value is not None:
            return self.ema.value, None, 0
        return None, None, 0

    # --- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only (read back with ``weights_only=True``)."""
        assert self.opt is not None
        state: dict[str, Any] = {"opt": self.opt.state_dict()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.samples is not None:
            state["welford"] = self.samples.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        assert self.opt is not None
        self.opt.load_state_dict(state["opt"])
        for name, obj in (("ema", self.ema), ("welford", self.samples)):
            if obj is not None and name in state:
                obj.load_state_dict(state[name])
                for k, v in vars(obj).items():  # restored on the CPU
                    if isinstance(v, torch.Tensor):
                        setattr(obj, k, v.to(device))
