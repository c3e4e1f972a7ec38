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


#: Pair codes enumerated at a time while a vocabulary is collected (16 bytes each).
_PAIR_CHUNK = 1 << 22


def _row_pairs(X, n_threads=1):
    """Codes, values and row pointers of ``x ⊗ x`` over the unordered pairs of each row
    of the canonical CSR ``X`` (:func:`fastntk._compiled.csr_pairs`)."""
    from ._compiled import csr_pairs

    nnz = np.diff(X.indptr).astype(np.int64)
    out_ptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(nnz * (nnz + 1) // 2, out=out_ptr[1:])
    codes = np.empty(out_ptr[-1], dtype=np.int64)
    values = np.empty(out_ptr[-1], dtype=np.float64)
    csr_pairs(X.data, X.indices, X.indptr, out_ptr, X.shape[1], codes, values, n_threads)
    return codes, values, out_ptr


def _add_counts(codes, counts, new_codes, new_counts):
    """The union of two sorted code vocabularies, with their counts added."""
    merged, inverse = np.unique(np.concatenate([codes, new_codes]), return_inverse=True)
    # float64 sums are exact for counts below 2**53
    total = np.bincount(inverse.ravel(), weights=np.concatenate([counts, new_counts]),
                        minlength=merged.shape[0])
    return merged, total.astype(np.int64)


class SparsePairFeatures:
    """Degree 2 of sparse rows exactly, over the pairs of columns that ``fit`` rows share.

    ``<x ⊗ x, y ⊗ y> = <x, y>^2`` is a sum over the pairs of columns both rows hold; a
    row's pairs are its ``k (k + 1) / 2`` products ``x_a x_b`` (times ``sqrt(2)`` for
    ``a != b``).  Each pair held by at least ``min_df`` of the rows given to ``fit`` gets
    one column (a vocabulary of pairs, as a vectoriser's vocabulary of words with its
    ``min_df``); the others are dropped at :meth:`transform`.  A linear model fitted on
    these rows puts no weight on the column of a pair no fitted row holds, so dropping
    it changes no prediction of such a model; inner products between two new rows lose
    the terms of their shared unseen pairs.  A pair held by one fitted row only adds to
    the kernel between the fitted rows on that row's diagonal alone, where it acts as a
    row-specific change of the ridge rather than a similarity, and it reaches a new row
    through that one row; on short texts most pairs are such (76-81% on three TF-IDF
    sets), hence ``min_pair_df=2`` by default in :class:`fastntk.NTKSketch`.

    Parameters
    ----------
    X : CSR matrix, canonical
        The rows whose pairs make the vocabulary.
    coef2 : float
        ``a_2``: the block of a row ``x`` is ``sqrt(a_2) (x ⊗ x) / ||x||``, whose inner
        products are ``a_2 <x, y>^2 / (||x|| ||y||)`` over the kept pairs, the degree-2
        term of ``||x|| ||y|| sum_j a_j cos^j``.
    min_df : int, default=1
        Rows of ``X`` that must hold a pair for it to get a column.
    """

    def __init__(self, X, coef2, min_df=1):
        if X.shape[1] > 2**31:
            raise ValueError(f"exact degree-2 features need n_features <= 2**31 (pair "
                             f"codes are int64), got {X.shape[1]}")
        self.scale = float(np.sqrt(coef2))
        vocabulary = np.empty(0, dtype=np.int64)
        counts = np.empty(0, dtype=np.int64)
        nnz = np.diff(X.indptr).astype(np.int64)
        pairs = np.cumsum(nnz * (nnz + 1) // 2)
        start = 0
        while start < X.shape[0]:
            # rows whose pairs fill about one chunk (at least one row)
            stop = max(start + 1, int(np.searchsorted(
                pairs, (pairs[start - 1] if start else 0) + _PAIR_CHUNK, side="right")))
            codes, _, _ = _row_pairs(X[start:stop])
            # a canonical row holds a pair once, so a code's count is its rows' count
            vocabulary, counts = _add_counts(vocabulary, counts,
                                             *np.unique(codes, return_counts=True))
            start = stop
        self.vocabulary = vocabulary[counts >= min_df]
        self.n_components = int(self.vocabulary.shape[0])

    def transform(self, X, norms, dtype, n_threads=1):
        """The block of the rows of the canonical CSR ``X`` (norms ``norms``), as CSR."""
        codes, values, out_ptr = _row_pairs(X, n_threads)
        columns = np.searchsorted(self.vocabulary, codes)
        np.minimum(columns, max(self.n_components - 1, 0), out=columns)
        seen = (self.vocabulary[columns] == codes) if self.n_components else \
            np.zeros(codes.shape[0], dtype=bool)
        row_scale = np.divide(self.scale, norms, out=np.zeros(X.shape[0]), where=norms > 0)
        values *= np.repeat(row_scale, np.diff(out_ptr))
        rows = np.repeat(np.arange(X.shape[0]), np.diff(out_ptr))
        kept = np.zeros(X.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[seen], minlength=X.shape[0]), out=kept[1:])
        index_dtype = np.int32 if max(self.n_components, kept[-1]) < 2**31 else np.int64
        return sp.csr_matrix((values[seen].astype(dtype), columns[seen].astype(index_dtype),
                              kept.astype(index_dtype)),
                             shape=(X.shape[0], self.n_components))
