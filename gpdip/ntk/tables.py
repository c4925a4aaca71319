"""Kernel tables of an architecture for the NTK predictor (the only place that compiles)."""

from __future__ import annotations

import os

from torch import Tensor


def kernel_tables(
    arch: str | os.PathLike[str], size: int | tuple[int, ...], dims: int = 2
) -> tuple[Tensor, Tensor]:
    """``(theta_table, nngp_table)`` of ``arch`` on a grid of ``size``, same layout.

    Both come from one pass of :func:`gpdip.compile_kernels`: ``Θ`` in the NTK
    parameterisation (docs/concepts.md) and ``K``, the output covariance at
    initialisation, which the uncentred network's variance needs.
    """
    from gpdip import compile_kernels

    nngp, theta = compile_kernels(arch, size, dims=dims, ntk=True)
    return theta, nngp
