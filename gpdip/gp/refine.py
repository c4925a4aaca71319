"""Mixed-precision CG: float32 iterations, float64 residuals ("reliable updates").

A CG iteration on the grid is FFTs and element-wise passes over the padded grid; in
float32 they take about 0.6x their float64 time (512^2 unet2: masked matvec 6.3 against
10.6 ms, extension preconditioner 5.9 against 10.6 ms).  Float32 CG alone stalls, though:
its recurrence residual drifts from the true one (the same 512^2 solve: a true residual of
3.9e-5 when the recurrence reports 1e-5).  Here CG runs in float32 and, whenever a
column's recurrence residual has fallen by ``DELTA`` since the last update (or every
``MAX_GAP`` iterations), the float32 iterate is added into a float64 one and the residual
is recomputed in float64 (residual replacement, van der Vorst & Ye 2000; the "reliable
updates" of Clark et al. 2010 use it for mixed precision)::

    x64 <- x64 + x32,   x32 <- 0,   r <- b - A x64  (float64),   r32 <- r

The search direction is kept, so CG does not restart (restarting from the residual every
1e-3, classic iterative refinement, took 142 iterations where float64 takes 77 on
skip5-bilinear).  A column stops on its float64 residual, ``||b - A x|| <= tol ||b||``:
the float64 CG's criterion.  If two updates in a row fail to shrink the worst float64
residual by ``MIN_GAIN``, the solve goes on in float64 CG from ``x64``, so the answer
never depends on float32 being good enough.

Measured on Lena 512^2 with a 50% mask, tol 1e-6, one thread (float64 -> mixed,
iterations and seconds): unet2 at noise 1.5e-7 34 -> 35, 0.72 -> 0.54-0.61 s;
skip5-bilinear at 1e-6 77 -> 91, 2.5 -> 1.4-2.0 s; ae-d3 at 1e-5 37 -> 38, 0.75 -> 0.51 s;
conv-d2-s6 at 1e-4 with the extension preconditioner only 239 -> 267, 4.9 -> 3.0 s
(with ``precond="auto"`` it switches to Schwarz at iteration 5 and runs on in float64:
52 -> 52).  Side by side: ``python scripts/bench_precision.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from gpdip.gp.cg import (
    CGConvergenceWarning,
    CGInfo,
    MatVec,
    Switch,
    conjugate_gradients,
    next_direction,
    progress_bar,
    row_dot,
    tick,
    warn_unconverged,
)

#: A column's recurrence residual falling by this factor since the last update triggers
#: the next (0.3 and 0.1 cost the same on the kernels above; 0.01 stalled on skip5-bilinear:
#: float32's recurrence never fell that far below the true residual).
DELTA = 0.1

#: Longest run of float32 iterations without an update.
MAX_GAP = 25

#: Updates must shrink the worst float64 residual by this factor, twice in a row at
#: worst, or the solve continues in float64.
MIN_GAIN = 0.9


def refined_cg(
    matvec: MatVec,
    matvec_low: MatVec,
    rhs: Tensor,
    precond_low: MatVec,
    precond: Callable[[], MatVec],
    tol: float = 1e-6,
    max_iter: int = 1000,
    progress: bool = False,
    switch: Switch | None = None,
    low: torch.dtype = torch.float32,
) -> tuple[Tensor, CGInfo]:
    """Solve ``A X = B`` column-wise to ``||B - A X|| <= tol ||B||`` (float64 residuals).

    Args:
        matvec: ``A`` on float64 vectors ``(B, n)``.
        matvec_low: the same ``A`` on ``low`` (float32) vectors.
        rhs: ``(B, n)`` or ``(n,)`` float64 right-hand sides.
        precond_low: preconditioner on ``low`` vectors.
        precond: builds the float64 preconditioner, called only if float32 stalls.
        switch: as in :func:`~gpdip.gp.cg.conjugate_gradients`.  When it gives a
            preconditioner the solve goes on in float64 CG with it: the Schwarz
            preconditioner's sparse product is float64 whatever the vectors, so float32
            would gain nothing there.
        low: the dtype of ``matvec_low`` and ``precond_low``.
    Returns:
        ``X`` shaped like ``rhs`` and a :class:`CGInfo` whose ``residual`` is float64's.
    """
    squeeze = rhs.dim() == 1
    b = rhs[None] if squeeze else rhs
    state = _Reliable(matvec, b, tol)
    its, switched = _float32_phase(state, matvec_low, precond_low, max_iter, switch, low, progress)
    if its < max_iter and bool((state.rel > tol).any()):  # float64 from the current iterate
        column_tol = tol / state.rel.clamp_min(state.tiny)  # ||r_col|| <= tol ||b_col||
        exact = switched[1] if switched[1] is not None else precond()
        with warnings.catch_warnings():  # one warning, below, with the float64 residual
            warnings.simplefilter("ignore", CGConvergenceWarning)
            d, info = conjugate_gradients(
                matvec, state.r, exact, column_tol, max_iter - its, progress
            )
        its += info.iterations
        state.x.add_(d)
        state.refresh()
    worst = float(state.rel.max())
    info = CGInfo(its, worst, worst <= tol, switched[0])
    if not info.converged:
        warn_unconverged(info, tol)
    return (state.x[0] if squeeze else state.x), info


class _Reliable:
    """The float64 iterate ``x``, its true residual ``r`` and ``rel = ||r|| / ||b||``."""

    def __init__(self, matvec: MatVec, b: Tensor, tol: float):
        self.matvec, self.b, self.tol = matvec, b, tol
        self.tiny = torch.finfo(b.dtype).tiny
        self.bnorm = b.norm(dim=-1).clamp_min(self.tiny)
        self.x = torch.zeros_like(b)
        self.r = b.clone()
        self.rel = self.r.norm(dim=-1) / self.bnorm

    def refresh(self) -> None:
        self.r = self.b - self.matvec(self.x)
        self.rel = self.r.norm(dim=-1) / self.bnorm


def _float32_phase(
    state: _Reliable,
    matvec_low: MatVec,
    precond_low: MatVec,
    max_iter: int,
    switch: Switch | None,
    low: torch.dtype,
    progress: bool,
) -> tuple[int, tuple[int | None, MatVec | None]]:
    """CG in ``low`` with reliable updates of ``state`` (module doc); returns the iterations
    and, if ``switch`` gave a preconditioner, ``(iteration, preconditioner)``."""
    tiny = torch.finfo(low).tiny
    x = torch.zeros_like(state.b, dtype=low)
    r = state.r.to(low)
    z = precond_low(r)
    p = z.clone()
    rz = row_dot(r, z)
    since = state.r.norm(dim=-1)  # float64 residual norms at the last update
    active = state.rel > state.tol
    it, last, stalls, switched = 0, 0, 0, None
    bar = progress_bar(max_iter, progress)
    while it < max_iter and bool(active.any()):
        ap = matvec_low(p)
        step = (rz / row_dot(p, ap).clamp_min(tiny) * active)[:, None]  # 0: column done
        x.addcmul_(p, step)
        r.addcmul_(ap, step, value=-1.0)
        it += 1
        rnorm = r.norm(dim=-1)
        switched = switch(it, rnorm / state.bnorm) if switch is not None else None
        if switched is not None or it - last >= MAX_GAP or _due(rnorm, since, state, active):
            worst = float(state.rel.max())
            state.x.add_(x.to(state.b.dtype))
            x.zero_()
            state.refresh()
            r, since, active, last = (
                state.r.to(low),
                state.r.norm(dim=-1),
                state.rel > state.tol,
                it,
            )
            stalls = stalls + 1 if float(state.rel.max()) > MIN_GAIN * worst else 0
            if switched is not None or stalls >= 2 or not bool(active.any()):
                break
        rz = next_direction(precond_low, r, p, rz)
        tick(bar, rnorm / state.bnorm)
    if bar is not None:
        bar.close()
    return it, ((it, switched) if switched is not None else (None, None))


def _due(rnorm: Tensor, since: Tensor, state: _Reliable, active: Tensor) -> bool:
    """An update is due when an active column's recurrence residual fell by ``DELTA``
    since the last one, or every active column's says it has converged."""
    fallen = (rnorm < DELTA * since) & active
    done = (rnorm <= state.tol * state.bnorm) | ~active
    return bool(fallen.any()) or bool(done.all())
