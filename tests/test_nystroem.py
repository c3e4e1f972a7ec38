"""Tests of fastntk.NTKNystroem, Nyström features of the exact NTK."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastntk import NTKNystroem, NTKRidge, load_model, save_model
from fastntk.kernels import ntk_kernel


def _data(n=30, d=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _sparse(n=30, d=40, seed=0):
    return sp.random(n, d, density=0.15, format="csr", random_state=seed)


@parametrize_with_checks([NTKNystroem(n_components=16, depth=2, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("make", [_data, _sparse])
@pytest.mark.parametrize("depth, kind", [(1, "ntk"), (2, "ntk"), (3, "nngp")])
def test_every_row_a_landmark_gives_the_exact_kernel(make, depth, kind):
    X = make()
    F = NTKNystroem(depth=depth, kind=kind, n_components=X.shape[0],
                    random_state=0).fit_transform(X)
    K = ntk_kernel(X, depth=depth, kind=kind)
    np.testing.assert_allclose(F @ F.T, K, rtol=1e-6, atol=1e-6 * np.abs(K).max())


def test_inner_products_are_the_kernel_projected_on_the_landmarks():
    X, Y = _data(seed=0), _data(n=7, seed=1)
    ny = NTKNystroem(depth=2, n_components=12, random_state=0).fit(X)
    L = X[ny.component_indices_]
    np.testing.assert_array_equal(ny.components_, L)
    K_YL = ntk_kernel(Y, L, depth=2)
    expected = K_YL @ np.linalg.solve(ntk_kernel(L, depth=2), K_YL.T)
    F = ny.transform(Y)
    np.testing.assert_allclose(F @ F.T, expected, rtol=1e-8, atol=1e-10)
    # exact on the landmarks, and on the pairs of a landmark and any row
    FL = ny.transform(L)
    np.testing.assert_allclose(FL @ F.T, K_YL.T, rtol=1e-8, atol=1e-10)


def test_error_falls_as_landmarks_are_added():
    X = _data(n=200, d=3)
    K = ntk_kernel(X, depth=2)
    errors = []
    for m in (5, 20, 80):
        errors.append(np.mean([
            np.linalg.norm((lambda F: F @ F.T)(
                NTKNystroem(depth=2, n_components=m, random_state=s).fit_transform(X)) - K)
            for s in range(5)]) / np.linalg.norm(K))
    assert errors[0] > 2 * errors[1] > 4 * errors[2]
    # a projection: the approximation is below the kernel (K - F F^T is PSD)
    F = NTKNystroem(depth=2, n_components=20, random_state=0).fit_transform(X)
    assert np.linalg.eigvalsh(K - F @ F.T).min() > -1e-8 * np.abs(K).max()


def test_repeated_landmarks_are_not_inverted():
    X = np.repeat(_data(n=6), 3, axis=0)
    ny = NTKNystroem(depth=2, n_components=18, random_state=0).fit(X)
    # 6 distinct rows; a repeated pair's kernel equals the row's own up to rounding,
    # which the NTK's infinite slope at cosine 1 raises to ~1e-8 relative
    assert 6 <= ny.rank_ < 18 and ny.n_components_ == 18
    F = ny.transform(X)
    assert np.all(np.isfinite(F))
    np.testing.assert_allclose(F @ F.T, ntk_kernel(X, depth=2), rtol=1e-6, atol=1e-6)


def test_fewer_rows_than_components_makes_every_row_a_landmark():
    X = _data(n=9)
    ny = NTKNystroem(n_components=50, random_state=0).fit(X)
    assert ny.n_components_ == 9 and ny.transform(X).shape == (9, 9)
    np.testing.assert_array_equal(ny.component_indices_, np.arange(9))
    assert list(ny.get_feature_names_out()) == [f"ntknystroem{i}" for i in range(9)]


def test_ridge_on_every_row_as_landmark_is_exact_kernel_ridge():
    X, y = _data(n=40), np.sin(_data(n=40)[:, 0])
    Xt = _data(n=10, seed=3)
    nystroem = NTKRidge(NTKNystroem(depth=2, n_components=40, random_state=0),
                        alphas=(0.1,), solver="dual").fit(X, y)
    exact = NTKRidge(feature_map="exact", kernel_params={"depth": 2},
                     alphas=(0.1,)).fit(X, y)
    np.testing.assert_allclose(nystroem.predict(Xt), exact.predict(Xt), rtol=1e-6,
                               atol=1e-8)


def test_a_saved_model_predicts_the_same(tmp_path):
    X, y = _data(n=40), _data(n=40)[:, 1]
    model = NTKRidge(NTKNystroem(depth=2, n_components=16, random_state=0)).fit(X, y)
    save_model(model, tmp_path / "m.fastntk")
    loaded, _ = load_model(tmp_path / "m.fastntk")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("bad, error, message", [
    (np.full((5, 3), np.nan), ValueError, "NaN"),
    (sp.csr_matrix((np.ones(2), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3)),
     ValueError, "malformed sparse matrix"),
])
def test_bad_input_is_rejected_and_the_model_kept(bad, error, message):
    X = _data()
    ny = NTKNystroem(n_components=8, random_state=0).fit(X)
    before = ny.transform(X)
    with pytest.raises(error, match=message):
        ny.fit(bad)
    np.testing.assert_array_equal(ny.transform(X), before)
    with pytest.raises(ValueError, match="features"):
        ny.transform(_data(d=4))


def test_a_landmark_matrix_beyond_memory_is_refused_before_allocation():
    X = np.ones((10**7, 1))                      # K_LL would take 800 TB
    ny = NTKNystroem(n_components=10**7)
    with pytest.raises(ValueError, match=r"NTKNystroem\(n_components=10000000\)"):
        ny.fit(X)
    assert not hasattr(ny, "components_")


def test_float32_rows_give_float32_features_of_the_same_values():
    X = _data()
    ny = NTKNystroem(depth=2, n_components=10, random_state=0).fit(X)
    F32 = ny.transform(X.astype(np.float32))
    assert F32.dtype == np.float32
    np.testing.assert_allclose(F32, ny.transform(X), rtol=1e-4, atol=1e-4)
