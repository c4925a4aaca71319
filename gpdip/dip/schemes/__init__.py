"""Registry of inference schemes: ``method`` name → :class:`~gpdip.dip.schemes.base.Scheme`.

Each module of this package defines one family (``sgd.py``: the SGD variants; ``sgld.py``;
``noisy_adam.py``; ``gd.py``) and registers its classes with :func:`register`.  The modules
are imported on the first look-up (:func:`schemes`), so adding a scheme is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from gpdip.dip.schemes.base import (
    RunState,
    SamplingOptions,
    Scheme,
    SchemeOptions,
    StepOutput,
    option,
)
from gpdip.errors import GpdipError

__all__ = [
    "RunState",
    "SamplingOptions",
    "Scheme",
    "SchemeOptions",
    "StepOutput",
    "get_scheme",
    "option",
    "register",
    "scheme_names",
    "schemes",
]

_REGISTRY: dict[str, type[Scheme]] = {}
_discovered = False
S = TypeVar("S", bound=type[Scheme])


def register(cls: S) -> S:
    """Class decorator: make ``cls`` available as ``DIPConfig.build(method=cls.name)``."""
    if not cls.name:
        raise GpdipError(f"scheme class {cls.__name__} has no name")
    old = _REGISTRY.get(cls.name)
    same_source = old is not None and (old.__module__, old.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )  # the same class defined again (a module reloaded): it replaces the old one
    if old is not None and old is not cls and not same_source:
        raise GpdipError(
            f"scheme '{cls.name}' is registered twice ({_REGISTRY[cls.name].__qualname__} "
            f"and {cls.__qualname__}); expected one class per name"
        )
    _REGISTRY[cls.name] = cls
    return cls


def schemes() -> dict[str, type[Scheme]]:
    """All registered schemes by name, sorted (the modules are imported on first call)."""
    global _discovered
    if not _discovered:
        for info in pkgutil.iter_modules(__path__):
            if info.name != "base" and not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _discovered = True
    return dict(sorted(_REGISTRY.items()))


def scheme_names() -> tuple[str, ...]:
    return tuple(schemes())


def get_scheme(name: str) -> type[Scheme]:
    """The scheme class registered as ``name``; :class:`GpdipError` listing them if none."""
    found = schemes().get(name)
    if found is None:
        raise GpdipError(f"method '{name}': expected one of {', '.join(scheme_names())}")
    return found
