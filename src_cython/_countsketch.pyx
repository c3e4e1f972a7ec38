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

Hashed codes
------------
For inputs too wide for a table to stay in cache, the code of column ``j`` in sketch
``l`` is computed on the fly from a 64-bit key: ``h = mix64(j + key_l)`` (the
splitmix64 finaliser, a bijection with full avalanche), sign +1 if the top bit of ``h``
is set, bucket ``((h mod 2^32) * m) >> 32``.  :func:`hashed_codes` evaluates the same
function into a packed table, so hashed and tabled paths give identical sketches.

Every row is processed by one thread, which alone writes its output row, so the
result does not depend on the number of threads.  Sums are accumulated in the
output's precision, in increasing column order for CSR rows with sorted indices and
for dense rows, which makes the CSR and dense paths bit-identical.
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

ctypedef unsigned long long uint64


cdef inline uint64 _mix64(uint64 z) noexcept nogil:
    """splitmix64 finaliser."""
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline int _hashed_code(uint64 j, uint64 key, uint64 n_components) noexcept nogil:
    """Packed code (see the module docstring) of column ``j`` under ``key``."""
    cdef uint64 h = _mix64(j + key)
    cdef int bucket = <int>(((h & 0xFFFFFFFFULL) * n_components) >> 32)
    return bucket if h >> 63 else ~bucket


cdef _check_out(Py_ssize_t* shape, Py_ssize_t n_rows, Py_ssize_t first,
                Py_ssize_t n_sketches):
    """Raise unless ``out`` of ``shape`` has room for the sketches of every row."""
    if shape[0] != n_rows or shape[1] < first + n_sketches or first < 0:
        raise ValueError(
            f"out has shape ({shape[0]}, {shape[1]}, {shape[2]}), expected "
            f"({n_rows}, >= {first} + {n_sketches}, m)"
        )


def hashed_codes(const uint64[::1] keys, Py_ssize_t n_features, Py_ssize_t n_components):
    """Packed codes of columns ``0..n_features-1`` under every key.

    Parameters
    ----------
    keys : ndarray of shape (n_sketches,), uint64
    n_features : int
    n_components : int
        Number of buckets, at most 2^31 - 1.

    Returns
    -------
    codes : ndarray of shape (n_features, n_sketches), int32
        What :func:`countsketch_csr_hashed` computes on the fly.
    """
    cdef Py_ssize_t n_sketches = keys.shape[0]
    codes_arr = np.empty((n_features, n_sketches), dtype=np.int32)
    cdef int[:, ::1] codes = codes_arr
    cdef Py_ssize_t j, l
    with nogil:
        for j in range(n_features):
            for l in range(n_sketches):
                codes[j, l] = _hashed_code(j, keys[l], n_components)
    return codes_arr


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
    _check_out(out.shape, n_rows, first, n_sketches)
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


def countsketch_csr_hashed(const floating[::1] data, const integral[::1] indices,
                           const integral[::1] indptr, const uint64[::1] keys,
                           floating[:, :, ::1] out, Py_ssize_t first=0,
                           int n_threads=1):
    """:func:`countsketch_csr` with codes hashed on the fly from ``keys`` (uint64, one
    per sketch): no table to fetch, so the cost of a non-zero does not grow with the
    input width.  Identical to ``countsketch_csr`` with ``hashed_codes(keys, ...)``."""
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t n_sketches = keys.shape[0]
    cdef uint64 m = out.shape[2]
    _check_out(out.shape, n_rows, first, n_sketches)
    cdef Py_ssize_t i, l
    cdef integral k
    cdef int c, neg
    cdef floating v
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule="guided"):
            for k in range(indptr[i], indptr[i + 1]):
                v = data[k]
                for l in range(n_sketches):
                    c = _hashed_code(<uint64>indices[k], keys[l], m)
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
    _check_out(out.shape, n_rows, first, n_sketches)
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
