"""The layer registry: every layer type, one object each (see :mod:`gpdip.layers.base`).

Families: :mod:`~gpdip.layers.linear` (conv), :mod:`~gpdip.layers.elementwise`
(non-linearities), :mod:`~gpdip.layers.resampling` (down/upsampling),
:mod:`~gpdip.layers.combinators` (skip, block).  Every module of this package is
imported here and every :class:`Layer` subclass with a ``type_name`` is registered
under it, so adding a layer type is adding one file.

    >>> sorted(LAYER_TYPES)[:4]
    ['block', 'channel_norm', 'conv', 'downsample']
"""

from __future__ import annotations

import importlib
import pkgutil

from gpdip.layers.base import Layer
from gpdip.layers.combinators import Block, Skip
from gpdip.layers.elementwise import Elementwise, Erf, LeakyReLU, ReLU
from gpdip.layers.linear import Conv
from gpdip.layers.resampling import Downsample, Upsample


def _registered() -> dict[str, type[Layer]]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    found: dict[str, type[Layer]] = {}
    pending = list(Layer.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.type_name:
            found[cls.type_name] = cls
    return dict(sorted(found.items()))


LAYER_TYPES: dict[str, type[Layer]] = _registered()

__all__ = [
    "LAYER_TYPES",
    "Block",
    "Conv",
    "Downsample",
    "Elementwise",
    "Erf",
    "Layer",
    "LeakyReLU",
    "ReLU",
    "Skip",
    "Upsample",
]
