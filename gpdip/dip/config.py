"""Configuration of a DIP run: the fields every scheme shares, and the scheme's own options.

``method`` names a registered inference scheme (:mod:`gpdip.dip.schemes`; e.g. ``sgd``,
``sgd-avg``, ``sgd-input``, ``sgd-input-avg``, ``sgld``, ``noisy-adam``, ``gd``); its options
(a dataclass per scheme, e.g. :class:`~gpdip.dip.schemes.sgld.SGLDOptions`) sit in
``DIPConfig.options``.  :meth:`DIPConfig.build` takes both kinds of field as keywords::

    DIPConfig.build(method="sgld", iters=3000, preconditioner="rmsprop")
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from gpdip.dip.schemes import SchemeOptions, get_scheme, schemes
from gpdip.errors import GpdipError

MAX_ITERS = 10_000_000


def _common(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class DIPConfig:
    """The knobs every scheme shares; ``options`` holds the scheme's own (None: its
    defaults).  ``lr`` is the learning rate (Adam/SGD on the observed MSE; GD's η on the
    summed loss; SGLD's step is derived from it unless ``step_size`` is given)."""

    method: str = _common("sgd", "inference scheme")
    iters: int = _common(3000, "training steps")
    lr: float = _common(0.01, "learning rate (gd: η on ½·Σ_observed (f − y)²)")
    stop_iter: int | None = _common(None, "oracle early-stopping iteration (output kept)")
    noise_std: float | None = _common(
        None, "σ of the observation noise in [0,1] units (e.g. 25/255); default: estimated"
    )
    optimize_input: bool = _common(False, "train the network input z too")
    centred: bool = _common(
        False, "train and report f(z) − f₀(z), f₀ the output at initialisation (fixed)"
    )
    log_every: int = _common(50, "log a record every this many steps")
    checkpoint_every: int = _common(0, "checkpoint every this many steps (0: never)")
    seed: int = _common(0, "seed of the run's generator (input noise, Langevin noise)")
    options: SchemeOptions | None = dataclasses.field(default=None, repr=True, compare=True)

    def __post_init__(self) -> None:
        # an unknown method gets no options here; validate() reports it, naming the field
        if self.options is None and self.method in schemes():
            self.options = schemes()[self.method].options_type()

    @classmethod
    def build(cls, *, lenient: bool = False, **kwargs: Any) -> DIPConfig:
        """A config from flat keywords: the common fields and ``method``'s options.

        Keywords that are not fields of ``method`` are a :class:`GpdipError` listing the
        accepted ones; with ``lenient`` those that are another registered scheme's option
        are dropped (drivers that pass one set of keywords to several methods)."""
        method = kwargs.get("method", "sgd")
        options_type = get_scheme(method).options_type
        common = {f.name for f in fields(cls)} - {"options"}
        own = {f.name for f in fields(options_type)}
        unknown = set(kwargs) - common - own
        if lenient:
            unknown -= {f.name for s in schemes().values() for f in fields(s.options_type)}
        if unknown:
            raise GpdipError(
                f"option(s) {', '.join(sorted(unknown))} do not apply to method '{method}'; "
                f"expected {', '.join(sorted(common | own))}"
            )
        options = options_type(**{k: v for k, v in kwargs.items() if k in own})
        return cls(**{k: v for k, v in kwargs.items() if k in common}, options=options)

    def validate(self) -> DIPConfig:
        """Check ranges; raise :class:`GpdipError` naming the offending field."""
        options_type = get_scheme(self.method).options_type
        if type(self.options) is not options_type:
            raise GpdipError(
                f"options {type(self.options).__name__}: method '{self.method}' expects "
                f"{options_type.__name__}"
            )
        if not isinstance(self.iters, int) or not 1 <= self.iters <= MAX_ITERS:
            raise GpdipError(f"iters={self.iters}: expected an integer in [1, {MAX_ITERS}]")
        _positive("lr", self.lr, upper=10.0)
        if self.noise_std is not None:
            _positive("noise_std", self.noise_std, upper=10.0)
        if self.stop_iter is not None and not 1 <= self.stop_iter <= self.iters:
            raise GpdipError(
                f"stop_iter={self.stop_iter}: expected 1 ≤ stop_iter ≤ iters={self.iters}"
            )
        if self.log_every < 1:
            raise GpdipError(f"log_every={self.log_every}: expected an integer ≥ 1")
        if self.checkpoint_every < 0:
            raise GpdipError(f"checkpoint_every={self.checkpoint_every}: expected ≥ 0")
        self.options.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """Flat: the common fields and the options' fields (plain data, checkpointable)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        if self.options is not None:
            d.update(dataclasses.asdict(self.options))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DIPConfig:
        """Inverse of :meth:`to_dict`; keys that ``method`` does not know (e.g. in
        checkpoints written before the scheme registry) are ignored."""
        method = d.get("method", "sgd")
        known = {f.name for f in fields(cls)} | {
            f.name for f in fields(get_scheme(method).options_type)
        }
        return cls.build(**{k: v for k, v in d.items() if k in known and k != "options"})


def _positive(name: str, value: float, upper: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= upper):
        raise GpdipError(f"{name}={value}: expected a number in (0, {upper}]")
