"""Index arrays that depend on a table's layout only, kept across compiles.

The gather indices of folded offset lists (:func:`gpdip.limit.covtable.box_values`,
:mod:`gpdip.limit.pointwise`) and the term matrices of the final upsampling
(:mod:`gpdip.limit.listed_upsample`) depend on the periods, radii and offset lists, never on
the values: the NNGP and NTK tables share them, and so do later compiles of the same network
and size (hyperparameter fits compile many times).  One least-recently-used store holds them,
bounded in bytes (``$GPDIP_INDEX_CACHE_MB``, default 256; 0 disables it); an item larger
than the bound is used once and not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from gpdip.environment import env_number

if TYPE_CHECKING:
    from gpdip.limit.covtable import OffsetSet

#: The store's bound in MiB unless ``$GPDIP_INDEX_CACHE_MB`` says otherwise.
DEFAULT_MB = 256


class IndexCache:
    """A least-recently-used store of tensors (or tuples holding some), bounded in bytes."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes  # None: $GPDIP_INDEX_CACHE_MB, read at the first put
        self.store: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self.held = 0

    def get(self, key: tuple) -> Any:
        if key in self.store:
            self.store.move_to_end(key)
            return self.store[key][0]
        return None

    def put(self, key: tuple, value: Any) -> Any:
        """Keep ``value`` under ``key`` (evicting the oldest items); return it."""
        size = nbytes(value)
        if self._max_bytes is None:
            self._max_bytes = int(env_number("GPDIP_INDEX_CACHE_MB", DEFAULT_MB) * 2**20)
        if size > self._max_bytes:
            return value
        if key in self.store:
            self.held -= self.store.pop(key)[1]
        self.store[key] = (value, size)
        self.held += size
        while self.held > self._max_bytes:
            self.held -= self.store.popitem(last=False)[1][1]
        return value

    def get_or_build(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The value kept under ``key``, or ``build()`` kept there and returned."""
        found = self.get(key)
        return found if found is not None else self.put(key, build())

    def clear(self) -> None:
        self.store.clear()
        self.held = 0


def nbytes(value: Any) -> int:
    """Bytes held by the tensors in ``value`` (a tensor or a tuple; a CSR matrix counts its
    index and value arrays; other items count nothing)."""
    total = 0
    for item in value if isinstance(value, tuple) else (value,):
        if not isinstance(item, torch.Tensor):
            continue
        if item.layout == torch.sparse_csr:
            parts = (item.crow_indices(), item.col_indices(), item.values())
            total += sum(p.numel() * p.element_size() for p in parts)
        else:
            total += item.numel() * item.element_size()
    return total


def layout_key(points: OffsetSet) -> tuple:
    """What an offset list's index arrays depend on, by value (part of a cache key)."""
    rows = None if points.rows is None else points.rows.cpu().numpy().tobytes()
    return (
        points.fold,
        points.centre,
        points.box,
        points.zero,
        tuple(points.offsets.shape),
        points.offsets.cpu().numpy().tobytes(),
        rows,
    )


# The one store every layout index goes to (keys start with the kind of index).
CACHE = IndexCache()
