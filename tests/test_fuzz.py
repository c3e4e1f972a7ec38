"""Fuzz specification: malformed or extreme input never crashes nor silently corrupts.

For every estimator and kernel, hypothesis draws inputs of the classes that broke them
once: corrupt sparse index arrays, duplicate entries, magnitudes from 1e-300 to 1e300,
NaN and infinity, wrong shapes and dtypes.  What must hold:

* bad input raises ValueError (never a crash, never another exception) and a call that
  raises leaves the estimator exactly as it was;
* duplicate entries mean their sum, and the caller's matrix is not modified;
* finite input whose kernel is finite gives finite output, and the maps keep their
  homogeneity (``phi(c x) = c^p phi(x)``) across the whole float64 range.

The examples are derandomised and bounded, so the suite takes the same path, in well
under a minute, on every run.
"""
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastntk import (
    SRHT,
    CNTKSketch,
    CountSketch,
    NTKRandomFeatures,
    NTKRidge,
    NTKRidgeClassifier,
    NTKSketch,
    PolySketch,
    TensorSketch,
    TensorSRHT,
    cntk_kernel,
    ntk_kernel,
)
from fastntk.kernels import ntk_dot_product

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
N_FEATURES = 6

# name -> (factory, homogeneity degree of the output in the input)
ESTIMATORS = {
    "CountSketch": (lambda: CountSketch(8, random_state=0), 1),
    "SRHT": (lambda: SRHT(8, random_state=0), 1),
    "TensorSRHT": (lambda: TensorSRHT(8, random_state=0), 2),
    "TensorSketch": (lambda: TensorSketch(degree=2, n_components=8, random_state=0), 2),
    "PolySketch": (lambda: PolySketch(degree=2, n_components=8, random_state=0), None),
    "PolySketch-srht": (lambda: PolySketch(degree=2, n_components=8, leaf="srht",
                                           random_state=0), None),
    "NTKSketch": (lambda: NTKSketch(n_components=16, degree=4, random_state=0), 1),
    "NTKSketch-layerwise": (lambda: NTKSketch(n_components=16, degree=4, depth=2,
                                              method="layerwise", random_state=0), 1),
    "NTKRandomFeatures": (lambda: NTKRandomFeatures(n_components=16, depth=2,
                                                    random_state=0), 1),
    "NTKRandomFeatures-input-sketch": (lambda: NTKRandomFeatures(
        n_components=16, input_sketch=4, random_state=0), 1),
    "CNTKSketch": (lambda: CNTKSketch(depth=2, n_components=16, degree=2, filter_size=1,
                                      random_state=0), 1),
}
NAMES = sorted(ESTIMATORS)


def _good_data(n_rows=8, seed=0):
    X = np.random.RandomState(seed).standard_normal((n_rows, N_FEATURES))
    X[np.abs(X) < 0.5] = 0.0
    return X


def _fitted(name):
    return ESTIMATORS[name][0]().fit(_good_data())


def _assert_refused_and_unchanged(estimator, call):
    """``call()`` raises ValueError and leaves ``estimator`` as it was, bit for bit."""
    before = pickle.dumps(estimator)
    with pytest.raises(ValueError):
        call()
    assert pickle.dumps(estimator) == before


# --------------------------------------------------------------- strategies
@st.composite
def csr_matrices(draw, n_features=N_FEATURES):
    n_rows = draw(st.integers(1, 5))
    density = draw(st.floats(0.2, 1.0))
    seed = draw(st.integers(0, 2**16))
    X = sp.random(n_rows, n_features, density=density, format="csr", random_state=seed)
    X.data = X.data * 4 - 2
    return X


CORRUPTIONS = ["index_too_large", "negative_index", "indptr_decreasing", "indptr_from_one",
               "indptr_beyond_nnz", "indptr_short", "data_short", "csc_index_too_large",
               "coo_row_too_large", "coo_col_negative"]


@st.composite
def malformed_matrices(draw):
    """A sparse matrix of width N_FEATURES whose index arrays are inconsistent.

    Built valid, then corrupted in place, since scipy's constructors refuse some of
    these (not all: none of them is checked by scipy before its compiled routines)."""
    X = draw(csr_matrices())
    assume(X.nnz >= 1)
    kind = draw(st.sampled_from(CORRUPTIONS))
    k = draw(st.integers(0, X.nnz - 1))
    big = draw(st.integers(0, 2**31 - 1 - N_FEATURES))
    if kind == "index_too_large":
        X.indices[k] = N_FEATURES + big
    elif kind == "negative_index":
        X.indices[k] = -1 - big % 1000
    elif kind == "indptr_decreasing":
        assume(X.shape[0] >= 2)
        i = draw(st.integers(1, X.shape[0] - 1))
        X.indptr[i] = X.indptr[i + 1] + 1
    elif kind == "indptr_from_one":
        X.indptr[0] = 1
    elif kind == "indptr_beyond_nnz":
        X.indptr[-1] = X.nnz + 1 + big % 1000
    elif kind == "indptr_short":
        X.indptr = X.indptr[:-1].copy()
    elif kind == "data_short":
        X.data = X.data[:-1].copy()
    elif kind == "csc_index_too_large":
        X = X.tocsc()
        X.indices[k] = X.shape[0] + big % 1000
    else:
        X = X.tocoo()
        if kind == "coo_row_too_large":
            X.row[k] = X.shape[0] + big % 1000
        else:
            X.col[k] = -1
    return X


@st.composite
def with_duplicates(draw):
    """A CSR matrix storing some entries twice or more, unsorted, and its summed form."""
    n_rows = draw(st.integers(1, 4))
    rows = []
    for _ in range(n_rows):
        cols = draw(st.lists(st.integers(0, N_FEATURES - 1), min_size=0, max_size=8))
        rows.append(cols)
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([c for r in rows for c in r], dtype=np.int32)
    data = np.array(draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=len(indices),
                                  max_size=len(indices))), dtype=np.float64)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, N_FEATURES))
    summed = sp.csr_matrix(X.toarray())
    return X, summed


exponents = st.integers(-300, 300)


# ------------------------------------------------------------ malformed sparse input
@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(bad=malformed_matrices())
def test_malformed_sparse_input_is_refused(name, bad):
    estimator = _fitted(name)
    _assert_refused_and_unchanged(estimator, lambda: estimator.transform(bad))
    _assert_refused_and_unchanged(estimator, lambda: estimator.fit(bad))


@FUZZ
@given(bad=malformed_matrices())
def test_ntk_kernel_refuses_malformed_sparse_input(bad):
    with pytest.raises(ValueError, match="malformed sparse matrix"):
        ntk_kernel(bad)
    with pytest.raises(ValueError, match="malformed sparse matrix"):
        ntk_kernel(_good_data(), bad)


# ------------------------------------------------------------------------ duplicates
@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(pair=with_duplicates())
def test_duplicate_entries_mean_their_sum(name, pair):
    X, summed = pair
    stored = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    estimator = _fitted(name)
    np.testing.assert_array_equal(estimator.transform(X), estimator.transform(summed))
    for before, after in zip(stored, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(before, after)       # the caller's matrix is intact


@FUZZ
@given(pair=with_duplicates())
def test_ntk_kernel_of_duplicates_is_the_kernel_of_their_sum(pair):
    X, summed = pair
    np.testing.assert_allclose(ntk_kernel(X, depth=2), ntk_kernel(summed, depth=2),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtypes", [(np.int32, np.int64), (np.int64, np.int32),
                                    (np.uint32, np.uint32), (np.int16, np.int64)])
def test_any_integer_index_dtypes_are_accepted(name, dtypes):
    X = sp.csr_matrix(_good_data(4))
    mixed = sp.csr_matrix(X.shape)
    mixed.data, mixed.indices, mixed.indptr = (X.data, X.indices.astype(dtypes[0]),
                                               X.indptr.astype(dtypes[1]))
    estimator = _fitted(name)
    np.testing.assert_array_equal(estimator.transform(mixed), estimator.transform(X))


def test_the_issue_example_of_duplicates():
    X = sp.csr_matrix((np.array([1.0, 1.0, 3.0]), np.array([0, 0, 1]), np.array([0, 3])),
                      shape=(1, 2))
    assert ntk_kernel(X)[0, 0] == pytest.approx(26.0)           # [[2, 3]], not 22


# ------------------------------------------------------------- the float64 range
def _degrees(name, out):
    """Homogeneity degree of every output column (PolySketch: degree j in slot j)."""
    degree = ESTIMATORS[name][1]
    if degree is None:
        return np.arange(out.shape[1])[None, :, None]
    return degree


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(k=st.integers(-996, 996), seed=st.integers(0, 2**16), sparse=st.booleans())
def test_features_are_finite_and_homogeneous_over_the_float64_range(name, k, seed, sparse):
    # scaling by 2^k (1e-300 .. 1e300) is exact, so phi(2^k x) = 2^(k p) phi(x) must hold
    # to rounding: no input perturbation moves a sketch across one of its
    # discontinuities (NTKSketch rescales each block to its exact norm, which is
    # discontinuous where a block's sketch cancels to rounding level)
    estimator = _fitted(name)
    X = _good_data(4, seed)
    reference = estimator.transform(X)
    degree = _degrees(name, reference)
    assume(np.max(np.abs(k * np.asarray(degree))) <= 960)      # the answer is finite
    scaled = np.ldexp(X, k)
    out = estimator.transform(sp.csr_matrix(scaled) if sparse else scaled)
    assert np.all(np.isfinite(out))
    back = np.ldexp(out, -k * np.asarray(degree))
    tolerance = 1e-12 * np.max(np.abs(reference), initial=1.0)
    np.testing.assert_allclose(back, reference, rtol=1e-12, atol=tolerance)


@FUZZ
@given(a=exponents, b=exponents, depth=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_ntk_kernel_over_the_float64_range(a, b, depth, seed):
    assume(abs(a + b) <= 290)
    X, Y = _good_data(3, seed), _good_data(2, seed + 1)
    assume(np.all(np.abs(X).sum(axis=1) > 0) and np.all(np.abs(Y).sum(axis=1) > 0))
    expected = ntk_kernel(X, Y, depth=depth)
    K = ntk_kernel(X * 10.0**a, Y * 10.0**b, depth=depth)
    assert np.all(np.isfinite(K))
    np.testing.assert_allclose(K / 10.0 ** (a + b), expected, rtol=1e-9, atol=1e-12)


def test_ntk_kernel_of_rows_of_very_different_norms():
    unit_x = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    unit_y = np.array([[2.0, 1.0], [1.0, 1.0]])
    a, b = np.array([1e200, 1e-200, 1e-150]), np.array([1e-100, 1e100])
    K = ntk_kernel(unit_x * a[:, None], unit_y * b[:, None], depth=2)
    np.testing.assert_allclose(K, ntk_kernel(unit_x, unit_y, depth=2) * np.outer(a, b),
                               rtol=1e-12)
    # the issue's case: NaN before, where the answer is 1 * NTK of the unit-scale rows
    np.testing.assert_allclose(ntk_kernel([[1e200, 0.0]], [[1e-200, 1e-200]]),
                               ntk_kernel([[1.0, 0.0]], [[1.0, 1.0]]), rtol=1e-12)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(a=exponents, b=exponents, seed=st.integers(0, 2**16))
def test_cntk_kernel_over_the_float64_range(a, b, seed):
    assume(abs(a + b) <= 290)
    rng = np.random.RandomState(seed)
    X, Y = rng.rand(2, 3, 3, 1) + 0.1, rng.rand(1, 3, 3, 1) + 0.1
    expected = cntk_kernel(X, Y, depth=2)
    K = cntk_kernel(X * 10.0**a, Y * 10.0**b, depth=2)
    assert np.all(np.isfinite(K))
    np.testing.assert_allclose(K / 10.0 ** (a + b), expected, rtol=1e-9)


@FUZZ
@given(t=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=8),
       depth=st.integers(1, 4))
def test_ntk_dot_product_clips_cosines(t, depth):
    t = np.array(t)
    np.testing.assert_array_equal(ntk_dot_product(t, depth=depth),
                                  ntk_dot_product(np.clip(t, -1, 1), depth=depth))


@pytest.mark.parametrize("depth", [8, 14, 20, 40])
def test_cntk_sketch_stays_close_to_the_kernel_at_depth(depth):
    X = np.random.RandomState(0).standard_normal((5, 10))
    K = cntk_kernel(X.reshape(5, 1, 1, 10), depth=depth, filter_size=3)
    F = CNTKSketch(depth=depth, n_components=256, filter_size=3, random_state=0).fit_transform(X)
    assert np.all(np.isfinite(F))
    # before the fix: factors of 1e23 at depth 14, NaN at 20; the diagonal is exact to
    # within the sketch's own noise
    np.testing.assert_allclose(np.diag(F @ F.T) / np.diag(K), 1.0, atol=0.5)
    assert np.linalg.norm(F @ F.T - K) / np.linalg.norm(K) < 0.6


# --------------------------------------------------------------- NaN, inf, bad shapes
@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(value=st.sampled_from([np.nan, np.inf, -np.inf]), seed=st.integers(0, 2**16),
       sparse=st.booleans())
def test_nan_and_infinity_are_refused(name, value, seed, sparse):
    X = _good_data(4, seed)
    rng = np.random.RandomState(seed)
    X[rng.randint(4), rng.randint(N_FEATURES)] = value
    X = sp.csr_matrix(X) if sparse else X
    estimator = _fitted(name)
    _assert_refused_and_unchanged(estimator, lambda: estimator.transform(X))
    _assert_refused_and_unchanged(estimator, lambda: estimator.fit(X))


BAD_INPUTS = {
    "wrong width": np.ones((3, N_FEATURES + 1)),
    "narrower": np.ones((3, N_FEATURES - 1)),
    "1-D": np.ones(N_FEATURES),
    "3-D": np.ones((2, 3, N_FEATURES)),
    "no rows": np.ones((0, N_FEATURES)),
    "complex": np.ones((2, N_FEATURES)) * (1 + 1j),
    "strings": np.array([["a"] * N_FEATURES]),
    "None objects": np.array([[None] * N_FEATURES], dtype=object),
    "ragged": [[1.0] * N_FEATURES, [1.0]],
    "scalar": 3.0,
    "sparse wrong width": sp.csr_matrix(np.ones((2, N_FEATURES + 2))),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_and_dtypes_are_refused(name, case):
    estimator = _fitted(name)
    X = BAD_INPUTS[case]
    _assert_refused_and_unchanged(estimator, lambda: estimator.transform(X))
    if case not in ("wrong width", "narrower", "sparse wrong width"):
        _assert_refused_and_unchanged(estimator, lambda: estimator.fit(X))


@pytest.mark.parametrize("case", sorted(set(BAD_INPUTS) - {"3-D"}))
def test_kernels_refuse_bad_shapes_and_dtypes(case):
    X = BAD_INPUTS[case]
    with pytest.raises(ValueError):
        ntk_kernel(_good_data(), X) if "width" in case or case == "narrower" else ntk_kernel(X)
    with pytest.raises(ValueError):
        cntk_kernel(X)


# ---------------------------------------------------------------------- parameters
def _non_boolean_parameters():
    for name in NAMES:
        estimator = ESTIMATORS[name][0]()
        for param, constraints in estimator._parameter_constraints.items():
            if "boolean" not in constraints:
                yield name, param


@pytest.mark.parametrize("name, param", list(_non_boolean_parameters()))
def test_a_bool_is_not_a_number(name, param):
    fitted = _fitted(name)
    estimator = pickle.loads(pickle.dumps(fitted)).set_params(**{param: True})
    before = pickle.dumps(estimator)
    with pytest.raises(ValueError):
        estimator.fit(_good_data())
    assert pickle.dumps(estimator) == before


TOO_LARGE = [
    (PolySketch, {"degree": 2**40}),
    (TensorSketch, {"degree": 2**40}),
    (NTKSketch, {"n_components": 2**50}),
    (NTKSketch, {"degree": 10**6}),
    (NTKSketch, {"n_components": 2**40, "method": "layerwise"}),
    (NTKRandomFeatures, {"n_components": 2**40}),
    (CNTKSketch, {"degree": 2**30}),
    (CNTKSketch, {"n_components": 2**30, "depth": 10**4}),
]


@pytest.mark.parametrize("cls, params", TOO_LARGE, ids=lambda p: str(p))
def test_sizes_that_cannot_be_allocated_are_refused_up_front(cls, params):
    estimator = cls(**params)
    with pytest.raises(ValueError, match=r"needs at least [\d.]+ [KMGTP]iB of memory"):
        estimator.fit(_good_data())
    assert not hasattr(estimator, "n_features_in_")


def test_a_failed_fit_keeps_the_previous_fit():
    estimator = _fitted("NTKSketch")
    before = pickle.dumps(estimator)
    estimator.set_params(n_components=2**50)
    with pytest.raises(ValueError):
        estimator.fit(np.ones((3, 11)))
    estimator.set_params(n_components=16)
    assert pickle.dumps(estimator) == before
    assert estimator.transform(_good_data()).shape == (8, 16)


# ------------------------------------------------------------------ NTKRidge, NTKRidgeClassifier
RIDGES = {
    "NTKRidge-sketch": lambda: NTKRidge(NTKSketch(n_components=16, degree=4, random_state=0)),
    "NTKRidge-exact": lambda: NTKRidge("exact"),
    "NTKRidgeClassifier-sketch": lambda: NTKRidgeClassifier(
        NTKSketch(n_components=16, degree=4, random_state=0)),
}


def _ridge_data(name, seed=0):
    X = _good_data(20, seed)
    y = X @ np.arange(1.0, N_FEATURES + 1)
    return X, ((y > np.median(y)).astype(float) if "Classifier" in name else y)


def _fitted_ridge(name):
    return RIDGES[name]().fit(*_ridge_data(name))


@pytest.mark.parametrize("name", sorted(RIDGES))
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(bad=malformed_matrices().filter(lambda X: X.format == "csr"))
def test_ridge_refuses_malformed_csr(name, bad):
    model = _fitted_ridge(name)
    before = pickle.dumps(model)
    with pytest.raises(ValueError):
        model.predict(bad)
    assert pickle.dumps(model) == before
    with pytest.raises(ValueError):
        RIDGES[name]().fit(bad, np.ones(bad.shape[0]))


_MALFORMED_RIDGE_SCRIPT = """
import numpy as np, scipy.sparse as sp
from fastntk import NTKRidge
X = np.random.RandomState(0).rand(20, 6)
model = NTKRidge("exact").fit(X, X.sum(axis=1))
bad = sp.{fmt}_matrix(X)
{corrupt}
for call in (lambda: model.predict(bad), lambda: NTKRidge("exact").fit(bad, np.ones(20))):
    try:
        call()
    except ValueError:
        continue
    raise SystemExit("accepted a malformed matrix")
"""


@pytest.mark.parametrize("fmt, corrupt", [
    pytest.param("csc", "bad.indices[3] = 40"),
    pytest.param("coo", "bad.row[3] = 40"),
])
def test_ridge_refuses_malformed_csc_and_coo(fmt, corrupt):
    # in a subprocess: scipy's conversion of a malformed matrix can crash the process
    script = _MALFORMED_RIDGE_SCRIPT.format(fmt=fmt, corrupt=corrupt)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])


@pytest.mark.parametrize("name", sorted(RIDGES))
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(value=st.sampled_from([np.nan, np.inf]), seed=st.integers(0, 2**16))
def test_ridge_refuses_nan_and_infinity_at_predict(name, value, seed):
    model = _fitted_ridge(name)
    X = _good_data(4, seed)
    X[seed % 4, seed % N_FEATURES] = value
    before = pickle.dumps(model)
    with pytest.raises(ValueError):
        model.predict(X)
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("name", sorted(RIDGES))
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(k=exponents, seed=st.integers(0, 2**16))
def test_ridge_predictions_are_finite_over_the_float64_range(name, k, seed):
    assume(abs(k) <= 150 or "exact" not in name)   # exact: the kernel is quadratic in x
    model = _fitted_ridge(name)
    assert np.all(np.isfinite(model.predict(_good_data(4, seed) * 10.0**k)))


@pytest.mark.parametrize("name", sorted(RIDGES))
def test_ridge_rejected_fit_leaves_the_model_unchanged(name):
    model = _fitted_ridge(name)
    before = pickle.dumps(model)
    with pytest.raises(ValueError):
        model.fit(np.full((20, N_FEATURES + 1), np.nan), np.ones(20))
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("name", ["NTKRidge-sketch", "NTKRidgeClassifier-sketch"])
def test_ridge_refused_partial_fit_leaves_the_model_unchanged(name):
    model = _fitted_ridge(name)
    before = pickle.dumps(model)
    X, y = _ridge_data(name, seed=1)
    with pytest.raises(ValueError):
        model.partial_fit(X[:, :-1], y + 5)
    assert pickle.dumps(model) == before


def test_ridge_refuses_a_target_of_none_objects():
    with pytest.raises(ValueError):
        NTKRidge("exact").fit(_good_data(5), np.array([None] * 5, dtype=object))


@pytest.mark.parametrize("params", [{"feature_map": 42},
                                    {"feature_map": "exact", "kernel_params": {"bogus": 1}}],
                         ids=["feature_map=42", "unknown kernel_params"])
def test_ridge_bad_parameters_raise_value_error(params):
    X, y = _ridge_data("NTKRidge")
    with pytest.raises(ValueError):
        NTKRidge(**params).fit(X, y)


def test_ridge_refuses_bool_batch_size():
    X, y = _ridge_data("NTKRidge")
    with pytest.raises(ValueError):
        NTKRidge("exact", batch_size=True).fit(X, y)


def test_ridge_refuses_a_feature_map_too_large_for_memory():
    X, y = _ridge_data("NTKRidge")
    with pytest.raises(ValueError, match="memory"):
        NTKRidge(NTKSketch(n_components=2**50)).fit(X, y)
