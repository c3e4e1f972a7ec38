"""``fastntk warmup``: compile every kernel ahead of the first request.

Numba compiles a kernel for each combination of argument types the first time it is
called, which costs seconds per estimator (tens of seconds for CNTKSketch).  The warm-up
runs every estimator, kernel function and sketch of fastntk on tiny inputs of every kind
a fitted model can receive (float32 and float64; dense rows, and CSR rows with int32 and
int64 indices; models fitted on dense and on sparse rows), then compiles the other twin
(serial or parallel, see :mod:`fastntk._jit`) of every parallel kernel for every
signature seen, so that all of it lands in the cache (:func:`fastntk._jit.cache_dir`).
Run it once where the cache is written (e.g. when a container image is built) with the
same fastntk install path and CPU model as the server.
"""
import os
import time

import numpy as np
import scipy.sparse as sp

__all__ = ["warmup"]


def _csr_variants(X):
    """``X`` as CSR with int32 and with int64 index arrays."""
    X = sp.csr_matrix(X)
    wide = X.copy()
    # scipy's constructor picks int32 for small matrices: set the arrays directly
    wide.indices = X.indices.astype(np.int64)
    wide.indptr = X.indptr.astype(np.int64)
    return [X, wide]


def _inputs(X):
    """Every input kind a fitted model can be given, for rows like ``X``."""
    out = []
    for dtype in (np.float64, np.float32):
        dense = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=dtype)
        out += [dense, *_csr_variants(dense)]
    return out


def _exercise():
    """Run every estimator and kernel on tiny inputs of every kind."""
    from . import kernels
    from .cntk_sketch import CNTKSketch
    from .leverage import sample_leverage_weights
    from .ntk_sketch import NTKSketch
    from .random_features import NTKRandomFeatures
    from .sketches import SRHT, CountSketch, PolySketch, TensorSketch, TensorSRHT

    rng = np.random.default_rng(0)
    narrow = rng.standard_normal((6, 5))
    wide = sp.random(6, 3000, density=0.01, format="csr", random_state=0)
    wide.data += 1.0  # no row of zeros only
    images = rng.standard_normal((3, 5 * 5 * 2))

    transformers = []
    for fit_rows in (narrow, wide):
        for dtype in (np.float64, np.float32):
            rows = fit_rows.astype(dtype)
            transformers += [
                (NTKSketch(n_components=64, degree=3, random_state=0).fit(rows), fit_rows),
                (NTKSketch(n_components=16, degree=3, depth=2, method="layerwise",
                           random_state=0).fit(rows), fit_rows),
                (NTKRandomFeatures(n_components=16, depth=2, input_sketch=1000,
                                   random_state=0).fit(rows), fit_rows),
                (CountSketch(8, random_state=0).fit(rows), fit_rows),
                (SRHT(8, random_state=0).fit(rows), fit_rows),
                (PolySketch(4, 8, leaf="countsketch", random_state=0).fit(rows), fit_rows),
                (PolySketch(4, 8, leaf="srht", random_state=0).fit(rows), fit_rows),
                (TensorSketch(2, 8, random_state=0).fit(rows), fit_rows),
            ]
    for padding in ("same", "valid"):
        for pooling in ("gap", "flatten"):
            transformers.append((CNTKSketch(n_components=8, depth=2, degree=2,
                                            padding=padding, pooling=pooling,
                                            image_shape=(5, 5, 2), random_state=0)
                                 .fit(images), images))
    for transformer, rows in transformers:
        for X in _inputs(rows):
            transformer.transform(X)
    for X in _inputs(narrow):
        TensorSRHT(8, random_state=0).fit(X, X).transform(X, X)
        for kind in ("ntk", "nngp"):
            kernels.ntk_kernel(X, depth=2, kind=kind)
            kernels.ntk_kernel(X, X[:2], depth=2, kind=kind)
    for X in _inputs(images):
        if not sp.issparse(X):
            shaped = X.reshape(-1, 5, 5, 2)
            for padding in ("same", "valid"):
                for pooling in ("gap", "flatten"):
                    kernels.cntk_kernel(shaped, depth=2, padding=padding, pooling=pooling)
                    kernels.cntk_kernel(shaped, shaped[:1], depth=2, padding=padding,
                                        pooling=pooling)
    for t in (np.linspace(-1, 1, 5), np.linspace(-1, 1, 5).astype(np.float32)):
        kernels.ntk_dot_product(t, depth=2)
    for method in ("gibbs", "exact"):
        sample_leverage_weights(4, 3, method=method, random_state=0)
    NTKRandomFeatures(n_components=16, leverage=True, random_state=0).fit(narrow)


def _compile_twins():
    """Compile the missing twin of every parallel kernel for every signature seen."""
    from ._jit import KERNELS, ParallelKernel

    for kernel in KERNELS:
        if isinstance(kernel, ParallelKernel):
            signatures = set(kernel.serial.signatures) | set(kernel.parallel.signatures)
            for sig in signatures:
                kernel.serial.compile(sig)
                kernel.parallel.compile(sig)


def warmup(out=None):
    """Compile every kernel into the cache; returns a one-line summary.

    Parameters
    ----------
    out : file-like, optional
        Where to print progress (nothing if None).
    """
    from ._jit import KERNELS, ParallelKernel, cache_dir

    start = time.perf_counter()
    _exercise()
    _compile_twins()
    n_compiled = sum(len(k.serial.signatures) + len(k.parallel.signatures)
                     if isinstance(k, ParallelKernel) else len(k.signatures)
                     for k in KERNELS)
    directory = cache_dir()
    if directory is None:
        where = "NOT cached (no cache directory: set FASTNTK_CACHE_DIR)"
    elif not os.access(directory, os.W_OK):
        where = f"NOT cached ({directory} is read-only)"
    else:
        where = f"cached in {directory}"
    summary = (f"fastntk warmup: {n_compiled} compiled kernel signatures, {where}, "
               f"{time.perf_counter() - start:.1f} s")
    if out is not None:
        print(summary, file=out)
    return summary
