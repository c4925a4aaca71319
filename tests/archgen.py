"""A seeded random family of valid architectures that covers every layer type."""

from __future__ import annotations

import random

from gpdip.arch.spec import Architecture, InputSpec
from gpdip.layers import Block, Conv, Downsample, Erf, LeakyReLU, ReLU, Skip, Upsample


def _nonlin(rng: random.Random):
    return rng.choice([ReLU(), LeakyReLU(rng.choice([0.1, 0.2])), Erf()])


def _conv(rng: random.Random, channels: int, **kw) -> Conv:
    return Conv(
        channels,
        kernel_size=kw.get("k", rng.choice([1, 3])),
        weight_var=kw.get("wv", rng.choice([1.0, 1.5, 2.0])),
        bias_var=rng.choice([0.0, 0.1]),
    )


def random_architecture(seed: int, channels: int = 64) -> Architecture:
    """Conv → 2–3 random blocks → conv.  Blocks: non-linearity+conv, down/up, add, concat.

    Upsampling modes are either all sinc or all nearest/bilinear (sinc needs a
    stationary input).  Every non-linearity follows a conv or a linear map of
    conv outputs, so each architecture is valid.
    """
    rng = random.Random(seed)
    up_modes = ["sinc"] if rng.random() < 0.3 else ["nearest", "bilinear"]
    layers: list = [_conv(rng, channels, k=3)]
    for _ in range(rng.choice([2, 3])):
        kind = rng.choice(["plain", "resample", "add", "concat"])
        if kind == "plain":
            layers += [_nonlin(rng), _conv(rng, channels)]
        elif kind == "resample":
            down = rng.choice(
                [
                    Downsample(2, "stride"),
                    Downsample(2, "avg"),
                    Conv(channels, 3, stride=2, weight_var=2.0),
                ]
            )
            body = (
                _nonlin(rng),
                down,
                _conv(rng, channels, k=3),
                _nonlin(rng),
                Upsample(2, rng.choice(up_modes)),
                _conv(rng, channels),
            )
            layers.append(Block("resample", body))
        elif kind == "add":
            layers.append(Skip("add", (_nonlin(rng), _conv(rng, channels, k=3))))
        else:
            layers.append(
                Skip(
                    "concat",
                    (_nonlin(rng), _conv(rng, channels, k=3)),
                    (_conv(rng, channels // 4, k=1),),
                )
            )
            layers.append(_conv(rng, channels))
    layers += [_nonlin(rng), Conv(1, kernel_size=1, weight_var=1.5)]
    sigma = rng.choice([0.0, 0.0, 1.0, 2.0])
    return Architecture(
        InputSpec(channels=channels, sigma=sigma), tuple(layers), name=f"random-{seed}"
    )
