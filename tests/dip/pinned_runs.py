"""Short seeded DIP runs of every pre-registry method, shared by the pin test and the
script that recorded the pinned numbers (before the scheme registry replaced the trainer's
method branches)."""

from __future__ import annotations

import torch

from gpdip.dip import DIPConfig, Problem, add_noise, fit, make_network, psnr

# (case name, method, scheme-specific options): every branch the old trainer had
CASES: list[tuple[str, str, dict]] = [
    ("sgd", "sgd", {}),
    ("sgd-plain-optimizer", "sgd", {"optimizer": "sgd", "lr": 0.05}),
    ("sgd-avg", "sgd-avg", {"ema": 0.9}),
    ("sgd-input", "sgd-input", {"reg_noise_std": 0.05}),
    ("sgd-input-avg", "sgd-input-avg", {"ema": 0.9, "reg_noise_std": 0.05}),
    ("sgld", "sgld", {"burn_in": 10, "thin": 2}),
    ("sgld-psgld", "sgld", {"burn_in": 10, "thin": 2, "preconditioner": "rmsprop", "lr": 1e-3}),
    (
        "sgld-psgld-frozen",
        "sgld",
        {
            "burn_in": 10,
            "thin": 2,
            "preconditioner": "rmsprop",
            "lr": 1e-3,
            "freeze_preconditioner": True,
        },
    ),
    (
        "sgld-isotropic-decay",
        "sgld",
        {
            "burn_in": 10,
            "thin": 2,
            "prior": "isotropic",
            "weight_decay": 0.5,
            "step_decay_gamma": 0.6,
            "step_decay_b": 10.0,
        },
    ),
    ("noisy-adam", "noisy-adam", {"burn_in": 10, "thin": 2}),
    ("noisy-adam-all", "noisy-adam", {"burn_in": 10, "thin": 2, "noisy_adam_params": "all"}),
    ("sgd-optimize-input", "sgd", {"optimize_input": True}),
]

CASES_1D: list[tuple[str, str, dict]] = [
    ("1d-sgd", "sgd", {}),
    ("1d-sgld", "sgld", {"burn_in": 5, "thin": 2}),
    ("1d-sgld-psgld", "sgld", {"burn_in": 5, "thin": 2, "preconditioner": "rmsprop", "lr": 1e-3}),
]


def run_case_1d(method: str, options: dict) -> dict[str, float]:
    """20 steps of the catalog's conv-d2 (width 8, exact limit prior: its zero-variance
    biases are held fixed by SGLD) on a 1-D signal of 32 samples."""
    from gpdip.dip.signal1d import make_network_1d

    g = torch.Generator().manual_seed(5)
    truth = torch.sin(torch.linspace(0, 6, 32)).reshape(1, 1, 32)
    noisy = truth + 0.1 * torch.randn(truth.shape, generator=g)
    mask = torch.rand((1, 1, 32), generator=g) < 0.6
    net, x = make_network_1d("conv-d2", 32, width=8, generator=torch.Generator().manual_seed(2))
    kw = {"iters": 20, "log_every": 10, "noise_std": 0.1, "seed": 4, "lr": 0.01, **options}
    res = fit(
        net,
        x,
        Problem(noisy, mask, truth),
        DIPConfig.build(method=method, **kw),
        device="cpu",
    )
    out = {"final_psnr": psnr(res.final, truth), "loss": res.history[-1]["loss"]}
    if res.mean is not None:
        out["mean_psnr"] = psnr(res.mean, truth)
    return out


def run_case(method: str, options: dict) -> dict[str, float]:
    """30 steps of dip-tiny (width 8) on a 16×16 noisy sinusoid; numbers to pin."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    truth = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy))[None]
    noisy = add_noise(truth, 0.1, g)
    mask = torch.rand((1, 16, 16), generator=g) < 0.7
    net, x = make_network(
        "dip-tiny", (16, 16), 1, width=8, generator=torch.Generator().manual_seed(1)
    )
    kw = {
        "iters": 30,
        "log_every": 10,
        "stop_iter": 20,
        "noise_std": 0.1,
        "seed": 3,
        "lr": 0.01,
        **options,
    }
    cfg = DIPConfig.build(method=method, **kw)
    res = fit(net, x, Problem(noisy, mask, truth), cfg, device="cpu")
    out = {
        "final_psnr": psnr(res.final, truth),
        "loss": res.history[-1]["loss"],
        "mse_obs": res.history[-1]["mse_obs"],
        "stop_psnr": psnr(res.stop, truth),
        "best_iter": float(res.best_iter or 0),
    }
    if res.mean is not None:
        out["mean_psnr"] = psnr(res.mean, truth)
    if res.std is not None:
        out["std_mean"] = float(res.std.mean())
    return out


if __name__ == "__main__":
    import json

    torch.set_num_threads(1)
    pinned = {name: run_case(m, o) for name, m, o in CASES}
    for name, m, o in CASES_1D:
        pinned[name] = run_case_1d(m, o)
    print(json.dumps(pinned, indent=1))
