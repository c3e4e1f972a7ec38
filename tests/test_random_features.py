"""Tests of fastntk.NTKRandomFeatures, the NTKRF of Zandieh et al. (2021)."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastntk import NTKRandomFeatures
from fastntk.kernels import ntk_kernel


def _data(n=8, d=10, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _relative_error(F, K):
    return np.linalg.norm(F @ F.T - K) / np.linalg.norm(K)


# These checks set n_components = 1, below the minimum of 2 (one arc-cosine feature
# plus one TensorSRHT feature); what they verify is tested below with a valid width.
_N_COMPONENTS_ONE = (
    "check_dont_overwrite_parameters", "check_fit2d_predict1d",
    "check_methods_subset_invariance", "check_methods_sample_order_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature",
)


def _expected_failures(estimator):
    return {name: "sets n_components=1 < 2; covered by the tests of this file"
            for name in _N_COMPONENTS_ONE}


@parametrize_with_checks(
    [
        NTKRandomFeatures(n_components=32, depth=2, random_state=0),
        NTKRandomFeatures(n_components=16, n_arccos=5, leverage=True, random_state=0),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_what_the_n_components_one_checks_verify():
    X = _data(n=10, d=4)
    rf = NTKRandomFeatures(depth=2, n_components=8, random_state=0)
    params = rf.get_params()
    F = rf.fit_transform(X)
    assert rf.get_params() == params  # fit does not overwrite parameters
    order = np.random.default_rng(0).permutation(10)
    assert np.array_equal(rf.transform(X[order]), F[order])  # sample order invariance
    assert rf.fit(X[:1]).transform(X[:1]).shape == (1, 8)  # one sample
    assert rf.fit(X[:, :1]).transform(X[:, :1]).shape == (10, 8)  # one feature
    with pytest.raises(ValueError, match="2D"):
        rf.fit(X[0])
    with pytest.raises(ValueError, match="2D"):
        rf.fit(X).transform(X[0])


@pytest.mark.parametrize(
    "depth, kwargs",
    [
        (1, {}),
        (1, {"leverage": True, "sampler": "exact"}),
        (1, {"leverage": True, "sampler": "gibbs", "gibbs_sweeps": 3}),  # d = 6: 3 sweeps
        (2, {}),
        (2, {"leverage": True, "sampler": "exact"}),
    ],
)
def test_mean_over_seeds_approaches_exact_ntk(depth, kwargs):
    # Depth 1 is unbiased; at depth 2 the arc-cosine functions see estimated inputs, a
    # bias of the order of the variance (1/m), far below 4 standard errors here.
    X = _data(n=5, d=6)
    exact = ntk_kernel(X, depth=depth)
    estimates = np.stack([
        (lambda F: F @ F.T)(NTKRandomFeatures(depth=depth, n_components=128, random_state=s,
                                              **kwargs).fit_transform(X))
        for s in range(100)
    ])
    stderr = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - exact) < 4 * stderr + 1e-12)
    # the estimate is random, so the check is not vacuous
    assert np.all(stderr[~np.eye(5, dtype=bool)] > 1e-3)


def test_error_falls_with_n_components():
    X = _data(n=60, d=20, seed=1)
    K = ntk_kernel(X, depth=2)
    errors = [
        np.mean([_relative_error(NTKRandomFeatures(depth=2, n_components=m,
                                                   random_state=s).fit_transform(X), K)
                 for s in range(3)])
        for m in (128, 512, 2048)
    ]
    # Monte Carlo rate 1/sqrt(m): each 4x step halves the error (allow 0.35 .. 0.7)
    ratios = np.array(errors[1:]) / np.array(errors[:-1])
    assert np.all((ratios > 0.35) & (ratios < 0.7)), errors


def test_output_width_and_feature_names():
    X = _data()
    rf = NTKRandomFeatures(depth=3, n_components=50, n_arccos=20, random_state=0).fit(X)
    assert rf.transform(X).shape == (8, 50)
    assert rf.n_arccos_ == 20
    assert [w.shape for w in rf.weights_] == [(10, 40), (20, 40), (20, 40)]
    assert rf.get_feature_names_out()[-1] == "ntkrandomfeatures49"


def test_positive_homogeneity_and_zero_rows():
    # ReLU is positively homogeneous, the step function scale invariant and the
    # TensorSRHT linear in its first factor: psi(c x) = c psi(x) for c > 0
    X = _data()
    X[3] = 0.0
    rf = NTKRandomFeatures(depth=2, n_components=64, random_state=0).fit(X)
    F = rf.transform(X)
    np.testing.assert_allclose(rf.transform(2.5 * X), 2.5 * F, rtol=1e-12, atol=1e-14)
    assert not np.any(F[3])


def test_rows_are_bit_identical_whatever_the_batch():
    X = _data(n=300, d=30)
    rf = NTKRandomFeatures(depth=2, n_components=96, random_state=0).fit(X)
    F = rf.transform(X)
    for start, stop in [(0, 1), (7, 8), (5, 12), (250, 300), (17, 290)]:
        assert np.array_equal(rf.transform(X[start:stop]), F[start:stop])
    single = NTKRandomFeatures(depth=2, n_components=96, random_state=0, n_jobs=1).fit(X)
    assert np.array_equal(single.transform(X), F)
    assert np.array_equal(NTKRandomFeatures(depth=2, n_components=96,
                                            random_state=0).fit_transform(X), F)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_equals_dense_without_input_sketch(fmt):
    X = sp.random(20, 40, density=0.2, format=fmt, random_state=0)
    rf = NTKRandomFeatures(depth=2, n_components=64, input_sketch=None, random_state=0)
    F_sparse = rf.fit_transform(X)
    assert rf.input_sketch_ is None
    np.testing.assert_allclose(F_sparse, rf.transform(X.toarray()), rtol=1e-10, atol=1e-12)


def test_wide_input_is_count_sketched():
    X = sp.random(30, 5000, density=0.01, format="csr", random_state=1)
    rf = NTKRandomFeatures(n_components=64, input_sketch=128, random_state=0).fit(X)
    assert rf.input_sketch_.n_components == 128
    assert rf.weights_[0].shape == (128, 64)  # O(input_sketch * m), not O(n_features * m)
    F = rf.transform(X)
    np.testing.assert_allclose(F, rf.transform(X.toarray()), rtol=1e-10, atol=1e-12)
    # "auto" keeps inputs up to max(n_components, 8192) columns unsketched
    assert NTKRandomFeatures(n_components=64).fit(X).input_sketch_ is None


def test_input_sketch_error_is_documented_order():
    # the sketched map approximates the NTK of the sketched inputs: with a wide sketch
    # the error over the unsketched map grows only mildly
    X = sp.random(40, 2000, density=0.05, format="csr", random_state=2)
    K = ntk_kernel(X, depth=1)
    plain = NTKRandomFeatures(n_components=2048, input_sketch=None, random_state=0)
    sketched = NTKRandomFeatures(n_components=2048, input_sketch=512, random_state=0)
    err_plain = _relative_error(plain.fit_transform(X), K)
    err_sketched = _relative_error(sketched.fit_transform(X), K)
    assert err_plain < err_sketched < err_plain + 2 / np.sqrt(512)


def test_float32_stays_float32():
    X = _data(n=20)
    rf = NTKRandomFeatures(depth=2, n_components=64, random_state=0).fit(X)
    F32 = rf.transform(X.astype(np.float32))
    assert F32.dtype == np.float32
    np.testing.assert_allclose(F32, rf.transform(X), rtol=1e-5, atol=1e-6)
    assert rf.transform(sp.csr_matrix(X.astype(np.float32))).dtype == np.float32


def test_leverage_changes_only_the_relu_weights():
    X = _data()
    plain = NTKRandomFeatures(n_components=40, n_arccos=10, random_state=0).fit(X)
    lev = NTKRandomFeatures(n_components=40, n_arccos=10, leverage=True,
                            random_state=0).fit(X)
    norms = np.linalg.norm(lev.weights_[0][:, 10:], axis=0)
    np.testing.assert_allclose(lev.relu_scales_[0], np.sqrt(2 * 10 / 10) / norms)
    assert np.array_equal(plain.relu_scales_[0], np.full(10, np.sqrt(2 / 10)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 16, "n_arccos": 16}, "n_arccos"),
        ({"depth": 0}, "depth"),
        ({"sampler": "grid"}, "sampler"),
        ({"input_sketch": "big"}, "input_sketch"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        NTKRandomFeatures(**params).fit(_data())


def test_wrong_width_and_non_finite_input():
    rf = NTKRandomFeatures(n_components=16, random_state=0).fit(_data())
    with pytest.raises(ValueError, match="features"):
        rf.transform(_data(d=11))
    X = _data()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rf.transform(X)
