"""Explicit (exact, variance-free) features of the low degrees of a dot-product kernel.

A dot-product kernel ``sum_j a_j <u, v>^j`` of unit vectors can represent a degree ``j``
exactly whenever its feature space is small enough:

- dense rows: the symmetric tensor ``u^(⊗j)`` has ``C(d + j - 1, j)`` distinct entries,
  the monomials ``u^alpha`` (``|alpha| = j``); weighted by ``sqrt(j! / prod_i alpha_i!)``
  they satisfy ``<phi_j(u), phi_j(v)> = <u, v>^j`` exactly;
- sparse rows: degree 0 is one column and degree 1 is the row itself, a sparse block of
  width ``n_features`` with the row's own non-zeros, never densified and never hashed.
"""
import itertools
import math

import numpy as np
import scipy.sparse as sp
from numba import prange

from ._jit import jit

__all__ = ["monomial_dimension", "MonomialFeatures", "sparse_linear_block"]


def monomial_dimension(n_features, degree):
    """Number of distinct monomials of total degree ``degree`` in ``n_features`` variables."""
    return math.comb(n_features + degree - 1, degree)


class MonomialFeatures:
    """Weighted monomials of degrees ``degrees`` of dense unit rows.

    Degree ``j`` occupies ``monomial_dimension(d, j)`` consecutive columns, in the order of
    ``degrees``, scaled by ``sqrt(a_j)``, so that the block's inner products are
    ``sum_j a_j <u, v>^j`` exactly.  Every monomial of degree ``j`` is the product of a
    monomial of degree ``j - 1`` (its *parent*) and one coordinate, so the features are
    computed in one O(1)-per-column recursion.

    Parameters
    ----------
    n_features : int
    degrees : sequence of int
        Degrees represented exactly (any subset of 0, 1, 2, ...).
    coef : ndarray
        ``a_j`` for every degree up to ``max(degrees)`` at least.
    """

    def __init__(self, n_features, degrees, coef):
        self.degrees = tuple(int(j) for j in sorted(degrees))
        top = max(self.degrees, default=0)
        # all monomials of degrees 0..top, degree by degree; kept columns marked by weight
        parents, coords, weights, keep = [-1], [-1], [1.0], [0 in self.degrees]
        offsets = {0: 0}
        previous = [()]
        for j in range(1, top + 1):
            offsets[j] = len(parents)
            index = {alpha: offsets[j - 1] + k for k, alpha in enumerate(previous)}
            current = list(itertools.combinations_with_replacement(range(n_features), j))
            for alpha in current:
                parents.append(index[alpha[:-1]])
                coords.append(alpha[-1])
                counts = np.bincount(alpha)
                weights.append(math.sqrt(math.factorial(j)
                                         / np.prod([math.factorial(c) for c in counts])))
                keep.append(j in self.degrees)
            previous = current
        degree_of = np.repeat(np.arange(top + 1),
                              [monomial_dimension(n_features, j) for j in range(top + 1)])
        scale = np.sqrt(np.asarray(coef, dtype=float)[degree_of]) * np.asarray(weights)
        self.parents = np.asarray(parents, dtype=np.int64)
        self.coords = np.asarray(coords, dtype=np.int64)
        self.columns = np.flatnonzero(keep).astype(np.int64)
        self.scale = scale[self.columns]
        self.n_components = int(self.columns.shape[0])

    def transform(self, U, out):
        """Write the features of the rows of ``U`` (dense, unit or zero rows) into ``out``."""
        _monomials(U, self.parents, self.coords, self.columns,
                   self.scale.astype(out.dtype), out)
        return out


@jit(parallel=True)
def _monomials(U, parents, coords, columns, scale, out):
    n_all = parents.shape[0]
    for i in prange(U.shape[0]):
        mono = np.empty(n_all, dtype=out.dtype)
        mono[0] = 1.0
        for k in range(1, n_all):
            mono[k] = mono[parents[k]] * U[i, coords[k]]
        for c in range(columns.shape[0]):
            out[i, c] = scale[c] * mono[columns[c]]


def sparse_linear_block(X, norms, coef0, coef1, dtype):
    """``[sqrt(a_0) ||x||, sqrt(a_1) x]`` for the rows of a canonical CSR matrix ``X``.

    The result is CSR of width ``1 + n_features`` with one more stored entry per row than
    ``X`` (the degree-0 column, stored even when it is zero so that every row has the
    same structure); its inner products are ``a_0 ||x|| ||y|| + a_1 <x, y>``.  With
    ``coef1=None`` only the degree-0 column is returned.
    """
    n_rows = X.shape[0]
    if coef1 is None:
        return sp.csr_matrix((np.sqrt(coef0) * norms.astype(dtype),
                              np.zeros(n_rows, dtype=np.int32),
                              np.arange(n_rows + 1, dtype=np.int32)), shape=(n_rows, 1))
    indptr = X.indptr.astype(np.int64) + np.arange(n_rows + 1, dtype=np.int64)
    first = indptr[:-1]
    data = np.empty(indptr[-1], dtype=dtype)
    indices = np.empty(indptr[-1], dtype=np.int64)
    mask = np.ones(indptr[-1], dtype=bool)
    mask[first] = False
    data[first] = np.sqrt(coef0) * norms
    indices[first] = 0
    data[mask] = np.sqrt(coef1) * X.data
    indices[mask] = X.indices.astype(np.int64) + 1
    if indptr[-1] < np.iinfo(np.int32).max and X.shape[1] < np.iinfo(np.int32).max:
        indices = indices.astype(np.int32)
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, X.shape[1] + 1))
