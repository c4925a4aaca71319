"""The NTK limit of GD-trained DIP: predictions, their initialisation variance, tables.

Public API::

    from gpdip.ntk import predict_gd, gd_variance, gd_variance_dense, kernel_tables
"""

from gpdip.ntk.krylov import KrylovFit, gd_filter, lanczos_gd
from gpdip.ntk.operators import BOUNDARIES, CircularGridOperator, dense_theta, grid_operator
from gpdip.ntk.predict import GDPrediction, predict_gd
from gpdip.ntk.tables import kernel_tables
from gpdip.ntk.variance import VarianceEstimate, gd_variance, gd_variance_dense

__all__ = [
    "BOUNDARIES",
    "CircularGridOperator",
    "GDPrediction",
    "KrylovFit",
    "VarianceEstimate",
    "dense_theta",
    "gd_filter",
    "gd_variance",
    "gd_variance_dense",
    "grid_operator",
    "kernel_tables",
    "lanczos_gd",
    "predict_gd",
]
