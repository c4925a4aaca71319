"""The methods as trainer schemes: the same numbers as the tested method objects, and
resumable from a checkpoint like every scheme."""

import pytest
import torch

from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.dip.methods import DIPADMM, DIPTV, ASeqDIP, Observation, make_image_input_network
from gpdip.errors import GpdipError


def _task(size=16):
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand((1, size, size), generator=gen)
    return truth, truth + 0.1 * torch.randn(truth.shape, generator=gen)


def _net(method, noisy, seed=1):
    gen = torch.Generator().manual_seed(seed)
    if method in ("self-guided", "aseqdip"):
        return make_image_input_network("dip-tiny", (16, 16), 1, width=4, generator=gen), noisy[
            None
        ].clone()
    return make_network("dip-tiny", (16, 16), 1, width=4, generator=gen)


@pytest.mark.parametrize("method", ["dip-tv", "dip-admm-v1", "aseqdip"])
def test_scheme_reproduces_the_method_object(method):
    """Deterministic methods: 12 trainer steps equal 12 ``step()`` calls of the object."""
    truth, noisy = _task()
    net, x = _net(method, noisy)
    cfg = DIPConfig.build(method=method, iters=12, lr=0.003, log_every=4)
    res = fit(net, x, Problem(noisy, None, truth), cfg, device="cpu")
    net2, x2 = _net(method, noisy)
    obs = Observation(noisy)
    ref = {
        "dip-tv": lambda: DIPTV(net2, x2, obs, lr=0.003),
        "dip-admm-v1": lambda: DIPADMM(net2, x2, obs, lr=0.003),
        "aseqdip": lambda: ASeqDIP(net2, obs, lr=0.003),
    }[method]()
    for _ in range(12):
        ref.step()
    with torch.no_grad():
        expected = ref.z[0] if method == "aseqdip" else net2(x2)[0]
    got = res.mean if method == "aseqdip" else res.final
    assert torch.allclose(got, expected, atol=1e-6)


class _InterruptError(Exception):
    pass


@pytest.mark.parametrize("method", ["dop", "self-guided", "dip-admm-v2", "es-wmv"])
def test_resume_after_interruption_matches_uninterrupted(method, tmp_path):
    """Killed after step 17 (checkpoint at 10): the resumed run equals an uninterrupted
    one, so the scheme's own state (g, h, z, x, u, the FGP dual, the WMV window and the
    run's generator) is all in the checkpoint."""
    truth, noisy = _task()
    extra = {"dop": {"s_lr": 0.05, "optimizer": "adam"}, "es-wmv": {"window": 3, "patience": 50}}
    cfg = DIPConfig.build(
        method=method,
        iters=24,
        lr=0.003,
        log_every=5,
        checkpoint_every=10,
        seed=3,
        **extra.get(method, {}),
    )
    net, x = _net(method, noisy)
    ref = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=tmp_path / "ref", device="cpu")

    def crash(t, rec):
        if t == 17:
            raise _InterruptError

    net, x = _net(method, noisy)
    with pytest.raises(_InterruptError):
        fit(
            net,
            x,
            Problem(noisy, None, truth),
            cfg,
            out_dir=tmp_path / "run",
            device="cpu",
            callback=crash,
        )
    net, x = _net(method, noisy, seed=99)  # everything must come from the checkpoint
    res = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=tmp_path / "run", device="cpu")
    assert torch.equal(res.final, ref.final)
    assert (res.mean is None) == (ref.mean is None)
    if res.mean is not None:
        assert torch.equal(res.mean, ref.mean)
    assert [h["psnr"] for h in res.history] == [h["psnr"] for h in ref.history]


def test_es_wmv_stops_the_run_and_answers_with_the_detected_iterate():
    truth, noisy = _task()
    net, x = _net("es-wmv", noisy)
    cfg = DIPConfig.build(method="es-wmv", iters=400, lr=0.01, window=5, patience=10, log_every=1)
    res = fit(net, x, Problem(noisy, None, truth), cfg, device="cpu")
    assert res.stop_reason is not None and res.iterations < 400
    last = res.history[-1]
    assert last["wmv_iter"] <= res.iterations - 10  # the minimum, then P steps without one
    assert res.mean is not None and last["wmv_gap"] <= 0


def test_image_input_methods_refuse_a_network_with_other_input_channels():
    truth, noisy = _task()
    net, x = make_network("dip-tiny", (16, 16), 1, width=4)  # 8 input channels, 1 output
    cfg = DIPConfig.build(method="aseqdip", iters=2)
    with pytest.raises(GpdipError, match="input has 8 channels, the image 1"):
        fit(net, x, Problem(noisy, None, truth), cfg, device="cpu")
