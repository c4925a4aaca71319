"""Kernel tables of an architecture for the NTK predictor (the only place that compiles)."""

from __future__ import annotations

import os

from torch import Tensor


def kernel_tables(
    arch: str | os.PathLike[str], size: int | tuple[int, ...], dims: int = 2
) -> tuple[Tensor, Tensor]:
    """``(theta_table, nngp_table)`` of ``arch`` on a grid of ``size``, same layout.

    TODO(merge main): the NTK compiler lands on main as
    ``compile_kernel(arch, size, dims=dims, kind="ntk")``; until that merge the NNGP
    table stands in for the NTK table, so predictions are those of kernel GD with K.
    """
    from gpdip import compile_kernel

    nngp = compile_kernel(arch, size, dims=dims)
    theta = nngp  # TODO(merge main): compile_kernel(arch, size, dims=dims, kind="ntk")
    return theta, nngp
