"""Other answers to DIP's overfitting, each as plain, tested mathematics (issue 13).

========================  ==========================================================
``es-wmv``                early stopping by windowed moving variance (:mod:`.wmv`)
``dip-tv``                DIP + λ·TV(f(z)) (:mod:`.dip_tv`, :mod:`.tv`)
``dip-admm-v1`` / ``-v2`` DIP with a TV prior (or any denoiser) by ADMM (:mod:`.admm`)
``self-guided``           Self-Guided DIP: θ and z, a Monte Carlo mean output
                          (:mod:`.self_guided`)
``aseqdip``               autoencoding sequential DIP, z ← f(z) (:mod:`.aseqdip`)
``dop``                   double over-parameterisation for sparse noise (:mod:`.dop`)
``sgd``                   plain DIP, the baseline (:mod:`.plain`)
========================  ==========================================================

Each method is an object with ``step() -> estimate``; :func:`run_method` drives one for a
budget of network gradient steps, with ES-WMV watching every run.
"""

from gpdip.dip.methods.admm import DIPADMM
from gpdip.dip.methods.aseqdip import ASeqDIP
from gpdip.dip.methods.base import Method, Observation, make_image_input_network
from gpdip.dip.methods.dip_tv import DIPTV
from gpdip.dip.methods.dop import DOP
from gpdip.dip.methods.plain import PlainDIP
from gpdip.dip.methods.runner import METHOD_NAMES, MethodOutcome, build_method, run_method
from gpdip.dip.methods.self_guided import SelfGuidedDIP
from gpdip.dip.methods.ssim import ssim
from gpdip.dip.methods.tv import tv_duality_gap, tv_prox, tv_smooth
from gpdip.dip.methods.wmv import WMVStopper, oracle_gap, windowed_variance

__all__ = [
    "DIPADMM",
    "DIPTV",
    "DOP",
    "METHOD_NAMES",
    "ASeqDIP",
    "Method",
    "MethodOutcome",
    "Observation",
    "PlainDIP",
    "SelfGuidedDIP",
    "WMVStopper",
    "build_method",
    "make_image_input_network",
    "oracle_gap",
    "run_method",
    "ssim",
    "tv_duality_gap",
    "tv_prox",
    "tv_smooth",
    "windowed_variance",
]
