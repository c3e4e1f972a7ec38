"""Tests of fastntk.NTKSketch against the exact NTK (fastntk.kernels.ntk_kernel)."""
import collections

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastntk import NTKRidge, NTKSketch
from fastntk import _exact_features
from fastntk import ntk_sketch as ntk_sketch_module
from fastntk.kernels import ntk_kernel
from fastntk.ntk_sketch import (_PolynomialSketch, drop_noisy_degrees,
                                mean_powers_of_cosines, signal_to_noise, split_widths)

METHODS = ["polyfit", "layerwise"]


def _relative_error(features, kernel):
    return np.linalg.norm(features @ features.T - kernel) / np.linalg.norm(kernel)


def _mean_error(X, kernel, n_seeds=2, **params):
    """Error against the NTK of the map that estimates it (every degree sketched: "auto"
    estimates the polynomial of the degrees it keeps)."""
    params.setdefault("sketch_degrees", "all")
    return np.mean([_relative_error(NTKSketch(random_state=s, **params).fit_transform(X), kernel)
                    for s in range(n_seeds)])


@pytest.fixture(scope="module")
def data():
    """Non-negative sparse rows (positive cosines, as TF-IDF or pixels), one zero row."""
    rng = np.random.RandomState(0)
    X = np.abs(rng.randn(50, 30)) * (rng.rand(50, 30) < 0.5)
    X[0] = 0.0
    return X


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("depth", [1, 3])
def test_error_falls_with_n_components(data, method, depth):
    kernel = ntk_kernel(data, depth=depth)
    small = _mean_error(data, kernel, depth=depth, method=method, n_components=256)
    large = _mean_error(data, kernel, depth=depth, method=method, n_components=4096)
    # 16 times the width: the standard deviation falls 4 times; the polynomial bias
    # (measured below 0.02 at degree 8) keeps it from falling further
    assert large < small / 2.5
    assert large < 0.05


@pytest.mark.parametrize("method", METHODS)
def test_error_falls_with_degree(data, method):
    kernel = ntk_kernel(data, depth=2)
    errors = [_mean_error(data, kernel, depth=2, method=method, n_components=4096, degree=p)
              for p in (1, 2, 8)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_depths(data, method, depth):
    kernel = ntk_kernel(data, depth=depth)
    features = NTKSketch(depth=depth, method=method, n_components=1024,
                         sketch_degrees="all", random_state=0).fit_transform(data)
    assert features.shape == (50, 1024)
    assert _relative_error(features, kernel) < 0.12


def test_polynomial_sketch_is_unbiased():
    """Mean over seeds of <phi(x), phi(y)> is sum_j a_j <x, y>^j (within 4 std errors)."""
    rng = np.random.RandomState(1)
    X = rng.randn(2, 40)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    cosine = X[0] @ X[1]
    coef = np.array([0.3, 0.5, 0.4, 0.2, 0.15, 0.0, 0.1])
    widths = np.array([1, 20, 24, 16, 16, 0, 16])  # leaves narrower than the input
    estimates = []
    for seed in range(400):
        sketch = _PolynomialSketch(coef, widths, 40, np.random.RandomState(seed))
        F = sketch.transform(X, np.empty((2, sketch.n_components)), normalize=False)
        estimates.append(F[0] @ F[1])
    estimates = np.array(estimates)
    exact = np.polynomial.polynomial.polyval(cosine, coef)
    stderr = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) < 4 * stderr
    # the test can fail: the estimates do vary
    assert stderr > 1e-3


def test_split_widths():
    widths = split_widths(np.array([0.5, 1.0, 0.0, 0.25]), 1001)
    assert widths.sum() == 1001
    assert widths[0] == 1 and widths[2] == 0
    # degree 3 (a PolySketch) pays for its larger variance per coordinate
    assert widths[3] / widths[1] == pytest.approx(0.25 * np.sqrt(2), rel=0.01)
    assert split_widths(np.array([0.0, 1.0]), 7).tolist() == [0, 7]


def test_mean_powers_of_cosines_is_the_brute_force_mean_over_pairs_of_the_first_rows():
    rng = np.random.RandomState(3)
    X = np.abs(rng.randn(30, 12)) * (rng.rand(30, 12) < 0.6)
    X[4] = 0.0                                              # a zero row has no cosine
    first = X[:20]
    rows = [i for i in range(20) if np.any(first[i])]
    t = [first[i] @ first[k] / np.linalg.norm(first[i]) / np.linalg.norm(first[k])
         for a, i in enumerate(rows) for k in rows[a + 1:]]
    expected = [np.mean(np.square(t) ** j) for j in (1, 2, 5)]
    for fmt in (None, "csr", "csc", "coo"):
        Z = X if fmt is None else sp.csr_matrix(X).asformat(fmt)
        np.testing.assert_allclose(mean_powers_of_cosines(Z, (1, 2, 5), n_rows=20),
                                   expected, rtol=1e-12)
    assert np.isnan(mean_powers_of_cosines(X[3:5], (2,))).all()   # one non-zero row


def test_drop_noisy_degrees_keeps_signal_and_respends_the_width():
    coef = np.array([0.5, 0.0, 1.0, 1.0, 1.0])
    widths = split_widths(np.array([0.0, 0.0, 1.0, 1.0, 1.0]), 300)      # 100 each
    assert widths.tolist() == [0, 0, 100, 100, 100]
    # noise V_j / m_j = 2 / 100: every degree above it stays
    np.testing.assert_array_equal(
        drop_noisy_degrees(coef, widths, lambda d: np.full(len(d), 0.05)), widths)
    # degree 4 below (ratio 0.5) goes first; degree 3 (ratio 0.9 at 100 columns, 1.35 at
    # the 150 it gets once degree 4 is gone) then stays
    power = {2: 1.0, 3: 0.018, 4: 0.01}
    out = drop_noisy_degrees(coef, widths, lambda d: np.array([power[j] for j in d]))
    assert out.tolist() == [0, 0, 150, 150, 0]
    # the lowest sketched degree stays whatever its ratio; the budget is kept
    out = drop_noisy_degrees(coef, widths, lambda d: np.full(len(d), 1e-9))
    assert out.tolist() == [0, 0, 300, 0, 0]
    # no cosines (fewer than two rows): nothing is dropped
    np.testing.assert_array_equal(
        drop_noisy_degrees(coef, widths, lambda d: np.full(len(d), np.nan)), widths)


def test_signal_to_noise_is_the_mean_power_times_width_over_variance():
    coef = np.array([0.5, 1.0, 0.0, 1.0, 1.0])
    widths = np.array([0, 64, 0, 100, 0])
    ratio = signal_to_noise(coef, widths, lambda d: np.array([{1: 0.1, 3: 0.02}[j]
                                                              for j in d]))
    # V_1 = 1 (a CountSketch), V_3 = 2 (a tree of TensorSRHTs)
    assert ratio == pytest.approx({1: 6.4, 3: 1.0})
    assert signal_to_noise(coef, np.zeros(5, dtype=np.int64), None) == {}


@pytest.mark.parametrize("sparse", [False, True])
def test_tail_signal_to_noise_is_measured_on_the_first_rows(sparse):
    rng = np.random.RandomState(0)
    X = np.abs(rng.randn(1200, 30)) * (rng.rand(1200, 30) < 0.3)
    Z = sp.csr_matrix(X) if sparse else X
    est = NTKSketch(depth=2, n_components=256, random_state=0).fit(Z)
    widths = est.widths_["ntk"]
    sketched = [j for j in range(len(widths)) if widths[j] > 0]
    assert sketched
    powers = mean_powers_of_cosines(X[:1000], sketched)
    expected = max(p * widths[j] / (1.0 if j == 1 else 2.0) for j, p in zip(sketched, powers))
    assert est.tail_signal_to_noise_ == pytest.approx(expected, rel=1e-12)
    # rows whose cosines are ~0 beside their exact pairs: the tail is far below its noise
    short = sp.random(500, 20000, density=0.0005, format="csr", random_state=0)
    assert NTKSketch(depth=2, n_components=256, random_state=0).fit(
        short).tail_signal_to_noise_ < 1e-2
    assert np.isnan(NTKSketch(method="layerwise", n_components=64).fit(X).tail_signal_to_noise_)


def test_transform_blocks_without_the_sketch_gives_the_exact_block_alone():
    X = sp.random(40, 50, density=0.1, format="csr", random_state=0)
    est = NTKSketch(depth=2, n_components=64, random_state=0).fit(X)
    exact, tail = est.transform_blocks(X)
    exact_only, no_tail = est.transform_blocks(X, sketched=False)
    assert (exact_only != exact).nnz == 0 and no_tail.shape == (40, 0)
    dense = np.abs(np.random.RandomState(1).randn(30, 4))
    est = NTKSketch(depth=2, n_components=64, random_state=0).fit(dense)
    _, full = est.transform_blocks(dense)
    _, head = est.transform_blocks(dense, sketched=False)
    np.testing.assert_array_equal(head, full[:, :est.n_exact_features_])


def test_sketch_degrees_auto_drops_the_degrees_the_cosines_do_not_carry():
    rng = np.random.RandomState(0)
    spread = rng.randn(200, 400)                              # cosines ~ N(0, 1/400)
    aligned = 5.0 + rng.randn(200, 400)                       # cosines ~ 0.96
    fitted = {name: NTKSketch(depth=2, n_components=512, exact_degrees=0,
                              random_state=0).fit(X)
              for name, X in (("spread", spread), ("aligned", aligned))}
    every = NTKSketch(depth=2, n_components=512, exact_degrees=0, sketch_degrees="all",
                      random_state=0).fit(spread)
    nonzero = tuple(np.flatnonzero(every.coef_["ntk"]))
    assert every.degrees_ == nonzero
    assert fitted["aligned"].degrees_ == nonzero
    kept = fitted["spread"].degrees_
    assert kept == (0, 1)          # only degree 1 carries anything at cosines ~ 0.05
    assert fitted["spread"].widths_["ntk"].sum() == every.widths_["ntk"].sum()
    assert fitted["spread"].transform(spread).shape == (200, 512)


def test_sketch_degrees_auto_sketches_every_degree_of_sparse_input():
    X = sp.random(200, 5000, density=0.002, format="csr", random_state=0)   # cosines ~ 0
    auto = NTKSketch(depth=2, n_components=512, random_state=0).fit(X)
    every = NTKSketch(depth=2, n_components=512, sketch_degrees="all", random_state=0).fit(X)
    np.testing.assert_array_equal(auto.widths_["ntk"], every.widths_["ntk"])
    assert auto.degrees_ == tuple(np.flatnonzero(auto.coef_["ntk"]))


def test_sketch_degrees_auto_estimates_the_polynomial_of_its_degrees():
    """Mean over seeds of <phi(x), phi(y)> is the polynomial of the kept degrees (within
    4 standard errors), not the whole NTK polynomial."""
    rng = np.random.RandomState(2)
    X = rng.randn(40, 300)
    X[:2] = X[:2] + 2.0 * np.abs(rng.randn(300))              # a pair of cosine 0.76
    estimates = []
    for seed in range(150):
        sketch = NTKSketch(depth=2, n_components=64, exact_degrees=0, random_state=seed)
        F = sketch.fit_transform(X)
        estimates.append(F[0] @ F[1])
    coef = sketch.coef_["ntk"]
    assert sketch.degrees_ != tuple(np.flatnonzero(coef))       # some were dropped
    kept = np.zeros_like(coef)
    kept[list(sketch.degrees_)] = coef[list(sketch.degrees_)]
    norms = np.linalg.norm(X[0]) * np.linalg.norm(X[1])
    t = X[0] @ X[1] / norms
    target = norms * np.polynomial.polynomial.polyval(t, kept)
    whole = norms * np.polynomial.polynomial.polyval(t, coef)
    estimates = np.array(estimates)
    stderr = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - target) < 4 * stderr
    assert abs(estimates.mean() - whole) > 4 * stderr          # the test can fail


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_components", [1, 2, 37, 1000])
def test_output_width_is_exact(data, method, n_components):
    F = NTKSketch(n_components=n_components, depth=2, method=method,
                  random_state=0).fit_transform(data)
    assert F.shape == (50, n_components)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_and_dense_give_the_same_features(data, method, fmt, dtype):
    est = NTKSketch(n_components=300, depth=2, method=method, random_state=0).fit(data)
    dense = est.transform(data.astype(dtype))
    sparse = est.transform(sp.csr_matrix(data.astype(dtype)).asformat(fmt))
    assert dense.dtype == sparse.dtype == dtype
    np.testing.assert_array_equal(dense, sparse)


@pytest.mark.parametrize("method", METHODS)
def test_float32_stays_float32(data, method):
    est = NTKSketch(n_components=512, depth=2, method=method, random_state=0).fit(data)
    F32 = est.transform(data.astype(np.float32))
    F64 = est.transform(data)
    assert F32.dtype == np.float32 and F64.dtype == np.float64
    np.testing.assert_allclose(F32, F64, atol=2e-5 * np.abs(F64).max())


@pytest.mark.parametrize("method", METHODS)
def test_zero_rows_and_homogeneity(data, method):
    est = NTKSketch(n_components=256, depth=2, method=method, random_state=0).fit(data)
    F = est.transform(data)
    assert np.all(F[0] == 0)
    # the NTK is homogeneous of degree 2, the features of degree 1 (exact scaling)
    np.testing.assert_allclose(est.transform(3.0 * data), 3.0 * F, rtol=1e-12, atol=1e-14)
    # the diagonal is exact up to the value at t = 1 of the polynomial of the degrees kept
    poly_at_one = (est.coef_["ntk"][list(est.degrees_)].sum() if method == "polyfit"
                   else None)
    if poly_at_one is not None:
        np.testing.assert_allclose(np.sum(F**2, axis=1),
                                   poly_at_one * np.sum(data**2, axis=1), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_batch_size_and_row_independence(data, method, monkeypatch):
    est = NTKSketch(n_components=128, depth=2, method=method, random_state=0).fit(data)
    whole = est.transform(data)
    monkeypatch.setattr(ntk_sketch_module, "_BATCH_BYTES", 1)  # one row per batch
    np.testing.assert_array_equal(est.transform(data), whole)
    np.testing.assert_array_equal(est.transform(data[7:9]), whole[7:9])
    np.testing.assert_array_equal(
        NTKSketch(n_components=128, depth=2, method=method, random_state=0,
                  n_jobs=1).fit_transform(data), whole)


def test_random_state(data):
    a = NTKSketch(n_components=64, random_state=0).fit_transform(data)
    b = NTKSketch(n_components=64, random_state=0).fit_transform(data)
    c = NTKSketch(n_components=64, random_state=1).fit_transform(data)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("method", METHODS)
def test_huge_sparse_width_costs_no_memory_per_feature(method):
    """Fitted state is O(n_components), whatever n_features (hashes are not stored)."""
    n_features = 10**8
    rng = np.random.RandomState(0)
    indices = np.sort(rng.choice(n_features, size=(20, 50), replace=False), axis=1).ravel()
    X = sp.csr_matrix((rng.rand(1000), indices, np.arange(0, 1001, 50)),
                      shape=(20, n_features))
    est = NTKSketch(n_components=512, depth=2, method=method, random_state=0).fit(X)
    F = est.transform(X)
    width = 512 + (1 + n_features if est.sparse_output_ else 0)   # + the sparse exact block
    data = F.data if sp.issparse(F) else F
    assert F.shape == (20, width) and np.all(np.isfinite(data))
    sketches = [est.sketch_] if method == "polyfit" else [est.theta0_, *est.layers_[0][:2]]
    state = sum(a.nbytes for s in sketches for a in vars(s).values()
                if isinstance(a, np.ndarray))
    assert state < 10**6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("poly", ["fit", "taylor"])
def test_fitted_attributes(data, method, poly):
    est = NTKSketch(n_components=64, method=method, poly=poly, degree=6).fit(data)
    keys = {"ntk"} if method == "polyfit" else {"k0", "k1"}
    assert set(est.coef_) == set(est.poly_max_error_) == set(est.widths_) == keys
    for key in keys:
        assert est.coef_[key].shape == (7,) and np.all(est.coef_[key] >= 0)
        assert 0 < est.poly_max_error_[key] < 1
    assert est.n_features_in_ == 30
    assert list(est.get_feature_names_out()[:2]) == ["ntksketch0", "ntksketch1"]


def test_validation(data):
    est = NTKSketch(n_components=32).fit(data)
    with pytest.raises(ValueError, match="features"):
        est.transform(data[:, :5])
    bad = data.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)
    with pytest.raises(ValueError):
        NTKSketch(method="exact").fit(data)
    with pytest.raises(ValueError):
        NTKSketch(n_components=0).fit(data)
    with pytest.raises(ValueError, match="min_pair_df"):
        NTKSketch(min_pair_df=0).fit(data)


@parametrize_with_checks([NTKSketch(n_components=16, method=m, random_state=0)
                          for m in METHODS])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# -- exact where cheap --------------------------------------------------------------------
def test_monomial_features_are_exact_for_every_degree():
    from fastntk._exact_features import MonomialFeatures

    rng = np.random.default_rng(0)
    U = rng.standard_normal((7, 4))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    for degrees in [(0,), (1,), (2,), (3,), (0, 1, 2, 3), (1, 3)]:
        coef = np.arange(1.0, 5.0)
        block = MonomialFeatures(4, degrees, coef)
        F = block.transform(U, np.empty((7, block.n_components)))
        expected = sum(coef[j] * (U @ U.T) ** j for j in degrees)
        np.testing.assert_allclose(F @ F.T, expected, rtol=1e-12, atol=1e-13)


def test_auto_represents_the_cheap_degrees_exactly():
    X = np.random.default_rng(0).standard_normal((5, 9))
    sketch = NTKSketch(depth=2, n_components=4096, random_state=0).fit(X)
    # d = 9: degree j has C(8 + j, j) monomials; at least degrees 0..3 (220 columns) fit
    assert sketch.exact_degrees_[:4] == (0, 1, 2, 3)
    assert sketch.transform(X).shape == (5, 4096)
    assert sketch.widths_["ntk"][list(sketch.exact_degrees_)].sum() == 0


@pytest.mark.parametrize("n_components, exact", [(3795, (0, 1, 2, 3)), (4096, (0, 1, 2, 3)),
                                                 (3794, (0, 1, 2))])
def test_auto_takes_the_low_degrees_whole_while_each_takes_half_the_free_width(
        n_components, exact):
    """d = 21: degrees 0..2 have 1 + 21 + 231 = 253 monomials and degree 3 has 1,771; it
    is exact from 253 + 2 x 1,771 = 3,795 columns on, although a budget split would give
    it less than 1,771."""
    from fastntk.ntk_sketch import choose_exact_degrees, split_widths

    X = np.random.default_rng(0).standard_normal((5, 21))
    sketch = NTKSketch(depth=2, n_components=n_components, random_state=0).fit(X)
    coef = sketch.coef_["ntk"]
    assert coef[3] > 0 and split_widths(coef, n_components - 253)[3] < 1771
    assert sketch.exact_degrees_[:len(exact)] == exact
    assert (3 in sketch.exact_degrees_) == (3 in exact)
    assert choose_exact_degrees(coef, n_components, 21, False, "auto")[0] == (
        sketch.exact_degrees_)
    assert sketch.n_exact_features_ <= n_components
    assert sketch.transform(X).shape == (5, n_components)


@pytest.mark.parametrize("n_components, exact", [(1024, (0,)), (1569, (0, 1)), (1568, (0,))])
def test_auto_does_not_starve_the_sketched_degrees(n_components, exact):
    """d = 784 (MNIST): degree 1 is exact only where its 784 monomials leave the other
    degrees at least as many columns (1 + 2 x 784 = 1,569)."""
    from fastntk.ntk_sketch import choose_exact_degrees
    from fastntk.polyfit import kernel_polynomial

    coef, _ = kernel_polynomial("ntk", 8, depth=2)
    assert choose_exact_degrees(coef, n_components, 784, False, "auto")[0] == exact


def test_sparse_input_gets_its_own_row_as_the_exact_degree_one():
    X = sp.random(6, 50, density=0.1, format="csr", random_state=0)
    sketch = NTKSketch(depth=2, n_components=64, exact_degrees=1, random_state=0).fit(X)
    F = sketch.transform(X)
    assert sp.issparse(F) and F.shape == (6, 1 + 50 + 64)
    assert sketch.n_linear_features_ == sketch.n_exact_features_ == 51
    a = sketch.coef_["ntk"]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(1))).ravel()
    np.testing.assert_allclose(F[:, 0].toarray().ravel(), np.sqrt(a[0]) * norms)
    np.testing.assert_allclose(F[:, 1:51].toarray(), np.sqrt(a[1]) * X.toarray())
    exact, tail = sketch.transform_blocks(X)
    assert exact.nnz == X.nnz + 6 and tail.shape == (6, 64)
    # the same rows given dense give the same features
    np.testing.assert_array_equal(sketch.transform(X.toarray()).toarray(), F.toarray())


def _pairs_brute_force(X, Y):
    """``<x, y>^2 / (||x|| ||y||)`` from dense arrays (0 for a zero row)."""
    X, Y = X.toarray(), Y.toarray()
    nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    scale = np.outer(nx, ny)
    return np.divide((X @ Y.T) ** 2, scale, out=np.zeros_like(scale), where=scale > 0)


def _pair_counts(X):
    """How many rows of the CSR ``X`` hold each unordered pair of columns ``(i, j)``,
    ``i <= j`` (a column paired with itself included)."""
    return collections.Counter((i, j) for r in range(X.shape[0]) for i in X[r].indices
                               for j in X[r].indices if i <= j)


def _pair_features_brute_force(X, pairs, coef2):
    """``sqrt(a_2) x_i x_j / ||x||`` (times sqrt(2) for ``i != j``) over ``pairs``."""
    D = X.toarray()
    norms = np.linalg.norm(D, axis=1)[:, None]
    F = np.array([[D[r, i] * D[r, j] * (1.0 if i == j else np.sqrt(2.0)) for i, j in pairs]
                  for r in range(D.shape[0])]).reshape(D.shape[0], len(pairs))
    return np.sqrt(coef2) * np.divide(F, norms, out=np.zeros_like(F), where=norms > 0)


@pytest.mark.parametrize("min_pair_df", [1, 2, 3])
def test_sparse_degree_two_is_exact_over_the_pairs_enough_fit_rows_hold(min_pair_df):
    X = sp.random(40, 30, density=0.15, format="csr", random_state=1)
    X = (sp.diags((np.arange(40) != 3).astype(float)) @ X).tocsr()  # row 3 zero
    X.eliminate_zeros()
    sketch = NTKSketch(depth=2, n_components=64, exact_degrees=2, min_pair_df=min_pair_df,
                       random_state=0).fit(X)
    a = sketch.coef_["ntk"]
    assert sketch.exact_degrees_ == (0, 1, 2) and sketch.n_linear_features_ == 31
    # one column per pair of columns (with itself) that at least min_pair_df rows hold
    counts = _pair_counts(X)
    kept = sorted(pair for pair, count in counts.items() if count >= min_pair_df)
    assert sketch.n_exact_features_ == 31 + len(kept)
    assert (len(kept) == len(counts)) == (min_pair_df == 1) and kept
    exact, _ = sketch.transform_blocks(X)
    pair_block = exact[:, 31:]
    B = _pair_features_brute_force(X, kept, a[2])
    np.testing.assert_allclose((pair_block @ pair_block.T).toarray(), B @ B.T,
                               rtol=1e-12, atol=1e-14)
    if min_pair_df == 1:        # every pair seen: the degree-2 term itself on the fit rows
        np.testing.assert_allclose(B @ B.T, a[2] * _pairs_brute_force(X, X),
                                   rtol=1e-12, atol=1e-14)
    # new rows: inner products with the fit rows are over the same pairs
    Z = sp.random(7, 30, density=0.3, format="csr", random_state=2)
    new, _ = sketch.transform_blocks(Z)
    np.testing.assert_allclose((new[:, 31:] @ pair_block.T).toarray(),
                               _pair_features_brute_force(Z, kept, a[2]) @ B.T,
                               rtol=1e-12, atol=1e-14)
    assert new.has_sorted_indices


def test_pair_counts_add_up_across_the_chunks_of_a_fit(monkeypatch):
    # a vocabulary collected a few rows at a time counts each pair over all the rows
    X = sp.random(50, 20, density=0.2, format="csr", random_state=4)
    whole = NTKSketch(depth=2, n_components=8, exact_degrees=2, min_pair_df=3,
                      random_state=0).fit(X).exact_.vocabulary
    monkeypatch.setattr(_exact_features, "_PAIR_CHUNK", 7)
    chunked = NTKSketch(depth=2, n_components=8, exact_degrees=2, min_pair_df=3,
                        random_state=0).fit(X).exact_.vocabulary
    np.testing.assert_array_equal(chunked, whole)
    assert whole.size == sum(count >= 3 for count in _pair_counts(X).values())


def test_a_min_pair_df_above_every_count_leaves_an_empty_pair_block():
    X = sp.random(10, 20, density=0.2, format="csr", random_state=0)
    sketch = NTKSketch(depth=2, n_components=8, exact_degrees=2, min_pair_df=11,
                       random_state=0).fit(X)
    exact, tail = sketch.transform_blocks(X)
    assert sketch.n_exact_features_ == sketch.n_linear_features_ == 21
    assert exact.shape == (10, 21) and tail.shape == (10, 8)


def _rows_of_length(n_rows, n_features, length, seed=0):
    """CSR rows of exactly ``length`` non-zeros each."""
    rng = np.random.default_rng(seed)
    indices = np.concatenate([np.sort(rng.choice(n_features, length, replace=False))
                              for _ in range(n_rows)])
    return sp.csr_matrix((rng.random(n_rows * length) + 0.1, indices,
                          np.arange(n_rows + 1) * length), shape=(n_rows, n_features))


@pytest.mark.parametrize("length, exact", [(1, (0, 1, 2)), (32, (0, 1, 2)),
                                           (33, (0, 1))])
def test_auto_takes_the_pairs_of_short_sparse_rows_only(length, exact):
    """Rows of at most 32 non-zeros on average: degree 2 exact (the pairs of columns);
    longer rows: degrees 0 and 1, the pairs' cost growing with the square of the length."""
    X = _rows_of_length(40, 60, length)
    auto = NTKSketch(n_components=64, depth=2, random_state=0).fit(X)
    explicit = NTKSketch(n_components=64, depth=2, random_state=0,
                         exact_degrees=max(exact)).fit(X)
    assert auto.exact_degrees_ == exact
    assert auto.n_exact_features_ == explicit.n_exact_features_
    np.testing.assert_array_equal(auto.transform(X).toarray(),
                                  explicit.transform(X).toarray())


def test_auto_takes_no_pairs_of_too_many_rows(monkeypatch):
    monkeypatch.setattr(ntk_sketch_module, "_AUTO_PAIRS_MAX_ROWS", 39)
    X = _rows_of_length(40, 60, 5)
    assert NTKSketch(n_components=64, depth=2).fit(X).exact_degrees_ == (0, 1)
    assert NTKSketch(n_components=64, depth=2).fit(X[:39]).exact_degrees_ == (0, 1, 2)


@pytest.mark.parametrize("sparse, tail", [(True, "sketch"), (False, "sketch"),
                                          (False, "nystroem")])
def test_predictions_through_the_blocks_products_match_the_features(sparse, tail):
    """Predict applies a sparse exact block, and a Nyström tail through its folded
    factor, to the weights without forming the features: the same predictions."""
    rng = np.random.default_rng(0)
    X = (sp.random(60, 40, density=0.1, format="csr", random_state=0) if sparse
         else rng.standard_normal((60, 3)))
    Z = (sp.random(9, 40, density=0.2, format="csr", random_state=3) if sparse
         else rng.standard_normal((9, 3)))
    y = np.asarray(X[:, [0]].toarray() if sparse else X[:, [0]]).ravel() ** 2
    model = NTKRidge(NTKSketch(depth=2, n_components=48, exact_degrees=2, tail=tail,
                               random_state=0),
                     solver="dual", gammas=(1.0,), tail_gammas="same").fit(X, y)
    assert model.feature_map_.tail_ == tail and model.coef_[-1] != 0
    F = model.feature_map_.transform(Z)
    np.testing.assert_allclose(model.predict(Z), F @ model.coef_ + model.intercept_,
                               rtol=1e-10, atol=1e-12)


def test_exact_degrees_zero_sketches_everything_but_the_constant():
    X = sp.random(6, 50, density=0.1, format="csr", random_state=0)
    sketch = NTKSketch(depth=2, n_components=64, exact_degrees=0, random_state=0).fit(X)
    assert sketch.exact_degrees_ == (0,) and sketch.transform(X).shape == (6, 1 + 64)


def test_impossible_exact_degrees_are_clear_errors():
    X = sp.random(6, 50, density=0.1, format="csr", random_state=0)
    with pytest.raises(ValueError, match="exact_degrees <= 2"):
        NTKSketch(exact_degrees=3).fit(X)
    with pytest.raises(ValueError, match="more than n_components"):
        NTKSketch(n_components=16, exact_degrees=2).fit(np.ones((3, 9)))
    with pytest.raises(ValueError, match="layerwise"):
        NTKSketch(method="layerwise", exact_degrees=1).fit(np.ones((3, 9)))


def test_exact_block_removes_the_low_degrees_variance():
    # over seeds, the kernel of a sparse input varies only through the sketched tail
    X = sp.random(4, 200, density=0.05, format="csr", random_state=1)
    grams = []
    for seed in range(10):
        sketch = NTKSketch(depth=1, n_components=32, random_state=seed).fit(X)
        F = sketch.transform(X)
        exact, _ = sketch.transform_blocks(X)
        grams.append(((F @ F.T) - (exact @ exact.T)).toarray())
        if seed:
            np.testing.assert_array_equal(exact.toarray(), first)   # no randomness at all
        first = exact.toarray()
    assert np.std(grams, axis=0).max() > 0                        # the tail is random


# -- the Nyström tail: exact Taylor degrees and landmarks for the rest of the NTK -------
@pytest.fixture(scope="module")
def low_dimensional():
    """Rows of a handful of columns (every degree of the polynomial fits exactly), with
    a zero row."""
    X = np.random.default_rng(0).standard_normal((120, 3))
    X[7] = 0.0
    return X


def test_nystroem_tail_is_the_exact_ntk_when_every_row_is_a_landmark(low_dimensional):
    # degrees 0..2 of 3 features: 1 + 3 + 6 columns, then the 119 non-zero rows
    sketch = NTKSketch(depth=2, n_components=129, exact_degrees=2, tail="nystroem",
                       random_state=0).fit(low_dimensional)
    assert sketch.tail_ == "nystroem" and sketch.exact_degrees_ == (0, 1, 2)
    assert (sketch.n_exact_features_, sketch._n_sketched) == (10, 119)
    F = sketch.transform(low_dimensional)
    K = ntk_kernel(low_dimensional, depth=2)
    np.testing.assert_allclose(F @ F.T, K, rtol=1e-6, atol=1e-6 * K.max())
    np.testing.assert_array_equal(F[7], 0.0)


def test_nystroem_tail_is_exact_against_its_landmarks_and_below_the_ntk_elsewhere(
        low_dimensional):
    sketch = NTKSketch(depth=3, n_components=70, exact_degrees=1, tail="nystroem",
                       random_state=0).fit(low_dimensional)
    new = np.random.default_rng(1).standard_normal((30, 3))
    rows = np.vstack([sketch.sketch_.landmarks, new])
    F = sketch.transform(rows)
    K = ntk_kernel(rows, depth=3)
    n = sketch._n_sketched
    np.testing.assert_allclose((F @ F.T)[:n], K[:n], rtol=1e-6, atol=1e-6 * K.max())
    # Nyström's error is positive semi-definite: the features never overestimate
    assert np.linalg.eigvalsh(K - F @ F.T).min() > -1e-6 * K.max()
    assert np.linalg.norm(K - F @ F.T) > 1e-3 * np.linalg.norm(K)


def test_nystroem_tail_exact_block_holds_the_taylor_degrees(low_dimensional):
    from fastntk.polyfit import kernel_polynomial

    sketch = NTKSketch(depth=2, n_components=60, exact_degrees=3, tail="nystroem",
                       random_state=0).fit(low_dimensional)
    taylor, _ = kernel_polynomial("ntk", 8, poly="taylor", depth=2)
    np.testing.assert_array_equal(sketch.coef_["ntk"], taylor)
    exact, F = sketch.transform_blocks(low_dimensional)
    U = low_dimensional / np.maximum(np.linalg.norm(low_dimensional, axis=1), 1e-300)[:, None]
    head = F[:, :sketch.n_exact_features_]
    norms = np.linalg.norm(low_dimensional, axis=1)
    expected = np.outer(norms, norms) * sum(taylor[j] * (U @ U.T) ** j for j in range(4))
    assert exact is None
    np.testing.assert_allclose(head @ head.T, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_nonzero, n_features, n_components, sparse, tail", [
    (600, 3, 400, False, "nystroem"),  # degrees 0-8 of 3 features: 165 columns <= 200
    (100, 3, 400, False, "nystroem"),  # all 100 non-zero rows landmarks, 135 zero columns
    (600, 3, 300, False, "sketch"),    # 165 columns > half of 300
    (600, 9, 4096, False, "sketch"),   # degrees 0-8 of 9 features: 24,310 columns
    (600, 3, 400, True, "sketch"),     # sparse input is never given landmarks
])
def test_auto_takes_the_nystroem_tail_for_a_handful_of_columns(n_nonzero, n_features,
                                                               n_components, sparse, tail):
    X = np.zeros((600, n_features))
    X[:n_nonzero] = np.random.default_rng(0).standard_normal((n_nonzero, n_features))
    sketch = NTKSketch(depth=2, n_components=n_components, random_state=0)
    sketch.fit(sp.csr_matrix(X) if sparse else X)
    assert sketch.tail_ == tail
    assert sketch.transform(X[:5]).shape[1] == sketch.n_exact_features_ + sketch._n_sketched
    if tail == "nystroem":
        assert sketch.exact_degrees_ == tuple(range(9))
        assert (sketch.n_exact_features_, sketch._n_sketched) == (165, 235)
        assert sketch.sketch_.n_components == min(235, n_nonzero)
        F = sketch.transform(X)
        np.testing.assert_array_equal(F[:, 165 + sketch.sketch_.n_components:], 0.0)


def test_nystroem_tail_refuses_what_it_cannot_do(low_dimensional):
    sketch = NTKSketch(depth=2, n_components=50, random_state=0).fit(low_dimensional)
    before = dict(sketch.__dict__)
    for params, X, message in [
            ({"tail": "nystroem"}, sp.csr_matrix(low_dimensional), "dense input"),
            ({"tail": "nystroem", "method": "layerwise"}, low_dimensional, "polyfit"),
            ({"tail": "nystroem", "exact_degrees": 3, "n_components": 20}, low_dimensional,
             "at least one")]:
        with pytest.raises(ValueError, match=message):
            sketch.set_params(**params).fit(X)
        sketch.set_params(tail="auto", method="polyfit", n_components=50,
                          exact_degrees="auto")
        assert sketch.__dict__.keys() == before.keys()
        assert sketch.sketch_ is before["sketch_"]


def test_nystroem_tail_of_zero_rows_only_gives_zero_features():
    sketch = NTKSketch(depth=2, n_components=300, tail="nystroem",
                       random_state=0).fit(np.zeros((5, 3)))
    assert sketch.sketch_.n_components == 0
    F = sketch.transform(np.ones((2, 3)))
    assert F.shape == (2, 300)
    np.testing.assert_array_equal(F[:, sketch.n_exact_features_:], 0.0)


def test_a_low_degree_does_not_give_wider_rows_landmarks():
    # degrees 0-1 of 30 features fit in half the width, degrees 0-8 do not
    X = np.random.default_rng(0).standard_normal((400, 30))
    assert NTKSketch(degree=1, n_components=256, random_state=0).fit(X).tail_ == "sketch"
    assert NTKSketch(degree=1, n_components=256, tail="nystroem",
                     random_state=0).fit(X).tail_ == "nystroem"


def test_nystroem_tail_dot_is_its_features_times_the_weights(low_dimensional):
    sketch = NTKSketch(depth=2, n_components=60, exact_degrees=1, tail="nystroem",
                       random_state=0).fit(low_dimensional)
    tail = sketch.sketch_
    U = low_dimensional[:9] / np.maximum(
        np.linalg.norm(low_dimensional[:9], axis=1), 1e-300)[:, None]
    features = tail.transform(U, np.empty((9, tail.n_components)))
    rng = np.random.default_rng(0)
    for W in (rng.standard_normal((tail.n_components, 2)),
              rng.standard_normal((tail.n_components, 2))):    # a new W is folded anew
        np.testing.assert_allclose(tail.dot(U, W), features @ W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(tail.dot(U, W), features @ W, rtol=1e-9, atol=1e-12)
