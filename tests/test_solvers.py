"""Specification of the ridge solvers on exact-plus-tail designs, for every registered solver.

Each solver must give the ridge solution of ``[E_1 | gamma E_2 | tail_gamma T]`` at the
(alpha, gamma, tail_gamma) it chose (``E_1`` the exact degrees 0 and 1, ``E_2`` the exact
degrees >= 2, ``T`` the sketched tail); the held-out scores of cg and krylov must be those
of a brute-force fit on the other rows; fits must be atomic.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch
from fastntk._solvers import SOLVERS, get_solver
from fastntk._solvers import cg as cg_module
from fastntk._solvers import dual as dual_module
from fastntk._solvers import krylov as krylov_module
from fastntk._solvers import primal as primal_module
from fastntk._solvers._linalg import eigh_psd_single, refine_solve, symmetrize_upper

get_solver("dual")  # import every family so that SOLVERS is complete

#: the tail of these small sparse designs is below its noise: keep it (see conftest)
pytestmark = pytest.mark.usefixtures("scored_tail")


def _data(kind, n=150, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        X = sp.random(n, 80, density=0.08, format="csr", random_state=seed)
    else:
        X = rng.standard_normal((n, 4))
    dense = X.toarray() if sp.issparse(X) else X
    y = dense[:, 0] + dense[:, 1] * dense[:, 2] + 0.05 * rng.standard_normal(n)
    return X, y


def _sketch(**params):
    return NTKSketch(**(dict(depth=2, n_components=48, random_state=0) | params))


def _brute_force(model, X, y, rows=None):
    """Coefficients and intercept of the ridge on ``[E_1 | gamma E_2 | tail_gamma T]`` at
    the model's choice."""
    fm = model.feature_map_
    F = fm.transform(X)
    F = F.toarray() if sp.issparse(F) else F
    rows = np.arange(X.shape[0]) if rows is None else rows
    scale = np.ones(F.shape[1])
    scale[fm.n_linear_features_:fm.n_exact_features_] = model.gamma_
    scale[fm.n_exact_features_:] = model.tail_gamma_
    Z = F[rows] * scale
    mean_z, mean_y = Z.mean(0), y[rows].mean()
    Zc = Z - mean_z
    w = np.linalg.solve(Zc.T @ Zc + model.alpha_ * np.eye(Z.shape[1]), Zc.T @ (y[rows] - mean_y))
    return w * scale, mean_y - mean_z @ w, F


#: (gamma, tail_gamma) pairs scored for gammas=(0, 0.5, 1) and tail_gammas="auto": with
#: exact degrees >= 2 (dense "auto", sparse pairs) both blocks at gamma, the tail at 0 and
#: the exact degrees >= 2 at 0; without them (sparse degrees 0-1) one weight, the tail's
_PAIRS_WITH_HIGH = [(0, 0), (0.5, 0.5), (1, 1), (0.5, 0), (1, 0), (0, 0.5), (0, 1)]
_PAIRS_TAIL_ONLY = [(0, 0), (0.5, 0.5), (1, 1)]


# sparse with exact_degrees=2 (and "auto" on these short rows): the exact pairs of
# columns, which gamma weights
@pytest.mark.parametrize("design, exact_degrees",
                         [("dense", "auto"), ("sparse", 1), ("sparse", 2), ("sparse", "auto")])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_gives_the_ridge_solution_at_its_choice(solver, design, exact_degrees):
    X, y = _data(design)
    model = NTKRidge(_sketch(exact_degrees=exact_degrees), solver=solver,
                     alphas=(0.01, 0.1, 1.0), gammas=(0.0, 0.5, 1.0))
    if solver == "primal" and design == "sparse":
        with pytest.raises(ValueError, match="dense features"):
            model.fit(X, y)
        return
    model.fit(X, y)
    assert model.solver_ == solver
    pairs = _PAIRS_TAIL_ONLY if exact_degrees == 1 else _PAIRS_WITH_HIGH
    np.testing.assert_array_equal(model.gamma_candidates_, pairs)
    assert model.cv_values_.shape == (len(pairs), 3)
    best = np.unravel_index(np.nanargmin(model.cv_values_), model.cv_values_.shape)
    assert (model.gamma_, model.tail_gamma_) == tuple(model.gamma_candidates_[best[0]])
    coef, intercept, F = _brute_force(model, X, y)
    # predictions, not coefficients: the dense exact block has exact null directions
    # (sum_i u_i^2 = 1 ties the squares to the constant), along which an iterative
    # solver may stop anywhere without changing any prediction
    tol = 1e-4 if solver == "cg" else 1e-6
    np.testing.assert_allclose(model.predict(X), F @ coef + intercept, rtol=tol, atol=tol)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_fits_the_weights_it_is_given(solver):
    """A single (gamma, tail_gamma) pair of a product grid: the ridge solution at it;
    tail_gamma = 0 leaves the tail out (kernel ridge with the exact degrees alone), and
    gamma = 0 the exact degrees >= 2 (the exact degrees 0-1 and the tail)."""
    X, y = _data("dense")
    for gamma, tail_gamma in ((0.5, 0.0), (0.5, 0.7), (0.0, 0.7)):
        model = NTKRidge(_sketch(), solver=solver, alphas=(0.1,), gammas=(gamma,),
                         tail_gammas=(tail_gamma,)).fit(X, y)
        fm = model.feature_map_
        assert 2 in fm.exact_degrees_ and fm.n_exact_features_ < fm._n_features_out
        assert (model.gamma_, model.tail_gamma_) == (gamma, tail_gamma)
        coef, intercept, F = _brute_force(model, X, y)
        tol = 1e-4 if solver == "cg" else 1e-6
        np.testing.assert_allclose(model.predict(X), F @ coef + intercept, rtol=tol,
                                   atol=tol)
        high = slice(fm.n_linear_features_, fm.n_exact_features_)
        if tail_gamma == 0.0:
            np.testing.assert_array_equal(model.coef_[fm.n_exact_features_:], 0.0)
            assert np.any(model.coef_[high] != 0.0)
        if gamma == 0.0:
            np.testing.assert_array_equal(model.coef_[high], 0.0)
            assert np.any(model.coef_[fm.n_exact_features_:] != 0.0)


def test_a_product_grid_scores_every_pair():
    X, y = _data("dense")
    model = NTKRidge(_sketch(), solver="primal", alphas=(0.1, 1.0), gammas=(0.5, 1.0),
                     tail_gammas=(0.0, 0.25, 1.0)).fit(X, y)
    np.testing.assert_array_equal(model.gamma_candidates_,
                                  [(g, t) for g in (0.5, 1.0) for t in (0.0, 0.25, 1.0)])
    assert model.cv_values_.shape == (6, 2)


@pytest.mark.parametrize("tail_gammas, message", [
    ((-0.5,), "tail_gammas must be 'auto', 'same' or a non-empty sequence"),
    ((), "tail_gammas must be"), ("every", "tail_gammas must be"),
    ((np.nan,), "tail_gammas must be")])
def test_bad_tail_gammas_are_rejected_and_the_model_kept(tail_gammas, message):
    X, y = _data("dense")
    model = NTKRidge(_sketch(), alphas=(1.0,)).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ValueError, match=message):
        model.set_params(tail_gammas=tail_gammas).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_primal_leave_one_out_is_refitting_without_each_row(fit_intercept):
    """A one-shot primal fit scores alpha by exact leave-one-out (a second pass over the
    rows): the weighted mean of the squared errors of refitting without each row in
    turn, and the dual's scores."""
    X, y = _data("dense", n=60)
    w = np.random.default_rng(3).uniform(0.5, 2.0, 60)
    grid = dict(alphas=(0.01, 0.1, 1.0), gammas=(0.5, 1.0), fit_intercept=fit_intercept)
    primal = NTKRidge(_sketch(), solver="primal", **grid).fit(X, y, sample_weight=w)
    dual = NTKRidge(_sketch(), solver="dual", **grid).fit(X, y, sample_weight=w)
    assert primal.criterion_ == dual.criterion_ == "loo"
    np.testing.assert_allclose(primal.cv_values_, dual.cv_values_, rtol=1e-6)
    fm = primal.feature_map_
    for g, (gamma, tail_gamma) in enumerate(primal.gamma_candidates_):
        scale = np.ones(fm._n_features_out)
        scale[fm.n_linear_features_:fm.n_exact_features_] = gamma
        scale[fm.n_exact_features_:] = tail_gamma
        Z = fm.transform(X) * scale
        for a, alpha in enumerate(grid["alphas"]):
            errors = []
            for i in range(60):
                rows = np.delete(np.arange(60), i)
                wr = w[rows]
                mean_z = wr @ Z[rows] / wr.sum() if fit_intercept else 0.0
                mean_y = wr @ y[rows] / wr.sum() if fit_intercept else 0.0
                A = (Z[rows] - mean_z) * np.sqrt(wr)[:, None]
                coef = np.linalg.solve(A.T @ A + alpha * np.eye(Z.shape[1]),
                                       A.T @ ((y[rows] - mean_y) * np.sqrt(wr)))
                errors.append(y[i] - mean_y - (Z[i] - mean_z) @ coef)
            expected = w @ np.square(errors) / w.sum()
            np.testing.assert_allclose(primal.cv_values_[g, a], expected, rtol=1e-7)


@pytest.mark.filterwarnings("ignore:the best alpha")   # widening reads the rows too
def test_primal_leave_one_out_reads_the_rows_it_kept(monkeypatch):
    """Rows within the memory limit are transformed once: the leave-one-out passes of
    every candidate weighting read the kept ones, with the scores and the model of rows
    transformed again."""
    X, y = _data("dense", n=90)
    calls = []
    transform_blocks = NTKSketch.transform_blocks

    def counted(self, *args, **kwargs):
        calls.append(1)
        return transform_blocks(self, *args, **kwargs)

    monkeypatch.setattr(NTKSketch, "transform_blocks", counted)
    fits = {}
    for limit in (0, primal_module.LOO_KEEP_BYTES):
        monkeypatch.setattr(primal_module, "LOO_KEEP_BYTES", limit)
        calls.clear()
        fits[limit] = NTKRidge(_sketch(), solver="primal", batch_size=40).fit(X, y)
        fits[limit].n_transforms = len(calls)
    again, kept = fits[0], fits[primal_module.LOO_KEEP_BYTES]
    assert len(again.gamma_candidates_) > 1
    # a probe row for the widths, then 3 batches for the statistics; re-reading adds 3
    # batches a candidate
    assert kept.n_transforms == 1 + 3
    assert again.n_transforms >= 1 + 3 * (1 + len(again.gamma_candidates_))
    np.testing.assert_array_equal(kept.cv_values_, again.cv_values_)
    np.testing.assert_array_equal(kept.coef_, again.coef_)
    assert kept.alpha_ == again.alpha_


def test_primal_from_pieces_uses_gcv_and_refuses_loo():
    X, y = _data("dense", n=120)
    model = NTKRidge(_sketch(), solver="primal", alphas=(0.1, 1.0))
    assert model.partial_fit(X, y).criterion_ == "gcv"
    with pytest.raises(ValueError, match="offers criterion='gcv'"):
        NTKRidge(_sketch(), solver="primal", criterion="loo").partial_fit(X, y)


def test_cg_scores_are_brute_force_fits_on_the_other_rows(monkeypatch):
    from fastntk._solvers import cg

    # the path solves stop at a relative residual of 1e-3 by default; here they run to
    # rounding, so that the score is the brute-force fit's own
    monkeypatch.setattr(cg, "_TOL_PATH", 1e-12)
    X, y = _data("sparse", n=60)
    model = NTKRidge(_sketch(), solver="cg", alphas=(0.3,), gammas=(0.5,)).fit(X, y)
    held = np.arange(4, 60, 5)                      # every fifth row of the stream
    train = np.setdiff1d(np.arange(60), held)
    coef, intercept, F = _brute_force(model, X, y, rows=train)
    expected = np.mean((y[held] - F[held] @ coef - intercept) ** 2)
    chosen = np.flatnonzero((model.gamma_candidates_ == (model.gamma_,
                                                         model.tail_gamma_)).all(axis=1))
    np.testing.assert_allclose(model.cv_values_[chosen, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("solver", ["dual", "cg", "krylov"])
def test_gamma_zero_is_a_linear_ridge_on_the_norm_and_the_row(solver):
    X, y = _data("sparse")
    model = NTKRidge(_sketch(exact_degrees=2), solver=solver, alphas=(0.1,),
                     gammas=(0.0,)).fit(X, y)
    assert 2 in model.feature_map_.exact_degrees_          # the pairs are weighted too
    head = model.feature_map_.n_linear_features_
    np.testing.assert_array_equal(model.coef_[head:], 0.0)
    a = model.feature_map_.coef_["ntk"]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(1))).ravel()
    E = np.hstack([np.sqrt(a[0]) * norms[:, None], np.sqrt(a[1]) * X.toarray()])
    Ec = E - E.mean(0)
    w = np.linalg.solve(Ec.T @ Ec + 0.1 * np.eye(E.shape[1]), Ec.T @ (y - y.mean()))
    np.testing.assert_allclose(model.coef_[:head], w, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:the best alpha")   # the pairs of 64 rows interpolate
@pytest.mark.parametrize("design, exact_degrees",
                         [("dense", "auto"), ("sparse", 1), ("sparse", 2)])
def test_krylov_scores_every_alpha_as_a_brute_force_fit_on_the_other_rows(design,
                                                                          exact_degrees):
    X, y = _data(design, n=80)
    alphas, gammas = (0.03, 0.3, 3.0), (0.5, 1.0)
    model = NTKRidge(_sketch(exact_degrees=exact_degrees), solver="krylov", alphas=alphas,
                     gammas=gammas).fit(X, y)
    held = np.arange(4, 80, 5)                      # every fifth row
    train = np.setdiff1d(np.arange(80), held)
    for g, (gamma, tail_gamma) in enumerate(model.gamma_candidates_):
        for a, alpha in enumerate(alphas):
            if np.isnan(model.cv_values_[g, a]):    # the path stopped past its best
                continue
            model.alpha_, model.gamma_, model.tail_gamma_ = alpha, gamma, tail_gamma
            coef, intercept, F = _brute_force(model, X, y, rows=train)
            expected = np.mean((y[held] - F[held] @ coef - intercept) ** 2)
            # an alpha is scored at a relative residual of 1e-4
            np.testing.assert_allclose(model.cv_values_[g, a], expected, rtol=1e-3)
    assert np.isfinite(model.cv_values_).sum() >= 4


def test_krylov_weights_rows_as_repeating_them():
    X, y = _data("sparse", n=100)
    weights = np.where(np.arange(100) % 3 == 0, 2.0, 1.0)
    repeated = np.concatenate([np.arange(100), np.flatnonzero(weights == 2.0)])
    grid = dict(solver="krylov", alphas=(0.1,), gammas=(1.0,))
    # degrees 0-1: the pairs a map keeps depend on how many rows hold them, which
    # repeating rows changes and weighting them does not
    weighted = NTKRidge(_sketch(exact_degrees=1), **grid).fit(X, y, sample_weight=weights)
    copied = NTKRidge(_sketch(exact_degrees=1), **grid).fit(X[repeated], y[repeated])
    np.testing.assert_allclose(weighted.predict(X), copied.predict(X), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("params, X_kind, message", [
    (dict(feature_map="exact"), "dense", "exact kernel ridge"),
    (dict(criterion="loo"), "dense", "held-out fold"),
    (dict(), "tiny", "at least 5 rows"),
])
def test_krylov_rejects_what_it_cannot_fit(params, X_kind, message):
    X, y = _data("dense", n=4 if X_kind == "tiny" else 40)
    params = {"feature_map": _sketch(), **params}
    with pytest.raises(ValueError, match=message):
        NTKRidge(solver="krylov", **params).fit(X, y)


def test_krylov_warns_when_the_refit_does_not_converge(monkeypatch):
    X, y = _data("sparse", n=60)
    monkeypatch.setattr(krylov_module, "_MAX_ITER_FINAL", 2)
    with pytest.warns(ConvergenceWarning, match="did not reach"):
        NTKRidge(_sketch(), solver="krylov", alphas=(0.1,), gammas=(1.0,)).fit(X, y)


def test_auto_keeps_the_rows_for_krylov_within_its_limits(monkeypatch):
    from fastntk import ridge

    X, y = _data("sparse", n=120)
    monkeypatch.setattr(ridge, "_DUAL_MAX", 50)
    assert NTKRidge(_sketch()).fit(X, y).solver_ == "krylov"
    with monkeypatch.context() as patch:
        patch.setattr(ridge, "_KRYLOV_MAX_ROWS", 119)
        assert NTKRidge(_sketch()).fit(X, y).solver_ == "cg"
    monkeypatch.setattr(ridge, "_KRYLOV_MAX_BYTES", 120 * 48 * 8 - 1)   # the tail's bytes
    assert NTKRidge(_sketch()).fit(X, y).solver_ == "cg"
    assert NTKRidge(_sketch()).partial_fit(X, y).solver_ == "cg"


def test_alpha_grid_widens_when_the_best_is_at_an_edge():
    X, y = _data("dense", n=400)
    # (GCV: leave-one-out wants alpha -> 0 on this almost noise-free polynomial target)
    model = NTKRidge(_sketch(), alphas=(10.0, 100.0, 1000.0), criterion="gcv").fit(X, y)
    assert model.alpha_ < 10.0 and model.alphas_[0] < 10.0
    assert 0 < np.flatnonzero(model.alphas_ == model.alpha_)[0] < len(model.alphas_) - 1


@pytest.mark.parametrize("pieces", [[200], [70, 130], [5, 95, 100]])
def test_cg_partial_fit_in_pieces_equals_fit(pieces):
    X, y = _data("sparse", n=200)
    fitted = NTKRidge(_sketch(), solver="cg").fit(X, y)
    model = NTKRidge(_sketch(), batch_size=32)
    start = 0
    for size in pieces:
        model.partial_fit(X[start:start + size], y[start:start + size])
        start += size
    assert model.solver_ == "cg"
    assert (model.alpha_, model.gamma_) == (fitted.alpha_, fitted.gamma_)
    np.testing.assert_allclose(model.predict(X), fitted.predict(X), rtol=1e-5, atol=1e-6)


def test_an_exact_block_too_wide_for_cg_names_the_limit(monkeypatch):
    X, y = _data("sparse")
    monkeypatch.setattr(cg_module, "MAX_CROSS_BYTES", 1000)
    with pytest.raises(ValueError, match="HashingVectorizer"):
        NTKRidge(_sketch(exact_degrees=1), solver="cg").fit(X, y)
    with pytest.raises(ValueError, match="exact_degrees=1"):
        NTKRidge(_sketch(exact_degrees=2), solver="cg").partial_fit(X, y)


def test_a_one_shot_fit_keeping_its_rows_has_no_cross_block_limit(monkeypatch):
    # fewer rows than exact columns (the pairs): the rows are kept, no E^T T or E^T E
    X, y = _data("sparse")
    monkeypatch.setattr(cg_module, "MAX_CROSS_BYTES", 1000)
    model = NTKRidge(_sketch(exact_degrees=2), solver="cg", alphas=(0.1,),
                     gammas=(1.0,)).fit(X, y)
    assert X.shape[0] < model.feature_map_.n_exact_features_
    coef, intercept, F = _brute_force(model, X, y)
    np.testing.assert_allclose(model.predict(X), F @ coef + intercept, rtol=1e-4, atol=1e-4)


def test_a_one_shot_fit_with_exact_pairs_keeps_its_rows_at_any_n(monkeypatch):
    # more rows than exact columns: E^T S E of the pairs (~k^4 / 4 entries a row) is
    # never formed, the products go through the rows
    X = sp.random(300, 10, density=0.3, format="csr", random_state=2)
    y = X[:, 0].toarray().ravel() * X[:, 1].toarray().ravel() + X[:, 2].toarray().ravel()
    kept = []
    accumulate = cg_module.accumulate
    monkeypatch.setattr(cg_module, "accumulate", lambda *args: kept.append(args[3])
                        or accumulate(*args))
    model = NTKRidge(_sketch(exact_degrees=2), solver="cg", alphas=(0.1,),
                     gammas=(1.0,)).fit(X, y)
    assert X.shape[0] > model.feature_map_.n_exact_features_ and kept == [True]
    coef, intercept, F = _brute_force(model, X, y)
    np.testing.assert_allclose(model.predict(X), F @ coef + intercept, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", [NTKRidge, NTKRidgeClassifier])
def test_a_fit_that_raises_leaves_the_model_as_it_was(cls):
    X, y = _data("dense")
    y = y > 0 if cls is NTKRidgeClassifier else y
    model = cls(_sketch(), alphas=(1.0,)).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ValueError):
        model.set_params(gammas=(-1.0,)).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    with pytest.raises(ValueError):
        model.set_params(gammas=(1.0,)).fit(X, y[:-1])
    np.testing.assert_array_equal(model.predict(X), before)


def test_default_feature_map_is_seeded_by_random_state():
    X, y = _data("sparse")
    a = NTKRidge(random_state=3).fit(X, y).predict(X)
    b = NTKRidge(random_state=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_a_target_of_none_objects_is_rejected():
    X, _ = _data("dense", n=20)
    with pytest.raises(ValueError):
        NTKRidge(_sketch()).fit(X, np.array([None] * 20, dtype=object))


def test_cg_fit_through_kept_rows_equals_the_statistics(monkeypatch):
    # fewer rows than exact columns: fit keeps the rows instead of E^T T; partial_fit
    # (which must be continued from) accumulates E^T T; the solutions are the same
    X = sp.random(150, 400, density=0.03, format="csr", random_state=1)
    y = X[:, :5].toarray().sum(1) + X[:, 5:10].toarray().prod(1) + 0.01 * np.arange(150) % 1
    kept = []
    accumulate = cg_module.accumulate
    monkeypatch.setattr(cg_module, "accumulate", lambda *args: kept.append(args[3])
                        or accumulate(*args))
    fitted = NTKRidge(_sketch(exact_degrees=1), solver="cg").fit(X, y)
    assert kept == [True]
    streamed = NTKRidge(_sketch(exact_degrees=1), solver="cg").partial_fit(X, y)
    assert streamed._statistics.cross is not None and not streamed._statistics.keep_rows
    assert (fitted.alpha_, fitted.gamma_) == (streamed.alpha_, streamed.gamma_)
    np.testing.assert_allclose(fitted.predict(X), streamed.predict(X), rtol=1e-5, atol=1e-6)


def test_cg_statistics_that_kept_rows_refuse_to_merge():
    stats = cg_module.BlockStatistics(3, 2, 1, False, True, keep_rows=True)
    with pytest.raises(ValueError, match="merged"):
        stats.merge(cg_module.BlockStatistics(3, 2, 1, False, True))


@pytest.mark.parametrize("pieces", [[200], [70, 130]])
def test_cg_dense_enough_exact_gram_switches_to_an_array_with_the_same_fit(monkeypatch,
                                                                             pieces):
    X = sp.random(200, 400, density=0.02, format="csr", random_state=3)
    y = X[:, :20].toarray().sum(1) + 0.01 * np.arange(200) % 1
    reference = NTKRidge(_sketch(), batch_size=32).partial_fit(X, y)
    assert sp.issparse(reference._statistics.ete)
    monkeypatch.setattr(cg_module, "_DENSE_ETE_FILL", 0.0)
    model, start = NTKRidge(_sketch(), batch_size=32), 0
    for size in pieces:
        model.partial_fit(X[start:start + size], y[start:start + size])
        start += size
    assert isinstance(model._statistics.ete, np.ndarray)
    np.testing.assert_allclose(model._statistics.ete, reference._statistics.ete.toarray(),
                               rtol=1e-12, atol=1e-12)
    assert (model.alpha_, model.gamma_) == (reference.alpha_, reference.gamma_)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kept_as", ["sparse", "dense"])
def test_cg_keeps_the_upper_triangle_of_the_sparse_exact_gram(monkeypatch, kept_as):
    """The sparse E^T S E is symmetric: the statistics hold its upper triangle (half the
    memory; in CSR, or dense once dense enough), summed over the training rows only, and
    the fit multiplies by all of it."""
    from fastntk._solvers import Batch

    monkeypatch.setattr(cg_module, "_DENSE_ETE_FILL", 2.0 if kept_as == "sparse" else 0.0)
    rng = np.random.default_rng(1)
    E = sp.random(120, 25, density=0.2, format="csr", random_state=4)
    T, Y, w = rng.standard_normal((120, 3)), rng.standard_normal((120, 1)), rng.random(120)
    stats = cg_module.BlockStatistics(25, 3, 1, True, True)
    for start in range(0, 120, 40):
        part = slice(start, start + 40)
        stats.update(Batch(E[part], T[part], Y[part], w[part], start))
    stats._merge()
    train = ~cg_module.held_out(np.arange(120))
    full = (E[train].T @ sp.diags(w[train]) @ E[train]).toarray()
    assert sp.issparse(stats.ete) == (kept_as == "sparse")
    upper = stats.ete.toarray() if kept_as == "sparse" else stats.ete
    np.testing.assert_allclose(upper, np.triu(full), rtol=1e-12, atol=1e-14)
    system = cg_module._NormalEquations(stats, include_held=False, n_linear=25)
    A = rng.standard_normal((28, 2))
    centred_e = full - np.outer(stats.sum_e, stats.sum_e) / stats.sum_w
    np.testing.assert_allclose(system.matvec(np.vstack([A[:25], np.zeros((3, 2))]),
                                             (0.0, 0.0), 0.0),
                               np.vstack([centred_e @ A[:25], np.zeros((3, 2))]),
                               rtol=1e-10, atol=1e-12)


def test_cg_merging_a_dense_exact_gram_into_a_sparse_one(monkeypatch):
    from fastntk._solvers import Batch

    rng = np.random.default_rng(0)
    E = sp.random(200, 30, density=0.2, format="csr", random_state=2)
    T, Y, w = rng.standard_normal((200, 4)), rng.standard_normal((200, 1)), np.ones(200)

    def stats(rows, dense):
        monkeypatch.setattr(cg_module, "_DENSE_ETE_FILL", 0.0 if dense else 2.0)  # never
        out = cg_module.BlockStatistics(30, 4, 1, True, True)
        for start in range(rows.start, rows.stop, 50):
            part = slice(start, start + 50)
            out.update(Batch(E[part], T[part], Y[part], w[part], start))
        out._merge()
        return out

    whole = stats(slice(0, 200), dense=False)
    first, second = stats(slice(0, 100), dense=False), stats(slice(100, 200), dense=True)
    assert sp.issparse(first.ete) and isinstance(second.ete, np.ndarray)
    first.merge(second)
    assert isinstance(first.ete, np.ndarray)
    np.testing.assert_allclose(first.ete, whole.ete.toarray(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.cross, whole.cross, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [40, 150])
def test_dual_decomposes_narrow_candidates_from_their_columns(monkeypatch, n):
    """A candidate that keeps fewer dense columns than rows is decomposed by the thin SVD
    of its columns, with the scores and the model of the eigendecomposition of its kernel
    (5 columns of degrees 0-1, 10 of degree 2, 33 of the tail: at 40 rows the candidates
    that leave a block out are narrow, at 150 every one)."""
    X, y = _data("dense", n=n)
    y = y + np.random.default_rng(1).standard_normal(n)   # alpha inside the grid
    make = lambda: NTKRidge(_sketch(), solver="dual", alphas=(0.01, 0.1, 1.0, 10.0))  # noqa: E731
    svds = []
    svd = dual_module.scipy.linalg.svd
    monkeypatch.setattr(dual_module.scipy.linalg, "svd",
                        lambda a, **kw: svds.append(a.shape) or svd(a, **kw))
    thin = make().fit(X, y)
    fm = thin.feature_map_
    assert (fm.n_exact_features_, fm._n_features_out) == (15, 48)
    widths = [fm.n_linear_features_ + (fm.n_exact_features_ - fm.n_linear_features_) * (g > 0)
              + (fm._n_features_out - fm.n_exact_features_) * (t > 0)
              for g, t in thin.gamma_candidates_]
    assert svds == [(n, width) for width in widths if width < n]
    assert svds and (n > 48 or len(svds) < len(widths))   # at 40 rows, some kernels too
    monkeypatch.setattr(dual_module, "THIN_FRACTION", 0.0)
    svds.clear()
    full = make().fit(X, y)
    assert svds == []
    np.testing.assert_allclose(thin.cv_values_, full.cv_values_, rtol=1e-8)
    assert (thin.alpha_, thin.gamma_, thin.tail_gamma_) == (
        full.alpha_, full.gamma_, full.tail_gamma_)
    np.testing.assert_allclose(thin.predict(X), full.predict(X), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(thin.coef_, full.coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("design", ["dense", "sparse"])
def test_dual_in_single_precision_gives_the_double_precision_fit(monkeypatch, design):
    X, y = _data(design, n=200)
    # wider than the rows: the kernel itself is decomposed
    make = lambda: NTKRidge(_sketch(n_components=256), solver="dual",  # noqa: E731
                            alphas=(1e-3, 1e-2, 0.1, 1.0), tail_gammas="same")
    double = make().fit(X, y)
    monkeypatch.setattr(dual_module, "SINGLE_PRECISION_MIN", 0)
    monkeypatch.setattr(dual_module, "eigh_psd", None)     # no double-precision fallback
    single = make().fit(X, y)
    assert (single.alpha_, single.gamma_) == (double.alpha_, double.gamma_)
    # the criterion's rounding grows as eps_32 lambda_max / alpha (lambda_max of the map's
    # kernel, which bounds every weighting's): tight at the larger alphas
    F = double.feature_map_.transform(X)
    gram = F @ F.T
    lambda_max = np.linalg.eigvalsh(gram.toarray() if sp.issparse(gram) else gram)[-1]
    bound = 4 * np.finfo(np.float32).eps * lambda_max / np.asarray(make().alphas)
    assert bound[-1] < 1e-3
    assert np.all(np.abs(single.cv_values_ / double.cv_values_ - 1) <= bound)
    # the chosen solution is refined to double precision
    np.testing.assert_allclose(single.predict(X), double.predict(X), rtol=1e-9, atol=1e-9)
    coef, intercept, F = _brute_force(single, X, y)
    np.testing.assert_allclose(single.predict(X), F @ coef + intercept, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("solver, module, n, width", [
    ("dual", dual_module, 200, 256),      # the 200 x 200 kernel (wider map than rows)
    ("primal", primal_module, 300, 48)])  # the 48 x 48 Gram
def test_single_precision_falls_back_to_double_below_its_resolution(monkeypatch, solver,
                                                                    module, n, width):
    """A best alpha below ~1e-4 of the largest eigenvalue is rescored in double precision."""
    X, y = _data("dense", n=n)
    make = lambda: NTKRidge(_sketch(n_components=width), solver=solver,  # noqa: E731
                            alphas=(1e-13,), gammas=(1.0,), tail_gammas="same")
    double = make().fit(X, y)
    monkeypatch.setattr(module, "SINGLE_PRECISION_MIN", 0)
    calls = []
    original = module.eigh_psd
    monkeypatch.setattr(module, "eigh_psd",
                        lambda gram: calls.append(gram.shape) or original(gram))
    single = make().fit(X, y)
    size = min(n, width)
    assert calls == [(size, size)]        # the refinement could not resolve alpha = 1e-13
    assert single.alpha_ == double.alpha_
    np.testing.assert_allclose(single.predict(X), double.predict(X), rtol=1e-6, atol=1e-6)


def test_primal_in_single_precision_gives_the_double_precision_fit(monkeypatch):
    X, y = _data("dense", n=300)
    y = y + np.random.default_rng(1).standard_normal(300)   # alpha inside the grid
    make = lambda: NTKRidge(_sketch(), solver="primal", alphas=(1e-2, 0.1, 1.0, 10.0))  # noqa: E731
    double = make().fit(X, y)
    monkeypatch.setattr(primal_module, "SINGLE_PRECISION_MIN", 0)
    monkeypatch.setattr(primal_module, "eigh_psd", None)   # no double-precision fallback
    single = make().fit(X, y)
    assert (single.alpha_, single.gamma_, single.tail_gamma_) == (
        double.alpha_, double.gamma_, double.tail_gamma_)
    # the criterion's rounding grows as eps_32 lambda_max / alpha (lambda_max of the
    # unweighted Gram, which bounds every weighting's)
    F = double.feature_map_.transform(X)
    lambda_max = np.linalg.eigvalsh(np.cov(F.T, bias=True) * len(F))[-1]
    bound = 4 * np.finfo(np.float32).eps * lambda_max / np.asarray(make().alphas)
    assert bound[-1] < 1e-3
    assert np.all(np.abs(single.cv_values_ / double.cv_values_ - 1) <= bound)
    # the chosen solution is refined to double precision (a residual of 1e-10 of the
    # right-hand side's; the coefficients themselves move by up to cond(G + alpha I) times
    # that)
    np.testing.assert_allclose(single.predict(X), double.predict(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(single.coef_, double.coef_, rtol=1e-6, atol=1e-8)
    coef, intercept, F = _brute_force(single, X, y)
    np.testing.assert_allclose(single.predict(X), F @ coef + intercept, rtol=1e-6, atol=1e-6)


def test_refinement_reaches_the_double_precision_solve():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((300, 120))
    gram = A @ A.T
    rhs = rng.standard_normal((300, 2))
    eigvals, eigvecs = eigh_psd_single(gram)
    z, converged = refine_solve(gram, 0.5, rhs, eigvals, eigvecs)
    assert converged
    np.testing.assert_allclose(z, np.linalg.solve(gram + 0.5 * np.eye(300), rhs), rtol=1e-9)
    _, converged = refine_solve(gram, 1e-12, rhs, eigvals, eigvecs, max_steps=2)
    assert not converged


def test_symmetrize_upper_copies_the_upper_triangle_by_blocks():
    rng = np.random.default_rng(0)
    full = rng.standard_normal((11, 11))
    full = full + full.T
    stale = np.triu(full) + np.tril(rng.standard_normal((11, 11)), -1)
    np.testing.assert_array_equal(symmetrize_upper(stale, block=4), full)


def test_cg_path_keeps_only_the_solutions_it_needs():
    """A path scores every alpha from the largest down but keeps three solutions at most
    (each is (d + m) x t: ~0.2 GB with exact pairs of words and 16 classes): the best
    one, which the refit starts from, and those at the two ends of the alphas visited,
    from which a widened grid starts."""
    from fastntk._solvers import Batch

    rng = np.random.default_rng(0)
    E = sp.random(200, 30, density=0.2, format="csr", random_state=3)
    T, Y, w = rng.standard_normal((200, 4)), rng.standard_normal((200, 2)), np.ones(200)
    stats = cg_module.BlockStatistics(30, 4, 2, True, True)
    stats.update(Batch(E, T, Y, w, 0))
    system = cg_module._NormalEquations(stats, include_held=False, n_linear=30)
    path = cg_module._Path(system, stats.held_out(), (1.0, 1.0))
    alphas = 10.0 ** np.arange(-6, 6.5, 0.5)
    scores = path.scores(alphas, stop_early=False)
    assert np.isfinite(scores).all()
    best = float(alphas[np.argmin(scores)])
    assert set(path.solutions) == {best, alphas[0], alphas[-1]}
    # the kept best solution is the one a path scoring only that alpha finds (both to the
    # path's tolerance, a relative residual of 1e-3)
    alone = cg_module._Path(system, stats.held_out(), (1.0, 1.0))
    alone.scores(np.array([best]))
    kept, direct = path.nearest(best), alone.nearest(best)
    assert np.linalg.norm(kept - direct) <= 1e-2 * np.linalg.norm(direct)
    widened = path.scores(alphas[:1] / 10.0, stop_early=False)
    assert np.isfinite(widened).all() and len(path.solutions) <= 3
