"""Kernel tables without GPyTorch: what the grid engine and the hyperparameter fit need.

The grid engine (FFT operators, CG, SLQ) and the window fit of :mod:`gpdip.gp.hyper`
only ever ask a kernel for its scaled table ``s * T_unit(size)`` and set its output scale
and a few continuous parameters.  :class:`GridTable` is exactly that, as a plain object,
so ``gpdip inpaint`` never imports gpytorch (and, through it, pykeops and sympy: about a
second of start-up).  The GPyTorch kernels of :mod:`gpdip.gp.kernels` compute their
tables with the same functions (:func:`isotropic_table`, :func:`dip_unit_table`) and are
built from a :class:`GridTable` by :meth:`GridTable.to_gpytorch` when a GPyTorch model
needs one.

Duck-typed interface shared with :class:`gpdip.gp.kernels.TableKernel`: ``dims``,
``outputscale`` (settable), ``table(size)``, ``has_lengthscale``, ``lengthscale``
(settable), ``raw_lengthscale.requires_grad``, ``learn`` and ``log_<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import Size, as_size, offsets

Profile = Callable[[Tensor], Tensor]


def rbf_profile(r: Tensor) -> Tensor:
    """Unit squared exponential ``exp(-r^2 / 2)``."""
    return torch.exp(-0.5 * r * r)


def matern52_profile(r: Tensor) -> Tensor:
    """Unit Matern-5/2 ``(1 + sqrt5 r + 5 r^2/3) exp(-sqrt5 r)``."""
    v = math.sqrt(5.0) * r
    return (1.0 + v + v * v / 3.0) * torch.exp(-v)


def isotropic_table(profile: Profile, lengthscale: Tensor, size: Size) -> Tensor:
    """``profile(|d / l|)`` on the offsets of a ``size`` grid.

    ``lengthscale``: ``(*batch, 1, 1 or len(size))`` (GPyTorch's layout), float64 out
    ``(*batch, 2H-1, 2W-1)``.
    """
    ls = lengthscale.double()
    r2 = torch.zeros((), dtype=torch.float64, device=ls.device)
    for axis, off in enumerate(offsets(size, device=ls.device)):
        l_axis = ls[..., 0, axis if ls.shape[-1] > 1 else 0]  # (*batch)
        r2 = r2 + (off / l_axis.reshape(*l_axis.shape, *([1] * len(size)))) ** 2
    # sqrt has an infinite derivative at 0: take it only off the centre (exact zero there)
    positive = r2 > 0
    return profile(torch.where(positive, r2, 1.0).sqrt() * positive)


def dip_unit_table(
    arch, dims: int, size: Size, params: dict[str, Tensor | float], cache: dict[Size, Tensor]
) -> Tensor:
    """Compiled table of ``arch`` (output scale 1); cached per size when ``params`` is empty."""
    from gpdip import compile_kernel  # lazy: the compiler imports much more

    if params:
        return compile_kernel(arch, size, dims=dims, params=params)
    if size not in cache:
        cache[size] = compile_kernel(arch, size, dims=dims).double()
    return cache[size]


class GridTable:
    """A stationary kernel as the grid engine sees it: ``table(size) = s * T_unit(size)``.

    Args:
        dims: grid dimension (1 or 2).
        outputscale: the output scale ``s > 0``.
    """

    has_lengthscale = False
    learn: tuple[str, ...] = ()

    def __init__(self, dims: int = 2, outputscale: float = 1.0) -> None:
        self.dims = dims
        self._scale = torch.tensor(float(outputscale), dtype=torch.float64)

    @property
    def outputscale(self) -> Tensor:
        return self._scale

    @outputscale.setter
    def outputscale(self, value: float | Tensor) -> None:
        self._scale = torch.as_tensor(value, dtype=torch.float64).detach().clone()

    def unit_table(self, size: Size) -> Tensor:
        raise NotImplementedError

    def table(self, size: int | Size) -> Tensor:
        """Scaled float64 table ``(2H-1, 2W-1)`` (or ``(2N-1,)``) of a ``size`` grid."""
        return self._scale * self.unit_table(as_size(size, self.dims))

    def to_gpytorch(self):
        """The equivalent :class:`gpdip.gp.kernels.TableKernel` (imports gpytorch)."""
        raise NotImplementedError


class IsotropicGridTable(GridTable):
    """RBF or Matern-5/2 with a lengthscale (``fixed``: not searched by the fit)."""

    has_lengthscale = True
    PROFILES: ClassVar[dict[str, Profile]] = {"rbf": rbf_profile, "matern52": matern52_profile}

    def __init__(self, name: str, lengthscale: float, fixed: bool = False, dims: int = 2):
        super().__init__(dims)
        self.name = name
        self.profile = self.PROFILES[name]
        self.raw_lengthscale = torch.tensor(float(lengthscale), requires_grad=not fixed)

    @property
    def lengthscale(self) -> Tensor:
        return self.raw_lengthscale.detach().reshape(1, 1)

    @lengthscale.setter
    def lengthscale(self, value: float | Tensor) -> None:
        self.raw_lengthscale.data.fill_(float(value))

    def unit_table(self, size: Size) -> Tensor:
        return isotropic_table(self.profile, self.lengthscale, size)

    def to_gpytorch(self):
        from gpdip.gp.kernels import Matern52Table, RBFTable

        cls = RBFTable if self.name == "rbf" else Matern52Table
        k = cls(dims=self.dims).double()
        with torch.no_grad():  # set in float64 (the constructor would round to float32)
            k.outputscale = self._scale.clone()
            k.lengthscale = self.raw_lengthscale.detach().clone()
        k.raw_lengthscale.requires_grad_(self.raw_lengthscale.requires_grad)
        return k


class DIPGridTable(GridTable):
    """The compiled table of a DIP architecture; ``learn`` parameters as ``log_<name>``."""

    def __init__(
        self, arch="unet2", dims: int = 2, learn: tuple[str, ...] = (), init: dict | None = None
    ) -> None:
        super().__init__(dims)
        self.arch = arch
        self.learn = tuple(learn)
        init = init or {}
        self.log_params = {
            name: torch.tensor(float(init.get(name, 1.0)), dtype=torch.float64).log()
            for name in self.learn
        }
        for value in self.log_params.values():
            value.requires_grad_(True)  # "searched by the fit" (no autograd is used)
        self._cache: dict[Size, Tensor] = {}

    def __getattr__(self, name: str) -> Tensor:
        # ``log_<name>``, as on the GPyTorch DIPKernel
        params = self.__dict__.get("log_params", {})
        if name.startswith("log_") and name[4:] in params:
            return params[name[4:]]
        raise AttributeError(name)

    def unit_table(self, size: Size) -> Tensor:
        params: dict[str, Tensor | float] = {
            n: getattr(self, f"log_{n}").detach().exp() for n in self.learn
        }
        return dip_unit_table(self.arch, self.dims, size, params, self._cache)

    def to_gpytorch(self):
        from gpdip.gp.kernels import DIPKernel

        init = {n: float(getattr(self, f"log_{n}").exp()) for n in self.learn}
        k = DIPKernel(self.arch, self.dims, 1.0, self.learn, init).double()
        with torch.no_grad():  # set in float64 (the constructor would round to float32)
            k.outputscale = self._scale.clone()
            for n in self.learn:
                getattr(k, f"log_{n}").copy_(getattr(self, f"log_{n}"))
        for n in self.learn:
            getattr(k, f"log_{n}").requires_grad_(getattr(self, f"log_{n}").requires_grad)
        return k


def make_table(name: str, lengthscale: float | None = None, **kw) -> GridTable:
    """``rbf``, ``matern52`` (lengthscale learned unless given) or an architecture.

    ``**kw`` go to :class:`DIPGridTable` (``dims``, ``learn``, ``init``).
    """
    if lengthscale is not None and not (math.isfinite(lengthscale) and lengthscale > 0):
        raise GpdipError(f"lengthscale: expected a finite number > 0, got {lengthscale!r}")
    if name in IsotropicGridTable.PROFILES:
        # a given lengthscale is kept, never replaced; 2 pixels starts the search otherwise
        start = 2.0 if lengthscale is None else lengthscale
        return IsotropicGridTable(name, start, fixed=lengthscale is not None)
    return DIPGridTable(name, **kw)


def make_kernel(name: str, lengthscale: float | None = None, **kw):
    """The GPyTorch :class:`~gpdip.gp.kernels.TableKernel` of :func:`make_table`."""
    return make_table(name, lengthscale, **kw).to_gpytorch()
