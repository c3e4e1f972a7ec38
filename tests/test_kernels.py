"""Specification of the exact kernels (definitions in the fastntk.kernels docstring)."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastntk.arccos import k0, k0_taylor, k1, k1_taylor
from fastntk.kernels import cntk_diagonals, cntk_kernel, ntk_dot_product, ntk_kernel

SPARSE_FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------------
# arc-cosine functions
# ---------------------------------------------------------------------------
def test_arccos_closed_forms_and_series():
    t = np.linspace(-1, 1, 201)
    np.testing.assert_allclose(k0(t), 0.5 + np.arcsin(t) / np.pi, atol=1e-15)
    np.testing.assert_allclose(k1(t), (np.sqrt(1 - t**2) + t * (np.pi - np.arccos(t))) / np.pi)
    assert k0(1.0) == 1.0 and k1(1.0) == 1.0 and k0(-1.0) == 0.0 and k1(-1.0) == 0.0
    # rounding excursions are clipped, never NaN
    assert k0(1 + 1e-12) == 1.0 and k1(-1 - 1e-12) == 0.0
    # Taylor series: non-negative coefficients converging to the functions inside (-1, 1)
    inner = t[np.abs(t) <= 0.9]
    for series, func in ((k0_taylor(401), k0), (k1_taylor(401), k1)):
        assert np.all(series >= 0)
        np.testing.assert_allclose(np.polynomial.polynomial.polyval(inner, series),
                                   func(inner), atol=1e-6)
    np.testing.assert_allclose(k1_taylor(4), [1 / np.pi, 0.5, 1 / (2 * np.pi), 0,
                                              1 / (24 * np.pi)])
    np.testing.assert_allclose(k0_taylor(3), [0.5, 1 / np.pi, 0, 1 / (6 * np.pi)])


# ---------------------------------------------------------------------------
# fully-connected NTK
# ---------------------------------------------------------------------------
def test_vectorisable_arccos_is_accurate():
    from numba import njit

    from fastntk.arccos import acos

    acos_array = njit(lambda x: np.array([acos(v) for v in x]))
    t = np.concatenate([np.linspace(-1, 1, 100_001), 1 - np.logspace(-16, -1, 200),
                        -1 + np.logspace(-16, -1, 200)])
    np.testing.assert_allclose(acos_array(t), np.arccos(t), rtol=4e-16, atol=4e-16)


def test_depth_one_closed_form(rng):
    X, Y = rng.standard_normal((6, 5)), rng.standard_normal((4, 5))
    nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    gram = X @ Y.T
    rho = gram / np.outer(nx, ny)
    np.testing.assert_allclose(ntk_kernel(X, Y), gram * k0(rho) + np.outer(nx, ny) * k1(rho),
                               rtol=1e-13)
    np.testing.assert_allclose(ntk_kernel(X, Y, kind="nngp"), np.outer(nx, ny) * k1(rho),
                               rtol=1e-13)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_dot_product_form_matches_recursion(rng, depth):
    t = np.linspace(-1, 1, 41)
    # K_L(t) = sum_h k1^(h)(t) prod_{j=h..L-1} k0(k1^(j)(t))
    compositions = [t]
    for _ in range(depth):
        compositions.append(k1(compositions[-1]))
    expected = sum(
        compositions[h] * np.prod([k0(compositions[j]) for j in range(h, depth)], axis=0)
        for h in range(depth + 1)
    )
    np.testing.assert_allclose(ntk_dot_product(t, depth=depth), expected, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(ntk_dot_product(t, depth=depth, kind="nngp"),
                               compositions[-1], atol=1e-15)
    # and NTK(x, y) = ||x|| ||y|| K_L(cos)
    X, Y = rng.standard_normal((5, 7)), rng.standard_normal((3, 7))
    nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    cos = (X @ Y.T) / np.outer(nx, ny)
    np.testing.assert_allclose(ntk_kernel(X, Y, depth=depth),
                               np.outer(nx, ny) * ntk_dot_product(cos, depth=depth),
                               rtol=1e-12)
    assert ntk_dot_product(1.0, depth=depth) == pytest.approx(depth + 1)


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("depth", [1, 3])
def test_symmetric_positive_semidefinite(rng, depth, kind):
    X = rng.standard_normal((60, 8))
    K = ntk_kernel(X, depth=depth, kind=kind)
    np.testing.assert_array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    np.testing.assert_allclose(K, ntk_kernel(X, X, depth=depth, kind=kind), rtol=1e-7)


def test_positively_homogeneous_of_degree_two(rng):
    X, Y = rng.standard_normal((5, 6)), rng.standard_normal((4, 6))
    for c in (0.1, 3.0):
        np.testing.assert_allclose(ntk_kernel(c * X, c * Y, depth=2),
                                   c**2 * ntk_kernel(X, Y, depth=2), rtol=1e-12)


def test_zero_rows_give_zeros(rng):
    X = rng.standard_normal((4, 5))
    X[1] = 0
    for kind in ("ntk", "nngp"):
        K = ntk_kernel(X, depth=2, kind=kind)
        assert np.all(np.isfinite(K))
        assert np.all(K[1] == 0) and np.all(K[:, 1] == 0)
        Ks = ntk_kernel(sp.csr_matrix(X), depth=2, kind=kind)
        assert np.all(Ks[1] == 0)


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_sparse_and_dense_agree(rng, fmt):
    X = sp.random(20, 50, density=0.2, random_state=0, format="csr").toarray()
    Y = sp.random(7, 50, density=0.2, random_state=1, format="csr").toarray()
    for depth in (1, 3):
        dense = ntk_kernel(X, Y, depth=depth)
        np.testing.assert_allclose(ntk_kernel(fmt(X), fmt(Y), depth=depth), dense, rtol=1e-12)
        np.testing.assert_allclose(ntk_kernel(fmt(X), Y, depth=depth), dense, rtol=1e-12)
        np.testing.assert_allclose(ntk_kernel(fmt(X), depth=depth), ntk_kernel(X, depth=depth),
                                   rtol=1e-12)


def test_float32_input_gives_float64(rng):
    X = rng.standard_normal((5, 4))
    K32 = ntk_kernel(X.astype(np.float32))
    assert K32.dtype == np.float64
    np.testing.assert_allclose(K32, ntk_kernel(X), rtol=1e-5)


def _relu_moments(cov, n_samples, rng):
    """Monte-Carlo E[2 relu(u) relu(v)] and E[2 1(u>0) 1(v>0)] for (u, v) ~ N(0, cov)."""
    u, v = rng.multivariate_normal(np.zeros(2), cov, size=n_samples).T
    return (2 * np.maximum(u, 0) * np.maximum(v, 0)).mean(), (2 * (u > 0) * (v > 0)).mean()


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_monte_carlo_relu_network_moments(depth):
    """The recursion is the network's: Gaussian ReLU moments, layer by layer, are unbiased.

    Each layer's covariance is estimated from fresh Gaussian samples (independent across
    layers), conditioned on the exact covariance of the previous layer; the resulting
    Theta_L / Sigma_L estimates are multilinear in independent unbiased estimates, so their
    mean must match ntk_kernel within a few standard errors.
    """
    rng = np.random.default_rng(7 + depth)
    x, y = np.array([[1.0, 2.0, -0.5]]), np.array([[0.3, 1.5, 1.0]])
    exact_sigma = [(x @ x.T).item(), (x @ y.T).item(), (y @ y.T).item()]
    # exact per-layer covariances of (x, y) pre-activations
    layers = [exact_sigma]
    for _ in range(depth):
        sxx, sxy, syy = layers[-1]
        rho = sxy / np.sqrt(sxx * syy)
        layers.append([sxx, np.sqrt(sxx * syy) * k1(rho), syy])
    n_reps, n_samples = 200, 2000
    theta_mc, sigma_mc = np.empty(n_reps), np.empty(n_reps)
    for r in range(n_reps):
        theta = exact_sigma[1]
        for h in range(depth):
            sxx, sxy, syy = layers[h]
            sigma, sigma_dot = _relu_moments([[sxx, sxy], [sxy, syy]], n_samples, rng)
            theta = theta * sigma_dot + sigma
        theta_mc[r], sigma_mc[r] = theta, sigma
    for estimates, kind in ((theta_mc, "ntk"), (sigma_mc, "nngp")):
        exact = ntk_kernel(x, y, depth=depth, kind=kind).item()
        stderr = estimates.std(ddof=1) / np.sqrt(n_reps)
        assert abs(estimates.mean() - exact) < 4 * stderr, (kind, estimates.mean(), exact)


# ---------------------------------------------------------------------------
# convolutional NTK
# ---------------------------------------------------------------------------
def _window_op(A, q, padding):
    """Brute-force W[A] on an (h, w, h, w) array via a zero-padded copy and slicing."""
    h, w = A.shape[:2]
    if padding == "same":
        lo = (q - 1) // 2
        hi = q - 1 - lo
        A = np.pad(A, [(lo, hi), (lo, hi), (lo, hi), (lo, hi)])
        out_h, out_w = h, w
    else:
        out_h, out_w = h - q + 1, w - q + 1
    out = np.zeros((out_h, out_w, out_h, out_w))
    for a in range(q):
        for b in range(q):
            out += A[a:a + out_h, b:b + out_w, a:a + out_h, b:b + out_w]
    return out / q**2


def _relu_layer(sigma, n_a, n_b):
    """K and KDot of one layer for the pixel-pair covariance of images a and b."""
    scale = np.sqrt(np.multiply.outer(n_a, n_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(scale > 0, sigma / scale, 0.0)
    return scale * k1(rho), k0(rho)


def _brute_force_cntk(x, y, depth, q, padding, pooling, kind):
    """Plain-numpy CNTK of one pair of images, straight from the definition in fastntk.kernels.

    The (x, x) and (y, y) recursions run alongside (x, y) to supply the diagonals N_p.
    """
    images = {"x": x, "y": y}
    sigma = {ab: _window_op(np.einsum("ijc,klc->ijkl", images[ab[0]], images[ab[1]]), q,
                            padding) for ab in ("xy", "xx", "yy")}
    theta = sigma["xy"]
    for h in range(depth):
        diag = {a: np.einsum("ijij->ij", sigma[a + a]) for a in "xy"}
        K = {ab: _relu_layer(sigma[ab], diag[ab[0]], diag[ab[1]]) for ab in sigma}
        T = theta * K["xy"][1] + K["xy"][0]
        if h < depth - 1:
            sigma = {ab: _window_op(K[ab][0], q, padding) for ab in sigma}
            theta = _window_op(T, q, padding)
    final = K["xy"][0] if kind == "nngp" else T
    n_pixels = final.shape[0] * final.shape[1]
    if pooling == "gap":
        return final.sum() / n_pixels**2
    return np.einsum("ijij->", final) / n_pixels


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("pooling", ["gap", "flatten"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_cntk_matches_brute_force(rng, padding, pooling, kind):
    X = rng.standard_normal((2, 5, 6, 2))
    for depth, q in ((1, 3), (2, 3), (2, 2)):
        K = cntk_kernel(X, depth=depth, filter_size=q, padding=padding, pooling=pooling,
                        kind=kind)
        expected = np.array([[_brute_force_cntk(X[i], X[j], depth, q, padding, pooling, kind)
                              for j in range(2)] for i in range(2)])
        # diagonal pixel pairs sit at cos = 1, where arccos amplifies rounding to ~1e-8
        np.testing.assert_allclose(K, expected, rtol=1e-8)


@pytest.mark.parametrize("pooling", ["gap", "flatten"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_one_pixel_image_is_the_ntk(rng, depth, pooling):
    X = rng.standard_normal((6, 1, 1, 4))
    for kind in ("ntk", "nngp"):
        np.testing.assert_allclose(
            cntk_kernel(X, depth=depth, filter_size=1, pooling=pooling, kind=kind),
            ntk_kernel(X.reshape(6, 4), depth=depth, kind=kind), rtol=1e-12)


def test_cntk_symmetric_psd_and_cross_kernel(rng):
    X, Y = rng.standard_normal((7, 4, 4, 3)), rng.standard_normal((3, 4, 4, 3))
    K = cntk_kernel(X, depth=2)
    np.testing.assert_array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    full = cntk_kernel(np.concatenate([X, Y]), depth=2)
    np.testing.assert_allclose(cntk_kernel(X, Y, depth=2), full[:7, 7:], rtol=1e-12)
    np.testing.assert_allclose(cntk_kernel(2 * X, Y, depth=2), 2 * full[:7, 7:], rtol=1e-12)


def test_cntk_zero_image_gives_zeros(rng):
    X = rng.standard_normal((3, 4, 4, 1))
    X[0] = 0
    X[1, :2] = 0  # a partly black image: zero-norm windows must not give NaN
    K = cntk_kernel(X, depth=3)
    assert np.all(np.isfinite(K)) and np.all(K[0] == 0) and K[1, 1] > 0


def test_cntk_diagonals_recursion(rng):
    X = rng.standard_normal((2, 6, 5, 3))
    for padding in ("same", "valid"):
        diags = cntk_diagonals(X, depth=2, filter_size=3, padding=padding)
        sigma1 = _window_op(np.einsum("ijc,klc->ijkl", X[1], X[1]), 3, padding)
        n1 = np.einsum("ijij->ij", sigma1)
        np.testing.assert_allclose(diags[0][1], n1, rtol=1e-12)
        # the second layer's diagonal from the full pixel-pair recursion
        sigma2 = _window_op(_relu_layer(sigma1, n1, n1)[0], 3, padding)
        np.testing.assert_allclose(diags[1][1], np.einsum("ijij->ij", sigma2), rtol=1e-12)
    assert [d.shape for d in cntk_diagonals(X, depth=2, padding="valid")] == [(2, 4, 3),
                                                                             (2, 2, 1)]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"kind": "gp"}, "kind"),
    ],
)
def test_ntk_rejects_bad_parameters(rng, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ntk_kernel(rng.standard_normal((3, 2)), **kwargs)


def test_ntk_rejects_bad_arrays(rng):
    X = rng.standard_normal((3, 4))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ntk_kernel(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ntk_kernel(X, bad)
    with pytest.raises(ValueError, match="features"):
        ntk_kernel(X, rng.standard_normal((2, 5)))
    with pytest.raises(ValueError, match="2D"):
        ntk_kernel(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        ntk_kernel(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ntk_dot_product([0.5, np.nan])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"padding": "full"}, "padding"),
        ({"pooling": "max"}, "pooling"),
        ({"kind": "cnn"}, "kind"),
        ({"depth": 0}, "depth"),
        ({"filter_size": 0}, "filter_size"),
        ({"padding": "valid", "filter_size": 5}, "too small"),
        ({"padding": "valid", "depth": 2}, "too small"),
    ],
)
def test_cntk_rejects_bad_parameters(rng, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cntk_kernel(rng.standard_normal((2, 4, 4, 1)) if "depth" not in kwargs or
                    kwargs.get("padding") != "valid" else rng.standard_normal((2, 3, 3, 1)),
                    **kwargs)


def test_cntk_rejects_bad_arrays(rng):
    X = rng.standard_normal((2, 4, 4, 1))
    with pytest.raises(ValueError, match="ndim 3"):
        cntk_kernel(X[0])
    with pytest.raises(ValueError, match="must match"):
        cntk_kernel(X, rng.standard_normal((2, 4, 5, 1)))
    bad = X.copy()
    bad[1, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cntk_kernel(bad)
    with pytest.raises(ValueError, match="empty"):
        cntk_kernel(np.zeros((0, 4, 4, 1)))
