"""The Cython extensions of fastntk, imported in one place.

A source checkout that was never built has no extensions: the import error says how to
build them, instead of a bare ``ModuleNotFoundError``.  Their OpenMP loops take a thread
count, which goes through :func:`fastntk._threading.openmp_threads` (a process forked
after an OpenMP team was started runs them serially, see :mod:`fastntk._threading`).
"""
from ._threading import openmp_threads

try:
    from . import _countsketch, _sparsefuncs
except ImportError as exc:  # pragma: no cover - depends on how fastntk was installed
    raise ImportError(
        f"fastntk's compiled extensions are missing ({exc}): this looks like a source "
        f"tree that was never built. Build with `pip install .` (or, in a checkout, "
        f"`python setup.py build_ext --inplace`)") from exc

__all__ = ["hashed_codes", "countsketch_csr", "countsketch_csr_hashed", "countsketch_dense",
           "csr_row_norms_sq", "csr_scale_rows", "csr_pairs"]

hashed_codes = _countsketch.hashed_codes


def countsketch_csr(data, indices, indptr, codes, out, first=0, n_threads=1):
    """:func:`fastntk._countsketch.countsketch_csr`."""
    _countsketch.countsketch_csr(data, indices, indptr, codes, out, first,
                                 openmp_threads(n_threads))


def countsketch_csr_hashed(data, indices, indptr, keys, out, first=0, n_threads=1):
    """:func:`fastntk._countsketch.countsketch_csr_hashed`."""
    _countsketch.countsketch_csr_hashed(data, indices, indptr, keys, out, first,
                                        openmp_threads(n_threads))


def countsketch_dense(X, codes, out, first=0, n_threads=1):
    """:func:`fastntk._countsketch.countsketch_dense`."""
    _countsketch.countsketch_dense(X, codes, out, first, openmp_threads(n_threads))


def csr_row_norms_sq(data, indptr, n_threads=1):
    """:func:`fastntk._sparsefuncs.csr_row_norms_sq`."""
    return _sparsefuncs.csr_row_norms_sq(data, indptr, openmp_threads(n_threads))


def csr_scale_rows(data, indptr, scale, n_threads=1):
    """:func:`fastntk._sparsefuncs.csr_scale_rows`."""
    _sparsefuncs.csr_scale_rows(data, indptr, scale, openmp_threads(n_threads))


def csr_pairs(data, indices, indptr, out_ptr, n_features, codes, values, n_threads=1):
    """:func:`fastntk._sparsefuncs.csr_pairs`."""
    _sparsefuncs.csr_pairs(data, indices, indptr, out_ptr, n_features, codes, values,
                           openmp_threads(n_threads))
