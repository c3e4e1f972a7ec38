# cython: language_level=3
"""CountSketch kernels: CSR and dense rows into one or several hashed sketches.

A CountSketch ``C: R^d -> R^m`` is given by a bucket ``h(j)`` in ``[0, m)`` and a sign
``s(j)`` in ``{-1, +1}`` for every input coordinate ``j``; ``(C x)_b = sum_{h(j)=b} s(j) x_j``.
Several independent CountSketches (the leaves of a PolySketch or TensorSketch) share
one table so that a non-zero's hashes are fetched with one memory access.

Packed codes
------------
``codes`` has shape ``(n_features, n_sketches)`` and dtype int32; ``codes[j, l]`` is
``h_l(j)`` when ``s_l(j) = +1`` and ``~h_l(j) = -h_l(j) - 1`` when ``s_l(j) = -1``.  The
kernels decode it without branches (a random sign would defeat the branch predictor):
``c >> 31`` is 0 or -1, so ``1 | (c >> 31)`` is the sign and ``c ^ (c >> 31)`` the bucket.

Every row is processed by one thread, which alone writes its output row, so the
result does not depend on the number of threads.  Sums are accumulated in the
output's precision, in increasing column order for CSR rows with sorted indices and
for dense rows, which makes the CSR and dense paths bit-identical.
"""
cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

ctypedef fused floating:
    float
    double

ctypedef fused integral:
    int
    long long


def countsketch_csr(const floating[::1] data, const integral[::1] indices,
                    const integral[::1] indptr, const int[:, ::1] codes,
                    floating[:, :, ::1] out, Py_ssize_t first=0,
                    int n_threads=1):
    """Add the CountSketches of CSR rows to ``out``, in O(nnz * n_sketches) work.

    Parameters
    ----------
    data, indices, indptr : the CSR arrays.  ``indptr`` may be a slice of the full row
        pointer array (values stay absolute offsets into ``data``), which processes
        a batch of rows.
    codes : ndarray of shape (n_features, n_sketches), int32
        Packed bucket/sign codes (see the module docstring).
    out : ndarray of shape (n_rows, >= first + n_sketches, n_components), C-contiguous
        Accumulator of the dtype of ``data``, normally zero on entry;
        ``out[i, first + l]`` receives ``C_l x_i``.
    first : int
        Slot of ``out`` receiving the first sketch.
    n_threads : int
        OpenMP threads (1 = serial).
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t n_sketches = codes.shape[1]
    if out.shape[0] != n_rows or out.shape[1] < first + n_sketches or first < 0:
        raise ValueError(
            f"out has shape {tuple(out.shape)[:3]}, expected ({n_rows}, >= {first} + "
            f"{n_sketches}, m)"
        )
    cdef Py_ssize_t i, l
    cdef integral k, j
    cdef int c, neg
    cdef floating v
    with nogil:
        if n_sketches == 1:
            # The plain CountSketch: no loop over sketches in the innermost loop.
            for i in prange(n_rows, num_threads=n_threads, schedule="guided"):
                for k in range(indptr[i], indptr[i + 1]):
                    c = codes[indices[k], 0]
                    neg = c >> 31
                    out[i, first, c ^ neg] += (1 | neg) * data[k]
        else:
            for i in prange(n_rows, num_threads=n_threads, schedule="guided"):
                for k in range(indptr[i], indptr[i + 1]):
                    j = indices[k]
                    v = data[k]
                    for l in range(n_sketches):
                        c = codes[j, l]
                        neg = c >> 31
                        out[i, first + l, c ^ neg] += (1 | neg) * v


def countsketch_dense(const floating[:, ::1] X, const int[:, ::1] codes,
                      floating[:, :, ::1] out, Py_ssize_t first=0,
                      int n_threads=1):
    """Add the CountSketches of dense rows to ``out`` (zero entries are skipped).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features), C-contiguous
    codes : ndarray of shape (n_features, n_sketches), int32
        Packed bucket/sign codes (see the module docstring).
    out : ndarray of shape (n_rows, >= first + n_sketches, n_components), C-contiguous
        Accumulator of the dtype of ``X``, normally zero on entry; ``out[i, first + l]``
        receives ``C_l X[i]``.
    first : int
        Slot of ``out`` receiving the first sketch.
    n_threads : int
        OpenMP threads (1 = serial).
    """
    cdef Py_ssize_t n_rows = X.shape[0]
    cdef Py_ssize_t n_features = X.shape[1]
    cdef Py_ssize_t n_sketches = codes.shape[1]
    if codes.shape[0] != n_features:
        raise ValueError(f"codes has {codes.shape[0]} rows for {n_features} features")
    if out.shape[0] != n_rows or out.shape[1] < first + n_sketches or first < 0:
        raise ValueError(
            f"out has shape {tuple(out.shape)[:3]}, expected ({n_rows}, >= {first} + "
            f"{n_sketches}, m)"
        )
    cdef Py_ssize_t i, j, l
    cdef int c, neg
    cdef floating v
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule="static"):
            for j in range(n_features):
                v = X[i, j]
                # Skipping zeros keeps the sum identical to the CSR path.
                if v == 0:
                    continue
                for l in range(n_sketches):
                    c = codes[j, l]
                    neg = c >> 31
                    out[i, first + l, c ^ neg] += (1 | neg) * v
