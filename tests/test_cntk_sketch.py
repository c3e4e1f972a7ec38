"""Tests of CNTKSketch: statistical agreement with the exact CNTK, API and input handling."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastntk.cntk_sketch as cntk_sketch_module
from fastntk import CNTKSketch
from fastntk.arccos import k0, k1
from fastntk.kernels import cntk_kernel, ntk_kernel


# ---------------------------------------------------------------------------
# brute-force CNTK with pluggable arc-cosine functions (definition in fastntk.kernels)
# ---------------------------------------------------------------------------
def _window(A, out_size, q, offset):
    """W[A] on a (h, w, h, w) pixel-pair array, zeros outside the map."""
    h, w = A.shape[:2]
    out_h, out_w = out_size
    B = np.zeros((h + 2 * q, w + 2 * q, h + 2 * q, w + 2 * q))
    B[q:q + h, q:q + w, q:q + h, q:q + w] = A
    out = np.zeros((out_h, out_w, out_h, out_w))
    for a in range(q):
        for b in range(q):
            r, c = q + offset + a, q + offset + b
            out += B[r:r + out_h, c:c + out_w, r:r + out_h, c:c + out_w]
    return out / q**2


def _brute_cntk(x, y, *, depth, q, padding, pooling, f1, f0):
    """CNTK(x, y) from the recursion, with ``f1``, ``f0`` in place of k1, k0."""
    height, width, _ = x.shape
    if padding == "same":
        sizes, offset = [(height, width)] * depth, -((q - 1) // 2)
    else:
        sizes = [(height - (q - 1) * (h + 1), width - (q - 1) * (h + 1)) for h in range(depth)]
        offset = 0
    pairs = [(x, y), (x, x), (y, y)]
    sig = [_window(np.einsum("ijc,klc->ijkl", a, b), sizes[0], q, offset) for a, b in pairs]
    theta = sig[0].copy()
    for h in range(depth):
        diag = [np.einsum("ijij->ij", s) for s in sig[1:]]
        scales = [np.sqrt(a[:, :, None, None] * b[None, None])
                  for a, b in ((diag[0], diag[1]), (diag[0], diag[0]), (diag[1], diag[1]))]
        kmaps, rho0 = [], None
        for s, scale in zip(sig, scales):
            with np.errstate(invalid="ignore", divide="ignore"):
                rho = np.clip(np.where(scale > 0, s / scale, 0.0), -1, 1)
            rho0 = rho if rho0 is None else rho0
            kmaps.append(scale * f1(rho))
        theta = theta * f0(rho0) + kmaps[0]
        if h + 1 < depth:
            sig = [_window(kmap, sizes[h + 1], q, offset) for kmap in kmaps]
            theta = _window(theta, sizes[h + 1], q, offset)
    n_pixels = sizes[-1][0] * sizes[-1][1]
    if pooling == "flatten":
        return np.einsum("ijij->", theta) / n_pixels
    return theta.sum() / n_pixels**2


def _poly(coef):
    return lambda t: np.polynomial.polynomial.polyval(t, coef)


def _relative_error(F, K):
    return np.linalg.norm(F @ F.T - K) / np.linalg.norm(K)


@pytest.mark.parametrize("padding, pooling", [("same", "flatten"), ("valid", "gap")])
def test_brute_force_reference_is_the_exact_cntk(padding, pooling):
    # the reference below is only trusted because it agrees with fastntk.kernels
    X = np.random.RandomState(0).randn(2, 5, 5, 2)
    exact = cntk_kernel(X[:1], X[1:], depth=2, padding=padding, pooling=pooling)[0, 0]
    brute = _brute_cntk(X[0], X[1], depth=2, q=3, padding=padding, pooling=pooling,
                        f1=k1, f0=k0)
    assert brute == pytest.approx(exact, rel=1e-12)


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "degree, padding, pooling",
    [(4, "same", "gap"), (3, "valid", "flatten"), (1, "same", "flatten")],
)
def test_depth_one_is_unbiased_for_the_polynomial_cntk(degree, padding, pooling):
    # At depth 1 every step is an unbiased sketch of the CNTK whose k1, k0 are the
    # fitted polynomials: the mean over seeds must be within 4 standard errors of it.
    X = np.random.RandomState(1).randn(2, 5, 5, 2)
    params = dict(depth=1, degree=degree, padding=padding, pooling=pooling)
    est = CNTKSketch(n_components=8, **params).fit(X)
    target = _brute_cntk(X[0], X[1], depth=1, q=3, padding=padding, pooling=pooling,
                         f1=_poly(est.k1_coef_), f0=_poly(est.k0_coef_))
    values = []
    for seed in range(200):
        F = CNTKSketch(n_components=64, random_state=seed, n_jobs=1, **params).fit_transform(X)
        values.append(F[0] @ F[1])
    mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean - target) < 4 * se
    assert se < 0.1 * abs(target)  # the test has power


@pytest.mark.parametrize("padding, pooling",
                         [("same", "gap"), ("same", "flatten"), ("valid", "gap"),
                          ("valid", "flatten")])
def test_kernel_error_falls_with_n_components(padding, pooling):
    X = np.random.RandomState(2).rand(5, 6, 6, 2)
    K = cntk_kernel(X, depth=2, padding=padding, pooling=pooling)

    def error(m):
        return np.mean([
            _relative_error(CNTKSketch(depth=2, n_components=m, padding=padding,
                                       pooling=pooling, random_state=s).fit_transform(X), K)
            for s in range(3)
        ])

    small, large = error(64), error(4096)
    # 1/sqrt(m) predicts a factor 8; the polynomial bias (< 1% here) is far below
    assert large < small / 3
    assert large < 0.06


def test_one_pixel_filter_one_is_the_ntk():
    # 2-D input without image_shape = 1x1 images; with filter_size=1 the CNTK is the NTK
    rng = np.random.RandomState(3)
    X = rng.randn(2, 6)
    X[1] += X[0]  # a clearly positive cosine
    exact = ntk_kernel(X, depth=2)[0, 1]
    est = CNTKSketch(depth=2, filter_size=1, degree=8, n_components=8).fit(X)
    poly = _brute_cntk(X[0].reshape(1, 1, -1), X[1].reshape(1, 1, -1), depth=2, q=1,
                       padding="same", pooling="gap", f1=_poly(est.k1_coef_),
                       f0=_poly(est.k0_coef_))
    assert exact == pytest.approx(cntk_kernel(X[:1].reshape(1, 1, 1, -1),
                                              X[1:].reshape(1, 1, 1, -1), depth=2,
                                              filter_size=1)[0, 0])
    values = [
        (lambda F: F[0] @ F[1])(
            CNTKSketch(depth=2, filter_size=1, degree=8, n_components=512, random_state=s,
                       n_jobs=1).fit_transform(X))
        for s in range(100)
    ]
    mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean - poly) < 4 * se + 0.01 * abs(poly)  # normalisation bias is O(1/m)
    assert abs(poly - exact) < 0.02 * abs(exact)  # the degree-8 fit


def test_zero_image_has_zero_features():
    X = np.zeros((2, 5, 5, 1))
    X[1, 2, 2] = 1.0
    F = CNTKSketch(depth=2, n_components=32, random_state=0).fit_transform(X)
    assert np.all(F[0] == 0)
    assert np.any(F[1] != 0)


# ---------------------------------------------------------------------------
# dtype, determinism, input formats
# ---------------------------------------------------------------------------
def test_float32_stays_float32_and_agrees_with_float64():
    X = np.random.RandomState(4).rand(3, 6, 6, 3)
    est = CNTKSketch(depth=2, n_components=100, random_state=0).fit(X)
    F64 = est.transform(X)
    F32 = est.transform(X.astype(np.float32))
    assert F64.dtype == np.float64 and F32.dtype == np.float32
    assert F32.shape == (3, 100)
    np.testing.assert_allclose(F32, F64, rtol=1e-3, atol=1e-4 * np.abs(F64).max())


def test_bit_identical_whatever_the_batch_and_threads(monkeypatch):
    X = np.random.RandomState(5).rand(5, 6, 6, 2).astype(np.float32)
    est = CNTKSketch(depth=3, n_components=64, pooling="flatten", random_state=0).fit(X)
    whole = est.transform(X)
    monkeypatch.setattr(cntk_sketch_module, "_BATCH_VALUES", 2 * 36 * 64)  # 2 images
    assert np.array_equal(est.transform(X), whole)
    assert np.array_equal(est.transform(X[3:]), whole[3:])
    assert np.array_equal(est.set_params(n_jobs=1).transform(X), whole)


def test_image_inputs_agree():
    rng = np.random.RandomState(6)
    X = rng.rand(3, 4, 5, 2)
    X[X < 0.5] = 0
    flat = X.reshape(3, -1)
    ref = CNTKSketch(depth=2, n_components=32, random_state=0).fit(X).transform(X)
    est = CNTKSketch(depth=2, n_components=32, image_shape=(4, 5, 2), random_state=0)
    assert np.array_equal(est.fit(flat).transform(flat), ref)
    assert np.array_equal(est.transform(sp.csr_matrix(flat)), ref)
    assert np.array_equal(est.transform(X), ref)
    assert est.image_shape_ == (4, 5, 2)
    assert est.n_features_in_ == 40
    assert list(est.get_feature_names_out()[:2]) == ["cntksketch0", "cntksketch1"]


def test_input_errors():
    X = np.random.RandomState(7).rand(2, 4, 4, 1)
    est = CNTKSketch(depth=1, n_components=8).fit(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        est.transform(np.random.rand(2, 2, 8, 1))
    with pytest.raises(ValueError, match="features"):
        est.transform(np.random.rand(2, 15))
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)
    with pytest.raises(ValueError, match="image_shape"):
        CNTKSketch(image_shape=(3, 3, 1)).fit(np.random.rand(2, 10))
    with pytest.raises(ValueError, match="too small"):
        CNTKSketch(depth=2, padding="valid").fit(X[:, :3, :3])
    with pytest.raises(ValueError):
        CNTKSketch(pooling="max").fit(X)


@parametrize_with_checks([CNTKSketch(depth=2, n_components=16, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
