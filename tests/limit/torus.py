"""An independent reference for the limit maps: dense propagation on a torus.

Positions are the points of a periodic grid (``shape``), and every channel group
carries its full second-moment matrices K[t, t'] and Θ[t, t'] (float64).  Each
layer acts by dense matrix algebra written from the definitions, with none of the
compiler's phase-table machinery:

* conv: K' = wv · Σ_g (c_g/c) · mean_j K_g[t − j, t' − j] + bv;
  Θ' = wv · Σ_g (c_g/c) · mean_j Θ_g[t − j, t' − j] + K'; a stride keeps every s-th point;
* non-linearity: K' = E[φφ](K_tt, K_t't', K_tt'), Θ' = Θ ⊙ E[φ'φ'];
* linear resampling by its matrix A (fine × coarse, circular): K' = A K Aᵀ, Θ' = A Θ Aᵀ;
* skip: concat keeps the groups, add sums the matrices.

On a torus larger than the correlation reach, the pair (t, t + r) has the same
law as on the plane for |r| small enough, so the torus average over t of
K[t, t + r] must equal the compiler's K(r): the NNGP and the NTK of a circular-
padded network.  Dispatch is by the layer's ``type_name``: a new layer type must
bring its dense map here (the test fails with its name until it does).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch


def _index(shape: tuple[int, ...]) -> np.ndarray:
    return np.arange(math.prod(shape)).reshape(shape)


def _shift(shape: tuple[int, ...], offset: tuple[int, ...]) -> np.ndarray:
    """Flat index of t − offset (mod shape) for every flat t."""
    return np.roll(_index(shape), offset, axis=tuple(range(len(shape)))).reshape(-1)


def _conv(layer, groups, shape, params):
    half = layer.kernel_size // 2
    taps = list(itertools.product(range(-half, half + 1), repeat=len(shape)))
    total = sum(g["c"] for g in groups)
    wv = params.get("weight_var", layer.weight_var)
    bv = params.get("bias_var", layer.bias_var)
    k_mix = 0.0
    t_mix = 0.0
    for g in groups:
        for j in taps:
            idx = _shift(shape, j)
            k_mix = k_mix + g["K"][np.ix_(idx, idx)] * (g["c"] / total / len(taps))
            t_mix = t_mix + g["T"][np.ix_(idx, idx)] * (g["c"] / total / len(taps))
    k_new = wv * k_mix + bv
    t_new = wv * t_mix + k_new
    if layer.stride > 1:
        keep = _index(shape)[tuple(slice(None, None, layer.stride) for _ in shape)].reshape(-1)
        k_new, t_new = k_new[np.ix_(keep, keep)], t_new[np.ix_(keep, keep)]
        shape = tuple(n // layer.stride for n in shape)
    return [{"K": k_new, "T": t_new, "c": layer.channels}], shape


def _pointwise(layer, groups, shape, params):
    out = []
    for g in groups:
        k = torch.as_tensor(g["K"])
        d = torch.diagonal(k)
        k11, k22 = d[:, None].expand_as(k), d[None, :].expand_as(k)
        out.append(
            {
                "K": layer.expectation(k11, k22, k).numpy(),
                "T": g["T"] * layer.derivative_expectation(k11, k22, k).numpy(),
                "c": g["c"],
            }
        )
    return out, shape


def _channel_norm(layer, groups, shape, params):
    """y = x/ν with ν(t) = √(K[t, t] + eps) deterministic in the limit: both matrices rescaled."""
    (g,) = groups
    nu = np.sqrt(np.diag(g["K"]) + layer.eps)
    scale = 1 / np.outer(nu, nu)
    return [{"K": g["K"] * scale, "T": g["T"] * scale, "c": g["c"]}], shape


def _linear(groups, matrix):
    return [
        {"K": matrix @ g["K"] @ matrix.T, "T": matrix @ g["T"] @ matrix.T, "c": g["c"]}
        for g in groups
    ]


def _kron(mats):
    out = np.ones((1, 1))
    for m in mats:
        out = np.kron(out, m)
    return out


def _down(layer, groups, shape, params):
    tau = layer.factor
    mats = []
    for n in shape:
        m = np.zeros((n // tau, n))
        for q in range(n // tau):
            if layer.mode == "avg":
                m[q, tau * q : tau * q + tau] = 1 / tau
            else:
                m[q, tau * q] = 1
        mats.append(m)
    return _linear(groups, _kron(mats)), tuple(n // tau for n in shape)


def _up(layer, groups, shape, params):
    tau = layer.factor
    mats = []
    for n in shape:
        m = np.zeros((n * tau, n))
        for t in range(n * tau):
            if layer.mode == "nearest":
                m[t, t // tau] = 1
            elif layer.mode == "bilinear":  # align_corners=False, circular
                u = (t + 0.5) / tau - 0.5
                s = math.floor(u)
                m[t, s % n] += 1 - (u - s)
                m[t, (s + 1) % n] += u - s
            else:
                raise NotImplementedError("sinc: band-limited, not exact on a finite table")
        mats.append(m)
    return _linear(groups, _kron(mats)), tuple(n * tau for n in shape)


def _skip(layer, groups, shape, params):
    short, shape_a = propagate(layer.shortcut, groups, shape, params)
    branch, shape_b = propagate(layer.branch, groups, shape, params)
    assert shape_a == shape_b
    if layer.mode == "concat":
        return short + branch, shape_a
    (a,), (b,) = short, branch
    return [{"K": a["K"] + b["K"], "T": a["T"] + b["T"], "c": a["c"]}], shape_a


def _block(layer, groups, shape, params):
    return propagate(layer.layers, groups, shape, params)


MAPS = {
    "conv": _conv,
    "relu": _pointwise,
    "leaky_relu": _pointwise,
    "erf": _pointwise,
    "downsample": _down,
    "upsample": _up,
    "skip": _skip,
    "block": _block,
    "channel_norm": _channel_norm,
}


def propagate(layers, groups, shape, params):
    for layer in layers:
        groups, shape = MAPS[layer.type_name](layer, groups, shape, params)
    return groups, shape


def input_matrix(arch, shape, params):
    """K_x[t, t'] = variance·exp(−|t − t'|²/(4σ²)), with torus distances (wrap-around)."""
    sigma = params.get("sigma", arch.input.sigma)
    coords = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    coords = coords.reshape(-1, len(shape))
    diff = np.abs(coords[:, None, :] - coords[None, :, :])
    diff = np.minimum(diff, np.array(shape) - diff)
    dist2 = (diff**2).sum(-1)
    k = (dist2 == 0).astype(float) if sigma == 0 else np.exp(-dist2 / (4 * sigma**2))
    return arch.input.variance * k


def torus_kernels(arch, shape: tuple[int, ...], radius: int, params=None):
    """Torus-averaged (K(r), Θ(r)) for |r_d| ≤ radius, in compile_kernel's layout."""
    params = params or {}
    k_in = input_matrix(arch, shape, params)
    groups = [{"K": k_in, "T": np.zeros_like(k_in), "c": arch.input.channels}]
    (out,), out_shape = propagate(arch.layers, groups, shape, params)
    assert out_shape == shape
    result = []
    for key in ("K", "T"):
        table = np.zeros((2 * radius + 1,) * len(shape))
        for r in itertools.product(range(-radius, radius + 1), repeat=len(shape)):
            partner = _shift(shape, tuple(-x for x in r))  # flat index of t + r
            pairs = out[key][np.arange(len(partner)), partner]
            table[tuple(x + radius for x in r)] = pairs.mean()
        result.append(table)
    return result
