"""Tests of fastntk.ridge: GCV, LOO and solutions against direct solves, streaming, pickling."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.kernel_approximation import RBFSampler
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
    parametrize_with_checks,
)

import fastntk._persistence as persistence
import fastntk._solvers._linalg as linalg
import fastntk.ridge as ridge_module
from fastntk.ridge import NTKRidge, NTKRidgeClassifier

ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _data(n=80, d=12, n_targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal((d, n_targets or 1))
    Y = np.tanh(X @ w) + 0.3 * rng.standard_normal((n, n_targets or 1)) + 2.0
    return X, (Y[:, 0] if n_targets is None else Y)


def _rbf(n_components=40):
    return RBFSampler(n_components=n_components, gamma=0.1, random_state=0)


def _brute_force_ridge(Z, Y, w, alpha, fit_intercept):
    """Weighted ridge with an unpenalised intercept, its hat matrix and GCV, directly."""
    n, m = Z.shape
    design = np.hstack([np.ones((n, 1)), Z]) if fit_intercept else Z
    penalty = alpha * np.eye(design.shape[1])
    if fit_intercept:
        penalty[0, 0] = 0.0
    D = np.sqrt(w)[:, None]
    system = design.T @ (w[:, None] * design) + penalty
    theta = np.linalg.solve(system, design.T @ (w[:, None] * Y))
    hat = (D * design) @ np.linalg.solve(system, (D * design).T)
    resid = D * Y - hat @ (D * Y)
    n_eff, dof = w.sum(), np.trace(hat)
    gcv = n_eff * np.sum(resid ** 2) / (n_eff - dof) ** 2 / Y.shape[1]
    intercept = theta[0] if fit_intercept else np.zeros(Y.shape[1])
    return theta[int(fit_intercept):], intercept, gcv


@pytest.mark.parametrize("solver", ["primal", "dual"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_gcv_and_solution_match_direct_solve(solver, fit_intercept, weighted):
    X, Y = _data(n=60, d=15, n_targets=2)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else np.ones(X.shape[0])
    model = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver=solver, criterion="gcv",
                     fit_intercept=fit_intercept).fit(X, Y, sample_weight=w)
    expected = [_brute_force_ridge(X, Y, w, a, fit_intercept) for a in ALPHAS]
    gcv = np.array([e[2] for e in expected])
    assert model.criterion_ == "gcv"
    np.testing.assert_allclose(model.cv_values_[0], gcv, rtol=1e-8)
    best = int(np.argmin(gcv))
    assert model.alpha_ == ALPHAS[best]
    coef, intercept, _ = expected[best]
    np.testing.assert_allclose(model.coef_, coef.T, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-7, atol=1e-10)


def _leave_one_out_by_refitting(Z, Y, w, alpha, fit_intercept):
    """Weighted mean squared error of the n models fitted without one sample each."""
    errors = []
    for i in range(Z.shape[0]):
        held_out = w.copy()
        held_out[i] = 0.0            # weight zero: sample i takes no part in the fit
        coef, intercept, _ = _brute_force_ridge(Z, Y, held_out, alpha, fit_intercept)
        errors.append(np.sum((Y[i] - Z[i] @ coef - intercept) ** 2))
    return w @ np.array(errors) / w.sum() / Y.shape[1]


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_loo_matches_refitting_without_each_sample(fit_intercept, weighted):
    # the dual (n_samples <= n_components here) chooses alpha by leave-one-out by default
    X, Y = _data(n=25, d=40, n_targets=2)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else np.ones(X.shape[0])
    model = NTKRidge(FunctionTransformer(), alphas=ALPHAS,
                     fit_intercept=fit_intercept).fit(X, Y, sample_weight=w)
    loo = np.array([_leave_one_out_by_refitting(X, Y, w, a, fit_intercept) for a in ALPHAS])
    assert model.criterion_ == "loo"
    np.testing.assert_allclose(model.cv_values_[0], loo, rtol=1e-7)
    best = int(np.argmin(loo))
    assert model.alpha_ == ALPHAS[best]
    coef, intercept, _ = _brute_force_ridge(X, Y, w, ALPHAS[best], fit_intercept)
    np.testing.assert_allclose(model.coef_, coef.T, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-7, atol=1e-10)


def test_loo_is_not_fooled_by_duplicates_where_gcv_is():
    # More features than samples, and five rows repeated (retweets): the duplicate pairs
    # leave null directions that keep n - df >= 5 while the fit interpolates, so GCV keeps
    # falling as alpha -> 0; leave-one-out sees the noise of the other rows.  Without the
    # duplicates both criteria agree.
    X, y = _data(n=60, d=200, seed=0)
    alphas = np.logspace(-4, 4, 17)
    fits = {}
    for name, (rows, target) in {"unique": (X, y), "repeated": (
            np.vstack([X, X[:5]]), np.concatenate([y, y[:5]]))}.items():
        fits[name] = [NTKRidge(FunctionTransformer(), alphas=alphas, criterion=criterion)
                      .fit(rows, target).alpha_ for criterion in ("gcv", "loo")]
    assert fits["unique"][0] == fits["unique"][1] == 100.0
    # GCV runs off the grid's low edge, through every widening, and says so
    with pytest.warns(UserWarning, match="edge of the grid"):
        gcv = NTKRidge(FunctionTransformer(), alphas=alphas, criterion="gcv").fit(
            np.vstack([X, X[:5]]), np.concatenate([y, y[:5]]))
    assert gcv.alpha_ < alphas[0] and gcv.alpha_ == gcv.alphas_[0]
    assert fits["repeated"][1] == 100.0


@pytest.mark.parametrize("criterion, chosen", [("gcv", "gcv"), ("auto", "loo")])
def test_the_primal_criteria_pick_an_interior_alpha_on_noisy_data(criterion, chosen):
    # a test that can fail: the curve must have its minimum strictly inside the grid
    X, y = _data(n=200, d=30)
    model = NTKRidge(FunctionTransformer(), alphas=np.logspace(-4, 4, 17),
                     criterion=criterion).fit(X, y)
    assert (model.solver_, model.criterion_) == ("primal", chosen)
    best = int(np.argmin(model.cv_values_[0]))
    assert 0 < best < 16


def test_loo_needs_every_row_at_once():
    """Leave-one-out reads the rows twice: fit (dual or primal), never partial_fit."""
    X, y = _data(n=60, d=5)
    with pytest.raises(ValueError, match="offers criterion='gcv'"):
        NTKRidge(FunctionTransformer(), criterion="loo").partial_fit(X, y)
    for solver in ("dual", "primal"):
        model = NTKRidge(FunctionTransformer(), criterion="loo", solver=solver).fit(X, y)
        assert model.criterion_ == "loo"


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_streaming_any_batch_size_equals_one_shot(batch_size):
    X, Y = _data(n=150, d=6, n_targets=3)
    one_shot = NTKRidge(_rbf(), alphas=ALPHAS, batch_size=10_000, solver="primal",
                        criterion="gcv").fit(X, Y)
    for solver in ("primal", "dual"):
        model = NTKRidge(_rbf(), alphas=ALPHAS, batch_size=batch_size, solver=solver,
                         criterion="gcv").fit(X, Y)
        assert model.alpha_ == one_shot.alpha_
        np.testing.assert_allclose(model.coef_, one_shot.coef_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(model.predict(X), one_shot.predict(X), rtol=1e-9, atol=1e-9)


def test_primal_shift_survives_large_feature_means():
    # features with mean 1e4 and spread 1: naive sums would lose ~8 digits to cancellation
    X, y = _data(n=300, d=8)
    shifted = FunctionTransformer(lambda Z: Z + 1e4)
    model = NTKRidge(shifted, alphas=ALPHAS, batch_size=32, solver="primal").fit(X, y)
    reference = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver="primal").fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-8)


@pytest.mark.parametrize("pieces", [[150], [50, 100], [1, 60, 30, 59]])
def test_partial_fit_in_pieces_equals_fit(pieces):
    X, y = _data(n=150, d=6)
    fitted = NTKRidge(_rbf(), alphas=ALPHAS, solver="primal", criterion="gcv").fit(X, y)
    model = NTKRidge(_rbf(), alphas=ALPHAS, batch_size=16)
    start = 0
    for size in pieces:
        model.partial_fit(X[start:start + size], y[start:start + size])
        start += size
    assert model.n_samples_seen_ == 150
    assert model.alpha_ == fitted.alpha_
    np.testing.assert_allclose(model.coef_, fitted.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, fitted.intercept_, rtol=1e-9)


def test_classifier_partial_fit_equals_fit_and_needs_classes():
    X, y = _data(n=120, d=6)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    fitted = NTKRidgeClassifier(_rbf(), alphas=ALPHAS, criterion="gcv").fit(X, labels)
    with pytest.raises(ValueError, match="classes"):
        NTKRidgeClassifier(_rbf()).partial_fit(X, labels)
    model = NTKRidgeClassifier(_rbf(), alphas=ALPHAS)
    model.partial_fit(X[:70], labels[:70], classes=[0, 1, 2]).partial_fit(X[70:], labels[70:])
    np.testing.assert_allclose(model.decision_function(X), fitted.decision_function(X),
                               rtol=1e-8, atol=1e-10)


def test_partial_fit_after_fit_is_refused():
    X, y = _data()
    model = NTKRidge(_rbf()).fit(X, y)
    with pytest.raises(ValueError, match="fresh estimator"):
        model.partial_fit(X, y)


def test_classifier_is_argmax_of_one_hot_regression():
    X, y = _data(n=150, d=6)
    labels = np.array(["a", "b", "c"])[np.digitize(y, np.quantile(y, [0.33, 0.66]))]
    clf = NTKRidgeClassifier(_rbf(), alphas=ALPHAS).fit(X, labels)
    one_hot = (labels[:, None] == np.array(["a", "b", "c"])).astype(float)
    reg = NTKRidge(_rbf(), alphas=ALPHAS).fit(X, one_hot)
    assert clf.alpha_ == reg.alpha_
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[reg.predict(X).argmax(1)])
    assert clf.score(X, labels) > 0.6


def test_binary_decision_function_sign_gives_prediction():
    X, y = _data(n=100, d=6)
    labels = (y > np.median(y)).astype(int)
    clf = NTKRidgeClassifier(_rbf()).fit(X, labels)
    scores = clf.decision_function(X)
    assert scores.shape == (100,)
    np.testing.assert_array_equal(clf.predict(X), (scores > 0).astype(int))


def test_single_class_is_a_clear_error():
    X, _ = _data(n=20)
    with pytest.raises(ValueError, match="single class"):
        NTKRidgeClassifier(_rbf()).fit(X, np.ones(20))


def test_sparse_input_equals_dense():
    X, y = _data(n=90, d=10)
    X[np.abs(X) < 0.8] = 0.0
    dense = NTKRidge(_rbf(), alphas=ALPHAS, batch_size=20).fit(X, y)
    for fmt in ("csr", "csc", "coo"):
        sparse = NTKRidge(_rbf(), alphas=ALPHAS, batch_size=20).fit(sp.csr_matrix(X).asformat(fmt), y)
        np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_rejected(bad):
    X, y = _data(n=20)
    X[3, 2] = bad
    with pytest.raises(ValueError):
        NTKRidge(_rbf()).fit(X, y)


def test_wrong_width_and_bad_parameters():
    X, y = _data(n=30)
    model = NTKRidge(_rbf()).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :-1])
    for params in ({"alphas": ()}, {"alphas": (1.0, -1.0)}, {"batch_size": 0},
                   {"solver": "qr"}, {"criterion": "aic"}, {"feature_map": "nonsense"}):
        with pytest.raises(ValueError):
            NTKRidge(**{"feature_map": _rbf(), **params}).fit(X, y)


def test_exact_kernel_ridge_matches_block_system():
    """Exact NTK ridge solves [[K + a I, 1], [1^T, 0]] [c; b] = [y; 0], alpha by LOO."""
    from fastntk.kernels import ntk_kernel

    X, Y = _data(n=50, d=5, n_targets=2)
    X_test = _data(n=7, d=5, seed=3)[0]
    model = NTKRidge("exact", alphas=ALPHAS, kernel_params={"depth": 2}).fit(X, Y)
    K = ntk_kernel(X, depth=2)
    n = K.shape[0]
    loo = []
    for alpha in ALPHAS:
        block = np.block([[K + alpha * np.eye(n), np.ones((n, 1))], [np.ones((1, n)), 0.0]])
        inverse = np.linalg.inv(block)[:n, :n]       # y -> c
        hat = np.eye(n) - alpha * inverse             # fitted values are y - alpha c
        resid = (Y - hat @ Y) / (1.0 - np.diag(hat))[:, None]
        loo.append(np.sum(resid ** 2) / n / 2)
    np.testing.assert_allclose(model.cv_values_[0], loo, rtol=1e-6)
    alpha = ALPHAS[int(np.argmin(loo))]
    assert model.alpha_ == alpha
    block = np.block([[K + alpha * np.eye(n), np.ones((n, 1))], [np.ones((1, n)), 0.0]])
    solution = np.linalg.solve(block, np.vstack([Y, np.zeros((1, 2))]))
    expected = ntk_kernel(X_test, X, depth=2) @ solution[:n] + solution[n]
    np.testing.assert_allclose(model.predict(X_test), expected, rtol=1e-6)
    assert not hasattr(model, "partial_fit")


def test_exact_and_features_agree_for_the_linear_kernel():
    # depth-0 analogue: a feature map phi = x is exact ridge with K = X X^T; both paths of the
    # dual code must agree with the primal one
    X, y = _data(n=40, d=60)
    primal = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver="primal",
                      criterion="gcv").fit(X, y)
    dual = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver="dual",
                    criterion="gcv").fit(X, y)
    np.testing.assert_allclose(dual.cv_values_, primal.cv_values_, rtol=1e-7)
    np.testing.assert_allclose(dual.predict(X), primal.predict(X), rtol=1e-7, atol=1e-9)


def test_save_load_round_trip(tmp_path):
    X, y = _data(n=60)
    for model in (NTKRidge(_rbf()).fit(X, y), NTKRidge("exact").fit(X, y),
                  NTKRidgeClassifier(_rbf()).fit(X, y > 2)):
        path = tmp_path / "model.pkl"
        persistence.save_model(model, path, {"task": "x"})
        loaded, meta = persistence.load_model(path)
        assert meta == {"task": "x"}
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_version_mismatch_is_a_clear_error(tmp_path, monkeypatch):
    X, y = _data(n=30)
    model = NTKRidge(_rbf()).fit(X, y)
    path = tmp_path / "model.fastntk"
    persistence.save_model(model, path)
    blob = pickle.dumps(model)
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 1)
    with pytest.raises(persistence.ModelVersionError, match="reads formats up to 1"):
        persistence.load_model(path)
    monkeypatch.setattr(ridge_module, "__version__", "99.0")
    with pytest.raises(persistence.ModelVersionError):
        pickle.loads(blob)
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a fastntk model"):
        persistence.load_model(tmp_path / "junk")


def test_float32_input_is_accepted():
    X, y = _data(n=50)
    model32 = NTKRidge(_rbf()).fit(X.astype(np.float32), y)
    assert model32.predict(X.astype(np.float32)).dtype == np.float64


def _expected_failures(estimator):
    weights = ("on these small sets alpha is chosen by leave-one-out, which counts a "
               "repeated row twice and a weight of 2 once; see "
               "test_integer_weights_equal_repeated_rows_under_gcv")
    return {"check_fit_score_takes_y": "calls partial_fit after fit, which NTKRidge refuses "
                                       "because fit does not keep the Gram matrix",
            "check_sample_weight_equivalence_on_dense_data": weights,
            "check_sample_weight_equivalence_on_sparse_data": weights}


@parametrize_with_checks([NTKRidge(RBFSampler(n_components=40, gamma=0.02, random_state=0)),
                          NTKRidgeClassifier(_rbf(20))],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [
    NTKRidge(RBFSampler(n_components=40, gamma=0.02, random_state=0), criterion="gcv"),
    NTKRidgeClassifier(_rbf(20), criterion="gcv")])
@pytest.mark.parametrize("check", [check_sample_weight_equivalence_on_dense_data,
                                   check_sample_weight_equivalence_on_sparse_data])
def test_integer_weights_equal_repeated_rows_under_gcv(estimator, check):
    if isinstance(estimator, NTKRidgeClassifier):
        pytest.xfail("sklearn's data interpolates: GCV runs off the grid (widened to "
                     "alpha = 1e-12), where the primal (weights) and dual (repeated rows) "
                     "solves differ by rounding, 2e-3 relative")
    check(type(estimator).__name__, estimator)


def test_blocked_gram_update_equals_single_call(monkeypatch):
    # the block path (used above 4096 columns to dodge an OpenBLAS dsyrk crash) on small sizes
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((13, 23))
    single = linalg.add_gram(np.zeros((23, 23), order="F"), Z)
    monkeypatch.setattr(linalg, "SYRK_BLOCK", 5)
    blocked = linalg.add_gram(np.zeros((23, 23), order="F"), Z)
    blocked_f = linalg.add_gram(np.zeros((23, 23), order="F"), np.asfortranarray(Z))
    np.testing.assert_allclose(np.triu(blocked), np.triu(Z.T @ Z), rtol=1e-12)
    np.testing.assert_allclose(np.triu(single), np.triu(blocked), rtol=1e-12)
    np.testing.assert_allclose(np.triu(blocked_f), np.triu(blocked), rtol=1e-12)
    X, y = _data(n=40, d=9)
    for solver in ("primal", "dual"):
        model = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver=solver).fit(X, y)
        monkeypatch.setattr(linalg, "SYRK_BLOCK", 4)
        blocked_model = NTKRidge(FunctionTransformer(), alphas=ALPHAS, solver=solver).fit(X, y)
        monkeypatch.setattr(linalg, "SYRK_BLOCK", 4096)
        np.testing.assert_allclose(blocked_model.coef_, model.coef_, rtol=1e-9)


def _short_rows(n=300, seed=0):
    """Short sparse rows (cosines ~ 0) and a target with an interaction of two columns."""
    X = sp.random(n, 400, density=0.02, format="csr", random_state=seed)
    X.data += 0.5
    col = lambda j: np.asarray(X[:, j].todense()).ravel()  # noqa: E731
    return X, col(0) + col(1) + 3 * col(2) * col(3)


@pytest.mark.parametrize("solver", ["dual", "krylov", "cg"])
def test_a_tail_below_its_noise_is_left_out_under_auto(solver, monkeypatch):
    from fastntk import NTKSketch

    X, y = _short_rows()
    sketch = NTKSketch(depth=2, n_components=64, random_state=0)
    model = NTKRidge(sketch, solver=solver).fit(X, y)
    fm = model.feature_map_
    assert fm.exact_degrees_ == (0, 1, 2) and fm.tail_signal_to_noise_ < 0.1
    # scored: the exact degrees >= 2 at every gamma, the tail at 0
    np.testing.assert_array_equal(model.gamma_candidates_,
                                  [(g, 0.0) for g in ridge_module.DEFAULT_GAMMAS])
    assert model.tail_gamma_ == 0.0
    assert model.coef_.shape == (fm.n_exact_features_ + fm._n_sketched,)
    assert not model.coef_[fm.n_exact_features_:].any()
    # the model that scores those candidates with the tail in the design, at weight 0
    scored = NTKRidge(sketch, solver=solver, tail_gammas=(0.0,)).fit(X, y)
    assert (scored.alpha_, scored.gamma_) == (model.alpha_, model.gamma_)
    np.testing.assert_allclose(model.predict(X), scored.predict(X), rtol=1e-6, atol=1e-6)
    # and its predictions do not compute the sketch
    monkeypatch.setattr(fm.sketch_, "transform", None)
    np.testing.assert_allclose(model.predict(X[:7]), scored.predict(X[:7]), rtol=1e-6,
                               atol=1e-6)


def test_a_tail_that_carries_signal_is_scored():
    from fastntk import NTKSketch

    X, y = _data(n=300, d=4)                       # dense, 4 columns: cosines spread widely
    model = NTKRidge(NTKSketch(depth=2, n_components=400, exact_degrees=1,
                               random_state=0), solver="dual").fit(X, y)
    assert model.feature_map_.tail_signal_to_noise_ >= 0.1
    assert model.gamma_candidates_[:, 1].max() > 0


@pytest.mark.parametrize("tail_gammas", ["same", (0.0, 1.0)])
def test_tail_gammas_other_than_auto_score_the_tail_they_name(tail_gammas):
    from fastntk import NTKSketch

    X, y = _short_rows()
    model = NTKRidge(NTKSketch(depth=2, n_components=64, random_state=0), solver="dual",
                     tail_gammas=tail_gammas).fit(X, y)
    assert model.feature_map_.tail_signal_to_noise_ < 0.1
    assert model.gamma_candidates_[:, 1].max() == 1.0


def test_auto_takes_krylov_past_its_dense_row_limit_when_the_tail_is_left_out(monkeypatch):
    from fastntk import NTKSketch

    X, y = _short_rows()
    monkeypatch.setattr(ridge_module, "_DUAL_MAX", 50)
    monkeypatch.setattr(ridge_module, "_KRYLOV_MAX_ROWS", 100)      # below n = 300
    sketch = NTKSketch(depth=2, n_components=64, random_state=0)
    assert NTKRidge(sketch).fit(X, y).solver_ == "krylov"            # no dense columns
    assert NTKRidge(sketch, tail_gammas="same").fit(X, y).solver_ == "cg"   # the tail kept
    monkeypatch.setattr(ridge_module, "_KRYLOV_SPARSE_MAX_ROWS", 299)
    assert NTKRidge(sketch).fit(X, y).solver_ == "cg"


def test_fits_from_pieces_leave_out_the_tail_as_fit_does():
    from fastntk import NTKSketch

    X, y = _short_rows(n=400)
    sketch = NTKSketch(depth=2, n_components=64, exact_degrees=1, random_state=0)
    whole = NTKRidge(sketch, solver="cg").fit(X, y)
    pieces = NTKRidge(sketch, solver="cg")
    for rows in (slice(0, 150), slice(150, 400)):
        pieces.partial_fit(X[rows], y[rows])
    # the map of the first piece measured its tail below its noise too
    assert pieces.feature_map_.tail_signal_to_noise_ < 0.1
    for model in (whole, pieces):
        np.testing.assert_array_equal(model.gamma_candidates_, [(0.0, 0.0)])
    assert whole.alpha_ == pieces.alpha_
    np.testing.assert_allclose(pieces.predict(X), whole.predict(X), rtol=1e-5, atol=1e-5)
