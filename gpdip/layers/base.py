"""The layer protocol: one object per layer type holds everything about it.

Every layer type is a frozen dataclass deriving from :class:`Layer` (the schema:
its fields are the TOML keys) and implements, in one place (neural-tangents'
``stax`` idea: one description serves the finite network and the kernel):

==========================  ==================================================
``validate``                the values its fields allow
``out_channels``            structural rule: channels out, given channels in
``spatial_factor``          how much coarser its output grid is (stride 2: 2)
``module``                  its finite PyTorch module (:mod:`gpdip.finite`)
``limit``                   its NNGP and NTK maps on phase tables, and the
                            limit's rules (Gaussian inputs, exact adds)
``needed_radius``           offsets its input needs for an output radius
``far_radius``              how it moves the correlation radius (far field)
==========================  ==================================================

Combinators (skip, block) hold sub-sequences of layers and recurse through the
folds below; the compiler, the far-field analysis and the network builder are
each one walk over these methods, with no ``isinstance`` chain.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from gpdip.errors import GpdipError

if TYPE_CHECKING:  # type hints only: the walkers call layers, layers never import walkers
    from torch import nn

    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Group, Walker

# Sub-sequences may nest (blocks in skips in blocks ...) only this deep: deeper
# descriptions are certainly mistakes and would exhaust Python's recursion.
MAX_NESTING = 64
PASS = object()  # see Layer.output_layer


def check(cond: bool, where: str, msg: str) -> None:
    """Raise :class:`GpdipError` ``"where: msg"`` unless ``cond``."""
    if not cond:
        raise GpdipError(f"{where}: {msg}" if where else msg)


def positive_int(value: object, where: str, name: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    check(ok, where, f"'{name}' must be a positive integer, got {value!r}")


def nonneg_float(value: object, where: str, name: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    ok = ok and float(value) < float("inf")  # type: ignore[arg-type]
    check(ok, where, f"'{name}' must be a finite number >= 0, got {value!r}")


def one_of(value: object, allowed: tuple[str, ...], where: str, name: str) -> None:
    check(value in allowed, where, f"'{name}' must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class Layer:
    """Base of every layer type; the defaults describe a shape-preserving, linear-free layer."""

    type_name: ClassVar[str] = ""

    # --- schema and structure ---------------------------------------------------------
    @classmethod
    def from_toml(cls, table: dict[str, Any], parser: Any, where: str) -> Layer:
        """Build from a decoded TOML table; by default its keys are the dataclass fields."""
        return parser.fields(cls, table, where)

    def validate(self, where: str) -> None:
        """Check field values; raise :class:`GpdipError` naming ``where``."""

    def path_where(self, where: str, index: int) -> str:
        """How messages name sub-sequence ``index`` of this layer at ``where``."""
        return f"{where}.path{index}"

    def paths(self) -> tuple[tuple[Layer, ...], ...]:
        """Sub-sequences of layers (combinators only)."""
        return ()

    def with_paths(self, paths: tuple[tuple[Layer, ...], ...]) -> Layer:
        """A copy with its sub-sequences replaced (combinators override)."""
        return self

    def out_channels(self, channels: int, where: str) -> int:
        """Channels of the output given ``channels`` in (structural rules raise here)."""
        return channels

    def spatial_factor(self, where: str) -> Fraction:
        """Input grid spacing divided into output spacing: 2 for a stride 2, 1/2 for upsampling."""
        return Fraction(1)

    def nonlinear_depth(self) -> int:
        """Non-linearities along its longest path."""
        return 0

    def sets_channels(self) -> int | None:
        """The channel count this layer sets (convs), else None."""
        return None

    def with_channels(self, channels: int) -> Layer:
        """A copy producing ``channels`` (only for layers that set channels)."""
        return self

    def output_layer(self) -> Layer | object | None:
        """The layer producing the network output when this one ends it.

        ``self`` for layers that set channels, :data:`PASS` for layers that leave the
        channels to the layer before (resampling), ``None`` otherwise.
        """
        return None

    # --- finite network ---------------------------------------------------------------
    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        """The finite PyTorch module and its output channels."""
        raise NotImplementedError(f"{type(self).__name__} has no finite module")

    # --- infinite-width limit ---------------------------------------------------------
    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        """The NNGP (and, when tracked, NTK) maps on every channel group."""
        raise NotImplementedError(f"{type(self).__name__} has no kernel map")

    def needed_radius(self, radius: int) -> int:
        """Input offsets needed so that the output table reaches ``radius``."""
        return radius

    def far_radius(self, radius: float) -> float:
        """Correlation radius after the layer, given the one before (see farfield)."""
        return radius

    def keeps_offsets(self) -> bool:
        """Whether its maps keep every table offset r (pointwise or tap maps, no resampling)."""
        return False

    def keeps_phases(self) -> bool:
        """Whether its maps read each entry C[p, r] only with the variances C[p, 0] and
        C[p + r, 0], never another phase or offset (non-linearities, 1×1 convs): such
        layers work on a swap-halved table (:mod:`gpdip.limit.swap_fold`)."""
        return False

    def final_upsamples(self, where: str, keeps: bool) -> set[str]:
        """Its upsamplings (compiler paths) after which every layer keeps offsets
        (``keeps``: every layer after this one does); see :mod:`gpdip.limit.phase_tables`."""
        return set()

    def swap_halvable(self) -> bool | None:
        """Read backwards from the output: ``None`` if it keeps phases (look further back),
        else whether the final table may be swap-halved here (True only at a nearest or
        bilinear upsampling; :mod:`gpdip.limit.swap_fold`)."""
        return None if self.keeps_phases() else False


# --- folds over sequences: the only walkers, each calling the layers' own rules ----------


def walk(layers: tuple[Layer, ...]) -> Iterator[Layer]:
    """Every layer, depth first (a combinator before its paths, paths in order)."""
    for layer in layers:
        yield layer
        for path in layer.paths():
            yield from walk(path)


def map_layers(layers: tuple[Layer, ...], fn) -> tuple[Layer, ...]:
    """Apply ``fn`` to every layer, rebuilding combinators around their mapped paths."""
    out = []
    for layer in layers:
        if layer.paths():
            layer = layer.with_paths(tuple(map_layers(p, fn) for p in layer.paths()))
        out.append(fn(layer))
    return tuple(out)


def sequence_channels(layers: tuple[Layer, ...], channels: int, where: str) -> int:
    """Output channels of a sequence (structural rules of every layer applied)."""
    for i, layer in enumerate(layers):
        channels = layer.out_channels(channels, f"{where}[{i}]")
    return channels


def sequence_factor(layers: tuple[Layer, ...], where: str) -> Fraction:
    """Product of the spatial factors of a sequence."""
    factor = Fraction(1)
    for i, layer in enumerate(layers):
        factor *= layer.spatial_factor(f"{where}[{i}]")
    return factor


def total_downsampling(layers: tuple[Layer, ...]) -> int:
    """The factor an input size must be a multiple of: the coarsest grid any path reaches."""
    factor, best = Fraction(1), Fraction(1)
    for layer in layers:
        for path in layer.paths():
            best = max(best, factor * total_downsampling(path))
        factor *= layer.spatial_factor("")
        best = max(best, factor)
    return math.ceil(best)


def needed_radius(layers: tuple[Layer, ...], radius: int) -> int:
    """Offsets the first layer's input needs so that the last layer's output has ``radius``."""
    for layer in reversed(layers):
        radius = layer.needed_radius(radius)
    return radius


def far_radius(layers: tuple[Layer, ...], radius: float) -> float:
    """Correlation radius after ``layers`` (``math.inf``: no far-field continuation)."""
    for layer in layers:
        radius = layer.far_radius(radius)
        if math.isinf(radius):
            return radius
    return radius


def sequence_swap_halvable(layers: tuple[Layer, ...]) -> bool | None:
    """The first decision of :meth:`Layer.swap_halvable` from the output backwards (None:
    every layer keeps phases)."""
    for layer in reversed(layers):
        decided = layer.swap_halvable()
        if decided is not None:
            return decided
    return None


def sequence_final_upsamples(layers: tuple[Layer, ...], where: str, keeps: bool) -> set[str]:
    """The final upsamplings of a sequence named as the compiler's walker names its layers."""
    found: set[str] = set()
    for i in reversed(range(len(layers))):
        found |= layers[i].final_upsamples(f"{where}[{i}]", keeps)
        keeps = keeps and layers[i].keeps_offsets()
    return found


def sequence_keeps_offsets(layers: tuple[Layer, ...]) -> bool:
    return all(layer.keeps_offsets() for layer in layers)


def nonlinear_depth(layers: tuple[Layer, ...]) -> int:
    """Non-linearities along the longest path (the finite-width bias grows with it)."""
    return sum(layer.nonlinear_depth() for layer in layers)


def last_conv(layers: tuple[Layer, ...]) -> Layer | None:
    """The layer that sets the output channels, if the network ends with one (through blocks)."""
    for layer in reversed(layers):
        found = layer.output_layer()
        if found is not PASS:
            return found if isinstance(found, Layer) else None
    return None
