"""Compiled kernels are symmetric, positive semi-definite and differentiable."""

from __future__ import annotations

import pytest
import torch

from gpdip import compile_kernel, load_architecture
from gpdip.arch.catalog import catalog_names
from tests.archgen import random_architecture

FAST_CATALOG = [n for n in catalog_names() if not n.startswith("skip5")]


def embedding_spectrum(kernel: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the circulant embedding of a centred (2S−1)^d table (real FFT)."""
    shifted = torch.fft.ifftshift(kernel)
    return torch.fft.fftn(shifted).real


def check_symmetric_psd(kernel: torch.Tensor) -> None:
    """Symmetric, and the covariance of the S^d grid points it describes is PSD.

    The circulant embedding's spectrum being ≥ 0 is sufficient; smooth long-range kernels
    (Deep Decoder's) can fail it while being PSD, so the exact test is then the dense
    (block-)Toeplitz matrix's smallest eigenvalue.
    """
    assert torch.equal(kernel, kernel.flip(tuple(range(kernel.dim())))) or torch.allclose(
        kernel, kernel.flip(tuple(range(kernel.dim()))), rtol=0, atol=1e-14 * float(kernel.max())
    )
    spectrum = embedding_spectrum(kernel)
    if float(spectrum.min()) >= -1e-10 * float(spectrum.max()):
        return
    from gpdip.gp import dense_from_table

    eigenvalues = torch.linalg.eigvalsh(dense_from_table(kernel))
    assert float(eigenvalues.min()) >= -1e-10 * float(eigenvalues.max())


@pytest.mark.parametrize("name", FAST_CATALOG)
def test_catalog_kernels_symmetric_psd_1d(name):
    check_symmetric_psd(compile_kernel(name, 64, dims=1))


@pytest.mark.parametrize("name", ["unet2", "conv-d3-s2", "ae-d2", "ae-d3-s2"])
def test_catalog_kernels_symmetric_psd_2d(name):
    check_symmetric_psd(compile_kernel(name, 24, dims=2))


def test_skip5_compiles_2d():
    for mode in ("nearest", "bilinear"):
        kernel = compile_kernel(f"skip5-{mode}", 8, dims=2)
        check_symmetric_psd(kernel)


@pytest.mark.parametrize("seed", range(6))
def test_random_family_symmetric_psd(seed):
    check_symmetric_psd(compile_kernel(random_architecture(seed), 16, dims=2))


def test_psd_check_catches_a_non_psd_table():
    kernel = torch.tensor([1.2, 1.0, 1.2], dtype=torch.float64)  # |K(±1)| > K(0): not PSD
    assert float(embedding_spectrum(kernel).min()) < 0


@pytest.mark.parametrize("param", ["sigma", "weight_var", "bias_var"])
def test_gradcheck(param):
    value = {"sigma": 1.3, "weight_var": 1.7, "bias_var": 0.2}[param]
    x = torch.tensor(value, dtype=torch.float64, requires_grad=True)

    def f(v):
        return compile_kernel("unet2", 5, dims=2, params={param: v})

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_nearest_and_erf_paths():
    arch = random_architecture(1)  # contains erf and an upsampling
    x = torch.tensor(1.1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s: compile_kernel(arch, 4, dims=1, params={"sigma": s}), (x,), eps=1e-6, atol=1e-7
    )


def test_layout_and_dims():
    k2 = compile_kernel("conv-d2-s2", (5, 7), dims=2)
    assert k2.shape == (9, 13) and k2.dtype == torch.float64
    assert int(torch.argmax(k2)) == 4 * 13 + 6  # K[H-1, W-1] is the variance
    k1 = compile_kernel("conv-d2-s2", 7, dims=1)
    # A separable input (Gaussian) and conv-only net: the 2-D row through 0 is the 1-D kernel.
    assert torch.allclose(k2[4, :], k1[:13] if k1.shape[0] == 13 else k1, rtol=1e-12)


def test_float32_agrees_with_float64():
    k64 = compile_kernel("unet2", 16, dims=2)
    k32 = compile_kernel("unet2", 16, dims=2, dtype=torch.float32)
    assert k32.dtype == torch.float32
    assert float((k32.double() - k64).abs().max() / k64.abs().max()) < 1e-5


def test_scaled_keeps_channel_ratios():
    arch = load_architecture("unet2")
    wide = arch.scaled(512)
    assert wide.max_channels() == 512
    assert torch.allclose(compile_kernel(wide, 8), compile_kernel(arch, 8), rtol=0.02)


@pytest.mark.parametrize(
    "name,size,dims",
    [
        ("conv-d3", 20, 2),
        ("conv-d3-s2", 40, 1),
        ("ae-d2", 30, 2),
        ("unet2", 40, 2),
        ("ae-d4", 64, 1),
        ("skip5-nearest", 80, 1),
        ("skip5-bilinear", 200, 1),
        pytest.param("skip5-nearest", 72, 2, marks=pytest.mark.slow),
    ],
)
def test_far_field_extension_is_exact(name, size, dims, monkeypatch):
    """The periodic continuation beyond the correlation radius equals the full recursion."""
    import math

    from gpdip.layers.base import far_radius
    from gpdip.limit import compiler
    from gpdip.limit.farfield import input_radius

    arch = load_architecture(name)
    far = far_radius(arch.layers, input_radius(arch.input.sigma))
    period = compiler.symbolic_output(arch).period
    assert far + period < size - 1  # the continuation is really exercised
    fast = compile_kernel(arch, size, dims=dims)
    monkeypatch.setattr(compiler, "far_radius", lambda *args: math.inf)
    full = compile_kernel(arch, size, dims=dims)
    assert float((fast - full).abs().max()) <= 1e-14 * float(full.abs().max())
