"""Tests of fastntk.sketches: exact identities, and statistics over fixed seeds."""
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastntk._countsketch import hashed_codes
from fastntk._hadamard import fwht_inplace
from fastntk import sketches
from fastntk.sketches import (
    SRHT,
    CountSketch,
    PolySketch,
    TensorSketch,
    TensorSRHT,
    unpack_codes,
)

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


def test_hashed_codes_are_uniform_and_independent_across_keys():
    # The on-the-fly hash behaves like the random table it replaces: every bucket
    # equally likely (chi-square), signs balanced, and distinct keys uncorrelated.
    n_features, m = 200_000, 64
    keys = np.array([1, 2, 2**62 + 12345], dtype=np.uint64)
    buckets, signs = unpack_codes(hashed_codes(keys, n_features, m))
    for l in range(3):
        counts = np.bincount(buckets[:, l], minlength=m)
        chi2 = ((counts - n_features / m) ** 2 / (n_features / m)).sum()
        assert chi2 < m + 5 * np.sqrt(2 * m)  # chi2 with m - 1 dof: mean m - 1, sd ~ sqrt(2m)
        assert abs(signs[:, l].mean()) < 5 / np.sqrt(n_features)
    # adjacent keys: the sign patterns of keys 1 and 2 agree about half the time
    assert abs((signs[:, 0] * signs[:, 1]).mean()) < 5 / np.sqrt(n_features)
    assert np.mean(buckets[:, 0] == buckets[:, 1]) == pytest.approx(1 / m, abs=5e-3)


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
    "tensorsketch": lambda m, s: TensorSketch(degree=3, n_components=m, random_state=s),
}


@pytest.mark.parametrize("name", ["countsketch", "srht"])
def test_inner_products_unbiased(name):
    XY = _pair(50)
    est = _estimates(lambda s: ESTIMATORS[name](16, s), XY, SEEDS)
    _assert_unbiased(est, XY[0] @ XY[1])


def test_tensorsketch_unbiased():
    XY = _pair(50, rho=0.8)
    XY /= np.linalg.norm(XY, axis=1, keepdims=True)
    est = _estimates(lambda s: ESTIMATORS["tensorsketch"](32, s), XY, SEEDS)
    _assert_unbiased(est, (XY[0] @ XY[1]) ** 3)


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


@pytest.mark.parametrize("name", ["countsketch", "srht", "tensor_srht", "tensorsketch"])
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


def _reference_tree(poly, leaves):
    """PolySketch tree of the definition, node by node, for one list of p leaf vectors."""
    m = poly.n_components
    H = scipy.linalg.hadamard(poly.tree_n_pad_)[:, :m]
    level, g = list(leaves), 0
    while len(level) > 1:
        nxt = []
        for left, right in zip(level[::2], level[1::2]):
            a = (H @ (poly.tree_signs_[g, 0] * left))[poly.tree_indices_[g, 0]]
            b = (H @ (poly.tree_signs_[g, 1] * right))[poly.tree_indices_[g, 1]]
            nxt.append(a * b / np.sqrt(m))
            g += 1
        level = nxt
    return level[0]


@pytest.mark.parametrize("leaf", ["countsketch", "srht"])
def test_polysketch_every_degree_matches_its_own_tree(leaf):
    # Q^j(x) = tree(leaf_1(x), ..., leaf_j(x), e_1, ..., e_1): the shared computation of
    # all degrees gives exactly what the definition gives degree by degree.
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3, 13))
    poly = PolySketch(degree=8, n_components=8, leaf=leaf, random_state=0).fit(X)
    Z = poly.transform(X)
    if leaf == "countsketch":
        buckets, signs = unpack_codes(hashed_codes(poly.leaf_keys_, 13, 8))
        C = np.zeros((8, 13, 8))
        for k in range(8):
            C[k, np.arange(13), buckets[:, k]] = signs[:, k]
        leaves = np.einsum("nd,kdm->nkm", X, C)
    else:
        H = scipy.linalg.hadamard(poly.leaf_n_pad_)[:, :13]
        leaves = np.stack(
            [(H @ (poly.leaf_signs_[k][:, None] * X.T))[poly.leaf_indices_[k]].T
             for k in range(8)], axis=1) / np.sqrt(8)
    e1 = np.eye(1, 8)[0]
    for i in range(3):
        np.testing.assert_array_equal(Z[i, 0], e1)
        for j in range(1, 9):
            expected = _reference_tree(poly, list(leaves[i, :j]) + [e1] * (8 - j))
            np.testing.assert_allclose(Z[i, j], expected, rtol=1e-10, atol=1e-12)


def test_tensorsketch_is_a_countsketch_of_the_tensor_power():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((4, 6))
    ts = TensorSketch(degree=2, n_components=5, random_state=0).fit(X)
    buckets, signs = unpack_codes(ts.codes_)
    expected = np.zeros((4, 5))
    for j1 in range(6):
        for j2 in range(6):
            b = (buckets[j1, 0] + buckets[j2, 1]) % 5
            expected[:, b] += signs[j1, 0] * signs[j2, 1] * X[:, j1] * X[:, j2]
    np.testing.assert_allclose(ts.transform(X), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("leaf", ["countsketch", "srht"])
def test_polysketch_unbiased_up_to_degree_8(leaf):
    XY = _pair(40, seed=3, rho=0.8)
    XY /= np.linalg.norm(XY, axis=1, keepdims=True)
    exact = XY[0] @ XY[1]
    n_seeds = 200
    est = np.empty((n_seeds, 9))
    for seed in range(n_seeds):
        Z = PolySketch(degree=8, n_components=32, leaf=leaf, random_state=seed).fit_transform(XY)
        est[seed] = np.sum(Z[0] * Z[1], axis=1)
    assert np.all(est[:, 0] == 1.0)
    for j in range(1, 9):
        _assert_unbiased(est[:, j], exact**j)


@pytest.mark.parametrize("leaf", ["countsketch", "srht"])
def test_polysketch_variance_falls_like_one_over_m(leaf):
    XY = _pair(300, seed=5)
    variances = []
    for m in (16, 64):
        est = np.empty(SEEDS)
        for seed in range(SEEDS):
            Z = PolySketch(degree=2, n_components=m, leaf=leaf, random_state=seed).fit_transform(XY)
            est[seed] = Z[0, 2] @ Z[1, 2]
        variances.append(est.var(ddof=1))
    # the O(1/m^2) terms of the degree-2 variance push the ratio a little above 4
    assert 2.8 < variances[0] / variances[1] < 6.5, variances


def test_polysketch_auto_leaf_follows_the_fit_input():
    X = _sparse_rows()
    assert PolySketch(random_state=0).fit(X).leaf_ == "srht"
    assert PolySketch(random_state=0).fit(sp.csr_matrix(X)).leaf_ == "countsketch"


def test_polysketch_rejects_degrees_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        PolySketch(degree=3).fit(_sparse_rows())


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
    if name.startswith("poly"):
        leaf = "countsketch" if name == "poly_cs" else "srht"
        return PolySketch(degree=4, n_components=m, leaf=leaf, random_state=seed).fit(X)
    return ESTIMATORS[name](m, seed).fit(X)


ALL = ["countsketch", "srht", "tensor_srht", "tensorsketch", "poly_cs", "poly_srht"]


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
    Z = _transform(est, X, Y)
    if name.startswith("poly"):
        # degree 0 is the constant e_1 for every row, the others vanish with x
        np.testing.assert_array_equal(Z[:, 0], np.eye(1, Z.shape[2]).repeat(len(X), 0))
        Z = Z[:, 1:]
    assert not np.any(Z[3])
    assert np.all(np.any(Z[0], axis=-1))


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


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sparse", [False, True])
def test_batching_does_not_change_rows(name, sparse, monkeypatch):
    X = _sparse_rows(n=50)
    est = _fitted(name, X, m=16)
    X = sp.csr_matrix(X) if sparse else X
    Y = X[:, :17] if name == "tensor_srht" else None
    full = _transform(est, X, Y)
    monkeypatch.setattr(sketches, "_BATCH_VALUES", 7 * 128)  # batches of a few rows
    np.testing.assert_array_equal(_transform(est, X, Y), full)


# ---------------------------------------------------------------------- estimator checks


# TensorSRHT is left out: its fit(X, Y) takes a second input matrix where the checks pass
# a target vector.  Its API is covered by the tests above and the one below.
def test_tensor_srht_feature_names_and_fitted_state():
    X = _sparse_rows()
    ts = _fitted("tensor_srht", X, m=4)
    assert list(ts.get_feature_names_out()) == [f"tensorsrht{k}" for k in range(4)]
    assert ts.n_features_in_ == 70 and ts.n_features_y_ == 17
    with pytest.raises(Exception, match="not fitted"):
        TensorSRHT().transform(X)


@parametrize_with_checks(
    [
        CountSketch(n_components=8, random_state=0),
        SRHT(n_components=8, random_state=0),
        TensorSketch(degree=2, n_components=8, random_state=0),
        PolySketch(degree=2, n_components=8, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
