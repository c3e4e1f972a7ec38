"""Dask backend of :class:`fastntk.NTKRidge` and :class:`fastntk.NTKRidgeClassifier`.

Imported only when a Dask collection is given to ``fit``, ``predict`` or
``decision_function`` (or by the helpers :func:`bag_to_dask_array` and
:func:`dask_transform`), so fastntk without Dask installed is unchanged.

A fit is a map-reduce over the row chunks (partitions) of ``X``.  Every partition is
turned into the statistics of a streaming solver ("primal" or "cg": sums over rows, of a
size independent of the number of rows) at its global row offset (the cg solver's
held-out fold is chosen by global row index).  The partitions are split into as many
contiguous runs as the cluster has worker threads; a run adds its partitions one after
the other into one statistics object (so a worker holds one object per thread, not one
per partition: the cg solver's are ``8 d m`` bytes), then the runs' objects are added
pairwise by a tree reduction, in row order, and the sum is solved on the client.

A task updates the statistics object it receives, which no other task uses; so an error
in a task fails the fit (``fit`` raises and leaves the model unchanged), and a worker lost
mid-fit has its tasks recomputed by ``dask.distributed`` from their inputs (the runs it
held restart from their first partition): never a model of part of the rows.

Predictions of a dask array are a lazy dask array, chunk by chunk (``map_blocks``).
"""
import os

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from ._solvers import Design, get_streaming
from ._validation import check_array
from .ridge import _feature_blocks, _targets_2d, keeps_tail

__all__ = ["fit", "predict", "dask_transform", "bag_to_dask_array"]


def _as_row_chunked(X, name="X"):
    """``X`` as a 2-D dask array with one chunk across the columns."""
    if not isinstance(X, da.Array):
        hint = (" (a dask.bag of texts: vectorise it first, e.g. with "
                "fastntk.bag_to_dask_array(bag, HashingVectorizer(...).transform))"
                if type(X).__module__.startswith("dask.bag") else "")
        raise ValueError(f"{name} must be a dask.array, got {type(X).__name__}{hint}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got a dask array of shape {X.shape}")
    if X.numblocks[1] != 1:
        # row chunks only: a chunk must hold whole rows for the feature map
        X = X.rechunk({1: -1})
    return X


def _aligned(v, row_chunks, name):
    """``v`` (array-like or Dask, 1-D or 2-D) as a dask array chunked like X's rows."""
    if not isinstance(v, da.Array):
        v = np.asarray(v)
    n_rows = sum(row_chunks)
    if v.ndim not in (1, 2) or v.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} rows (those of X), got shape "
                         f"{v.shape}")
    if isinstance(v, da.Array):
        return v.rechunk({0: row_chunks, **({1: -1} if v.ndim == 2 else {})})
    return da.from_array(v, chunks=(row_chunks, *v.shape[1:]))


class _Partition:
    """What every partition task needs: the fitted feature map and the solver's plan."""

    def __init__(self, feature_map, solver, spec, design, n_features, encode, sketched):
        self.feature_map = feature_map
        self.sketched = sketched                    # whether the design has the tail
        self.solver = solver
        self.spec = spec
        self.batch_size = design.batch_size
        self.widths = (design.n_exact, design.n_tail, design.sparse_exact)
        self.n_targets = design.n_targets
        self.n_features = n_features
        self.encode = encode

    def empty(self):
        """Statistics of no rows."""
        design = Design(None, None, np.zeros((0, self.n_targets)), np.zeros(0),
                        self.batch_size, *self.widths)
        return get_streaming(self.solver).accumulate(design, self.spec)

    def add(self, statistics, X, y, sample_weight, offset):
        """``statistics`` (None: new ones) plus those of one partition, whose first row
        is row ``offset`` of X; updated in place."""
        if statistics is None:
            statistics = self.empty()
        if X.shape[0] == 0:
            return statistics
        X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32))
        if X.shape[1] != self.n_features:
            raise ValueError(f"a partition of X has {X.shape[1]} features, the first one "
                             f"{self.n_features}")
        if self.encode is None:
            Y = _targets_2d(check_array(y, ensure_2d=False, dtype=np.float64,
                                        input_name="y"))
        else:
            Y = self.encode(np.asarray(y))
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        design = Design(lambda rows: _feature_blocks(self.feature_map, rows,
                                                     sketched=self.sketched), X, Y,
                        sample_weight, self.batch_size, *self.widths, row_offset=offset)
        return get_streaming(self.solver).accumulate(design, self.spec, statistics)


def _add_partition(task, statistics, X, y, sample_weight, offset):
    return task.add(statistics, X, y, sample_weight, offset)


def _merge_pair(first, second):
    """``first`` plus ``second`` (the rows that follow), in place."""
    return first.merge(second)


def _n_runs(n_partitions):
    """Worker threads of the current client (else of Dask's local scheduler)."""
    try:
        from distributed import default_client
        threads = sum(default_client().nthreads().values())
    except (ImportError, ValueError):                     # no distributed client
        threads = os.cpu_count() or 1
    return max(1, min(threads, n_partitions))


def _statistics_graph(task, blocks, offsets):
    """The delayed sum of every partition's statistics (see the module docstring)."""
    add = dask.delayed(_add_partition, pure=True)
    merge = dask.delayed(_merge_pair, pure=True)
    runs = []
    for run in np.array_split(np.arange(len(offsets)), _n_runs(len(offsets))):
        statistics = None
        for k in run:
            statistics = add(task, statistics, *blocks[k], int(offsets[k]))
        runs.append(statistics)
    while len(runs) > 1:
        runs = [merge(*runs[i:i + 2]) if i + 1 < len(runs) else runs[i]
                for i in range(0, len(runs), 2)]
    return runs[0]


def fit(estimator, X, y, sample_weight=None):
    """``estimator.fit(X, y, sample_weight)`` for a dask array ``X`` (see the module)."""
    X = _as_row_chunked(X)
    row_chunks = X.chunks[0]
    if any(np.isnan(c) for c in row_chunks):
        raise ValueError("X has chunks of unknown size (NaN): call X.compute_chunk_sizes() "
                         "first (the held-out rows are chosen by global row index), or "
                         "build it with known sizes (fastntk.bag_to_dask_array does)")
    if y is None:
        raise ValueError("y is required")
    y = _aligned(y, row_chunks, "y")
    weights = (None if sample_weight is None
               else _aligned(sample_weight, row_chunks, "sample_weight"))
    fitted = clone(estimator)
    alphas, grids = fitted._check_params()
    fitted._check_streamable()
    encode = None
    if is_classifier(fitted):
        from sklearn.utils.multiclass import check_classification_targets

        classes = da.unique(y).compute()                  # one pass over y only
        check_classification_targets(classes)
        fitted.classes_ = classes
        fitted._check_two_classes()
        n_targets, encode = classes.shape[0], fitted._one_hot
    else:
        n_targets = 1 if y.ndim == 1 else y.shape[1]
    # the feature map is fitted on the first partition, as by fit_stream
    first = next((k for k, size in enumerate(row_chunks) if size > 0), None)
    if first is None:
        raise ValueError("X has no rows")
    X_first = fitted._validate_X(X.blocks[first].compute(), reset=True)
    feature_map = fitted._new_feature_map(X_first, pieces=True)
    n = X_first.shape[0]
    solver, _, spec, design = fitted._stream_plan(
        alphas, grids, feature_map, X_first, np.zeros((n, n_targets)), np.ones(n))
    task = dask.delayed(_Partition(feature_map, solver, spec, design, X_first.shape[1],
                                   encode, keeps_tail(feature_map, fitted.tail_gammas)),
                        traverse=False)
    offsets = np.concatenate([[0], np.cumsum(row_chunks)[:-1]]).astype(int)
    X_parts = X.to_delayed().ravel()
    y_parts = y.to_delayed().ravel()
    w_parts = [None] * len(X_parts) if weights is None else weights.to_delayed().ravel()
    blocks = list(zip(X_parts, y_parts, w_parts))
    statistics = _statistics_graph(task, blocks, offsets).compute()
    solution = get_streaming(solver).solve_statistics(statistics, spec, design.n_linear,
                                                      design.n_exact)
    solution.state = None                                 # as fit: statistics are freed
    fitted.feature_map_ = feature_map
    fitted._set_solution(solution, solver, feature_map)
    fitted.n_samples_seen_ = int(sum(row_chunks))
    if not is_classifier(fitted):
        fitted._set_output_shape(np.empty((0,) * y.ndim))
    return estimator._adopt(fitted)


def _zero_row(X):
    """One row of zeros of X's kind (CSR or dense) and dtype."""
    if sp.issparse(X._meta):
        return sp.csr_matrix((1, X.shape[1]), dtype=X.dtype)
    return np.zeros((1, X.shape[1]), dtype=X.dtype)


def _apply(block, function, out_shape, out_dtype):
    if block.shape[0] == 0:
        return np.empty((0, *out_shape), dtype=out_dtype)
    return function(block)


def _map_rows(function, X):
    """``function`` (rows -> 1-D or 2-D array) on every row chunk of X, lazily."""
    X = _as_row_chunked(X)
    probe = function(_zero_row(X))                        # the output's shape and type
    out_shape = probe.shape[1:]
    kwargs = dict(dtype=probe.dtype, meta=probe[:0], out_shape=out_shape,
                  out_dtype=probe.dtype)
    if probe.ndim == 1:
        return X.map_blocks(_apply, function, drop_axis=1, chunks=(X.chunks[0],), **kwargs)
    return X.map_blocks(_apply, function, chunks=(X.chunks[0], (probe.shape[1],)),
                        **kwargs)


def predict(estimator, X, method):
    """``estimator.<method>(X)`` as a lazy dask array, computed chunk by chunk."""
    check_is_fitted(estimator, "intercept_")
    return _map_rows(getattr(estimator, method), X)


def dask_transform(transformer, X):
    """``transformer.transform(X)`` of a dask array X, as a lazy dask array.

    Parameters
    ----------
    transformer : fitted transformer (e.g. fastntk.NTKSketch)
    X : dask.array of shape (n_samples, n_features)
        Row chunks, dense or scipy.sparse (columns are rechunked into one).

    Returns
    -------
    dask.array of shape (n_samples, n_features_out)
        Chunks as ``transformer.transform`` returns them (dense, or CSR for
        fastntk.NTKSketch fitted on sparse input).
    """
    check_is_fitted(transformer)
    return _map_rows(transformer.transform, X)


def _apply_to_items(function, items):
    return function(list(items))


def bag_to_dask_array(bag, function):
    """A dask array of ``function(items)`` for every partition of a ``dask.bag``.

    For a bag of texts, ``function`` is a vectorizer's ``transform`` (a stateless one
    such as sklearn's ``HashingVectorizer``, or one fitted beforehand), giving a dask
    array of CSR chunks that :class:`fastntk.NTKRidge` fits on; for the bag of their
    labels, ``np.asarray``.  Rows keep the bag's order, one chunk per partition.  The
    partition sizes are counted first (a pass over the bag, not through ``function``),
    as a fit needs every chunk's global row offset.

    Parameters
    ----------
    bag : dask.bag.Bag
    function : callable
        ``function(list_of_items) -> array`` (dense or scipy.sparse, one row per item).

    Returns
    -------
    dask.array

    Examples
    --------
    >>> import dask.bag as db, numpy as np
    >>> from sklearn.feature_extraction.text import HashingVectorizer
    >>> from fastntk import bag_to_dask_array
    >>> records = db.from_sequence([("good film", 1), ("bad plot", 0)] * 50, npartitions=4)
    >>> hashing = HashingVectorizer(n_features=2**12, alternate_sign=False)
    >>> X = bag_to_dask_array(records.pluck(0), hashing.transform)
    >>> y = bag_to_dask_array(records.pluck(1), np.asarray)
    >>> X.shape, y.shape
    ((100, 4096), (100,))
    """
    import dask.bag as db

    if not isinstance(bag, db.Bag):
        raise ValueError(f"bag must be a dask.bag.Bag, got {type(bag).__name__}")
    lengths = bag.map_partitions(lambda items: [sum(1 for _ in items)]).compute()
    probe = function(list(bag.take(1, npartitions=-1)))
    if probe.shape[0] != 1:
        raise ValueError(f"function must give one row per item; one item gave "
                         f"{probe.shape[0]}")
    parts = [da.from_delayed(dask.delayed(_apply_to_items, pure=True)(function, part),
                             shape=(length, *probe.shape[1:]), dtype=probe.dtype,
                             meta=probe[:0])
             for part, length in zip(bag.to_delayed(), lengths)]
    return da.concatenate(parts, axis=0)
