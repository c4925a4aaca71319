#!/usr/bin/env python
"""neural-tangents' NNGP and NTK for three small conv nets, saved as an independent reference.

Runs in an environment with JAX and neural-tangents (not a gpdip dependency), e.g.

    python -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install "jax[cpu]==0.4.30" neural-tangents==0.6.5
    /tmp/ntenv/bin/python scripts/neural_tangents_reference.py --out tests/data/neural_tangents.npz

neural-tangents computes kernels for a *given* input, so the input is one wide white-noise
image (C channels, circular padding): its empirical covariance is δ(r) ± O(1/√C), and the
stationary kernels, averaged over positions, match gpdip's up to that noise (C = 4096:
about 1.6e-2 per entry).  tests/limit/test_neural_tangents.py compares the saved tables with
``gpdip.compile_kernels`` (no JAX needed there).  Each net uses the NTK parameterisation,
W_std = √weight_var and b_std = √bias_var, as gpdip's.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from neural_tangents import stax

jax.config.update("jax_enable_x64", True)

SIZE = 16
RADIUS = 5
CHANNELS = 4096


def nets() -> dict[str, tuple]:
    def conv(c: int, k: int = 3, wv: float = 2.0, bv: float = 0.0):
        return stax.Conv(
            c,
            (k, k),
            padding="CIRCULAR",
            W_std=wv**0.5,
            b_std=bv**0.5 or None,
            parameterization="ntk",
        )

    return {
        "relu": stax.serial(conv(64), stax.Relu(), conv(64), stax.Relu(), conv(1, 1)),
        "leaky_erf": stax.serial(
            conv(64, bv=0.1), stax.LeakyRelu(0.2), conv(64, wv=1.5), stax.Erf(), conv(1, 1, wv=1.0)
        ),
        "erf": stax.serial(conv(64, wv=1.0, bv=0.05), stax.Erf(), conv(1, 3, wv=1.7)),
    }


def stationary(kernel: np.ndarray) -> np.ndarray:
    """mean_t k(t, t + r) for |r_d| ≤ RADIUS from the position kernel.

    neural-tangents orders the spatial axes of a 2-D kernel as (H, H', W, W').
    """
    out = np.zeros((2 * RADIUS + 1,) * 2)
    for dy in range(-RADIUS, RADIUS + 1):
        for dx in range(-RADIUS, RADIUS + 1):
            vals = [
                kernel[i, (i + dy) % SIZE, j, (j + dx) % SIZE]
                for i in range(SIZE)
                for j in range(SIZE)
            ]
            out[dy + RADIUS, dx + RADIUS] = np.mean(vals)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    x = np.random.default_rng(0).standard_normal((1, SIZE, SIZE, CHANNELS))
    tables = {}
    for name, (_, _, kernel_fn) in nets().items():
        k = kernel_fn(x, None, ("nngp", "ntk"))
        tables[f"{name}__nngp"] = stationary(np.asarray(k.nngp)[0, 0])
        tables[f"{name}__ntk"] = stationary(np.asarray(k.ntk)[0, 0])
        print(
            name,
            float(tables[f"{name}__nngp"][RADIUS, RADIUS]),
            float(tables[f"{name}__ntk"][RADIUS, RADIUS]),
        )
    np.savez(args.out, **tables)


if __name__ == "__main__":
    main()
