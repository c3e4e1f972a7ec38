# cython: language_level=3
"""Row-wise helpers on CSR matrices: squared norms and row scaling.

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
