"""Arc-cosine functions k0, k1 of the ReLU NTK and their Taylor coefficients.

For ``t`` in [-1, 1] (arguments are clipped there, to absorb rounding excursions of
normalised inner products)::

    k0(t) = 1 - arccos(t) / pi
    k1(t) = (sqrt(1 - t^2) + t (pi - arccos t)) / pi

``k0`` is the kernel of the derivative of ReLU and ``k1`` the normalised kernel of
ReLU itself (Cho & Saul, 2009).  Both are dot-product kernels with non-negative Taylor
coefficients, so every truncation of their series is positive definite.  The scalar
functions are Numba-compiled so that the kernel recursions can call them in
``nopython`` code; the array functions broadcast them.
"""
import math

import numpy as np

from ._jit import jit

__all__ = ["k0", "k1", "k0_taylor", "k1_taylor"]


@jit(inline="always")
def _clip_unit(t):
    if t > 1.0:
        return 1.0
    if t < -1.0:
        return -1.0
    return t


# asin(s) = s f(s^2) on s^2 <= 1/4: f as a degree-12 polynomial in z = s^2, fitted by least
# squares on 400 Chebyshev nodes of [0, 1/4] to the (all-positive) 80-term Taylor series of
# f; max error 1 ulp, against 28 terms for the plain truncated series.
_ASIN_COEF = np.array([
    1.0, 0.16666666666663008, 0.07500000000773067, 0.044642856532226195,
    0.03038196943340342, 0.022371547029878203, 0.017362450811772914, 0.013861647919622555,
    0.012304802561733523, 0.006011389445522862, 0.020780837031439396,
    -0.017975346752846413, 0.032987268770137516,
])


@jit(inline="always")
def acos(x):
    """arccos of one float in [-1, 1], branch-light so that LLVM can vectorise loops over it.

    libm's ``acos`` is a scalar call that stops the loops of the kernel recursions from
    vectorising; this evaluation (within a few ulp of libm) uses the asin series on
    ``|x| <= 1/2`` and the half-angle identity ``acos(x) = 2 asin(sqrt((1 - x) / 2))``
    beyond, which also keeps full relative accuracy near ``x = 1``.
    """
    a = abs(x)
    big = a > 0.5
    z = 0.5 * (1.0 - a) if big else x * x
    s = math.sqrt(z) if big else x
    acc = _ASIN_COEF[12]
    for k in range(11, -1, -1):
        acc = acc * z + _ASIN_COEF[k]
    r = s * acc  # asin(s)
    if big:
        return 2.0 * r if x > 0 else math.pi - 2.0 * r
    return 0.5 * math.pi - r


@jit(inline="always")
def k0_scalar(t):
    """k0 of one float (Numba)."""
    return 1.0 - acos(_clip_unit(t)) / math.pi


@jit(inline="always")
def k1_scalar(t):
    """k1 of one float (Numba)."""
    t = _clip_unit(t)
    return (math.sqrt(max(1.0 - t * t, 0.0)) + t * (math.pi - acos(t))) / math.pi


@jit
def _k0_array(t):
    out = np.empty_like(t)
    for i in range(t.shape[0]):
        out[i] = k0_scalar(t[i])
    return out


@jit
def _k1_array(t):
    out = np.empty_like(t)
    for i in range(t.shape[0]):
        out[i] = k1_scalar(t[i])
    return out


def _elementwise(kernel, t):
    # compiled lazily, unlike a Numba ufunc with a signature (compiled at import)
    t = np.asarray(t, dtype=np.float64)
    return kernel(np.ascontiguousarray(t).reshape(-1)).reshape(t.shape)[()]


def k0(t):
    """Arc-cosine kernel of order 0, ``1 - arccos(t)/pi``, elementwise (float64).

    Parameters
    ----------
    t : array_like
        Cosines; values outside [-1, 1] are clipped.

    Returns
    -------
    ndarray or float
    """
    return _elementwise(_k0_array, t)


def k1(t):
    """Arc-cosine kernel of order 1, ``(sqrt(1-t^2) + t (pi - arccos t)) / pi``, elementwise.

    Parameters
    ----------
    t : array_like
        Cosines; values outside [-1, 1] are clipped.

    Returns
    -------
    ndarray or float
    """
    return _elementwise(_k1_array, t)


def _central_ratio(i):
    """(2i)! / (4^i (i!)^2) for i = 0..len-1, by a stable product."""
    i = np.arange(i)
    out = np.ones(len(i))
    out[1:] = np.cumprod((2 * i[1:] - 1) / (2 * i[1:]))
    return out


def k0_taylor(degree):
    """Taylor coefficients of k0 up to ``degree`` (inclusive).

    ``k0(t) = 1/2 + sum_i (2i)! / (4^i (i!)^2 (2i+1) pi) t^(2i+1)``.

    Parameters
    ----------
    degree : int
        Highest power kept.

    Returns
    -------
    ndarray of shape (degree + 1,)
        ``coef[j]`` multiplies ``t**j``; all entries are non-negative.
    """
    degree = _check_degree(degree)
    coef = np.zeros(degree + 1)
    coef[0] = 0.5
    n_odd = (degree + 1) // 2  # odd powers 1, 3, ..., <= degree
    i = np.arange(n_odd)
    coef[1::2] = _central_ratio(n_odd) / ((2 * i + 1) * np.pi)
    return coef


def k1_taylor(degree):
    """Taylor coefficients of k1 up to ``degree`` (inclusive).

    ``k1(t) = 1/pi + t/2 + sum_i a_i t^(2i+2) / pi`` with
    ``a_i = (2i)! / (4^i (i!)^2 (2i+1)(2i+2))``.

    Parameters
    ----------
    degree : int
        Highest power kept.

    Returns
    -------
    ndarray of shape (degree + 1,)
        ``coef[j]`` multiplies ``t**j``; all entries are non-negative.
    """
    degree = _check_degree(degree)
    coef = np.zeros(degree + 1)
    coef[0] = 1.0 / np.pi
    if degree >= 1:
        coef[1] = 0.5
    n_even = degree // 2  # even powers 2, 4, ..., <= degree
    if n_even:
        i = np.arange(n_even)
        coef[2::2] = _central_ratio(n_even) / ((2 * i + 1) * (2 * i + 2) * np.pi)
    return coef


def _check_degree(degree):
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    return int(degree)
