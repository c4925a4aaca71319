"""GPyTorch kernels that also produce grid tables: DIP, RBF and Matern-5/2.

Each public kernel is a :class:`gpytorch.kernels.ScaleKernel` (the learnable output
scale ``s > 0``, with its ``batch_shape`` and ``active_dims``) around a unit-variance
stationary kernel; ``table(size)`` returns the scaled ``(*batch, 2H-1, 2W-1)`` kernel
table used by the grid engine.  Inputs are pixel coordinates ``x`` of shape
``(..., n, d)`` (``d`` = 1 or 2 for the DIP kernel; any ``d`` for RBF/Matern).

* :class:`DIPKernel`: ``k(x, x') = s * T[x - x']`` with ``T`` the compiled
  architecture table (:func:`gpdip.compile_kernel`).  On integer offsets (pixels)
  a direct table lookup, exact and ``O(nm)``; off the grid, multilinear (bilinear
  in 2-D) interpolation between the ``2^d`` neighbouring integer offsets.
  Optionally learns ``sigma``, ``weight_var``, ``bias_var`` through the
  differentiable compiler.
* :class:`RBFTable`: ``s exp(-r^2 / 2)``;  :class:`Matern52Table`:
  ``s (1 + sqrt5 r + 5 r^2/3) exp(-sqrt5 r)``, ``r = |(x - x') / l|`` (``l`` per
  axis with ``ard_num_dims``), evaluated analytically.

:func:`split_scale` returns ``(unit kernel, output scale)`` of any of these (or of a
bare unit kernel, scale 1), for code that needs the two apart (KeOps, reports).
"""

from __future__ import annotations

import copy

import gpytorch
import torch
from gpytorch.kernels import ScaleKernel
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import Size, as_size
from gpdip.gp.tables import dip_unit_table, isotropic_table, matern52_profile, rbf_profile

__all__ = [
    "DIPKernel",
    "DIPUnit",
    "Matern52Table",
    "Matern52Unit",
    "RBFTable",
    "RBFUnit",
    "TableKernel",
    "UnitTableKernel",
    "interpolate_table",
    "lookup_table",
    "split_scale",
]


class UnitTableKernel(gpytorch.kernels.Kernel):
    """Unit-variance stationary kernel that can also return its grid table."""

    is_stationary = True

    def __init__(self, dims: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dims = dims

    def table(self, size: int | Size) -> Tensor:
        """Float64 table ``(*batch_shape, 2H-1, 2W-1)`` of a grid of ``size``."""
        raise NotImplementedError


class _IsotropicUnit(UnitTableKernel):
    """``profile(r)`` with ``r = |(x - x') / l|``: the analytic baselines."""

    has_lengthscale = True

    def profile(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def table(self, size: int | Size) -> Tensor:
        size = as_size(size, self.dims)
        if self.lengthscale.shape[-1] not in (1, len(size)):
            raise GpdipError(
                f"{type(self).__name__}.table: ard_num_dims={self.lengthscale.shape[-1]} "
                f"does not match a {len(size)}-D grid"
            )
        return isotropic_table(self.profile, self.lengthscale, size)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        ls = self.lengthscale
        r = self.covar_dist(x1.div(ls), x2.div(ls), diag=diag, **params)
        return self.profile(r)


class RBFUnit(_IsotropicUnit):
    """Unit squared exponential: ``exp(-r^2 / 2)``."""

    def profile(self, r: Tensor) -> Tensor:
        return rbf_profile(r)


class Matern52Unit(_IsotropicUnit):
    """Unit Matern-5/2: ``(1 + sqrt5 r + 5 r^2/3) exp(-sqrt5 r)``."""

    def profile(self, r: Tensor) -> Tensor:
        return matern52_profile(r)


class DIPUnit(UnitTableKernel):
    """Unit-scale kernel of a DIP architecture: ``T[x - x']`` (see :class:`DIPKernel`)."""

    def __init__(
        self,
        arch="unet2",
        dims: int = 2,
        learn: tuple[str, ...] = (),
        init: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(dims=dims, **kwargs)
        self.arch = arch
        self.learn = tuple(learn)
        init = init or {}
        for name in self.learn:
            value = torch.tensor(float(init.get(name, 1.0))).log()
            self.register_parameter(f"log_{name}", torch.nn.Parameter(value))
        self._cache: dict[Size, Tensor] = {}

    def unit_table(self, size: Size) -> Tensor:
        """Compiled table (output scale 1), cached when no parameter is learned."""
        params = {n: getattr(self, f"log_{n}").double().exp() for n in self.learn}
        return dip_unit_table(self.arch, self.dims, size, params, self._cache)

    def table(self, size: int | Size) -> Tensor:
        return self.unit_table(as_size(size, self.dims))

    def __getitem__(self, index) -> DIPUnit:
        # parameters (if any) are shared scalars: indexing changes only the batch shape
        if len(self.batch_shape) == 0:
            return self
        new = copy.deepcopy(self)
        new.batch_shape = torch.empty(self.batch_shape, device="meta")[index].shape
        return new

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        if x1.shape[-1] != self.dims or x2.shape[-1] != self.dims:
            raise GpdipError(
                f"DIPKernel(dims={self.dims}): inputs must have {self.dims} columns (pixel "
                f"coordinates), got {x1.shape[-1]} and {x2.shape[-1]}"
            )
        if x1.shape[-2] == 0 or x2.shape[-2] == 0:  # no pairs: no table to compile
            batch = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
            cols = () if diag else (x2.shape[-2],)
            return x1.new_zeros(*batch, x1.shape[-2], *cols)
        integer = (
            not (x1.requires_grad or x2.requires_grad) and _is_integral(x1) and _is_integral(x2)
        )
        extent = _max_offsets(x1, x2, diag)
        # integer offsets need the table up to |d|; interpolation also needs |d| + 1
        size = tuple(int(e) + (1 if integer else 2) for e in extent)
        table = self.unit_table(size).to(x1.dtype)
        if integer:
            return lookup_table(table, x1, x2, diag)
        d = x1 - x2 if diag else x1[..., :, None, :] - x2[..., None, :, :]
        return interpolate_table(table, d)


class TableKernel(ScaleKernel):
    """``ScaleKernel`` of a :class:`UnitTableKernel`, with ``table(size)`` scaled.

    Args:
        base_kernel: the unit kernel.
        outputscale: initial output scale ``s``.
        **kwargs: :class:`gpytorch.kernels.ScaleKernel` arguments (``batch_shape``,
            ``active_dims``, ``outputscale_prior``, ...).
    """

    def __init__(self, base_kernel: UnitTableKernel, outputscale: float = 1.0, **kwargs) -> None:
        super().__init__(base_kernel, **kwargs)
        self._set_outputscale(outputscale)

    @property
    def dims(self) -> int:
        return self.base_kernel.dims

    @property
    def has_lengthscale(self) -> bool:  # type: ignore[override]
        # read by Kernel.__init__ before base_kernel exists: the scale has no lengthscale
        base = self.__dict__.get("_modules", {}).get("base_kernel")
        return bool(base is not None and base.has_lengthscale)

    @property
    def lengthscale(self) -> Tensor:  # type: ignore[override]
        # as gpytorch's: None when the unit kernel has no lengthscale (see has_lengthscale)
        return self.base_kernel.lengthscale

    @lengthscale.setter
    def lengthscale(self, value: float | Tensor) -> None:
        self.base_kernel.lengthscale = value

    @property
    def raw_lengthscale(self) -> Tensor:
        return self.base_kernel.raw_lengthscale

    def table(self, size: int | Size) -> Tensor:
        """Scaled float64 kernel table ``(*batch_shape, 2H-1, 2W-1)`` of a grid of ``size``."""
        unit = self.base_kernel.table(size)
        scale = self.outputscale.double()
        grid_dims = len(as_size(size, self.dims))
        return scale.reshape(*scale.shape, *([1] * grid_dims)) * unit


class _IsotropicTable(TableKernel):
    unit_class: type[_IsotropicUnit] = _IsotropicUnit

    def __init__(
        self,
        lengthscale: float = 3.0,
        outputscale: float = 1.0,
        dims: int = 2,
        ard_num_dims: int | None = None,
        batch_shape: torch.Size | None = None,
        **kwargs,
    ) -> None:
        batch_shape = torch.Size([]) if batch_shape is None else batch_shape
        unit = self.unit_class(dims=dims, ard_num_dims=ard_num_dims, batch_shape=batch_shape)
        unit.lengthscale = torch.tensor(lengthscale, dtype=torch.get_default_dtype())
        super().__init__(unit, outputscale, batch_shape=batch_shape, **kwargs)


class RBFTable(_IsotropicTable):
    """Squared-exponential baseline: ``s exp(-r^2 / (2 l^2))``."""

    unit_class = RBFUnit


class Matern52Table(_IsotropicTable):
    """Matern-5/2 baseline: ``s (1 + sqrt5 u + 5u^2/3) exp(-sqrt5 u)``, ``u = r / l``."""

    unit_class = Matern52Unit


class DIPKernel(TableKernel):
    """Kernel of a DIP architecture in the infinite-channel limit.

    Args:
        arch: catalog name, TOML path or ``Architecture`` (see :func:`gpdip.compile_kernel`).
        learn: names among ``sigma``, ``weight_var``, ``bias_var`` to learn
            (log-parametrised, initialised at ``init`` or 1.0).  They live on the unit
            kernel and are reachable here as ``log_<name>``.
    """

    def __init__(
        self,
        arch="unet2",
        dims: int = 2,
        outputscale: float = 1.0,
        learn: tuple[str, ...] = (),
        init: dict | None = None,
        **kwargs,
    ) -> None:
        # the unit kernel's parameters (if learned) are shared by the batch: batch_shape ()
        unit = DIPUnit(arch, dims=dims, learn=learn, init=init)
        super().__init__(unit, outputscale, **kwargs)
        self.arch = arch
        self.learn = unit.learn

    def unit_table(self, size: Size) -> Tensor:
        return self.base_kernel.unit_table(size)

    def __getattr__(self, name: str):
        if name.startswith("log_") and name[4:] in self.__dict__.get("learn", ()):
            return getattr(self.base_kernel, name)
        return super().__getattr__(name)


def split_scale(kernel: gpytorch.kernels.Kernel) -> tuple[gpytorch.kernels.Kernel, Tensor]:
    """``(unit kernel, output scale)`` of a ``ScaleKernel``; ``(kernel, 1)`` otherwise."""
    if isinstance(kernel, ScaleKernel):
        return kernel.base_kernel, kernel.outputscale
    return kernel, torch.ones((), dtype=torch.float64)


def _is_integral(x: Tensor) -> bool:
    """True when every coordinate is a whole number (pixels)."""
    return bool(torch.equal(x, x.round())) if x.is_floating_point() else True


def _max_offsets(x1: Tensor, x2: Tensor, diag: bool) -> list[float]:
    """Per axis, the largest ``|x1_i - x2_j|`` over all pairs (``O(n + m)``, not ``O(nm)``)."""
    if diag:
        return (x1 - x2).detach().abs().reshape(-1, x1.shape[-1]).amax(0).tolist()
    a = x1.detach().reshape(-1, x1.shape[-1])
    b = x2.detach().reshape(-1, x2.shape[-1])
    ext = torch.maximum(a.amax(0) - b.amin(0), b.amax(0) - a.amin(0))
    return ext.clamp_min(0).tolist()


def lookup_table(table: Tensor, x1: Tensor, x2: Tensor, diag: bool = False) -> Tensor:
    """``T[x1_i - x2_j]`` for integer coordinates ``x1 (..., n, d)``, ``x2 (..., m, d)``.

    Exact (no arithmetic on table values).  Linearising each point ``p`` to
    ``a(p) = sum_k p_k stride_k`` with the table's row-major strides makes every
    offset one integer ``c + a(x1_i) - a(x2_j)`` (``c`` the centre), valid because
    ``|d_k| <= (S_k - 1) / 2`` never wraps a row.  Cost: one ``(n, m)`` index (int32
    when the table allows: half the memory of int64) and one gather.  Returns
    ``(..., n, m)`` (``(..., n)`` with ``diag``).
    """
    flat = table.contiguous().reshape(-1)
    index_dtype = torch.int32 if flat.numel() < 2**31 else torch.int64
    strides = torch.tensor(table.contiguous().stride(), device=x1.device)
    centre = sum(((s - 1) // 2) * st for s, st in zip(table.shape, strides.tolist(), strict=True))
    a1 = (x1.round().long() * strides).sum(-1).to(index_dtype)
    a2 = (x2.round().long() * strides).sum(-1).to(index_dtype)
    index = a1 - a2 if diag else a1[..., :, None] - a2[..., None, :]
    index += centre  # in place: no second (n, m) temporary
    return flat[index]


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
