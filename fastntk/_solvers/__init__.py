"""Ridge solvers of :class:`fastntk.NTKRidge`: one module per family, looked up by name.

Every solver has one signature, ``solve(design, spec, state=None) -> RidgeSolution``:

- ``design`` (:class:`Design`) gives the training rows batch by batch as the two blocks
  of the feature map, ``[E | T]``: ``E`` the exact block (sparse or dense, or absent) and
  ``T`` the dense sketched tail, or, for exact kernel ridge, the kernel matrix;
- ``spec`` (:class:`RidgeSpec`) holds the hyperparameter grids and the criterion;
- ``state`` is what an earlier call returned in ``RidgeSolution.state``, for solvers
  that can continue from it (:meth:`NTKRidge.partial_fit`).

The model is ``f(x) = b + <E_1(x), a_1> + gamma <E_2(x), a_2> + tail_gamma <T(x), c>``
with the penalty ``alpha (||a||^2 + ||c||^2)``, ``E_1`` the exact block's first
``n_linear`` columns (the exact degrees 0 and 1), ``E_2`` its others (exact degrees >= 2)
and ``T`` the tail: kernel ridge with the kernel ``<E_1, E_1'> + gamma^2 <E_2, E_2'> +
tail_gamma^2 <T, T'>``.  ``gamma = tail_gamma = 1`` is the feature map's own kernel;
``gamma = tail_gamma = 0`` a linear ridge on the exact degrees 0 and 1 alone (for text,
on ``[||x||, x]``).  ``alpha`` and the pair ``(gamma, tail_gamma)`` (a row of
``spec.gammas``) are chosen by the solver's criterion; the solution's coefficients are on
the raw ``[E | T]`` columns, with the weights folded in.

Families (modules): ``dual`` (eigendecomposition of the ``n x n`` kernel, exact
leave-one-out or GCV; small n and exact kernels), ``primal`` (eigendecomposition of the
dense ``p x p`` Gram matrix, GCV; dense features with ``p < n``), ``cg`` (streaming
block statistics and preconditioned conjugate gradients, a held-out fold; any n, wide
sparse exact blocks), ``krylov`` (multi-shift conjugate gradients in the dual through the
rows kept in memory, the whole alpha grid in one run per gamma, a held-out fold; wide
exact blocks, such as the pairs of words of texts, at any n that fits in memory).
"""
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["RidgeSpec", "RidgeSolution", "Design", "Batch", "SOLVERS", "STREAMING",
           "register", "get_solver", "get_streaming", "widen_alphas", "stack_rows",
           "column_scale",
           "held_out", "HOLDOUT_EVERY", "HOLDOUT_MAX"]

SOLVERS = {}
#: Solvers that reduce the rows to statistics (sums over rows, with ``merge``), so that a
#: fit can run in pieces, out of core or distributed: see :func:`get_streaming`.
STREAMING = ("primal", "cg")


def register(name):
    """Decorator registering a solver function under ``name``."""
    def decorate(function):
        SOLVERS[name] = function
        return function
    return decorate


def get_solver(name):
    """The registered solver ``name`` (importing the families on first use)."""
    from . import cg, dual, krylov, primal  # noqa: F401  (modules register themselves)
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)} or 'auto', got "
                         f"{name!r}") from None


def get_streaming(name):
    """The module of the streaming solver ``name`` ("primal" or "cg").

    It offers ``check(design, spec)`` (ValueError if the solver cannot fit the design),
    ``accumulate(design, spec, state=None) -> statistics`` (``state`` continued with the
    design's rows; the statistics have ``merge(other)``, which adds the statistics of
    other rows) and ``solve_statistics(statistics, spec, n_linear, n_exact) ->
    RidgeSolution`` (the widths as in :class:`Design`).
    ``solve`` is ``check``, ``accumulate`` and ``solve_statistics`` in a row.
    """
    if name not in STREAMING:
        raise ValueError(f"solver={name!r} needs all the rows in memory at once; fitting "
                         f"from chunks or a Dask array takes one of {list(STREAMING)} (or "
                         f"'auto')")
    from . import cg, primal
    return {"primal": primal, "cg": cg}[name]


@dataclass(frozen=True)
class RidgeSpec:
    """Hyperparameter grids and options of one fit.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        Ridge parameters, positive.
    gammas : ndarray of shape (n_candidates, 2)
        Candidate weights ``(gamma, tail_gamma)``, non-negative: ``gamma`` of the exact degrees
        >= 2, ``tail_gamma`` of the tail (only ``[(1, 1)]`` when the design has no exact block).
    fit_intercept : bool
    criterion : {"auto", "gcv", "loo", "holdout"}
        What chooses ``(alpha, gamma)``; each solver says which it supports.
    verbose : bool
    resumable : bool
        Whether the solution's ``state`` must be continued from later (partial_fit);
        otherwise a solver may keep what is cheapest for this one fit.
    """

    alphas: np.ndarray
    gammas: np.ndarray
    fit_intercept: bool
    criterion: str
    verbose: bool = False
    resumable: bool = False


@dataclass
class RidgeSolution:
    """What every solver returns.

    Attributes
    ----------
    coef : ndarray of shape (n_exact + n_tail, n_targets) or None
        Weights on the raw ``[E | T]`` columns (``gamma`` folded into the exact block's
        columns from ``n_linear`` on, ``tail_gamma`` into the tail's).
    dual_coef : ndarray of shape (n_samples, n_targets) or None
        Exact kernel ridge: ``f(x) = K(x, X) dual_coef + intercept``.
    intercept : ndarray of shape (n_targets,)
    alpha, gamma, tail_gamma : float
        The chosen hyperparameters (``tail_gamma`` the tail's weight).
    alphas : ndarray
        The alpha grid finally scored at the chosen weights (the given one, widened when
        its best score lay at an edge).
    gammas : ndarray of shape (n_candidates, 2)
        The candidate ``(gamma, tail_gamma)`` scored, one per row of ``scores``.
    scores : ndarray of shape (n_candidates, n_alphas)
        Criterion value of every candidate ``(gamma, tail_gamma)`` and alpha (smaller is better;
        NaN where a path was stopped early, past its minimum).
    criterion : str
        The criterion that chose them.
    state : object or None
        Statistics a later :meth:`NTKRidge.partial_fit` call continues from.
    """

    coef: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    gamma: float
    tail_gamma: float
    alphas: np.ndarray
    gammas: np.ndarray
    scores: np.ndarray
    criterion: str
    state: object = None


@dataclass
class Batch:
    """Rows of the design: exact block (CSR, dense or None), tail (dense or None), targets."""

    exact: object
    tail: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray
    start: int


@dataclass
class Design:
    """The training rows as the two feature blocks a solver needs, batch by batch.

    Parameters
    ----------
    blocks : callable
        ``blocks(X_rows) -> (exact, tail)``: the feature blocks of some rows (``exact``
        CSR, dense or None; ``tail`` dense float64 or None).
    X : array-like or sparse matrix
        The inputs (only sliced by rows).
    Y : ndarray of shape (n_samples, n_targets)
    sample_weight : ndarray of shape (n_samples,)
    batch_size : int
    n_exact, n_tail : int
        Widths of the blocks.
    sparse_exact : bool
        Whether the exact block is sparse.
    kernel : callable or None
        For exact kernel ridge, ``kernel() -> K`` (n x n); ``blocks`` is then unused.
    row_offset : int
        Global index of the first row (rows already seen by earlier partial_fit calls).
    progress : callable or None
        ``progress(n_rows)`` is called after every batch.
    n_linear : int or None
        Leading exact columns that no weight scales (the exact degrees 0 and 1; ``gamma``
        scales the other exact columns, the exact degrees >= 2, and ``tail_gamma`` the tail).
        None: the whole exact block.
    """

    blocks: object
    X: object
    Y: np.ndarray
    sample_weight: np.ndarray
    batch_size: int
    n_exact: int
    n_tail: int
    sparse_exact: bool
    kernel: object = None
    row_offset: int = 0
    progress: object = None
    n_linear: object = None

    def __post_init__(self):
        if self.n_linear is None:
            self.n_linear = self.n_exact

    @property
    def n_samples(self):
        return self.Y.shape[0]

    @property
    def n_targets(self):
        return self.Y.shape[1]

    @property
    def dense(self):
        """Whether every block is dense (so the design fits a dense Gram matrix)."""
        return not self.sparse_exact

    def batches(self):
        """Yield :class:`Batch` objects covering the rows in order."""
        for start in range(0, self.n_samples, self.batch_size):
            rows = slice(start, min(start + self.batch_size, self.n_samples))
            exact, tail = self.blocks(self.X[rows])
            yield Batch(exact, tail, self.Y[rows], self.sample_weight[rows],
                        self.row_offset + start)
            if self.progress is not None:
                self.progress(rows.stop - rows.start)


def column_scale(n_linear, n_exact, n_columns, gamma, tail_gamma):
    """The weights of ``n_columns`` columns of ``[E | T]``: 1 on the first ``n_linear``,
    ``gamma`` on the rest of the exact block's ``n_exact``, ``tail_gamma`` on the tail's."""
    scale = np.empty(n_columns)
    scale[:n_linear] = 1.0
    scale[n_linear:n_exact] = gamma
    scale[n_exact:] = tail_gamma
    return scale


def stack_rows(design, order=None):
    """All rows' exact block (CSR or dense, or None) and tail (dense or None).

    Parameters
    ----------
    design : Design
    order : ndarray of int or None
        A permutation of the rows: row ``order[k]`` of the design is row ``k`` of the
        result.  None: the design's order.

    Dense blocks are written batch by batch into their final place, so the peak is one
    copy of the blocks plus one batch.
    """
    n = design.n_samples
    where = np.arange(n) if order is None else np.argsort(order)
    exact = tail = None
    sparse_parts = []
    for batch in design.batches():
        rows = where[batch.start - design.row_offset:][:batch.Y.shape[0]]
        if design.n_tail:
            tail = _place(tail, n, rows, batch.tail)
        if design.n_exact and design.sparse_exact:
            sparse_parts.append(batch.exact)
        elif design.n_exact:
            exact = _place(exact, n, rows, batch.exact)
    if sparse_parts:
        exact = sp.vstack(sparse_parts, format="csr")
        exact = exact if order is None else exact[order]
    return exact, tail


def _place(out, n_rows, rows, block):
    """Write ``block`` into rows ``rows`` of ``out`` (allocated, ``n_rows`` tall, if None)."""
    if out is None:
        out = np.empty((n_rows, block.shape[1]), dtype=block.dtype)
    out[rows] = block
    return out


#: The held-out solvers keep every ``HOLDOUT_EVERY``-th row aside, up to ``HOLDOUT_MAX``.
HOLDOUT_EVERY = 5
HOLDOUT_MAX = 10_000


def held_out(index):
    """Whether the rows of global indices ``index`` belong to the held-out fold.

    A function of the index alone, so that every way of reading the rows (one pass, pieces,
    partitions of a distributed fit, each given its row offset) holds out the same rows.
    """
    index = np.asarray(index)
    return (index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) & (index < HOLDOUT_EVERY * HOLDOUT_MAX)


#: Half decades added at an edge of the alpha grid when its best score lies there.
_WIDEN_STEP = 4
#: Times the grid may be widened before the solver warns.
_WIDEN_LIMIT = 3


def widen_alphas(score, alphas, scores):
    """Best alpha of ``alphas``, widening the grid while the best lies at an edge.

    Parameters
    ----------
    score : callable
        ``score(new_alphas) -> scores`` for alphas outside the grid (in the order given).
    alphas, scores : ndarray of shape (n_alphas,)
        The grid, increasing, and its scores (NaN or inf for alphas not scored).

    Returns
    -------
    alphas, scores : ndarray
        The grid as finally scored, and its scores.
    best : int
        Index of the chosen alpha.
    """
    alphas = np.asarray(alphas, dtype=float)
    scores = np.asarray(scores, dtype=float)
    for widened in range(_WIDEN_LIMIT + 1):
        best = _best_index(scores, alphas)
        if not np.isfinite(scores).any() or len(alphas) < 2:
            return alphas, scores, best
        at_low, at_high = best == 0, best == len(alphas) - 1
        if not (at_low or at_high):
            return alphas, scores, best
        if widened == _WIDEN_LIMIT:
            break
        ratio = np.sqrt(10.0)
        if at_low:
            new = alphas[0] * ratio ** -np.arange(_WIDEN_STEP, 0, -1)
            alphas = np.concatenate([new, alphas])
            scores = np.concatenate([score(new[::-1])[::-1], scores])
        else:
            new = alphas[-1] * ratio ** np.arange(1, _WIDEN_STEP + 1)
            alphas = np.concatenate([alphas, new])
            scores = np.concatenate([scores, score(new)])
    warnings.warn(f"the best alpha, {alphas[best]:.3g}, is at the edge of the grid even "
                  f"after widening it to [{alphas[0]:.3g}, {alphas[-1]:.3g}]; pass a wider "
                  f"`alphas` (or rescale the inputs)", UserWarning, stacklevel=4)
    return alphas, scores, best


def _best_index(scores, alphas):
    """Index of the smallest finite score; the largest alpha if none is finite."""
    finite = np.isfinite(scores)
    if not finite.any():
        return int(np.argmax(alphas))
    return int(np.argmin(np.where(finite, scores, np.inf)))
