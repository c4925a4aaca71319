"""The scheme registry: look-up, generated CLI arguments, config round trips, weights-only
checkpoints, and a scheme added by one class (a loss term and a stopping rule)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest
import torch

from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.dip import schemes as registry
from gpdip.dip.arguments import add_config_arguments, config_from_args
from gpdip.dip.schemes import Scheme, SchemeOptions, get_scheme, option, scheme_names
from gpdip.dip.trainer import CHECKPOINT
from gpdip.errors import GpdipError

PRE_REGISTRY = ("sgd", "sgd-avg", "sgd-input", "sgd-input-avg", "sgld", "noisy-adam")


def test_every_method_is_registered_with_its_options_type():
    names = scheme_names()
    assert set(PRE_REGISTRY) | {"gd"} <= set(names)
    for name in names:
        scheme = get_scheme(name)
        assert scheme.name == name and issubclass(scheme.options_type, SchemeOptions)
        assert scheme.summary  # shown by `gpdip dip --help`


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(GpdipError, match="method 'adam': expected one of") as err:
        DIPConfig.build(method="adam")
    assert all(name in str(err.value) for name in scheme_names())
    with pytest.raises(GpdipError, match="method 'adam'"):
        DIPConfig(method="adam").validate()


def test_options_of_another_method_are_rejected_unless_lenient():
    with pytest.raises(GpdipError, match=r"preconditioner do not apply to method 'sgd'"):
        DIPConfig.build(method="sgd", preconditioner="rmsprop")
    cfg = DIPConfig.build(lenient=True, method="sgd", preconditioner="rmsprop", ema=0.5)
    assert cfg.to_dict()["optimizer"] == "adam" and "preconditioner" not in cfg.to_dict()
    with pytest.raises(GpdipError, match="precondtioner"):  # a typo is caught even so
        DIPConfig.build(lenient=True, method="sgd", precondtioner="rmsprop")


def _dip_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, defaults={"checkpoint_every": 500})
    return parser


def test_cli_has_one_argument_per_field_with_its_help():
    actions = {a.dest: a for a in _dip_parser()._actions}
    for name in scheme_names():
        for f in dataclasses.fields(get_scheme(name).options_type):
            action = actions[f.name]
            assert "--" + f.name.replace("_", "-") in action.option_strings
            assert f.metadata["help"].replace("%", "%%") in action.help
            assert name in action.help  # lists the methods that take it
            assert action.choices == f.metadata.get("choices")
    for f in dataclasses.fields(DIPConfig):
        if f.name != "options":
            assert f.name in actions, f.name
    assert actions["checkpoint_every"].default == 500  # the CLI's own default


def test_cli_arguments_build_the_config():
    args = _dip_parser().parse_args(
        [
            "--method",
            "sgld",
            "--preconditioner",
            "rmsprop",
            "--burn-in",
            "7",
            "--noise-std",
            "25/255",
            "--freeze-preconditioner",
            "--centred",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.method == "sgld" and cfg.centred and cfg.checkpoint_every == 500
    assert cfg.noise_std == pytest.approx(25 / 255)
    opts = cfg.options
    assert (opts.preconditioner, opts.burn_in, opts.freeze_preconditioner) == ("rmsprop", 7, True)
    assert opts.thin == 10  # not given: the scheme's default
    args = _dip_parser().parse_args(["--method", "sgd", "--burn-in", "7"])
    with pytest.raises(GpdipError, match=r"--burn-in applies to method.* not to --method sgd"):
        config_from_args(args)


@pytest.mark.parametrize("method", ["sgd", "sgd-input-avg", "sgld", "noisy-adam", "gd"])
def test_config_round_trip_and_legacy_flat_dicts(method):
    cfg = DIPConfig.build(method=method, iters=20, seed=3)
    assert DIPConfig.from_dict(cfg.to_dict()) == cfg
    # a checkpoint written before the registry carries every method's fields
    legacy = {**cfg.to_dict(), "preconditioner": "none", "ema": 0.99, "thin": 10, "burn_in": 1}
    assert DIPConfig.from_dict(legacy).method == method


@pytest.mark.parametrize("method", (*PRE_REGISTRY, "gd"))
def test_checkpoints_load_weights_only(method, tmp_path):
    net, x = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(0)
    )
    cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=4,
        checkpoint_every=2,
        burn_in=1,
        thin=1,
        log_every=2,
        noise_std=0.1,
        lr=1e-3,
        centred=True,
    )
    fit(
        net,
        x,
        Problem(torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))),
        cfg,
        out_dir=tmp_path,
        device="cpu",
    )
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["t"] == 4 and "scheme" in state


@dataclass
class _DampedOptions(SchemeOptions):
    damping: float = option(0.5, "weight of the added ‖f‖² term")
    patience: int = option(3, "stop after this many steps")


class _Damped(Scheme):
    """A scheme added by one class: MSE + damping·mean(f²), stops after ``patience``."""

    name = "test-damped"
    summary = "test only"
    options_type = _DampedOptions

    def loss(self, run, out):
        return super().loss(run, out) + self.options.damping * out.pow(2).mean()

    def should_stop(self, run):
        return (
            f"patience {self.options.patience} reached" if run.t >= self.options.patience else None
        )


def test_a_new_scheme_is_one_class(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, _Damped.name, _Damped)
    assert "test-damped" in scheme_names()
    net, x = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(0)
    )
    y = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))
    cfg = DIPConfig.build(
        method="test-damped", iters=50, patience=3, damping=2.0, log_every=1, noise_std=0.1
    )
    res = fit(net, x, Problem(y), cfg, device="cpu")
    assert res.iterations == 3 and res.stop_reason == "patience 3 reached"
    first = res.history[0]  # loss = mse + damping·mean(f₀²), f₀ the (untrained) output
    net0, _ = make_network(
        "dip-tiny", (8, 8), 1, width=4, generator=torch.Generator().manual_seed(0)
    )
    f0 = net0(x)[0].detach()
    want = float(((f0 - y) ** 2).mean() + 2.0 * (f0**2).mean())
    assert first["loss"] == pytest.approx(want, rel=1e-5)
    assert first["mse_obs"] == pytest.approx(float(((f0 - y) ** 2).mean()), rel=1e-5)
