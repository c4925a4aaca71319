"""gpdip: exact Gaussian-process kernels and posteriors for the Deep Image Prior.

    >>> import gpdip
    >>> K = gpdip.compile_kernel("conv-d2", size=8, dims=1)
    >>> tuple(K.shape)
    (15,)
"""

from . import montecarlo, network
from .compiler import compile_kernel
from .errors import GpdipError
from .parse import load_architecture, parse_architecture, read_architecture
from .spec import (
                   Architecture,
                   Block,
                   Conv,
                   Downsample,
                   Erf,
                   InputSpec,
                   LeakyReLU,
                   ReLU,
                   Skip,
                   Upsample,
)

__version__ = "0.1.0"
__all__ = [
    "Architecture", "Block", "Conv", "Downsample", "Erf", "GpdipError", "InputSpec",
    "LeakyReLU", "ReLU", "Skip", "Upsample", "compile_kernel", "load_architecture",
    "montecarlo", "network", "parse_architecture", "read_architecture",
]
