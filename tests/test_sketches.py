"""Tests of fastntk.sketches: exact identities, and statistics over fixed seeds."""
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastntk._hadamard import fwht_inplace
from fastntk.sketches import SRHT, CountSketch, TensorSRHT, unpack_codes

SEEDS = 300


def _pair(d, seed=0, rho=0.6):
    """Two correlated dense vectors with <x, y> clearly away from 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(d)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(d)
    return np.vstack([x, y])


def _estimates(make, XY, n_seeds, second=None):
    """<S x, S y> for the two rows of ``XY``, one sketch per seed."""
    out = np.empty(n_seeds)
    for seed in range(n_seeds):
        est = make(seed)
        Z = est.fit_transform(XY) if second is None else est.fit(XY, second).transform(XY, second)
        out[seed] = Z[0] @ Z[1]
    return out


def _assert_unbiased(estimates, exact):
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert se > 0
    assert abs(estimates.mean() - exact) < 4 * se, (estimates.mean(), exact, se)


# --------------------------------------------------------------------- exact identities


def test_fwht_matches_hadamard_matrix():
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 8, 64, 512):
        a = rng.standard_normal(n)
        expected = scipy.linalg.hadamard(n) @ a
        fwht_inplace(a)
        np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-12)


def test_countsketch_is_the_hashing_matrix():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 40))
    cs = CountSketch(n_components=9, random_state=3).fit(X)
    buckets, signs = unpack_codes(cs.codes_[:, 0])
    C = np.zeros((40, 9))
    C[np.arange(40), buckets] = signs
    np.testing.assert_allclose(cs.transform(X), X @ C, rtol=1e-12, atol=1e-12)
    # every bucket and both signs are used: the codes are not degenerate
    assert set(buckets) == set(range(9)) and set(signs) == {-1, 1}


def test_srht_is_orthogonal_when_it_keeps_every_coordinate():
    # n_components = n_pad: S = H D / sqrt(n_pad) up to a permutation, an isometry.
    X = np.random.default_rng(2).standard_normal((5, 30))
    Z = SRHT(n_components=32, random_state=0).fit_transform(X)
    np.testing.assert_allclose(Z @ Z.T, X @ X.T, rtol=1e-10, atol=1e-10)


def test_srht_pads_to_cover_more_components_than_features():
    X = np.random.default_rng(3).standard_normal((4, 10))
    srht = SRHT(n_components=48, random_state=0).fit(X)
    assert srht.n_pad_ == 64 and srht.transform(X).shape == (4, 48)
    assert len(np.unique(srht.indices_)) == 48


def test_tensor_srht_matches_definition():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 11)), rng.standard_normal((6, 5))
    ts = TensorSRHT(n_components=8, random_state=0).fit(X, Y)
    Hx, Hy = scipy.linalg.hadamard(ts.n_pad_x_), scipy.linalg.hadamard(ts.n_pad_y_)
    a = (Hx[:, :11] @ (ts.signs_x_[:, None] * X.T))[ts.indices_x_]
    b = (Hy[:, :5] @ (ts.signs_y_[:, None] * Y.T))[ts.indices_y_]
    np.testing.assert_allclose(ts.transform(X, Y), (a * b).T / np.sqrt(8), rtol=1e-12)


# ----------------------------------------------------------------------------- statistics

ESTIMATORS = {
    "countsketch": lambda m, s: CountSketch(n_components=m, random_state=s),
    "srht": lambda m, s: SRHT(n_components=m, random_state=s),
}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_inner_products_unbiased(name):
    XY = _pair(50)
    est = _estimates(lambda s: ESTIMATORS[name](16, s), XY, SEEDS)
    _assert_unbiased(est, XY[0] @ XY[1])


def test_tensor_srht_unbiased():
    XY = _pair(20, seed=1)
    UV = _pair(9, seed=2, rho=-0.5)
    est = _estimates(lambda s: TensorSRHT(n_components=16, random_state=s), XY, SEEDS,
                     second=UV)
    _assert_unbiased(est, (XY[0] @ XY[1]) * (UV[0] @ UV[1]))


def test_countsketch_variance_formula():
    XY = _pair(50)
    x, y = XY
    m = 16
    exact = (x @ x * (y @ y) + (x @ y) ** 2 - 2 * np.sum(x**2 * y**2)) / m
    est = _estimates(lambda s: ESTIMATORS["countsketch"](m, s), XY, 1000)
    # the sample variance of 1000 draws is within ~15 % of the truth
    assert 0.8 < est.var(ddof=1) / exact < 1.2


@pytest.mark.parametrize("name", ["countsketch", "srht", "tensor_srht"])
def test_variance_falls_like_one_over_m(name):
    XY = _pair(300, seed=5)
    variances = []
    for m in (16, 64):
        if name == "tensor_srht":
            make = lambda s, m=m: TensorSRHT(n_components=m, random_state=s)  # noqa: E731
        else:
            make = lambda s, m=m: ESTIMATORS[name](m, s)  # noqa: E731
        variances.append(_estimates(make, XY, SEEDS).var(ddof=1))
    # a 4x larger sketch: 4x smaller variance (n_pad = 512, so the finite-population
    # correction of the SRHT changes the ratio by less than 10 %)
    assert 2.8 < variances[0] / variances[1] < 5.7, variances


# ------------------------------------------------------------- formats, dtypes, rows


def _sparse_rows(seed=0, n=30, d=70, density=0.1):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed,
                  data_rvs=rng.standard_normal)
    X = X.toarray()
    X[3] = 0.0  # a zero row
    return X


def _transform(est, X, Y=None):
    if isinstance(est, TensorSRHT):
        return est.transform(X, Y)
    return est.transform(X)


def _fitted(name, X, m=24, seed=0):
    if name == "tensor_srht":
        return TensorSRHT(n_components=m, random_state=seed).fit(X, X[:, :17])
    return ESTIMATORS[name](m, seed).fit(X)


ALL = ["countsketch", "srht", "tensor_srht"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_formats_identical_to_dense(name, dtype):
    X = _sparse_rows().astype(dtype)
    est = _fitted(name, X)
    Y = X[:, :17] if name == "tensor_srht" else None
    dense = _transform(est, X, Y)
    assert dense.dtype == dtype
    for fmt in ("csr", "csc", "coo"):
        Xs = sp.csr_matrix(X).asformat(fmt)
        Ys = None if Y is None else sp.csr_matrix(Y).asformat(fmt)
        out = _transform(est, Xs, Ys)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, dense)


def test_unsorted_csr_indices_give_identical_output():
    X = sp.csr_matrix(_sparse_rows())
    shuffled = X.copy()
    rng = np.random.default_rng(0)
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        perm = lo + rng.permutation(hi - lo)
        shuffled.indices[lo:hi] = X.indices[perm]
        shuffled.data[lo:hi] = X.data[perm]
    shuffled.has_sorted_indices = False
    cs = CountSketch(n_components=8, random_state=0).fit(X)
    np.testing.assert_array_equal(cs.transform(shuffled), cs.transform(X))


@pytest.mark.parametrize("name", ALL)
def test_zero_row_maps_to_zero(name):
    X = _sparse_rows()
    est = _fitted(name, X)
    Y = X[:, :17] if name == "tensor_srht" else None
    assert not np.any(_transform(est, X, Y)[3])
    assert np.any(_transform(est, X, Y)[0])


@pytest.mark.parametrize("name", ALL)
def test_rows_independent_of_batch_and_threads(name):
    X = np.random.default_rng(6).standard_normal((301, 45))
    est = _fitted(name, X)
    Y = X[:, :17] if name == "tensor_srht" else None
    full = _transform(est, X, Y)
    part = _transform(est, X[100:103], None if Y is None else Y[100:103])
    np.testing.assert_array_equal(part, full[100:103])
    est.set_params(n_jobs=1)
    np.testing.assert_array_equal(_transform(est, X, Y), full)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_sketch(name):
    X = _sparse_rows()
    Y = X[:, :17] if name == "tensor_srht" else None
    a = _transform(_fitted(name, X, seed=7), X, Y)
    b = _transform(_fitted(name, X, seed=7), X, Y)
    c = _transform(_fitted(name, X, seed=8), X, Y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tensor_srht_default_second_factor_is_x():
    X = np.random.default_rng(7).standard_normal((5, 12))
    ts = TensorSRHT(n_components=16, random_state=0)
    np.testing.assert_array_equal(ts.fit_transform(X), ts.transform(X, X))


@pytest.mark.parametrize("name", ALL)
def test_input_errors(name):
    X = _sparse_rows()
    est = _fitted(name, X)
    Y = X[:, :17] if name == "tensor_srht" else None
    with pytest.raises(ValueError, match="features"):
        _transform(est, X[:, :-1], Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _transform(est, bad, Y)
    with pytest.raises(ValueError):
        _transform(est, X[:0], None if Y is None else Y[:0])
    if name == "tensor_srht":
        with pytest.raises(ValueError, match="features"):
            est.transform(X, X[:, :16])
        with pytest.raises(ValueError, match="rows"):
            est.transform(X, Y[:-1])


# ---------------------------------------------------------------------- estimator checks


@parametrize_with_checks(
    [CountSketch(n_components=8, random_state=0), SRHT(n_components=8, random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
