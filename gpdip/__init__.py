"""gpdip: exact Gaussian-process kernels and posteriors for the Deep Image Prior.

    >>> import gpdip
    >>> K = gpdip.compile_kernel("conv-d2", size=8, dims=1)
    >>> tuple(K.shape)
    (15,)
"""

from gpdip.arch.parse import load_architecture, parse_architecture, read_architecture
from gpdip.arch.spec import Architecture, InputSpec
from gpdip.errors import GpdipError
from gpdip.finite import montecarlo, network
from gpdip.layers import Block, Conv, Downsample, Erf, LeakyReLU, ReLU, Skip, Upsample
from gpdip.limit.compiler import compile_kernel, compile_kernels

__version__ = "0.1.0"
__all__ = [
    "Architecture", "Block", "Conv", "Downsample", "Erf", "GpdipError", "InputSpec",
    "LeakyReLU", "ReLU", "Skip", "Upsample", "compile_kernel", "compile_kernels",
    "load_architecture", "montecarlo", "network", "parse_architecture", "read_architecture",
]
