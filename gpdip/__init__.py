"""gpdip: exact Gaussian-process kernels and posteriors for the Deep Image Prior.

    >>> import gpdip
    >>> K = gpdip.compile_kernel("conv-d2", size=8, dims=1)
    >>> tuple(K.shape)
    (15,)

The public names are imported on first use (PEP 562), so that ``gpdip --help`` and the
command line's argument errors answer without loading torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gpdip.errors import GpdipError

__version__ = "0.1.0"

#: public name -> (module, attribute); attribute None: the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "load_architecture": ("gpdip.arch.parse", "load_architecture"),
    "parse_architecture": ("gpdip.arch.parse", "parse_architecture"),
    "read_architecture": ("gpdip.arch.parse", "read_architecture"),
    "Architecture": ("gpdip.arch.spec", "Architecture"),
    "InputSpec": ("gpdip.arch.spec", "InputSpec"),
    "compile_kernel": ("gpdip.limit.compiler", "compile_kernel"),
    "compile_kernels": ("gpdip.limit.compiler", "compile_kernels"),
    "montecarlo": ("gpdip.finite.montecarlo", None),
    "network": ("gpdip.finite.network", None),
    **{
        name: ("gpdip.layers", name)
        for name in ("Block", "Conv", "Downsample", "Erf", "LeakyReLU", "ReLU", "Skip", "Upsample")
    },
}

__all__ = ["GpdipError", *sorted(_EXPORTS)]


#: subpackages, reachable as attributes (``gpdip.finite.network``) like eagerly imported ones
_SUBPACKAGES = ("arch", "cli", "dip", "experiments", "finite", "gp", "io", "layers", "limit", "ntk")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return import_module(f"gpdip.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gpdip' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = (
        import_module(module) if attribute is None else getattr(import_module(module), attribute)
    )
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))


if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from gpdip.arch.parse import (  # noqa: F401
        load_architecture,
        parse_architecture,
        read_architecture,
    )
    from gpdip.arch.spec import Architecture, InputSpec  # noqa: F401
    from gpdip.finite import montecarlo, network  # noqa: F401
    from gpdip.layers import (  # noqa: F401
        Block,
        Conv,
        Downsample,
        Erf,
        LeakyReLU,
        ReLU,
        Skip,
        Upsample,
    )
    from gpdip.limit.compiler import compile_kernel, compile_kernels  # noqa: F401
