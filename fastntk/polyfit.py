"""Polynomials with non-negative coefficients approximating dot-product kernels.

A dot-product kernel ``f(<x, y>)`` on the unit sphere is sketched term by term: the
monomial ``c_j t^j`` becomes ``sqrt(c_j)`` times a degree-``j`` PolySketch, which is only
possible when every ``c_j >= 0`` (then the truncated kernel is positive definite, by
Schoenberg's theorem).  This module produces such coefficients for the arc-cosine
functions ``k0``, ``k1`` and for the whole depth-``L`` NTK function ``K_L`` of
:mod:`fastntk.kernels`, in two ways:

- ``"taylor"``: the truncated Maclaurin series (exact low-order terms, slow convergence
  near ``t = +-1`` where the functions have square-root singularities);
- ``"fit"``: non-negative least squares (``scipy.optimize.nnls``) on Chebyshev nodes,
  optionally weighted, optionally matching the value at ``t = 1`` (the diagonal).

Coefficients are in the monomial basis, ``coef[j]`` multiplying ``t**j``.
"""
import numbers

import numpy as np
from scipy.optimize import nnls

from .arccos import k0, k0_taylor, k1, k1_taylor

__all__ = [
    "chebyshev_nodes",
    "fit_nonnegative_polynomial",
    "fit_nbytes",
    "uniform_weight",
    "max_abs_error",
    "ntk_taylor",
    "kernel_polynomial",
]

# Functions that kernel_polynomial knows; the depth-L NTK is looked up lazily (see below).
_FUNCTIONS = ("k0", "k1", "ntk")
_POLYS = ("taylor", "fit")

# Terms kept while composing Taylor series (ntk_taylor).  Inner series at depth >= 2 have
# a constant term s0 <= k1^(L-1)(0) < 0.8, so the neglected tail of k1(s(t)) decays like
# s0^n and 400 terms leave it far below float64 rounding.
_TAYLOR_TERMS = 400

# Weight of the equality row f(1) in the least-squares system, relative to the others.
_EXACT_WEIGHT = 1e4


def _check_degree(degree):
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    return int(degree)


def chebyshev_nodes(n_nodes):
    """Chebyshev points of the first kind on [-1, 1], in increasing order.

    Parameters
    ----------
    n_nodes : int
        Number of points, ``cos((2k + 1) pi / (2 n_nodes))`` for ``k < n_nodes``.

    Returns
    -------
    ndarray of shape (n_nodes,)
    """
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, numbers.Integral) or n_nodes < 1:
        raise ValueError(f"n_nodes must be a positive integer, got {n_nodes!r}")
    k = np.arange(n_nodes)
    return np.cos((2 * k[::-1] + 1) * np.pi / (2 * n_nodes))


def fit_nonnegative_polynomial(func, degree, *, n_nodes=None, weight=None, exact_at_one=False):
    """Least-squares polynomial with non-negative coefficients on Chebyshev nodes.

    Minimises ``sum_k w_k (sum_j c_j t_k^j - f(t_k))^2`` over ``c >= 0`` by
    ``scipy.optimize.nnls``, with ``w_k = w(t_k) / sum_k w(t_k)``.  Sampling at
    Chebyshev nodes makes the unweighted problem a discretisation of the
    Chebyshev-weighted L2 norm, close to the minimax fit; :func:`uniform_weight` turns
    it into the uniform measure on [-1, 1].

    Parameters
    ----------
    func : callable
        Vectorised ``f(t)`` on [-1, 1].
    degree : int
        Highest power.
    n_nodes : int, default=None
        Number of Chebyshev nodes; ``max(256, 16 (degree + 1))`` if None.
    weight : callable or None, default=None
        Extra non-negative weight ``w(t)`` per node (None: 1).
    exact_at_one : bool, default=False
        Match ``f(1)`` (up to a relative 1e-8) so that the approximation is exact on the
        diagonal ``<x, x> = 1``.  The arc-cosine functions have square-root
        singularities at 1, so this pulls the fit away from the interior.

    Returns
    -------
    ndarray of shape (degree + 1,)
        Non-negative coefficients; ``coef[j]`` multiplies ``t**j``.
    """
    degree = _check_degree(degree)
    if n_nodes is None:
        n_nodes = max(256, 16 * (degree + 1))
    t = chebyshev_nodes(n_nodes)
    w = np.ones_like(t) if weight is None else np.asarray(weight(t), dtype=float)
    if w.shape != t.shape or not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
        raise ValueError("weight(t) must return finite non-negative values, one per node")
    root_w = np.sqrt(w / w.sum())
    design = np.vander(t, degree + 1, increasing=True) * root_w[:, None]
    target = np.asarray(func(t), dtype=float) * root_w
    if exact_at_one:
        big = _EXACT_WEIGHT * np.sqrt(np.sum(root_w**2))
        design = np.vstack([design, np.full(degree + 1, big)])
        target = np.append(target, big * float(func(np.array([1.0]))[0]))
    coef, _ = nnls(design, target, maxiter=50 * (degree + 1) + 500)
    if exact_at_one and coef.sum() > 0:
        # remove the residual of the penalty: rescaling keeps every coefficient >= 0
        coef *= float(func(np.array([1.0]))[0]) / coef.sum()
    return coef


def fit_nbytes(degree):
    """Bytes of the least-squares system of :func:`fit_nonnegative_polynomial`.

    Its default ``max(256, 16 (degree + 1))`` nodes by ``degree + 1`` powers, twice (the
    Vandermonde matrix and its weighted copy): what a feature map checks before it
    asks for a polynomial of that degree.
    """
    return 2 * 8 * max(256, 16 * (degree + 1)) * (degree + 1)


def uniform_weight(t):
    """``sqrt(1 - t^2)``: Chebyshev nodes weighted by it sample the uniform measure.

    Parameters
    ----------
    t : ndarray

    Returns
    -------
    ndarray
    """
    return np.sqrt(np.clip(1.0 - np.square(t), 0.0, None))


def max_abs_error(coef, func, *, n_grid=20001):
    """Largest ``|sum_j coef[j] t^j - f(t)|`` over a uniform grid of [-1, 1].

    Parameters
    ----------
    coef : array_like of shape (degree + 1,)
    func : callable
        Vectorised ``f(t)``.
    n_grid : int, default=20001
        Grid points (the ends included).

    Returns
    -------
    float
    """
    t = np.linspace(-1.0, 1.0, n_grid)
    return float(np.max(np.abs(np.polynomial.polynomial.polyval(t, coef) - func(t))))


def _compose(outer, inner, n_terms):
    """Coefficients of ``outer(inner(t))`` truncated to ``n_terms`` (Horner's scheme)."""
    P = np.polynomial.polynomial
    out = np.zeros(1)
    for c in outer[::-1]:
        out = P.polymul(out, inner)[:n_terms]
        out[0] += c
    return out


def ntk_taylor(degree, *, depth=1, kind="ntk"):
    """Truncated Maclaurin series of the unit-norm NTK function ``K_L`` (or NNGP).

    Runs the NTK recursion (:mod:`fastntk.kernels`) on power series: ``sigma_h = k1(sigma_{h-1})``,
    ``theta_h = theta_{h-1} k0(sigma_{h-1}) + sigma_h``, from ``sigma_0 = theta_0 = t``.
    Every series involved has non-negative coefficients, hence so has the result.

    Parameters
    ----------
    degree : int
        Highest power kept.
    depth : int, default=1
        Number of ReLU layers ``L``.
    kind : {"ntk", "nngp"}, default="ntk"

    Returns
    -------
    ndarray of shape (degree + 1,)
    """
    degree = _check_degree(degree)
    if kind not in ("ntk", "nngp"):
        raise ValueError(f"kind must be 'ntk' or 'nngp', got {kind!r}")
    n = max(_TAYLOR_TERMS, degree + 1)
    series_k0, series_k1 = k0_taylor(n - 1), k1_taylor(n - 1)
    sigma = np.array([0.0, 1.0])
    theta = sigma
    for _ in range(depth):
        new_sigma = _compose(series_k1, sigma, n)
        theta = np.polynomial.polynomial.polymul(theta, _compose(series_k0, sigma, n))[:n]
        theta = np.polynomial.polynomial.polyadd(theta, new_sigma)
        sigma = new_sigma
    out = np.zeros(degree + 1)
    series = sigma if kind == "nngp" else theta
    out[: min(len(series), degree + 1)] = series[: degree + 1]
    return np.maximum(out, 0.0)


def _target_function(name, depth):
    if name == "k0":
        return k0
    if name == "k1":
        return k1
    from .kernels import ntk_dot_product

    return lambda t: ntk_dot_product(t, depth=depth)


def kernel_polynomial(name, degree, *, poly="fit", depth=1):
    """Non-negative polynomial approximation of ``k0``, ``k1`` or the NTK function ``K_L``.

    Parameters
    ----------
    name : {"k0", "k1", "ntk"}
        Function to approximate; ``"ntk"`` is ``K_L`` of depth ``depth``.
    degree : int
        Highest power.
    poly : {"fit", "taylor"}, default="fit"
        Non-negative least squares for the uniform measure on [-1, 1]
        (:func:`fit_nonnegative_polynomial` with :func:`uniform_weight`), or the
        truncated Taylor series.
    depth : int, default=1
        Depth ``L`` (``name="ntk"`` only).

    Returns
    -------
    coef : ndarray of shape (degree + 1,)
        Non-negative coefficients.
    max_error : float
        :func:`max_abs_error` of the polynomial on [-1, 1].
    """
    if name not in _FUNCTIONS:
        raise ValueError(f"name must be one of {_FUNCTIONS}, got {name!r}")
    if poly not in _POLYS:
        raise ValueError(f"poly must be one of {_POLYS}, got {poly!r}")
    func = _target_function(name, depth)
    if poly == "fit":
        coef = fit_nonnegative_polynomial(func, degree, weight=uniform_weight)
    elif name == "k0":
        coef = k0_taylor(degree)
    elif name == "k1":
        coef = k1_taylor(degree)
    else:
        coef = ntk_taylor(degree, depth=depth)
    return coef, max_abs_error(coef, func)
