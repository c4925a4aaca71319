"""Thin Deep-Image-Prior trainer with SGD variants and true SGLD (Cheng et al. 2019, Sec. 4, 5.2).

Public API::

    from gpdip.dip import DIPConfig, Problem, fit, make_network
    net, x = make_network("unet2", (64, 64), out_channels=1, width=64)
    result = fit(net, x, Problem(noisy, mask, truth), DIPConfig.build(method="sgld", iters=3000))
    result.mean, result.std   # posterior mean and per-pixel std, (C, H, W)
"""

from gpdip.dip.config import DIPConfig
from gpdip.dip.images import (
    add_noise,
    bernoulli_mask,
    center_crop,
    estimate_noise_std,
    load_image,
    load_mask,
    psnr,
    save_image,
)
from gpdip.dip.nets import TINY, TinyEncoderDecoder, check_output_size, make_network, uniform_input
from gpdip.dip.schemes import Scheme, SchemeOptions, get_scheme, register, scheme_names
from gpdip.dip.schemes.sgld import sgld_step_size
from gpdip.dip.sgld import EMA, SGLD, Welford, perturb_noisy_adam
from gpdip.dip.trainer import DIPResult, Problem, default_device, fit

__all__ = [
    "EMA",
    "SGLD",
    "TINY",
    "DIPConfig",
    "DIPResult",
    "Problem",
    "Scheme",
    "SchemeOptions",
    "TinyEncoderDecoder",
    "Welford",
    "add_noise",
    "bernoulli_mask",
    "center_crop",
    "check_output_size",
    "default_device",
    "estimate_noise_std",
    "fit",
    "get_scheme",
    "load_image",
    "load_mask",
    "make_network",
    "perturb_noisy_adam",
    "psnr",
    "register",
    "save_image",
    "scheme_names",
    "sgld_step_size",
    "uniform_input",
]
