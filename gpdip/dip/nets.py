"""Networks and inputs for the trainer.

:func:`make_network` defers to the kernel compiler's builder
(``gpdip.finite.network.build_network`` / ``sample_input``, imported lazily) and
adds the practical DIP departures from the infinite-width limit as
pass-through options: BatchNorm, reflection padding, PyTorch's default
init and the original DIP input (uniform noise in [0, 0.1], mean 0.05).

``arch="dip-tiny"`` is a small self-contained encoder–decoder used by tests
and when the builder is unavailable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gpdip.errors import GpdipError

TINY = "dip-tiny"


class TinyEncoderDecoder(nn.Module):
    """Two stride-2 conv downsamplings, two bilinear upsamplings, skip connections.

    Maps ``(N, in_ch, H, W) → (N, out_ch, H, W)`` for H, W multiples of 4.
    """

    def __init__(
        self, in_ch: int = 8, width: int = 32, out_ch: int = 1, pad: str = "zeros"
    ) -> None:
        super().__init__()

        def conv(ci: int, co: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(ci, co, 3, stride, 1, padding_mode=pad),  # type: ignore[arg-type]
                nn.ReLU(),
            )

        self.d1, self.d2 = conv(in_ch, width, 2), conv(width, width, 2)
        self.u2, self.u1 = conv(2 * width, width), conv(width + in_ch, width)
        self.head = nn.Conv2d(width, out_ch, 1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.d1(x)
        h2 = self.d2(h1)
        u = self.u2(torch.cat([self.up(h2), h1], 1))
        u = self.u1(torch.cat([self.up(u), x], 1))
        return self.head(u)


def uniform_input(
    channels: int, shape: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """The original DIP input: ``(1, channels, H, W)`` uniform on [0, 0.1] (mean 0.05)."""
    return torch.rand((1, channels, *shape), generator=generator) * 0.1


def make_network(
    arch: str | Any,
    shape: tuple[int, int],
    out_channels: int,
    *,
    width: int | None = None,
    init: str = "limit",
    batchnorm: bool = False,
    padding: str | None = None,
    input_kind: str = "limit",
    generator: torch.Generator | None = None,
    parameterization: str = "standard",
) -> tuple[nn.Module, torch.Tensor]:
    """Build ``(net, input)`` for an image of spatial ``shape`` = (H, W).

    ``input`` has shape ``(1, C_in, H, W)``; ``net(input)`` should have shape
    ``(1, out_channels, H, W)`` (checked by :func:`check_output_size`).
    ``parameterization="ntk"``: every weight and bias N(0, 1), a conv computing
    √(weight_var/fan_in)·Σ w·x + √bias_var·b (catalog architectures only).
    """
    check_parameterization(parameterization, arch)
    if input_kind not in ("limit", "uniform"):
        raise GpdipError(f"input kind '{input_kind}': expected 'limit' or 'uniform'")
    if init not in ("limit", "pytorch"):
        raise GpdipError(f"init '{init}': expected 'limit' or 'pytorch'")
    if arch == TINY:
        pad = "reflect" if padding in ("reflect", "reflection") else "zeros"
        net = TinyEncoderDecoder(8, width or 32, out_channels, pad)
        if init == "limit":
            _limit_init(net, generator)
        annotate(net, arch_name=TINY)
        return net, uniform_input(8, shape, generator)
    from gpdip.finite import network  # lazy: only needed for catalog architectures

    padding = {"reflection": "reflect", "zeros": "zero"}.get(padding or "", padding)
    built = network.build_network(
        arch,
        dims=2,
        width=width,
        out_channels=out_channels,
        init=init,
        batchnorm=batchnorm,
        padding=padding,
        generator=generator,
        parameterization=parameterization,
    )
    annotate(built, arch_name=str(arch))  # for size-mismatch messages
    if init == "limit" and not batchnorm:
        attach_limit_prior(built, arch)
    return built, _builder_input(network, arch, shape, width, input_kind, generator)


PARAMETERIZATIONS = ("standard", "ntk")


def check_parameterization(parameterization: str, arch: Any) -> None:
    """:class:`GpdipError` unless ``parameterization`` is one the builder of ``arch`` has."""
    if parameterization not in PARAMETERIZATIONS:
        raise GpdipError(
            f"parameterization '{parameterization}': expected one of {', '.join(PARAMETERIZATIONS)}"
        )
    if parameterization != "standard" and arch == TINY:
        raise GpdipError(
            f"parameterization '{parameterization}': '{TINY}' has only the standard one; "
            "expected a catalog architecture"
        )


def attach_limit_prior(net: nn.Module, arch: Any) -> None:
    """Give a limit-initialised catalog network its exact prior (``net.prior_variances``,
    read by the trainer's SGLD), when the architecture has one (see
    :func:`limit_prior_variances`)."""
    variances = limit_prior_variances(net, arch)
    if variances is not None:
        annotate(net, prior_variances=variances)


def annotate(net: nn.Module, **attrs: Any) -> None:
    """Attach plain (non-parameter) attributes to a module: ``arch_name`` (for error
    messages) and ``prior_variances`` (the trainer's exact SGLD prior)."""
    for name, value in attrs.items():
        object.__setattr__(net, name, value)  # a plain attribute, not a submodule/buffer


def limit_prior_variances(net: nn.Module, arch: Any) -> dict[str, float] | None:
    """Per-parameter prior variance of the limit init (weight_var/fan_in for conv weights,
    bias_var for biases), as recorded by the network builder; None when some parameter has
    none (see :func:`gpdip.finite.network.prior_variances`)."""
    from gpdip.finite.network import prior_variances

    return prior_variances(net)


def _builder_input(
    network: Any,
    arch: Any,
    shape: tuple[int, int],
    width: int | None,
    kind: str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    try:
        x = network.sample_input(arch, shape, width=width, generator=generator, kind=kind)
    except TypeError:
        if kind != "uniform":
            raise
        # a builder without the "uniform" variant: same channel count, DIP's U[0, 0.1]
        x = network.sample_input(arch, shape, width=width, generator=generator)
        x = uniform_input(x.shape[1], shape, generator)
    return x if x.dim() == 4 else x[None]


@torch.no_grad()
def _limit_init(net: nn.Module, generator: torch.Generator | None) -> None:
    """Weights N(0, 2/fan_in) (ReLU-variance-preserving), zero biases — the limit's prior."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.zero_()


@torch.no_grad()
def check_output_size(
    net: nn.Module, x: torch.Tensor, image_shape: tuple[int, ...], arch_name: str = "network"
) -> None:
    """Raise :class:`GpdipError` unless ``net(x)`` has shape ``(1, C, H, W)`` = image's.

    On a spatial mismatch the message gives the size multiple the architecture
    needs, found by probing small inputs (powers of two up to 256).
    """
    c, h, w = image_shape
    was_training = net.training
    net.eval()  # no BatchNorm running-statistics update from this probe
    try:
        y = net(x)
    except (RuntimeError, GpdipError) as exc:  # torch shape errors, the builder's skip check
        y, err = None, exc
    finally:
        net.train(was_training)
    if y is not None and tuple(y.shape) == (1, c, h, w):
        return
    if y is not None and tuple(y.shape[2:]) == (h, w):
        raise GpdipError(
            f"architecture '{arch_name}' outputs {y.shape[1]} channels but the image "
            f"has {c}; expected out_channels={c}"
        )
    got = f"output {tuple(y.shape)}" if y is not None else f"an error ({err})"
    mult = _required_multiple(net, x.shape[1], arch_name)
    hint = ""
    if mult:
        lo = lambda n: max(mult, n // mult * mult)  # noqa: E731
        hint = (
            f"; it needs height and width that are multiples of {mult} "
            f"(e.g. {lo(h)}×{lo(w)} or {lo(h) + mult}×{lo(w) + mult}); crop or pad the image"
        )
    raise GpdipError(
        f"architecture '{arch_name}' maps input {tuple(x.shape)} to {got}, "
        f"but the image is {h}×{w}{hint}"
    )


@torch.no_grad()
def _required_multiple(net: nn.Module, in_ch: int, arch: Any = None) -> int | None:
    """The builder's ``total_downsampling(arch)`` if it knows the architecture, else the
    smallest power of two m such that sizes m, 2m and 3m all come back unchanged."""
    if arch not in (None, "network", TINY):
        try:
            from gpdip.finite.network import total_downsampling

            return int(total_downsampling(arch))
        except Exception:  # unknown to the builder (e.g. a custom module): probe
            pass

    def ok(n: int) -> bool:
        try:
            return tuple(net(torch.zeros(1, in_ch, n, n)).shape[2:]) == (n, n)
        except (RuntimeError, GpdipError):
            return False

    was_training = net.training
    net.eval()  # BatchNorm on a 1×1 probe would fail in training mode
    try:
        for k in range(8):
            m = 2**k
            if ok(m) and ok(2 * m) and ok(3 * m):
                return m
        return None
    finally:
        net.train(was_training)
