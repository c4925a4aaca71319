"""Mixed-precision CG (float32 iterations, float64 reliable updates) against float64 solves."""

import warnings

import pytest
import torch

from gpdip.gp.cg import CGConvergenceWarning
from gpdip.gp.posterior import dense_posterior, grid_posterior
from gpdip.gp.refine import refined_cg

from .conftest import exp_const_table, rbf_table

#: Enough iterations for float32 to stall and hand over, too few for float64 to finish.
MAX_ITER_SHORT = 300  # handed over before 200 (measured), float64 needs ~300 more


def spd_system(n=80, columns=3, floor=1e-4, seed=0):
    """``A = Q diag(lam) Q^T`` with eigenvalues from ``floor`` to 1 (condition 1e4) and
    right-hand sides of very different norms."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, torch.log10(torch.tensor(floor)), n, dtype=torch.float64)
    a = (q * lam) @ q.T
    b = torch.randn(columns, n, generator=g, dtype=torch.float64)
    b = b * torch.tensor([1.0, 1e-3, 1e3][:columns], dtype=torch.float64)[:, None]
    return a, b


def solve_bound(a, b, tol):
    """``||x - x*|| = ||A^{-1} r|| <= ||A^{-1}|| tol ||b||`` per column."""
    return float(torch.linalg.eigvalsh(a).min()) ** -1 * tol * b.norm(dim=1)


def test_refined_solve_meets_the_float64_criterion():
    a, b = spd_system()
    a32 = a.float()
    built = []
    x, info = refined_cg(
        lambda v: v @ a,
        lambda v: v @ a32,
        b,
        lambda v: v,
        lambda: built.append(1) or (lambda v: v),
        tol=1e-10,
        max_iter=2000,
    )
    assert x.dtype == torch.float64 and info.converged
    # the reported residual is the float64 one, per column relative to that column's b
    rel = (b - x @ a).norm(dim=1) / b.norm(dim=1)
    assert float(rel.max()) == pytest.approx(info.residual, rel=1e-6)
    assert info.residual <= 1e-10  # far below float32's 6e-8: the updates are float64
    ref = torch.linalg.solve(a, b.T).T
    assert bool(((x - ref).norm(dim=1) <= 2 * solve_bound(a, b, 1e-10)).all())
    assert not built  # float32 kept making progress: no float64 hand-over


def test_stalled_float32_hands_over_to_float64():
    """A float32 operator whose smallest eigenvalue is 100x too large corrects 1% of that
    mode per update: the solve must notice (updates stop shrinking the float64 residual)
    and finish in float64."""
    a, b = spd_system(columns=2)
    lam, vecs = torch.linalg.eigh(a)
    wrong = (a + 99 * lam[0] * vecs[:, :1] @ vecs[:, :1].T).float()
    built = []

    def exact():
        built.append(1)
        return lambda v: v

    x, info = refined_cg(
        lambda v: v @ a, lambda v: v @ wrong, b, lambda v: v, exact, tol=1e-8, max_iter=3000
    )
    assert built == [1] and info.converged
    ref = torch.linalg.solve(a, b.T).T
    assert bool(((x - ref).norm(dim=1) <= 2 * solve_bound(a, b, 1e-8)).all())


def test_switch_goes_on_in_float64_with_the_new_preconditioner():
    a, b = spd_system(columns=1)
    diag = 1.0 / a.diagonal()
    used = []

    def jacobi(v):
        used.append(v.dtype)
        return v * diag.to(v.dtype)

    def switch(it, rel):
        return jacobi if it == 4 else None

    x, info = refined_cg(
        lambda v: v @ a,
        lambda v: v @ a.float(),
        b,
        lambda v: v,
        lambda: pytest.fail("the switched preconditioner serves float64"),
        tol=1e-9,
        max_iter=2000,
        switch=switch,
    )
    assert info.switched_at == 4 and info.converged
    assert set(used) == {torch.float64}
    assert float((b - x @ a).norm() / b.norm()) <= 1e-9


def test_zero_column_and_iteration_limit():
    a, b = spd_system()
    b[1] = 0.0
    x, info = refined_cg(
        lambda v: v @ a, lambda v: v @ a.float(), b, lambda v: v, lambda: lambda v: v, 1e-8, 2000
    )
    assert info.converged and bool((x[1] == 0).all())
    with pytest.warns(CGConvergenceWarning, match="did not converge") as caught:
        _, short = refined_cg(
            lambda v: v @ a, lambda v: v @ a.float(), b, lambda v: v, lambda: lambda v: v, 1e-8, 5
        )
    assert short.iterations == 5 and not short.converged and len(caught) == 1


def test_float64_hand_over_out_of_iterations_warns_once():
    a, b = spd_system(columns=1)
    lam, vecs = torch.linalg.eigh(a)
    wrong = (a + 99 * lam[0] * vecs[:, :1] @ vecs[:, :1].T).float()  # stalls (see above)
    built = []
    with pytest.warns(CGConvergenceWarning, match="did not converge") as caught:
        _, info = refined_cg(
            lambda v: v @ a,
            lambda v: v @ wrong,
            b,
            lambda v: v,
            lambda: built.append(1) or (lambda v: v),
            1e-12,
            MAX_ITER_SHORT,
        )
    assert built == [1] and not info.converged and info.iterations == MAX_ITER_SHORT
    assert len(caught) == 1  # the float64 CG's own warning is not repeated


@pytest.mark.parametrize("table_fn", [rbf_table, exp_const_table], ids=["rbf", "exp+const"])
@pytest.mark.parametrize("noise", [1e-2, 1e-4])
def test_grid_posterior_mixed_matches_dense_and_costs_few_more_iterations(table_fn, noise):
    """The default ``precision="mixed"`` meets the float64 bound against the dense
    posterior; float32 iterations lose a little conjugacy, so allow 30% more iterations
    (measured here: +0% for RBF, +17% and +21% for exp+const; 512^2 DIP kernels +3% to
    +18%, gpdip/gp/refine.py)."""
    gen = torch.Generator().manual_seed(3)
    size = (24, 24)
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    table = table_fn(size)
    ref = dense_posterior(table, img, mask, noise)
    counts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CGConvergenceWarning)
        for precision in ("float64", "mixed"):
            post = grid_posterior(
                table, img, mask, noise, tol=1e-8, max_iter=3000, precision=precision
            )
            counts[precision] = post.info["cg_iterations"]
            # tol 1e-8 on the float64 residual: mean error <= cond(A) 1e-8 |y|, < 1e-4 here
            assert torch.allclose(post.mean, ref.mean, atol=1e-4)
    assert counts["mixed"] <= 1.3 * counts["float64"] + 3
