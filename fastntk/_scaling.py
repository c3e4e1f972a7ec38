"""Exact power-of-two rescaling of rows, so that the whole float64 range works.

The NTK and the CNTK are positively homogeneous: ``K(a x, b y) = a b K(x, y)`` for
``a, b > 0``.  Their computations square entries (norms, Gram matrices, per-pixel
diagonals), which overflows for entries above ~1e154 and loses precision below
~1e-154 (subnormal squares), although the kernel itself is representable.  A row whose
largest magnitude lies outside ``[2^-128, 2^128]`` is therefore divided by ``2^e``, with
``e`` the exponent of that magnitude, the result computed, and multiplied back by the
powers of two.  Multiplying by a power of two is exact in binary floating point, so a
rescaled row gives the bits the unscaled computation would give if it could not
overflow, and rows in the safe range (every row of ordinary data) are not touched at
all.  The decision is per row: a row's result never depends on the other rows.
"""
import numpy as np
import scipy.sparse as sp

__all__ = ["row_exponents", "scale_rows"]

# Rows whose largest magnitude is within [2^-_SAFE_EXPONENT, 2^_SAFE_EXPONENT] are left
# as they are: fourth powers (a CNTK diagonal times another) then stay within float64.
_SAFE_EXPONENT = 128


def row_exponents(X):
    """Power of two to divide every row (image) of ``X`` by; 0 where none is needed.

    Parameters
    ----------
    X : ndarray of shape (n, ...) or CSR matrix of shape (n, d)
        Finite values.

    Returns
    -------
    ndarray of shape (n,), intc
        ``e`` with ``2^(e-1) <= max |x_i| < 2^e`` for the rows outside the safe range,
        0 for the others and for zero rows.
    """
    if sp.issparse(X):
        largest = np.zeros(X.shape[0], dtype=np.float64)
        if X.nnz:
            starts = X.indptr[:-1]
            stored = X.indptr[1:] > starts
            # canonical CSR: reduceat over the non-empty rows' starts covers each row's
            # entries exactly (empty rows between two starts hold none)
            largest[stored] = np.maximum.reduceat(np.abs(X.data), starts[stored])
    else:
        flat = X.reshape(X.shape[0], -1)
        if flat.shape[1] == 0:
            return np.zeros(X.shape[0], dtype=np.intc)
        largest = np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)
    _, exponents = np.frexp(largest)
    safe = (largest == 0) | (np.abs(exponents) <= _SAFE_EXPONENT)
    return np.where(safe, 0, exponents).astype(np.intc)


def scale_rows(X, exponents):
    """``X`` with row ``i`` multiplied by ``2^-exponents[i]`` (exactly; a copy).

    Returns ``X`` itself when every exponent is 0.

    Parameters
    ----------
    X : ndarray of shape (n, ...) or CSR matrix of shape (n, d)
    exponents : ndarray of shape (n,), intc

    Returns
    -------
    ndarray or CSR matrix like ``X``, same dtype
    """
    if not np.any(exponents):
        return X
    if sp.issparse(X):
        per_entry = np.repeat(-exponents, np.diff(X.indptr))
        return type(X)((np.ldexp(X.data, per_entry).astype(X.dtype, copy=False),
                        X.indices, X.indptr), shape=X.shape)
    shape = (-1,) + (1,) * (X.ndim - 1)
    return np.ldexp(X, -exponents.reshape(shape)).astype(X.dtype, copy=False)
