"""Checks that every estimator and kernel of fastntk applies before any computation.

* Sparse input: the index arrays of a CSR/CSC/COO/BSR matrix are checked in O(nnz)
  with NumPy (:func:`check_sparse_structure`) before scikit-learn converts the matrix
  or a compiled loop reads it, since both trust the indices and would read or write
  out of bounds; the result is then made canonical (:func:`canonical_csr`): CSR,
  duplicate entries summed, sorted indices, one index dtype, on a copy when anything
  has to change, never in place on the caller's matrix.
* Parameters: :func:`fit_method` runs scikit-learn's parameter validation, also refusing
  a bool where a number is expected (``n_components=True`` is a mistake, not 1), and
  restores the estimator's previous state if the fit raises.
* Memory: :func:`check_memory` turns sizes that cannot be allocated into a ValueError
  that names the memory needed, before the allocation is attempted.
"""
import functools
import os

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import _assert_all_finite
from sklearn.utils.validation import check_array as _sklearn_check_array
from sklearn.utils.validation import validate_data as _sklearn_validate_data

__all__ = ["check_sparse_structure", "canonical_csr", "validate_data", "validate_rows",
           "check_array",
           "fit_method", "check_memory"]


# ------------------------------------------------------------------- sparse structure
def _check_index_array(array, what, name):
    if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} is a malformed sparse matrix: {what} must be a 1-D integer "
                         f"array, got {getattr(array, 'dtype', type(array))} of shape "
                         f"{getattr(array, 'shape', None)}")


def _check_range(values, bound, what, name, where):
    """Raise unless ``0 <= values < bound``; ``where(k)`` describes position ``k``."""
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low >= 0 and high < bound:
        return
    k = int(np.argmax((values < 0) | (values >= bound)))
    raise ValueError(f"{name} is a malformed sparse matrix: {what} {values[k]} {where(k)} is "
                     f"outside [0, {bound})")


def _check_compressed(X, name, n_major, n_minor, major, minor):
    """CSR/CSC/BSR: indptr of length n_major + 1 from 0, non-decreasing, within the
    stored entries; indices of the stored entries in [0, n_minor)."""
    indptr, indices = X.indptr, X.indices
    _check_index_array(indptr, "indptr", name)
    _check_index_array(indices, "indices", name)
    if indptr.shape[0] != n_major + 1:
        raise ValueError(f"{name} is a malformed sparse matrix: indptr has {indptr.shape[0]} "
                         f"entries, {n_major + 1} expected for {n_major} {major}s")
    if indptr[0] != 0:
        raise ValueError(f"{name} is a malformed sparse matrix: indptr starts at "
                         f"{indptr[0]}, not 0")
    decreasing = indptr[1:] < indptr[:-1]  # not np.diff, which wraps for unsigned dtypes
    if np.any(decreasing):
        k = int(np.argmax(decreasing))
        raise ValueError(f"{name} is a malformed sparse matrix: indptr decreases at {major} "
                         f"{k} ({indptr[k]} then {indptr[k + 1]})")
    nnz = int(indptr[-1])
    if nnz > indices.shape[0] or X.data.shape[0] != indices.shape[0]:
        raise ValueError(f"{name} is a malformed sparse matrix: indptr ends at {nnz} but "
                         f"{indices.shape[0]} indices and {X.data.shape[0]} values are stored")
    _check_range(indices[:nnz], n_minor, f"{minor} index", name,
                 lambda k: f"in {major} {int(np.searchsorted(indptr, k, side='right')) - 1}")


def check_sparse_structure(X, name="X"):
    """Raise ValueError unless the index arrays of a sparse matrix are consistent.

    CSR, CSC and BSR: ``indptr`` has one entry per row (column, block row) plus one,
    starts at 0, never decreases and ends within the stored entries, and every stored
    index is in ``[0, n_columns)`` (rows, block columns).  COO: every row and column index
    is within the shape.  Other formats are built from Python or NumPy operations that
    check their own indices.  Costs O(nnz + n_rows) in NumPy; nothing is copied.

    Parameters
    ----------
    X : sparse matrix or array
    name : str, default="X"
        Name of the argument, for the message.

    Raises
    ------
    ValueError
        Naming the first inconsistency found.
    """
    if len(X.shape) != 2:
        raise ValueError(f"{name} must be a 2-D sparse matrix, got shape {X.shape}")
    n_rows, n_cols = X.shape
    if X.format == "csr":
        _check_compressed(X, name, n_rows, n_cols, "row", "column")
    elif X.format == "csc":
        _check_compressed(X, name, n_cols, n_rows, "column", "row")
    elif X.format == "bsr":
        block_rows, block_cols = X.blocksize
        _check_compressed(X, name, n_rows // block_rows, n_cols // block_cols, "block row",
                          "block column")
    elif X.format == "coo":
        row, col = X.coords if hasattr(X, "coords") else (X.row, X.col)
        _check_index_array(row, "row", name)
        _check_index_array(col, "col", name)
        if not row.shape == col.shape == X.data.shape:
            raise ValueError(f"{name} is a malformed sparse matrix: row, col and data have "
                             f"lengths {row.shape[0]}, {col.shape[0]} and {X.data.shape[0]}")
        _check_range(row, n_rows, "row index", name, lambda k: f"at entry {k}")
        _check_range(col, n_cols, "column index", name, lambda k: f"at entry {k}")


def _is_canonical(indices, indptr):
    """Indices strictly increasing within every row (sorted, no duplicates), in O(nnz)."""
    nnz = indices.shape[0]
    if nnz < 2:
        return True
    within_row = np.ones(nnz - 1, dtype=bool)
    starts = indptr[1:-1]
    starts = starts[(starts > 0) & (starts < nnz)]
    within_row[starts - 1] = False
    return bool(np.all(np.diff(indices)[within_row] > 0))


def canonical_csr(X):
    """The CSR form of a (structurally valid) sparse matrix that the kernels expect.

    Duplicate entries are summed (the value of a matrix with duplicates is their sum,
    for scipy as for every kernel here), indices are sorted within rows, storage beyond
    the last row is dropped, and ``indices`` and ``indptr`` share one dtype (int32 or
    int64).  Sortedness is checked on the indices themselves rather than trusted from
    scipy's cached flags, which go stale when the arrays are modified in place.  The
    caller's matrix is never modified: anything that changes is changed on a copy.

    Parameters
    ----------
    X : sparse matrix or array, already checked by :func:`check_sparse_structure`

    Returns
    -------
    CSR matrix (the input itself when it is already canonical)
    """
    X = X.tocsr()
    nnz = int(X.indptr[-1])
    indices, indptr = X.indices[:nnz], X.indptr
    canonical = indices.shape[0] == X.indices.shape[0] and _is_canonical(indices, indptr)
    index_dtype = indices.dtype
    if index_dtype != indptr.dtype or index_dtype not in (np.int32, np.int64):
        index_dtype = np.int64
    if canonical and indices.dtype == indptr.dtype == index_dtype:
        return X
    X = type(X)((X.data[:nnz].copy(), indices.astype(index_dtype),
                 indptr.astype(index_dtype)), shape=X.shape)
    if not canonical:
        # scipy skips the work when its cached flags say it is done: they are not trusted
        X.has_sorted_indices = False
        X.has_canonical_format = False
        X.sum_duplicates()
    return X


def validate_data(estimator, X, *, reset, **kwargs):
    """scikit-learn's ``validate_data``, with sparse input checked first, then canonical.

    Parameters
    ----------
    estimator : estimator
    X : array-like or sparse matrix
    reset : bool
    **kwargs
        Passed to :func:`sklearn.utils.validation.validate_data`.

    Returns
    -------
    ndarray or CSR matrix (canonical, see :func:`canonical_csr`)
    """
    if sp.issparse(X):
        check_sparse_structure(X)
    X = _sklearn_validate_data(estimator, X, reset=reset, **kwargs)
    return canonical_csr(X) if sp.issparse(X) else X


_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def validate_rows(estimator, X, **kwargs):
    """:func:`validate_data` with ``reset=False`` for new rows, with a fast path.

    A request of a server is usually a 2-D float32/float64 ndarray (C-ordered) or CSR
    matrix of the fitted width: for it, scikit-learn's checks reduce to the width, the
    finiteness and (for CSR) the index structure, done here directly in a few
    microseconds instead of a few hundred.  Anything else (lists, dataframes, other
    dtypes or formats, an estimator fitted with feature names, zero rows) goes through
    :func:`validate_data` with ``kwargs``, which gives the same result and messages.

    Returns
    -------
    ndarray or canonical CSR matrix
    """
    sparse = sp.issparse(X)
    simple = (
        (sparse and X.format == "csr" and kwargs.get("accept_sparse")) or
        (type(X) is np.ndarray and X.flags.c_contiguous)
    ) and X.ndim == 2 and X.dtype in _FLOATS and X.shape[0] > 0 and (
        not hasattr(estimator, "feature_names_in_"))
    n_features = getattr(estimator, "n_features_in_", None)
    if not simple or n_features is None or X.shape[1] != n_features:
        return validate_data(estimator, X, reset=False, **kwargs)
    if sparse:
        check_sparse_structure(X)
        X = canonical_csr(X)
    values = X.data if sparse else X
    if not np.isfinite(values).all():  # sklearn's own message
        _assert_all_finite(values, input_name="X", estimator_name=type(estimator).__name__)
    return X


def check_array(X, *, input_name="X", **kwargs):
    """scikit-learn's ``check_array``, with sparse input checked first, then canonical."""
    if sp.issparse(X):
        check_sparse_structure(X, input_name)
    X = _sklearn_check_array(X, input_name=input_name, **kwargs)
    return canonical_csr(X) if sp.issparse(X) else X


# ------------------------------------------------------------------------- parameters
def _reject_bools(estimator):
    """A bool is an int to Python and to scikit-learn's constraints: refuse it wherever
    the parameter is not declared boolean."""
    for name, constraints in estimator._parameter_constraints.items():
        value = getattr(estimator, name)
        if isinstance(value, (bool, np.bool_)) and "boolean" not in constraints:
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must not be a bool; "
                f"got {value!r}"
            )


def fit_method(fit):
    """Decorate ``fit``: validate the parameters, and undo everything if the fit raises.

    scikit-learn's input validation sets ``n_features_in_`` before the fit can fail on
    other grounds, and a fit assigns its attributes one after the other: restoring the
    instance's ``__dict__`` makes a call that raises leave the estimator exactly as it
    was (still fitted, with its previous state, if it was).  Fits replace attributes
    rather than mutate them, so a shallow copy of the attributes suffices.
    """
    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            self._validate_params()
            _reject_bools(self)
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper


# ----------------------------------------------------------------------------- memory
def _physical_memory():
    """Bytes of physical memory, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n_bytes):
    """``n_bytes`` in the largest binary unit that keeps a number >= 1, e.g. '3.0 GiB'."""
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024


def check_memory(n_bytes, what):
    """Raise ValueError if ``what`` needs more memory than the machine has.

    A request beyond physical memory fails (MemoryError) or, with overcommit, succeeds
    and gets the process killed once it is touched; refusing it up front, with the size,
    tells the user which parameter to lower.

    Parameters
    ----------
    n_bytes : int or float
        Memory needed (a lower bound: the largest arrays).
    what : str
        What needs it, e.g. "NTKSketch(n_components=10**9)".
    """
    total = _physical_memory()
    if total is not None and n_bytes > total:
        raise ValueError(f"{what} needs at least {format_bytes(n_bytes)} of memory, more "
                         f"than the {format_bytes(total)} of this machine")
