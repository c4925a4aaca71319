"""The architecture object model: one description for the kernel and the network.

An :class:`Architecture` is an input description plus a tuple of layers (the layer
types live in :mod:`gpdip.layers`, one object each).  The TOML front end
(:mod:`gpdip.arch.parse`) and the Python API build the same objects::

    >>> from gpdip import Architecture, InputSpec, Conv, ReLU
    >>> arch = Architecture(InputSpec(channels=3, sigma=1.0),
    ...                     (Conv(64), ReLU(), Conv(1)))
    >>> arch.max_channels()
    64

Construction checks every field and the structural rules a finite network needs
(equal channels for an add, both paths of a skip on the same grid) and raises
:class:`~gpdip.errors.GpdipError`.  The infinite-width limit's own rules (Gaussian
inputs to non-linearities, exact adds) are applied when a kernel is compiled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gpdip.errors import GpdipError
from gpdip.layers import LAYER_TYPES
from gpdip.layers.base import (
    MAX_NESTING,
    Layer,
    check,
    last_conv,
    map_layers,
    nonneg_float,
    positive_int,
    sequence_channels,
    sequence_factor,
    walk,
)


@dataclass(frozen=True)
class InputSpec:
    """The random input: ``channels`` iid channels of filtered white noise.

    Each channel is white noise filtered by a Gaussian of std ``sigma`` pixels,
    so that K_x(r) = variance·exp(-|r|²/(4 sigma²)) (``sigma = 0``: white noise,
    K_x(r) = variance·[r = 0]); paper Sec. 5.1.
    """

    channels: int = 32
    sigma: float = 0.0
    variance: float = 1.0

    def validate(self, where: str = "input") -> None:
        positive_int(self.channels, where, "channels")
        nonneg_float(self.sigma, where, "sigma")
        nonneg_float(self.variance, where, "variance")
        check(self.variance > 0, where, "'variance' must be > 0")


def validate_layers(layers: tuple[Layer, ...], where: str, depth: int = 0) -> None:
    """Validate every layer, naming its path (e.g. ``network.layers[2].branch[0]``)."""
    check(
        depth <= MAX_NESTING,
        where,
        f"skips and blocks are nested more than {MAX_NESTING} levels deep",
    )
    check(
        isinstance(layers, tuple), where, f"expected a tuple of layers, got {type(layers).__name__}"
    )
    for i, layer in enumerate(layers):
        here = f"{where}[{i}]"
        check(
            isinstance(layer, tuple(LAYER_TYPES.values())),
            here,
            f"expected a layer ({', '.join(LAYER_TYPES)}), got {layer!r}",
        )
        layer.validate(here)
        for index, path in enumerate(layer.paths()):
            validate_layers(path, layer.path_where(here, index), depth + 1)


@dataclass(frozen=True)
class Architecture:
    """An input description and the network's layers; ``name``/``source`` are for messages."""

    input: InputSpec
    layers: tuple[Layer, ...]
    name: str = field(default="", compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check(
            isinstance(self.input, InputSpec),
            self._prefix("input"),
            f"expected InputSpec, got {self.input!r}",
        )
        self.input.validate(self._prefix("input"))
        where = self._prefix("network.layers")
        validate_layers(self.layers, where)
        sequence_channels(self.layers, self.input.channels, where)
        sequence_factor(self.layers, where)

    def _prefix(self, where: str) -> str:
        return f"{self.source}: {where}" if self.source else where

    def max_channels(self) -> int:
        """The largest channel count of any layer (the input included)."""
        counts = [layer.sets_channels() for layer in walk(self.layers)]
        return max([self.input.channels, *(c for c in counts if c is not None)])

    def scaled(self, width: int) -> Architecture:
        """Every channel count scaled in proportion so that the widest is ``width``.

        The ratios matter: the limit of a concat weights its branches by their
        channel counts.  Output channels of the last conv are kept.
        """
        positive_int(width, "width", "width")
        factor = width / self.max_channels()
        last = last_conv(self.layers)

        def scale(layer: Layer) -> Layer:
            channels = layer.sets_channels()
            if channels is None or layer is last:
                return layer
            return layer.with_channels(max(1, round(channels * factor)))

        inp = dataclasses.replace(self.input, channels=max(1, round(self.input.channels * factor)))
        return Architecture(inp, map_layers(self.layers, scale), name=self.name, source=self.source)

    def with_input(self, **changes: Any) -> Architecture:
        """A copy with input fields changed, e.g. ``arch.with_input(sigma=2.0)``."""
        return Architecture(
            dataclasses.replace(self.input, **changes),
            self.layers,
            name=self.name,
            source=self.source,
        )


def layer_type_name(layer: Layer) -> str:
    """The TOML ``type`` of a layer object."""
    if not isinstance(layer, Layer) or not layer.type_name:
        raise GpdipError(f"not a gpdip layer: {layer!r}")
    return layer.type_name
