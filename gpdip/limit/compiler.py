"""The exact compiler: architecture → limiting stationary NNGP or NTK of the output.

As every channel count goes to infinity, the output of the random network is
a zero-mean Gaussian process (paper Sec. 3, Theorem 1, Lemma 1; Novak et al.
2019 for deep convolutional nets), and gradient descent on its weights follows
kernel gradient descent with the neural tangent kernel (Jacot et al. 2018).  The
compiler propagates the per-channel tables K[p, r] = E[z(t) z(t+r)] and
Θ[p, r] (t ≡ p mod the period) through the layers, each layer applying its own
map (:mod:`gpdip.layers`), and averages over the phase only at the output.
Everything is torch (float64 by default) and differentiable in the input
``sigma`` and the convs' ``weight_var`` and ``bias_var`` (``params``).

    >>> K = compile_kernel("conv-d2", size=4, dims=1)
    >>> K.shape, bool(K[3] == K.max())
    (torch.Size([7]), True)
    >>> T = compile_kernel("conv-d2", size=4, dims=1, kind="ntk")
    >>> bool((T >= K).all())  # Θ = K + (gradients of the earlier layers) ≥ K
    True
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import torch

from gpdip.arch.parse import load_architecture
from gpdip.arch.spec import Architecture
from gpdip.environment import env_number
from gpdip.errors import GpdipError
from gpdip.layers.base import Layer, far_radius, needed_radius, sequence_swap_halvable
from gpdip.limit import covtable as ct
from gpdip.limit import phase_tables as pt
from gpdip.limit.farfield import extend, input_radius
from gpdip.limit.state import Group, Walker

#: Largest phase table (entries) unless ``max_entries`` or ``$GPDIP_MAX_TABLE`` says otherwise.
DEFAULT_MAX_ENTRIES = 2**27


def default_max_entries() -> int:
    """The size limit: ``$GPDIP_MAX_TABLE`` if set (checked here, not at import), else
    :data:`DEFAULT_MAX_ENTRIES`."""
    return int(env_number("GPDIP_MAX_TABLE", DEFAULT_MAX_ENTRIES))


PARAM_NAMES = ("sigma", "weight_var", "bias_var")
KINDS = ("nngp", "ntk")


def compile_kernel(
    arch: str | os.PathLike[str] | Architecture,
    size: int | tuple[int, ...],
    dims: int = 2,
    params: dict[str, torch.Tensor | float] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_entries: int | None = None,
    kind: str = "nngp",
) -> torch.Tensor:
    """The limiting stationary output NNGP (``kind="nngp"``) or NTK (``"ntk"``) table.

    Args:
        arch: an :class:`Architecture`, a TOML path or a catalog name.
        size: S (an S-sample signal or S×S image) or a tuple of ``dims`` sizes.
        dims: 1 or 2 spatial dimensions.
        params: optional overrides, torch scalars welcome (the result is
            differentiable in them): ``sigma`` (input), ``weight_var`` and
            ``bias_var`` (replace those of every conv).
        max_entries: refuse phase tables larger than this (default 2**27, 1 GiB in float64,
            or ``$GPDIP_MAX_TABLE``).
        kind: ``"nngp"``, the output covariance, or ``"ntk"``, the neural tangent kernel
            of the NTK parameterisation (docs/concepts.md).

    Returns:
        K of shape (2H−1, 2W−1) (or (2S−1,) for dims=1) with
        ``K[H−1+dy, W−1+dx]`` = Cov(f(t), f(t + (dy, dx))) (or Θ(t, t + (dy, dx))).
    """
    if kind not in KINDS:
        raise GpdipError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    nngp, ntk = compile_kernels(
        arch, size, dims, params, dtype, device, max_entries, ntk=kind == "ntk"
    )
    return ntk if kind == "ntk" else nngp


def compile_kernels(
    arch: str | os.PathLike[str] | Architecture,
    size: int | tuple[int, ...],
    dims: int = 2,
    params: dict[str, torch.Tensor | float] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_entries: int | None = None,
    ntk: bool = True,
) -> tuple[torch.Tensor, ...]:
    """(K, Θ): the NNGP and the NTK tables from one pass (Θ is None when ``ntk=False``).

    Same arguments and layout as :func:`compile_kernel`.
    """
    arch = load_architecture(arch)
    sizes = _sizes(size, dims)
    params = _check_params(params)
    want = tuple(s - 1 for s in sizes)
    # Offsets beyond the correlation radius follow by periodic continuation (farfield.py).
    sigma = float(torch.as_tensor(params.get("sigma", arch.input.sigma)).detach())
    far = far_radius(arch.layers, input_radius(sigma))
    period = symbolic_output(arch).period
    if not math.isinf(far):
        want = tuple(min(w, int(far) + period) for w in want)
    radius = tuple(needed_radius(arch.layers, r) for r in want)
    # Upsamplings after which every layer keeps offsets are computed on the output's offset
    # list (phase_tables), folded by the symmetries the NNGP table shows; the NTK table
    # shares them (the same architecture's reflections) and goes through the same fold.
    plan = pt.OutputPlan(want, far, period, halve=swap_halvable(arch.layers))
    walker = Walker(
        params,
        max_entries or default_max_entries(),
        arch.name or "architecture",
        _prefix(arch),
        ntk=ntk,
        final=pt.final_upsamples(arch.layers),
        plan=plan,
    )
    # Size checks on a walk without tables, before any table is built.
    walker.run(arch.layers, [_start(arch, None, None)], "network.layers", want)
    try:
        tables = _compile(arch, walker, radius, params, dtype, device)
    except ct.FoldMismatchError:  # a table joining an offset list lacked its symmetry
        walker.plan = plan = replace(plan, folds=False)
        tables = _compile(arch, walker, radius, params, dtype, device)
    result = [pt.output_kernel(t, plan) for t in tables]
    for kind, kernel in zip(KINDS, result, strict=False):
        if not bool(torch.isfinite(kernel).all()):
            raise GpdipError(
                f"{_prefix(arch)}network.layers: the output {kind.upper()} kernel "
                "has non-finite values (largest finite "
                f"{float(kernel[torch.isfinite(kernel)].abs().max()):.3g})"
            )
    if not math.isinf(far):
        result = [extend(k, sizes, int(far), period) for k in result]
    return (result[0], result[1] if ntk else None)  # type: ignore[return-value]


def swap_halvable(layers: tuple[Layer, ...]) -> bool:
    """Whether the network ends with a nearest/bilinear upsampling followed only by layers
    that keep each entry's phase (blocks inlined): its final table may be swap-halved."""
    return sequence_swap_halvable(layers) is True


def _start(arch: Architecture, k_in: ct.CovTable | None, theta_in: ct.CovTable | None) -> Group:
    return Group(k_in, theta_in, float(arch.input.channels), True, frozenset(), frozenset({0}))


def _compile(
    arch: Architecture,
    walker: Walker,
    radius: tuple[int, ...],
    params: dict,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> list[ct.CovTable]:
    """The output group's tables: [K] or [K, Θ] (phase tables, perhaps on offset lists)."""
    walker.next_id = 1
    k_in = input_table(arch, radius, params, dtype, device)
    theta_in = replace(k_in, values=torch.zeros_like(k_in.values)) if walker.ntk else None
    groups = walker.run(
        arch.layers,
        [_start(arch, k_in, theta_in)],
        "network.layers",
        walker.plan.want if walker.plan else None,
    )
    out = _output_group(groups, _prefix(arch))
    tables = [out.nngp, out.ntk] if walker.ntk else [out.nngp]
    assert all(t is not None for t in tables)
    return tables  # type: ignore[return-value]


def symbolic_output(arch: Architecture) -> Group:
    """The output group's flags and period, from a walk without tables."""
    walker = Walker({}, default_max_entries(), arch.name, _prefix(arch))
    return _output_group(
        walker.run(arch.layers, [_start(arch, None, None)], "network.layers"), _prefix(arch)
    )


def input_table(
    arch: Architecture,
    radius: tuple[int, ...],
    params: dict,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> ct.CovTable:
    """K_x(r) = variance·exp(−|r|²/(4σ²)): white noise through a Gaussian filter of std σ."""
    sigma = params.get("sigma", arch.input.sigma)
    sigma = torch.as_tensor(sigma, dtype=dtype, device=device)
    grids = torch.meshgrid(
        *[torch.arange(-r, r + 1, dtype=dtype, device=device) for r in radius], indexing="ij"
    )
    dist2 = torch.stack([g * g for g in grids]).sum(0)
    if float(sigma.detach()) == 0.0:
        kernel = (dist2 == 0).to(dtype)
    else:  # (|r|/(2σ))² rather than |r|²/(4σ²): σ² may underflow for tiny σ
        kernel = torch.exp(-((dist2.sqrt() / (2 * sigma)) ** 2))
    return ct.stationary(arch.input.variance * kernel)


def _prefix(arch: Architecture) -> str:
    return f"{arch.source}: " if arch.source else ""


def _sizes(size: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    if dims not in (1, 2):
        raise GpdipError(f"dims: expected 1 or 2, got {dims!r}")
    sizes = (size,) * dims if isinstance(size, int) and not isinstance(size, bool) else size
    if (
        not isinstance(sizes, tuple)
        or len(sizes) != dims
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)
    ):
        raise GpdipError(f"size: expected a positive integer or a tuple of {dims}, got {size!r}")
    return sizes


def _check_params(params: dict | None) -> dict:
    params = dict(params or {})
    for key, value in params.items():
        if key not in PARAM_NAMES:
            raise GpdipError(f"params: unknown key {key!r}; expected {', '.join(PARAM_NAMES)}")
        if not torch.all(torch.as_tensor(value) >= 0):
            raise GpdipError(f"params[{key!r}]: must be >= 0, got {value!r}")
    return params


def _output_group(groups: list[Group], prefix: str = "") -> Group:
    where = "network.layers"
    if len(groups) != 1:
        raise GpdipError(
            f"{prefix}{where}: the network ends with a concat of {len(groups)} "
            "groups of channels; end it with a conv to get one output"
        )
    if not groups[0].gaussian:
        raise GpdipError(
            f"{prefix}{where}: the network output is not Gaussian in the limit "
            "(it ends with a non-linearity); end it with a conv"
        )
    return groups[0]
