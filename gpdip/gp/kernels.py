"""GPyTorch kernels that also produce grid tables: DIP, RBF and Matern-5/2.

Every kernel here is a stationary :class:`gpytorch.kernels.Kernel` with a
learnable output scale ``s > 0`` and a method ``table(size)`` returning the
``(2H-1, 2W-1)`` kernel table (scaled) used by the grid engine.  Inputs are
pixel coordinates ``x`` of shape ``(n, d)`` (``d`` = 1 or 2).

* :class:`DIPKernel`: ``k(x, x') = s * T[x - x']`` with ``T`` the compiled
  architecture table (:func:`gpdip.compile_kernel`).  Exact on integer offsets;
  off the grid, multilinear (bilinear in 2-D) interpolation between the
  ``2^d`` neighbouring integer offsets.  Optionally learns ``sigma``,
  ``weight_var``, ``bias_var`` through the differentiable compiler.
* :class:`RBFTable`: ``s exp(-r^2 / (2 l^2))``;  :class:`Matern52Table`:
  ``s (1 + sqrt5 r/l + 5 r^2/(3 l^2)) exp(-sqrt5 r/l)``, evaluated analytically.
"""

from __future__ import annotations

import math

import gpytorch
import torch
from gpytorch.constraints import Positive
from torch import Tensor

from gpdip.gp.grid import Size, as_size, table_from_offsets


class TableKernel(gpytorch.kernels.Kernel):
    """Base: learnable output scale, ``table(size)``, and a ``profile(r)`` for tables."""

    has_lengthscale = False

    def __init__(self, outputscale: float = 1.0, dims: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.dims = dims
        self.register_parameter("raw_outputscale", torch.nn.Parameter(torch.tensor(0.0)))
        self.register_constraint("raw_outputscale", Positive())
        self.outputscale = outputscale

    @property
    def outputscale(self) -> Tensor:
        return self.raw_outputscale_constraint.transform(self.raw_outputscale)

    @outputscale.setter
    def outputscale(self, value: float | Tensor) -> None:
        value = torch.as_tensor(value, dtype=self.raw_outputscale.dtype)
        self.initialize(raw_outputscale=self.raw_outputscale_constraint.inverse_transform(value))

    def table(self, size: int | Size) -> Tensor:
        """Scaled float64 kernel table of a grid of ``size``."""
        raise NotImplementedError

    def __call_table__(self, size: Size) -> Tensor:  # pragma: no cover - protocol alias
        return self.table(size)


class _IsotropicTable(TableKernel):
    """Shared code of the analytic baselines (``profile(r / l)``)."""

    has_lengthscale = True

    def __init__(self, lengthscale: float = 3.0, outputscale: float = 1.0, dims: int = 2):
        super().__init__(outputscale=outputscale, dims=dims)
        self.lengthscale = torch.tensor(lengthscale, dtype=torch.get_default_dtype())

    def profile(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def table(self, size: int | Size) -> Tensor:
        size = as_size(size, self.dims)
        ls = self.lengthscale.reshape(()).double()
        return self.outputscale.double() * table_from_offsets(lambda r: self.profile(r / ls), size)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        r = self.covar_dist(x1, x2, diag=diag, **params)
        return self.outputscale * self.profile(r / self.lengthscale.reshape(()))


class RBFTable(_IsotropicTable):
    """Squared-exponential baseline: ``s exp(-r^2 / (2 l^2))``."""

    def profile(self, u: Tensor) -> Tensor:
        return torch.exp(-0.5 * u * u)


class Matern52Table(_IsotropicTable):
    """Matern-5/2 baseline: ``s (1 + sqrt5 u + 5u^2/3) exp(-sqrt5 u)``, ``u = r / l``."""

    def profile(self, u: Tensor) -> Tensor:
        v = math.sqrt(5.0) * u
        return (1.0 + v + v * v / 3.0) * torch.exp(-v)


class DIPKernel(TableKernel):
    """Kernel of a DIP architecture in the infinite-channel limit.

    Args:
        arch: catalog name, TOML path or ``Architecture`` (see :func:`gpdip.compile_kernel`).
        learn: names among ``sigma``, ``weight_var``, ``bias_var`` to learn
            (log-parametrised, initialised at ``init`` or 1.0).
    """

    def __init__(self, arch="unet2", dims: int = 2, outputscale: float = 1.0,
                 learn: tuple[str, ...] = (), init: dict | None = None):
        super().__init__(outputscale=outputscale, dims=dims)
        self.arch = arch
        self.learn = tuple(learn)
        init = init or {}
        for name in self.learn:
            value = torch.tensor(float(init.get(name, 1.0))).log()
            self.register_parameter(f"log_{name}", torch.nn.Parameter(value))
        self._cache: dict[Size, Tensor] = {}

    def unit_table(self, size: Size) -> Tensor:
        """Compiled table (output scale 1), cached when no parameter is learned."""
        from gpdip import compile_kernel  # lazy: the compiler may be absent

        if self.learn:
            params = {n: getattr(self, f"log_{n}").double().exp() for n in self.learn}
            return compile_kernel(self.arch, size, dims=self.dims, params=params)
        if size not in self._cache:
            self._cache[size] = compile_kernel(self.arch, size, dims=self.dims).double()
        return self._cache[size]

    def table(self, size: int | Size) -> Tensor:
        size = as_size(size, self.dims)
        return self.outputscale.double() * self.unit_table(size)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        d = x1 - x2 if diag else x1[..., :, None, :] - x2[..., None, :, :]
        extent = d.detach().abs().reshape(-1, d.shape[-1]).amax(0)
        size = tuple(math.floor(e) + 2 for e in extent.tolist())
        table = self.unit_table(size).to(x1.dtype)
        return self.outputscale * interpolate_table(table, d)


def interpolate_table(table: Tensor, d: Tensor) -> Tensor:
    """Multilinear interpolation of a table at real offsets ``d`` ``(..., dims)``.

    Exact at integer offsets; continuous elsewhere (weights ``prod (1 - |t|)``).
    """
    dims = d.shape[-1]
    centre = torch.tensor([(s - 1) // 2 for s in table.shape], dtype=d.dtype, device=d.device)
    pos = d + centre
    lo = pos.floor()
    frac = pos - lo
    lo = lo.long()
    out = torch.zeros(d.shape[:-1], dtype=table.dtype, device=d.device)
    for corner in range(2**dims):
        bits = [(corner >> k) & 1 for k in range(dims)]
        idx, w = [], torch.ones_like(out)
        for k, b in enumerate(bits):
            i = (lo[..., k] + b).clamp(0, table.shape[k] - 1)
            idx.append(i)
            w = w * (frac[..., k] if b else 1 - frac[..., k])
        out = out + w * table[tuple(idx)]
    return out
