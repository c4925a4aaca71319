"""Exact Langevin sampling of a finite conv net's weight posterior, many chains at once.

The model (NTK parameterisation, every weight N(0, 1) a priori, circular padding, input z
fixed per chain) and its potential, for observations y at positions o, noise variance s²:

    U(θ) = ½‖θ‖² + ‖f_o(θ; z) − y‖²/(2s²),        f: (C, L) for C chains of length L.

As the width grows, the law of f under e^{−U} tends to the NNGP posterior
N(K_{:,o}(K_oo + s²I)⁻¹y, K − K_{:,o}(K_oo + s²I)⁻¹K_{o,:}).

:class:`ChainNet` evaluates C independent networks (one weight row per chain) with batched
matrix products, so small widths are not dominated by per-call overhead.  It covers plain
conv / ReLU stacks (the catalog's ``conv-*``) ending in a 1×1 readout.

**Rao–Blackwellised estimator.**  Given the last hidden features Φ (W, L) the readout
f = s_w·vᵀΦ + s_b·b (v, b iid N(0, 1)) is a Gaussian linear model, so

    E[f | Φ, y] = K_Φ[:, o](K_Φ[o, o] + s²I)⁻¹ y,
    Var[f | Φ, y] = diag(K_Φ − K_Φ[:, o](K_Φ[o, o] + s²I)⁻¹K_Φ[o, :]),
    K_Φ = s_w² ΦᵀΦ + s_b² 11ᵀ,

and averaging these over the chain's samples of the hidden weights estimates the same
posterior mean and variance (E[f|y] = E[E[f|Φ, y]]; Var = E[Var(f|Φ)] + Var(E[f|Φ])) with
the readout's Monte Carlo noise integrated out exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gpdip.dip import langevin
from gpdip.errors import GpdipError
from gpdip.finite.builder import NTKConv


@dataclass
class ConvSpec:
    """One NTK conv: weight (out, in, taps), scales √(weight_var/fan_in) and √bias_var."""

    out_channels: int
    in_channels: int
    taps: int
    weight_scale: float
    bias_scale: float


class ChainNet:
    """C independent 1-D conv/ReLU networks with a flat weight matrix θ of shape (C, d).

    Built from a network of :func:`gpdip.finite.network.build_network` (``dims=1``,
    ``parameterization="ntk"``, circular padding), whose layer sequence it copies; biases
    with scale 0 carry no information and are left out of θ."""

    def __init__(self, net: nn.Module) -> None:
        self.layers: list[ConvSpec | str] = []
        for module in net.modules():
            if isinstance(module, NTKConv):
                if module.stride != 1 or module.dims != 1 or module.padding_mode != "circular":
                    raise GpdipError(
                        "ChainNet: expected stride-1 circular 1-D convs, got stride "
                        f"{module.stride}, dims {module.dims}, padding {module.padding_mode}"
                    )
                out_c, in_c, taps = module.weight.shape
                self.layers.append(
                    ConvSpec(out_c, in_c, taps, module.weight_scale, module.bias_scale)
                )
            elif isinstance(module, nn.ReLU):
                self.layers.append("relu")
            elif not isinstance(module, nn.Sequential | NTKConv) and module is not net:
                raise GpdipError(f"ChainNet: unsupported module {type(module).__name__}")
        last = self.layers[-1] if self.layers else None
        if not isinstance(last, ConvSpec) or last.taps != 1 or last.out_channels != 1:
            raise GpdipError("ChainNet: the network must end with a 1×1 conv to one channel")
        self.readout = last
        self.sizes: list[tuple[int, ...]] = []
        for spec in self.convs():
            self.sizes.append((spec.out_channels, spec.in_channels, spec.taps))
            if spec.bias_scale > 0:
                self.sizes.append((spec.out_channels,))
        self.dim = sum(math.prod(s) for s in self.sizes)

    def convs(self) -> list[ConvSpec]:
        return [layer for layer in self.layers if isinstance(layer, ConvSpec)]

    @staticmethod
    def flatten(net: nn.Module) -> torch.Tensor:
        """The (d,) weight vector of one ``build_network`` net in :class:`ChainNet`'s order."""
        parts = []
        for module in net.modules():
            if isinstance(module, NTKConv):
                parts.append(module.weight.detach().reshape(-1))
                if module.bias_scale > 0:
                    parts.append(module.bias.detach().reshape(-1))
        return torch.cat(parts)

    def _unflatten(self, theta: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for shape in self.sizes:
            size = math.prod(shape)
            out.append(theta[:, start : start + size].reshape(theta.shape[0], *shape))
            start += size
        return out

    def features(self, theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The readout's input Φ: θ (C, d), z (C, C_in, L) → (C, W, L)."""
        tensors = iter(self._unflatten(theta))
        x = z
        for layer in self.layers[:-1]:
            if layer == "relu":
                x = torch.relu(x)
                continue
            assert isinstance(layer, ConvSpec)
            weight = next(tensors)
            x = _batched_conv(x, weight, layer.weight_scale)
            if layer.bias_scale > 0:
                x = x + layer.bias_scale * next(tensors)[:, :, None]
        return x

    def readout_weights(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(v (C, W), b (C,) or None) of the 1×1 readout."""
        tensors = self._unflatten(theta)
        if self.readout.bias_scale > 0:
            return tensors[-2][:, 0, :, 0], tensors[-1][:, 0]
        return tensors[-1][:, 0, :, 0], None

    def output(self, theta: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f (C, L), Φ (C, W, L))."""
        phi = self.features(theta, z)
        v, b = self.readout_weights(theta)
        f = self.readout.weight_scale * torch.einsum("cw,cwl->cl", v, phi)
        if b is not None:
            f = f + self.readout.bias_scale * b[:, None]
        return f, phi


def _batched_conv(x: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """Circular 'same' conv per chain: x (C, in, L), weight (C, out, in, k) → (C, out, L)."""
    chains, in_c, length = x.shape
    taps = weight.shape[-1]
    if taps > 1:
        x = F.pad(x, (taps // 2, taps // 2), mode="circular")
        cols = x.unfold(2, taps, 1).permute(0, 1, 3, 2).reshape(chains, in_c * taps, length)
    else:
        cols = x
    return scale * torch.bmm(weight.reshape(chains, weight.shape[1], -1), cols)


@dataclass
class Posterior:
    """The Gaussian-likelihood inpainting problem: observed positions, targets, noise s²."""

    observed: torch.Tensor  # (n_o,) long
    y: torch.Tensor  # (n_o,)
    noise_var: float

    def energy(self, net: ChainNet, z: torch.Tensor):
        """U(θ) = ½‖θ‖² + ‖f_o − y‖²/(2s²) per chain, as a function θ (C, d) → (C,)."""

        def energy(theta: torch.Tensor) -> torch.Tensor:
            f, _ = net.output(theta, z)
            misfit = f[:, self.observed] - self.y.to(f.dtype)
            return 0.5 * theta.pow(2).sum(1) + 0.5 * misfit.pow(2).sum(1) / self.noise_var

        return energy


def readout_conditional(
    phi: torch.Tensor, readout: ConvSpec, problem: Posterior
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[f | Φ, y] and Var[f | Φ, y], each (C, L) float64, from Φ (C, W, L) (module doc)."""
    phi = phi.double()
    k = readout.weight_scale**2 * phi.transpose(1, 2) @ phi + readout.bias_scale**2
    obs = problem.observed
    k_xo = k[:, :, obs]
    k_oo = k_xo[:, obs, :] + problem.noise_var * torch.eye(len(obs), dtype=torch.float64)
    chol = torch.linalg.cholesky(k_oo)
    y = problem.y.double().expand(k.shape[0], -1)[:, :, None]
    mean = (k_xo @ torch.cholesky_solve(y, chol))[:, :, 0]
    half = torch.linalg.solve_triangular(chol, k_xo.transpose(1, 2), upper=False)
    var = torch.diagonal(k, dim1=1, dim2=2) - half.pow(2).sum(1)
    return mean, var.clamp_min(0)


@dataclass
class ChainStats:
    """Running sums over the kept samples, per chain (all float64, (C, L) unless noted).

    ``raw``: the network outputs f; ``rb``: the readout-conditional mean; ``rb_var``:
    the conditional variance.  ``batch_*``: sums within ``batches`` consecutive blocks of the
    kept samples (for batch means)."""

    batches: int
    n: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)

    def add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0) + value.double()

    def update(self, f: torch.Tensor, rb_mean: torch.Tensor, rb_var: torch.Tensor, block: int):
        self.n += 1
        self.add("raw", f)
        self.add("raw_sq", f.double().pow(2))
        self.add("rb", rb_mean)
        self.add("rb_sq", rb_mean.pow(2))
        self.add("rb_var", rb_var)
        for name, value in (("raw", f), ("rb", rb_mean)):
            key = f"batch_{name}"
            if key not in self.sums:
                self.sums[key] = torch.zeros(self.batches, *f.shape, dtype=torch.float64)
            self.sums[key][block] += value.double()
        if "batch_n" not in self.sums:
            self.sums["batch_n"] = torch.zeros(self.batches, dtype=torch.float64)
        self.sums["batch_n"][block] += 1


@dataclass
class SamplerConfig:
    """Plain Langevin: ``sampler`` "ula" or "mala", fixed step ``eps``, ``steps`` in all,
    the first ``burn_in`` discarded, every ``thin``-th kept after that."""

    sampler: str
    eps: float
    steps: int
    burn_in: int
    thin: int
    batches: int = 4

    def validate(self) -> None:
        if self.sampler not in ("ula", "mala"):
            raise GpdipError(f"sampler: expected 'ula' or 'mala', got {self.sampler!r}")
        langevin.check_step(self.eps)
        if not 0 <= self.burn_in < self.steps or self.thin < 1:
            raise GpdipError(
                f"steps={self.steps}, burn_in={self.burn_in}, thin={self.thin}: expected "
                "0 <= burn_in < steps and thin >= 1"
            )
        if (self.steps - self.burn_in) // self.thin < 2 * self.batches:
            raise GpdipError(f"too few kept samples for {self.batches} batch means")


def run_chains(
    net: ChainNet,
    z: torch.Tensor,
    theta: torch.Tensor,
    problem: Posterior,
    config: SamplerConfig,
    generator: torch.Generator,
) -> tuple[ChainStats, dict[str, float]]:
    """Run C chains from θ (C, d) (a prior draw) on inputs z (C, C_in, L).

    Returns the per-chain sums over kept samples and diagnostics: MALA's acceptance rate,
    and the final mean energy per chain (a divergence shows as a non-finite value)."""
    config.validate()
    potential = langevin.autograd_potential(problem.energy(net, z))
    u, grad = potential(theta)
    kept = (config.steps - config.burn_in) // config.thin
    per_batch = math.ceil(kept / config.batches)
    stats, accepted, index = ChainStats(config.batches), 0.0, 0
    for step in range(1, config.steps + 1):
        if config.sampler == "mala":
            theta, u, grad, acc = langevin.mala_step(
                theta, u, grad, config.eps, potential, generator
            )
            accepted += float(acc.double().mean())
        else:
            theta = langevin.ula_step(theta, grad, config.eps, generator)
            u, grad = potential(theta)
        if step > config.burn_in and (step - config.burn_in) % config.thin == 0:
            if not bool(torch.isfinite(u).all()):
                raise GpdipError(f"Langevin chain diverged at step {step} (eps {config.eps})")
            with torch.no_grad():
                f, phi = net.output(theta, z)
            rb_mean, rb_var = readout_conditional(phi, net.readout, problem)
            stats.update(f, rb_mean, rb_var, min(index // per_batch, config.batches - 1))
            index += 1
    return stats, {"accept": accepted / config.steps, "final_energy": float(u.mean())}
