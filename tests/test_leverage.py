"""Tests of fastntk.leverage: the leverage-score density q(w) = (||w||^2/d) N(0, I)."""
import numpy as np
import pytest
from scipy import stats

from fastntk import sample_leverage_weights
from fastntk.arccos import k1
from fastntk.leverage import _conditional_quantile


def _radius_ks(W):
    d = W.shape[1]
    return stats.kstest(np.linalg.norm(W, axis=1), stats.chi(d + 2).cdf).pvalue


def _direction_ks(W, seed=0):
    """KS p-value of <u, w/||w||> against its law under a uniform direction.

    For w/||w|| uniform on the sphere of R^d, (1 + <u, w/||w||>) / 2 ~ Beta((d-1)/2, (d-1)/2).
    """
    d = W.shape[1]
    u = np.random.default_rng(seed).standard_normal(d)
    u /= np.linalg.norm(u)
    t = W @ u / np.linalg.norm(W, axis=1)
    a = (d - 1) / 2
    return stats.kstest((1 + t) / 2, stats.beta(a, a).cdf).pvalue


def _conditional_cdf(x, s):
    return stats.norm.cdf(x) - x * stats.norm.pdf(x) / (s + 1)


@pytest.mark.parametrize("s", [0.0, 0.3, 5.0, 783.0])
def test_conditional_quantile_inverts_cdf(s):
    u = np.array([1e-300, 1e-12, 1e-4, 0.02, 0.3, 0.5, 0.7, 0.98, 1 - 1e-4, 1 - 1e-12])
    x = np.array([_conditional_quantile(ui, s) for ui in u])
    lower = u <= 0.5
    # compare in the tail that keeps precision: F(x) below 1/2, 1 - F(x) = F(-x) above
    assert np.allclose(_conditional_cdf(x[lower], s), u[lower], rtol=1e-10, atol=0)
    assert np.allclose(_conditional_cdf(-x[~lower], s), 1 - u[~lower], rtol=1e-8, atol=0)
    assert np.all(np.diff(x) > 0)


def test_shapes_and_reproducibility():
    for method in ("gibbs", "exact"):
        W = sample_leverage_weights(7, 30, method=method, random_state=3)
        assert W.shape == (30, 7) and W.dtype == np.float64
        assert np.array_equal(W, sample_leverage_weights(7, 30, method=method, random_state=3))
        assert not np.array_equal(W, sample_leverage_weights(7, 30, method=method,
                                                             random_state=4))


def test_gibbs_blocks_are_independent_of_count():
    # chains are simulated in fixed blocks: the first rows do not depend on n_samples
    W_small = sample_leverage_weights(5, 600, random_state=0)
    W_large = sample_leverage_weights(5, 1200, random_state=0)
    assert np.array_equal(W_small[:512], W_large[:512])


def test_one_gibbs_sweep_matches_exact_law_at_moderate_dimension():
    d, n = 50, 20000
    W = sample_leverage_weights(d, n, method="gibbs", sweeps=1, random_state=0)
    assert _radius_ks(W) > 1e-3
    assert _direction_ks(W) > 1e-3
    # the test has power: the N(0, I) starting state is clearly rejected on the radius
    start = np.random.default_rng(0).standard_normal((n, d))
    assert _radius_ks(start) < 1e-10


def test_exact_sampler_law():
    W = sample_leverage_weights(50, 20000, method="exact", random_state=1)
    assert _radius_ks(W) > 1e-3
    assert _direction_ks(W) > 1e-3


def test_low_dimension_needs_more_sweeps():
    # d = 3: one sweep leaves a visible excess radius (documented), three sweeps do not
    one = sample_leverage_weights(3, 20000, sweeps=1, random_state=2)
    three = sample_leverage_weights(3, 20000, sweeps=3, random_state=2)
    assert _radius_ks(one) < 1e-6
    assert _radius_ks(three) > 1e-3
    # d = 1: the only conditional is q itself, so one sweep is exact
    assert _radius_ks(sample_leverage_weights(1, 20000, random_state=2)) > 1e-3


@pytest.mark.parametrize("method, d", [("exact", 5), ("gibbs", 20)])
def test_reweighted_relu_features_are_unbiased_for_k1(method, d):
    # E_q[2 (d/||w||^2) ReLU(w.x) ReLU(w.y)] = ||x|| ||y|| k1(cos(x, y))
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(d), rng.standard_normal(d)
    W = sample_leverage_weights(d, 50000, method=method, random_state=6)
    terms = 2 * d / np.sum(W**2, axis=1) * np.maximum(W @ x, 0) * np.maximum(W @ y, 0)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    exact = nx * ny * k1(x @ y / (nx * ny))
    assert abs(terms.mean() - exact) < 4 * terms.std() / np.sqrt(len(terms))
    # the estimate is not trivially exact: without reweighting it is biased upwards
    plain = 2 * np.maximum(W @ x, 0) * np.maximum(W @ y, 0)
    assert plain.mean() - exact > 4 * plain.std() / np.sqrt(len(plain))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_features": 0, "n_samples": 3}, "n_features"),
        ({"n_features": 3, "n_samples": 2.5}, "n_samples"),
        ({"n_features": 3, "n_samples": 3, "sweeps": 0}, "sweeps"),
        ({"n_features": 3, "n_samples": 3, "method": "grid"}, "method"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_leverage_weights(**kwargs)
