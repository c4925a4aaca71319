"""The GP engine: grid operators, CG, exact sampling, posteriors, kernels, inpainting.

Public API::

    from gpdip.gp import inpaint, sample_prior, GridKernelOperator, DIPKernel, RBFTable
"""

from gpdip.gp.cg import CGConvergenceWarning, CGInfo, conjugate_gradients, grid_preconditioner
from gpdip.gp.grid import dense_from_table, table_from_offsets
from gpdip.gp.hyper import fit_hyperparameters, make_kernel, select_kernel
from gpdip.gp.inpaint import gpytorch_posterior, inpaint
from gpdip.gp.io import GpdipWarning, load_image, load_mask, psnr, save_array, ssim
from gpdip.gp.keops import keops_available, kernel_matmul, scattered_posterior_mean
from gpdip.gp.kernels import DIPKernel, Matern52Table, RBFTable, TableKernel, interpolate_table
from gpdip.gp.posterior import Posterior, dense_posterior, grid_posterior
from gpdip.gp.sampling import CirculantSampler, sample_prior, sample_prior_dense
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

__all__ = [
    "CGConvergenceWarning",
    "CGInfo",
    "CirculantSampler",
    "DIPKernel",
    "GpdipWarning",
    "GridKernelOperator",
    "MaskedGridOperator",
    "Matern52Table",
    "Posterior",
    "RBFTable",
    "TableKernel",
    "conjugate_gradients",
    "dense_from_table",
    "dense_posterior",
    "fit_hyperparameters",
    "gpytorch_posterior",
    "grid_posterior",
    "grid_preconditioner",
    "inpaint",
    "interpolate_table",
    "keops_available",
    "kernel_matmul",
    "load_image",
    "load_mask",
    "make_kernel",
    "psnr",
    "sample_prior",
    "sample_prior_dense",
    "save_array",
    "scattered_posterior_mean",
    "select_kernel",
    "ssim",
    "table_from_offsets",
]
