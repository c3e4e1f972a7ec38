# cython: language_level=3
"""Row-wise helpers on CSR matrices: squared norms, row scaling and degree-2 pairs.

These walk each row's non-zeros once (O(nnz)), without densifying, in parallel over
rows when OpenMP is available.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

ctypedef fused floating:
    float
    double

ctypedef fused integral:
    int
    long long


def csr_row_norms_sq(const floating[::1] data, const integral[::1] indptr, int n_threads=1):
    """Squared Euclidean norm of every row of a CSR matrix, accumulated in float64.

    Parameters
    ----------
    data, indptr : the CSR arrays (indices are not needed).
    n_threads : int
        OpenMP threads (1 = serial).

    Returns
    -------
    ndarray of shape (n_rows,), float64
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef double[::1] out = np.zeros(n_rows, dtype=np.float64)
    cdef Py_ssize_t i
    cdef integral k
    cdef double acc
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule="static"):
            acc = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                acc = acc + <double>data[k] * <double>data[k]
            out[i] = acc
    return np.asarray(out)


def csr_scale_rows(floating[::1] data, const integral[::1] indptr,
                   const double[::1] scale, int n_threads=1):
    """Multiply row ``i`` of a CSR matrix by ``scale[i]``, in place on ``data``.

    Parameters
    ----------
    data : CSR data array, modified in place.
    indptr : CSR row pointers.
    scale : ndarray of shape (n_rows,), float64.
    n_threads : int
        OpenMP threads (1 = serial).
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    if scale.shape[0] != n_rows:
        raise ValueError(f"scale has {scale.shape[0]} entries for {n_rows} rows")
    cdef Py_ssize_t i
    cdef integral k
    cdef double s
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule="static"):
            s = scale[i]
            for k in range(indptr[i], indptr[i + 1]):
                data[k] = <floating>(data[k] * s)


def csr_pairs(const floating[::1] data, const integral[::1] indices,
              const integral[::1] indptr, const long long[::1] out_ptr,
              long long n_features, long long[::1] codes, double[::1] values,
              int n_threads=1):
    """The degree-2 tensor ``x ⊗ x`` of every row, one entry per unordered pair.

    Row ``i``'s pairs of stored entries ``a <= b`` (with ``a == b``) go to
    ``codes[out_ptr[i]:out_ptr[i + 1]]`` as ``indices[a] * n_features + indices[b]``
    and to ``values`` as ``x_a x_b``, times ``sqrt(2)`` when ``a < b``: with canonical
    rows (sorted, unique indices) the pairs of two rows meet at equal codes and
    ``sum x_a x_b y_a y_b`` over them is ``<x, y>^2``.

    Parameters
    ----------
    data, indices, indptr : the CSR arrays, canonical (sorted unique indices per row).
    out_ptr : ndarray of shape (n_rows + 1,), int64
        ``out_ptr[i + 1] - out_ptr[i] = k (k + 1) / 2`` for a row of ``k`` entries.
    n_features : int
        Width of the rows (``indices < n_features``; codes are below its square).
    codes : ndarray of int64, written.
    values : ndarray of float64, written.
    n_threads : int
        OpenMP threads (1 = serial).
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    if out_ptr.shape[0] != n_rows + 1:
        raise ValueError(f"out_ptr has {out_ptr.shape[0]} entries for {n_rows} rows")
    if codes.shape[0] < out_ptr[n_rows] or values.shape[0] < out_ptr[n_rows]:
        raise ValueError("codes and values are shorter than out_ptr[-1]")
    cdef Py_ssize_t i
    cdef integral a, b
    cdef long long k, left
    cdef double root2 = 2.0 ** 0.5, xa
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule="static"):
            k = out_ptr[i]
            for a in range(indptr[i], indptr[i + 1]):
                xa = <double>data[a]
                left = <long long>indices[a] * n_features
                codes[k] = left + indices[a]
                values[k] = xa * xa
                k = k + 1
                for b in range(a + 1, indptr[i + 1]):
                    codes[k] = left + indices[b]
                    values[k] = root2 * xa * <double>data[b]
                    k = k + 1
