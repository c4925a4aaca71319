"""ES-WMV: the windowed moving variance against hand-computed windows; the stop rule."""

import pytest
import torch

from gpdip.dip.methods.wmv import WMVStopper, oracle_gap, windowed_variance
from gpdip.errors import GpdipError


def _scalar(v):
    return torch.full((1, 1, 1), float(v))


def test_variance_and_stop_on_a_hand_computed_sequence():
    """W = 3, P = 2 on the scalar iterates 0 1 2 3 3 3 3 5.  Windows by start t:
    [0,1,2]: mean 1, (1+0+1)/3 = 2/3;  [1,2,3]: 2/3;  [2,3,3]: mean 8/3, (4+1+1)/9/3 = 2/9;
    [3,3,3]: 0;  [3,3,3]: 0 (not a new minimum);  [3,3,5]: mean 11/3, (4+4+16)/9/3 = 8/9.
    The minimum (t = 4) is not beaten twice after it, so the rule fires at the 8th iterate,
    returning x_4 = 3."""
    stop = WMVStopper(window=3, patience=2)
    seq = [0, 1, 2, 3, 3, 3, 3, 5]
    for i, v in enumerate(seq, 1):
        stop.push(_scalar(v))
        assert stop.stopped == (i == 8)
    expected = [2 / 3, 2 / 3, 2 / 9, 0.0, 0.0, 8 / 9]
    assert [t for t, _ in stop.variances] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in stop.variances] == pytest.approx(expected, abs=1e-12)
    assert stop.best is not None and stop.best.iteration == 4
    assert float(stop.best.estimate) == 3.0


def test_running_sums_match_the_direct_two_pass_variance():
    """Random image iterates with a large common offset (where Σ‖x‖² − W‖x̄‖² cancels):
    every VAR equals the two-pass variance of its window."""
    gen = torch.Generator().manual_seed(0)
    seq = [100 + torch.randn((2, 5, 4), generator=gen) for _ in range(40)]
    stop = WMVStopper(window=7, patience=1000)
    for x in seq:
        stop.push(x)
    for t, var in stop.variances:
        assert var == pytest.approx(windowed_variance(seq[t - 1 : t + 6]), rel=1e-6, abs=1e-9)


def test_oracle_gap_and_bad_settings():
    assert oracle_gap(28.0, [25.0, 29.5, 27.0]) == pytest.approx(-1.5)
    with pytest.raises(GpdipError, match="no PSNR"):
        oracle_gap(28.0, [])
    with pytest.raises(GpdipError, match="window=1"):
        WMVStopper(window=1)
    with pytest.raises(GpdipError, match="patience=0"):
        WMVStopper(patience=0)
