"""The architecture object model: one description for the kernel and the network.

An :class:`Architecture` is an input description plus a tuple of layers.  The
TOML front end (:mod:`gpdip.arch.parse`) and the Python API build the same objects::

    >>> from gpdip.arch.spec import Architecture, InputSpec, Conv, ReLU
    >>> arch = Architecture(InputSpec(channels=3, sigma=1.0),
    ...                     (Conv(64), ReLU(), Conv(1)))
    >>> arch.max_channels()
    64

Each layer carries its own kernel map (:mod:`gpdip.limit.compiler`) and its own
finite-network module (:mod:`gpdip.finite.network`), in the spirit of
neural-tangents' ``stax``.  Values are validated on construction and bad ones
raise :class:`~gpdip.errors.GpdipError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Union

from gpdip.errors import GpdipError

PADDINGS = ("zero", "reflect", "circular")
DOWN_MODES = ("stride", "avg")
UP_MODES = ("nearest", "bilinear", "sinc")
SKIP_MODES = ("add", "concat")


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise GpdipError(f"{where}: {msg}" if where else msg)


def _positive_int(value: object, where: str, name: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    _check(ok, where, f"'{name}' must be a positive integer, got {value!r}")


def _nonneg_float(value: object, where: str, name: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    ok = ok and float(value) < float("inf")  # type: ignore[arg-type]
    _check(ok, where, f"'{name}' must be a finite number >= 0, got {value!r}")


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
        _positive_int(self.channels, where, "channels")
        _nonneg_float(self.sigma, where, "sigma")
        _nonneg_float(self.variance, where, "variance")
        _check(self.variance > 0, where, "'variance' must be > 0")


@dataclass(frozen=True)
class Conv:
    """Convolution with iid N(0, weight_var/fan_in) taps and N(0, bias_var) bias."""

    channels: int
    kernel_size: int = 3
    stride: int = 1
    weight_var: float = 1.0
    bias_var: float = 0.0
    padding: str = "zero"

    def validate(self, where: str) -> None:
        _positive_int(self.channels, where, "channels")
        _positive_int(self.kernel_size, where, "kernel_size")
        _check(self.kernel_size % 2 == 1, where,
               f"'kernel_size' must be odd (centred taps), got {self.kernel_size}")
        _positive_int(self.stride, where, "stride")
        _nonneg_float(self.weight_var, where, "weight_var")
        _nonneg_float(self.bias_var, where, "bias_var")
        _check(self.padding in PADDINGS, where,
               f"'padding' must be one of {', '.join(PADDINGS)}, got {self.padding!r}")


@dataclass(frozen=True)
class ReLU:
    """max(0, x)."""

    def validate(self, where: str) -> None:
        return None


@dataclass(frozen=True)
class LeakyReLU:
    """max(0, x) + negative_slope·min(0, x); the DIP code's default, slope 0.2."""

    negative_slope: float = 0.2

    def validate(self, where: str) -> None:
        _nonneg_float(self.negative_slope, where, "negative_slope")
        _check(self.negative_slope <= 1, where,
               f"'negative_slope' must be in [0, 1], got {self.negative_slope}")


@dataclass(frozen=True)
class Erf:
    """The error function, Williams' (1997) sigmoid."""

    def validate(self, where: str) -> None:
        return None


@dataclass(frozen=True)
class Downsample:
    """Decimation by ``factor`` (``mode='stride'``) or average pooling (``'avg'``)."""

    factor: int = 2
    mode: str = "stride"

    def validate(self, where: str) -> None:
        _positive_int(self.factor, where, "factor")
        _check(self.mode in DOWN_MODES, where,
               f"'mode' must be one of {', '.join(DOWN_MODES)}, got {self.mode!r}")


@dataclass(frozen=True)
class Upsample:
    """Upsampling by ``factor``: ``nearest``, ``bilinear`` (align_corners=False) or ``sinc``."""

    factor: int = 2
    mode: str = "nearest"

    def validate(self, where: str) -> None:
        _positive_int(self.factor, where, "factor")
        _check(self.mode in UP_MODES, where,
               f"'mode' must be one of {', '.join(UP_MODES)}, got {self.mode!r}")


@dataclass(frozen=True)
class Skip:
    """Two paths from one input, combined by ``add`` or ``concat`` ([shortcut, branch]).

    ``shortcut`` defaults to the identity (an empty tuple).  ``branch_name`` and
    ``shortcut_name`` remember the block names they came from, for display.
    """

    mode: str
    branch: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()
    branch_name: str | None = field(default=None, compare=False)
    shortcut_name: str | None = field(default=None, compare=False)

    def validate(self, where: str) -> None:
        _check(self.mode in SKIP_MODES, where,
               f"'mode' must be one of {', '.join(SKIP_MODES)}, got {self.mode!r}")
        validate_layers(self.branch, f"{where}.branch")
        validate_layers(self.shortcut, f"{where}.shortcut")


@dataclass(frozen=True)
class Block:
    """A named sub-network, inlined where it is used."""

    name: str
    layers: tuple[Layer, ...]

    def validate(self, where: str) -> None:
        validate_layers(self.layers, f"{where}(block {self.name!r})")


Layer = Union[Conv, ReLU, LeakyReLU, Erf, Downsample, Upsample, Skip, Block]  # noqa: UP007
NONLINEARITIES = (ReLU, LeakyReLU, Erf)

LAYER_TYPES: dict[str, type] = {
    "conv": Conv, "relu": ReLU, "leaky_relu": LeakyReLU, "erf": Erf,
    "downsample": Downsample, "upsample": Upsample, "skip": Skip, "block": Block,
}


def layer_type_name(layer: Layer) -> str:
    """The TOML ``type`` of a layer object."""
    for name, cls in LAYER_TYPES.items():
        if isinstance(layer, cls):
            return name
    raise GpdipError(f"not a gpdip layer: {layer!r}")


def validate_layers(layers: tuple[Layer, ...], where: str) -> None:
    """Validate every layer, naming its path (e.g. ``network.layers[2].branch[0]``)."""
    _check(isinstance(layers, tuple), where,
           f"expected a tuple of layers, got {type(layers).__name__}")
    for i, layer in enumerate(layers):
        _check(isinstance(layer, tuple(LAYER_TYPES.values())), f"{where}[{i}]",
               f"expected a layer ({', '.join(LAYER_TYPES)}), got {layer!r}")
        layer.validate(f"{where}[{i}]")


@dataclass(frozen=True)
class Architecture:
    """An input description and the network's layers; ``name``/``source`` are for messages."""

    input: InputSpec
    layers: tuple[Layer, ...]
    name: str = field(default="", compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check(isinstance(self.input, InputSpec), self._prefix("input"),
               f"expected InputSpec, got {self.input!r}")
        self.input.validate(self._prefix("input"))
        validate_layers(self.layers, self._prefix("network.layers"))
        from gpdip.limit.compiler import check_architecture  # the limit's Gaussianity rules

        check_architecture(self)

    def _prefix(self, where: str) -> str:
        return f"{self.source}: {where}" if self.source else where

    def max_channels(self) -> int:
        """The largest channel count of any layer (the input included)."""
        return max([self.input.channels, *(c.channels for c in iter_convs(self.layers))])

    def scaled(self, width: int) -> Architecture:
        """Every channel count scaled in proportion so that the widest is ``width``.

        The ratios matter: the limit of a concat weights its branches by their
        channel counts.  Output channels of the last conv are kept.
        """
        _positive_int(width, "width", "width")
        factor = width / self.max_channels()
        last = last_conv(self.layers)

        def scale(c: int) -> int:
            return max(1, round(c * factor))

        layers = _map_convs(self.layers, lambda conv: conv if conv is last else
                            dataclasses.replace(conv, channels=scale(conv.channels)))
        inp = dataclasses.replace(self.input, channels=scale(self.input.channels))
        return Architecture(inp, layers, name=self.name, source=self.source)

    def with_input(self, **changes: Any) -> Architecture:
        """A copy with input fields changed, e.g. ``arch.with_input(sigma=2.0)``."""
        return Architecture(dataclasses.replace(self.input, **changes), self.layers,
                            name=self.name, source=self.source)


def iter_convs(layers: tuple[Layer, ...]):
    """Every :class:`Conv` in the layers, depth first (branches before shortcuts)."""
    for layer in layers:
        if isinstance(layer, Conv):
            yield layer
        elif isinstance(layer, Skip):
            yield from iter_convs(layer.branch)
            yield from iter_convs(layer.shortcut)
        elif isinstance(layer, Block):
            yield from iter_convs(layer.layers)


def last_conv(layers: tuple[Layer, ...]) -> Conv | None:
    """The conv that produces the output, if the network ends with one (through blocks)."""
    for layer in reversed(layers):
        if isinstance(layer, Conv):
            return layer
        if isinstance(layer, Block):
            return last_conv(layer.layers)
        if not isinstance(layer, (Upsample, Downsample)):
            return None
    return None


def _map_convs(layers: tuple[Layer, ...], fn) -> tuple[Layer, ...]:
    out: list[Layer] = []
    for layer in layers:
        if isinstance(layer, Conv):
            out.append(fn(layer))
        elif isinstance(layer, Skip):
            out.append(dataclasses.replace(layer, branch=_map_convs(layer.branch, fn),
                                           shortcut=_map_convs(layer.shortcut, fn)))
        elif isinstance(layer, Block):
            out.append(dataclasses.replace(layer, layers=_map_convs(layer.layers, fn)))
        else:
            out.append(layer)
    return tuple(out)


def nonlinear_depth(layers: tuple[Layer, ...]) -> int:
    """Non-linearities along the longest path (the finite-width bias grows with it)."""
    total = 0
    for layer in layers:
        if isinstance(layer, NONLINEARITIES):
            total += 1
        elif isinstance(layer, Block):
            total += nonlinear_depth(layer.layers)
        elif isinstance(layer, Skip):
            total += max(nonlinear_depth(layer.branch), nonlinear_depth(layer.shortcut))
    return total
