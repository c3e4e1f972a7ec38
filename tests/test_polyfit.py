"""Tests of fastntk.polyfit: non-negative polynomial approximations of k0, k1, K_L."""
import numpy as np
import pytest

from fastntk.arccos import k0, k0_taylor, k1, k1_taylor
from fastntk.kernels import ntk_dot_product
from fastntk.polyfit import (
    chebyshev_nodes,
    fit_nonnegative_polynomial,
    kernel_polynomial,
    max_abs_error,
    ntk_taylor,
    uniform_weight,
)

P = np.polynomial.polynomial


def test_chebyshev_nodes():
    t = chebyshev_nodes(5)
    assert np.all(np.diff(t) > 0)
    assert np.all(np.abs(t) < 1)
    # roots of the Chebyshev polynomial T_5
    np.testing.assert_allclose(np.polynomial.chebyshev.chebval(t, [0] * 5 + [1]), 0, atol=1e-12)
    with pytest.raises(ValueError):
        chebyshev_nodes(0)


def test_fit_recovers_a_nonnegative_polynomial_exactly():
    coef = np.array([0.3, 0.0, 1.2, 0.0, 0.5])
    fitted = fit_nonnegative_polynomial(lambda t: P.polyval(t, coef), 6)
    np.testing.assert_allclose(fitted, np.append(coef, [0, 0]), atol=1e-9)


def test_fit_is_nonnegative_where_least_squares_is_not():
    # f(t) = t^2 - 0.5 t^4 has a negative coefficient: the unconstrained fit would use it
    func = lambda t: t**2 - 0.5 * t**4  # noqa: E731
    coef = fit_nonnegative_polynomial(func, 4)
    assert np.all(coef >= 0)
    assert coef[4] == 0.0
    assert max_abs_error(coef, func) > 0.01


@pytest.mark.parametrize("func", [k0, k1])
def test_fit_error_falls_with_degree(func):
    errors = [max_abs_error(fit_nonnegative_polynomial(func, p), func) for p in (2, 4, 8, 16)]
    assert np.all(np.diff(errors) < 0)


def test_exact_at_one():
    coef = fit_nonnegative_polynomial(k0, 6, exact_at_one=True)
    assert abs(coef.sum() - 1.0) < 1e-12
    assert np.all(coef >= 0)


def test_uniform_weight_reduces_the_interior_error():
    t = np.linspace(-0.9, 0.9, 1001)
    func = lambda s: ntk_dot_product(s, depth=2)  # noqa: E731
    cheb = fit_nonnegative_polynomial(func, 8)
    unif = fit_nonnegative_polynomial(func, 8, weight=uniform_weight)
    err = lambda c: np.mean((P.polyval(t, c) - func(t)) ** 2)  # noqa: E731
    assert err(unif) < err(cheb)


def test_fit_rejects_bad_weights():
    with pytest.raises(ValueError, match="weight"):
        fit_nonnegative_polynomial(k0, 3, weight=lambda t: -np.ones_like(t))
    with pytest.raises(ValueError, match="degree"):
        fit_nonnegative_polynomial(k0, -1)


def test_max_abs_error():
    assert max_abs_error([0.0, 1.0], lambda t: t) == 0.0
    assert max_abs_error([0.0, 0.0, 1.0], lambda t: np.zeros_like(t)) == pytest.approx(1.0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_ntk_taylor_matches_the_function_inside_the_disc(depth):
    coef = ntk_taylor(120, depth=depth)
    assert np.all(coef >= 0)
    t = np.linspace(-0.5, 0.5, 11)
    np.testing.assert_allclose(P.polyval(t, coef), ntk_dot_product(t, depth=depth),
                               atol=1e-12)


def test_ntk_taylor_depth_one_closed_form():
    # K_1(t) = t k0(t) + k1(t): the product of t with k0's series plus k1's series
    expected = k1_taylor(10)
    expected[1:] += k0_taylor(9)
    np.testing.assert_allclose(ntk_taylor(10, depth=1), expected, rtol=1e-12)
    np.testing.assert_allclose(ntk_taylor(10, depth=2, kind="nngp")[:2],
                               [k1(1 / np.pi), 0.5 * k0(1 / np.pi)], rtol=1e-12)


@pytest.mark.parametrize("name", ["k0", "k1", "ntk"])
@pytest.mark.parametrize("poly", ["fit", "taylor"])
def test_kernel_polynomial(name, poly):
    coef, error = kernel_polynomial(name, 8, poly=poly, depth=2)
    func = {"k0": k0, "k1": k1, "ntk": lambda t: ntk_dot_product(t, depth=2)}[name]
    assert coef.shape == (9,)
    assert np.all(coef >= 0)
    assert error == pytest.approx(max_abs_error(coef, func))
    if poly == "taylor" and name != "ntk":
        np.testing.assert_array_equal(coef, {"k0": k0_taylor, "k1": k1_taylor}[name](8))


def test_fit_beats_taylor_in_max_error():
    for name in ("k0", "k1", "ntk"):
        assert (kernel_polynomial(name, 8, poly="fit", depth=2)[1]
                < kernel_polynomial(name, 8, poly="taylor", depth=2)[1])


def test_kernel_polynomial_rejects_unknown_choices():
    with pytest.raises(ValueError, match="name"):
        kernel_polynomial("relu", 4)
    with pytest.raises(ValueError, match="poly"):
        kernel_polynomial("k0", 4, poly="minimax")
