"""The GP engine: grid operators, CG, exact sampling, posteriors, kernels, inpainting.

Public API::

    from gpdip.gp import inpaint, sample_prior, GridKernelOperator, DIPKernel, RBFTable

Images are read and scored with :mod:`gpdip.io` (``load_image`` gives ``(C, H, W)``;
:func:`gpdip.io.channels_last` turns it into the ``(H, W)`` / ``(H, W, C)`` layout used here).
Names are imported on first use (PEP 562), so ``import gpdip.gp`` costs nothing beyond
``gpdip``: the grid/FFT path (``grid_posterior``, ``sample_prior``, the operators) never
imports gpytorch, and gpytorch (with pykeops, which gpytorch imports) loads only with
the table kernels, the GPyTorch backend or the KeOps helpers.
"""

from __future__ import annotations

import os
import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from gpdip.errors import GpdipWarning

# gpytorch imports pykeops, whose import prints a CUDA banner on stdout on machines
# without CUDA.  Silence it unless the user asked for KeOps' messages (KEOPS_VERBOSE=1).
os.environ.setdefault("KEOPS_VERBOSE", "0")

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "CGConvergenceWarning": "cg",
    "CGInfo": "cg",
    "conjugate_gradients": "cg",
    "grid_preconditioner": "cg",
    "dense_from_table": "grid",
    "table_from_offsets": "grid",
    "fit_hyperparameters": "hyper",
    "make_kernel": "tables",
    "make_table": "tables",
    "GridTable": "tables",
    "select_kernel": "hyper",
    "gpytorch_posterior": "gpytorch_backend",
    "inpaint": "inpaint",
    "keops_available": "keops",
    "kernel_matmul": "keops",
    "scattered_posterior_mean": "keops",
    "DIPKernel": "kernels",
    "Matern52Table": "kernels",
    "RBFTable": "kernels",
    "TableKernel": "kernels",
    "interpolate_table": "kernels",
    "split_scale": "kernels",
    "Posterior": "posterior",
    "dense_posterior": "posterior",
    "grid_posterior": "posterior",
    "CirculantSampler": "sampling",
    "sample_prior": "sampling",
    "sample_prior_dense": "sampling",
    "GridKernelOperator": "toeplitz",
    "MaskedGridOperator": "toeplitz",
}

__all__ = [
    "CGConvergenceWarning",
    "CGInfo",
    "CirculantSampler",
    "DIPKernel",
    "GpdipWarning",
    "GridKernelOperator",
    "GridTable",
    "MaskedGridOperator",
    "Matern52Table",
    "Posterior",
    "RBFTable",
    "TableKernel",
    "conjugate_gradients",
    "dense_from_table",
    "dense_posterior",
    "fit_hyperparameters",
    "gpytorch_posterior",
    "grid_posterior",
    "grid_preconditioner",
    "inpaint",
    "interpolate_table",
    "keops_available",
    "kernel_matmul",
    "make_kernel",
    "make_table",
    "sample_prior",
    "sample_prior_dense",
    "scattered_posterior_mean",
    "select_kernel",
    "split_scale",
    "table_from_offsets",
]

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from gpdip.gp.cg import CGConvergenceWarning, CGInfo, conjugate_gradients, grid_preconditioner
    from gpdip.gp.gpytorch_backend import gpytorch_posterior
    from gpdip.gp.grid import dense_from_table, table_from_offsets
    from gpdip.gp.hyper import fit_hyperparameters, select_kernel
    from gpdip.gp.inpaint import inpaint
    from gpdip.gp.keops import keops_available, kernel_matmul, scattered_posterior_mean
    from gpdip.gp.kernels import (
        DIPKernel,
        Matern52Table,
        RBFTable,
        TableKernel,
        interpolate_table,
        split_scale,
    )
    from gpdip.gp.posterior import Posterior, dense_posterior, grid_posterior
    from gpdip.gp.sampling import CirculantSampler, sample_prior, sample_prior_dense
    from gpdip.gp.tables import GridTable, make_kernel, make_table
    from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator


class _Package(types.ModuleType):
    """This package's module type: keeps functions named like their submodule.

    Importing ``gpdip.gp.inpaint`` binds the package attribute ``inpaint`` to that
    submodule, which would shadow the function ``inpaint`` (an eager ``from .inpaint
    import inpaint`` used to rebind it).  Keep the function, as before.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
