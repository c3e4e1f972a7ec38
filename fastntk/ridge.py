"""Ridge regression on NTK features, with the ridge and the block weights chosen by the data.

:class:`NTKRidge` fits ``y ~ b + <E_1(x), a_1> + gamma <E_2(x), a_2> + tail_gamma <T(x),
c>`` by minimising ``sum_i s_i (y_i - f(x_i))^2 + alpha (||a||^2 + ||c||^2)`` (``s_i``
the sample weights), where ``[E_1 | E_2 | T]`` are the features of a map whose inner
products approximate the NTK: ``E = [E_1 | E_2]`` the block the map computes exactly (for
:class:`fastntk.NTKSketch` on text, the TF-IDF row itself, its norm and its pairs of
words; on dense rows, the monomials of the low degrees), ``E_1`` its exact degrees 0 and 1
(the map's first ``n_linear_features_`` columns), ``E_2`` its exact degrees >= 2, and
``T`` the sketched tail.  ``gamma = tail_gamma = 1`` is kernel ridge with the map's
kernel, ``gamma = tail_gamma = 0`` a linear ridge on ``[||x||, x]``, ``tail_gamma = 0``
alone kernel ridge with the exact degrees only.  ``alpha`` and the weights are chosen
from grids.  Why two weights: the exact degrees >= 2 are the map's kernel itself, the
tail only an estimate of the rest, whose noise can cost more than its signal (a
32-column regression, exact degrees 0-3 and degree 7 sketched: test MSE 7.2e-4 with one
weight for both, 4.8e-4 with the tail left out; see the README).  A tail that the map
measured far below its own noise on the fit rows (short texts beside their exact pairs of
words) is left out of the design altogether (``tail_gammas``).
A map without an exact block (any scikit-learn transformer) is all tail.  With
``feature_map="exact"`` it is exact kernel ridge regression with the NTK itself, the
reference the feature maps are measured against.  :class:`NTKRidgeClassifier` regresses
the one-hot encoding of the labels and predicts the arg-max.

How the problem is solved (``solver``)
--------------------------------------
- ``"dual"``: one eigendecomposition of the ``n x n`` kernel per weighting (a thin SVD of
  its columns for a weighting that keeps fewer dense columns than rows), alpha by exact
  leave-one-out error (or GCV); for ``n`` up to a few thousand, and exact kernels.
- ``"primal"``: streaming statistics ``Z^T Z`` of dense features (never the ``n x p``
  matrix), one ``p x p`` eigendecomposition per weighting; alpha by exact leave-one-out
  error from a second pass over the rows in :meth:`NTKRidge.fit` (GCV, which needs no
  second pass, when fitting from pieces); dense features with ``p < n``, and
  :meth:`NTKRidge.partial_fit` on dense features.
- ``"cg"``: streaming block statistics ``E^T E`` (sparse), ``E^T T``, ``T^T T`` and
  preconditioned conjugate gradients, alpha and the weights chosen on a held-out fold (every
  fifth row, at most 10,000) and refitted on all rows; memory independent of ``n``, for
  wide sparse exact blocks at any ``n``.
- ``"krylov"``: the rows kept in memory as they are (sparse blocks sparse), conjugate
  gradients on the dual system through products with them, never an ``n x n`` or
  ``p x p`` matrix; one multi-shift run per weighting gives every alpha of the grid,
  alpha and the weights chosen on the same held-out fold as "cg" and refitted on all rows.
  For wide exact blocks (the pairs of words of short texts), whose
  statistics "cg" cannot hold, at any ``n`` whose rows fit in memory; it is not
  preconditioned, so its iterations grow with ``n``.
- ``"auto"``: exact kernels take the dual; otherwise the dual when ``n <= p`` and ``n <=
  6,000``, the primal for dense designs with ``p < n`` and ``p <= 16,384``, krylov for
  the rest up to ``n = 20,000`` while its dense rows (``n`` times the dense width, in
  float64) take at most 2 GiB, or up to ``n = 100,000`` for a design without dense
  columns (a sparse exact block whose tail was left out), and cg beyond (``p`` the total
  feature width).  Fits
  from pieces of rows (partial_fit, fit_stream, Dask) take the primal for dense designs
  up to 16,384 wide, else cg.
Each family lives in its own module of :mod:`fastntk._solvers`, behind one signature.

Data larger than memory
-----------------------
The streaming solvers ("primal", "cg") reduce the rows to sums over rows, so
:meth:`NTKRidge.fit_stream` fits from an iterable of chunks in one pass (e.g. from
:func:`fastntk.streaming.read_chunks`), and :meth:`NTKRidge.fit` of a ``dask.array``
computes every partition's statistics on the Dask workers, adds them by a tree reduction
and solves on the client (:mod:`fastntk._dask`, imported only for Dask input).
"""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from sklearn.utils.validation import validate_data as _sklearn_validate_data
from tqdm.auto import tqdm

from ._solvers import STREAMING, Design, RidgeSpec, get_solver, get_streaming
from ._validation import canonical_csr, check_sparse_structure, validate_rows
from ._threading import jobs as _jobs
from ._version import __version__

__all__ = ["NTKRidge", "NTKRidgeClassifier", "DEFAULT_ALPHAS", "DEFAULT_GAMMAS"]

#: Default grid of ridge parameters: half decades from 1e-6 to 1e6.
DEFAULT_ALPHAS = tuple(float(10.0 ** (k / 2)) for k in range(-12, 13))
#: Default grid of the weights of the exact degrees >= 2 and of the tail (used when the
#: feature map has an exact block).
DEFAULT_GAMMAS = (0.0, 0.5, 1.0)

_EXACT_KERNELS = ("exact", "exact-cntk")
#: Largest n the automatic choice sends to the dual solver (a few n x n arrays).
_DUAL_MAX = 6000
#: Widest dense design the automatic choice sends to the primal solver.
_PRIMAL_MAX = 16384
#: A sketched tail whose every degree's off-diagonal signal on the fit rows is below this
#: fraction of its sketch noise is left out under tail_gammas="auto" (measured at depth 2:
#: three sets of short texts beside their exact pairs of words 0.002-0.005, where the
#: held-out fold had chosen the tail's weight 0 on every set; a 32-column regression at
#: 8,192 features 0.0012, also weight 0; the same at 4,096 features 0.71, where the tail
#: helped).
_TAIL_SIGNAL_MIN = 0.1
#: Largest n, and dense block (bytes) kept in memory, of the automatic krylov choice.
_KRYLOV_MAX_ROWS = 20_000
_KRYLOV_MAX_BYTES = 2 * 2**30
#: Largest n of the automatic krylov choice for a design without dense columns (sparse
#: exact blocks alone: its products cost the non-zeros).  At 50,660 rows of tweets with
#: their pairs of words a path took at most 637 of its 3,000 iterations, and the fit 0.2x
#: the wall time of cg's.
_KRYLOV_SPARSE_MAX_ROWS = 100_000


def _default_feature_map(random_state):
    """fastntk.NTKSketch, imported lazily (it is the heavy part of the package)."""
    from .ntk_sketch import NTKSketch
    return NTKSketch(random_state=random_state)


def _for_pieces(template, X):
    """The map a fit from pieces of rows draws from ``template``, whose first piece is ``X``.

    NTKSketch's ``exact_degrees="auto"`` takes sparse degrees 0 and 1 only there: the
    exact pairs of columns it takes for a one-shot fit of short rows have statistics of
    ~``k^4 / 4`` entries a row, which grow with ``n``.
    """
    from .ntk_sketch import NTKSketch
    if (sp.issparse(X) and isinstance(template, NTKSketch)
            and template.method == "polyfit" and template.exact_degrees == "auto"):
        return clone(template).set_params(exact_degrees=1)
    return template


def _is_streaming(estimator):
    """partial_fit is offered by the feature-map learners, not by exact kernel ridge."""
    return not (isinstance(estimator.feature_map, str)
                and estimator.feature_map in _EXACT_KERNELS)


def _float64(block):
    if block is None:
        return None
    if sp.issparse(block):
        return block if block.format == "csr" and block.dtype == np.float64 else (
            sp.csr_matrix(block, dtype=np.float64))
    return np.ascontiguousarray(block, dtype=np.float64)


def _feature_blocks(feature_map, X, validated=False, sketched=True):
    """``(exact, tail)`` float64 feature blocks of the rows ``X`` (``tail`` None when it
    has no columns).

    Maps with ``transform_blocks`` (fastntk.NTKSketch) give them directly, the tail only
    if ``sketched`` (which only they are asked for); for any other transformer a sparse
    output is an exact block and a dense one a tail.  ``validated``: ``X`` was validated
    by the learner (fastntk's maps then skip their own checks).
    """
    if validated and hasattr(feature_map, "_validated_blocks"):
        exact, full = (feature_map._validated_blocks(X) if sketched
                       else feature_map._validated_blocks(X, sketched=False))
    elif hasattr(feature_map, "transform_blocks"):
        exact, full = feature_map.transform_blocks(X, sketched=sketched)
    else:
        features = feature_map.transform(X)
        if sp.issparse(features):
            return _float64(features), None
        return None, _float64(features)
    if exact is None:
        head = getattr(feature_map, "n_exact_features_", 0)
        exact, full = (full[:, :head] if head else None), full[:, head:]
    return _float64(exact), (_float64(full) if full.shape[1] else None)


def keeps_tail(feature_map, tail_gammas):
    """Whether a learner with ``tail_gammas`` fits the sketched tail of ``feature_map``.

    Not under ``tail_gammas="auto"`` when the map measured its tail's off-diagonal signal
    on the fit rows far below the tail's noise (``tail_signal_to_noise_``, fastntk's
    NTKSketch) and has an exact block to fall back on: the tail is then a noisy multiple
    of the identity, which the ridge penalty supplies, and leaving it out saves its
    products in every solver iteration and its sketch in every prediction.
    """
    return not (isinstance(tail_gammas, str) and tail_gammas == "auto"
                and getattr(feature_map, "n_exact_features_", 0) > 0
                and getattr(feature_map, "tail_signal_to_noise_", np.nan) < _TAIL_SIGNAL_MIN)


def _with_tail_zeros(coef, feature_map):
    """``coef`` (rows: the exact block's columns) with zero rows for the tail left out of
    the design, so that it covers every output column of ``feature_map``."""
    return np.vstack([coef, np.zeros((feature_map._n_sketched, coef.shape[1]))])


def _is_dask(data):
    """Whether ``data`` is a Dask collection (told without importing Dask)."""
    return hasattr(data, "__dask_graph__")


def _unpack_chunk(chunk):
    """``(X, y, sample_weight)`` of one chunk given as ``(X, y)`` or ``(X, y, w)``."""
    if not isinstance(chunk, (tuple, list)) or len(chunk) not in (2, 3):
        raise ValueError(f"every chunk must be a tuple (X, y) or (X, y, sample_weight), "
                         f"got {type(chunk).__name__}")
    return tuple(chunk) if len(chunk) == 3 else (*chunk, None)


def _is_fitted_state(name):
    """Attributes a fit sets: ``name_`` ones and the learners' private state."""
    return ((name.endswith("_") and not name.startswith("__"))
            or name in ("_statistics", "_single_target"))


def _block_widths(exact, tail):
    return (0 if exact is None else exact.shape[1]), (0 if tail is None else tail.shape[1])


def _check_weights(values, name, alternatives=""):
    """``values`` as a sorted array of distinct non-negative floats, or a ValueError."""
    try:
        weights = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        weights = np.array([np.nan])
    if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"{name} must be {alternatives}a non-empty sequence of "
                         f"non-negative floats, got {values!r}")
    return np.unique(weights)


def _candidate_weights(gammas, tail_gammas, has_high, has_tail, tail_left_out=False):
    """The ``(gamma, tail_gamma)`` pairs to score, shape (n_candidates, 2).

    A tail left out of the design (:func:`keeps_tail`) has weight 0: ``(g, 0)`` for every
    gamma, or only ``(0, 0)`` without exact degrees >= 2 (the linear model).

    ``tail_gammas="same"`` pairs every gamma with itself; ``"auto"`` adds, for every
    gamma, the pair with the tail left out ``(g, 0)`` and the pair with the exact degrees
    >= 2 left out ``(0, g)``; a sequence pairs every gamma with each of its values.  A
    design with one of the two blocks only (no exact degrees >= 2, as text with degrees
    0-1 exact; or no tail) scores ``(g, g)`` for every gamma; one with neither, only
    ``(1, 1)``.  Repeated pairs are dropped, the first kept.
    """
    if tail_left_out:
        return np.array([(g, 0.0) for g in gammas] if has_high else [(0.0, 0.0)])
    if not (has_high or has_tail):
        return np.ones((1, 2))
    same = [(g, g) for g in gammas]
    named = isinstance(tail_gammas, str)
    if not (has_high and has_tail) or (named and tail_gammas == "same"):
        pairs = same
    elif named:                                                   # "auto"
        pairs = same + [(g, 0.0) for g in gammas] + [(0.0, g) for g in gammas]
    else:
        pairs = [(g, t) for g in gammas for t in tail_gammas]
    return np.array(list(dict.fromkeys(pairs)), dtype=np.float64)


def validate_data(estimator, X, *args, **kwargs):
    """scikit-learn's ``validate_data`` (X and y), with the sparse structure checked first
    (the compiled loops index it) and the result in canonical CSR form."""
    if sp.issparse(X):
        check_sparse_structure(X)
    out = _sklearn_validate_data(estimator, X, *args, **kwargs)
    if isinstance(out, tuple):
        X, y = out
        return (canonical_csr(X) if sp.issparse(X) else X), y
    return canonical_csr(out) if sp.issparse(out) else out


class _NoProgress:
    """The progress bar of a quiet learner: does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        pass


_NO_PROGRESS = _NoProgress()


class _BaseNTKRidge(BaseEstimator):
    """Shared machinery of NTKRidge and NTKRidgeClassifier (targets as a 2-D float array)."""

    def __init__(self, feature_map=None, *, alphas=DEFAULT_ALPHAS, gammas=DEFAULT_GAMMAS,
                 tail_gammas="auto", batch_size=4096, fit_intercept=True, solver="auto",
                 criterion="auto", kernel_params=None, random_state=None, n_jobs=None,
                 verbose=False):
        self.feature_map = feature_map
        self.alphas = alphas
        self.gammas = gammas
        self.tail_gammas = tail_gammas
        self.batch_size = batch_size
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.criterion = criterion
        self.kernel_params = kernel_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- persistence ---------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state["_fastntk_version"] = __version__
        return state

    def __setstate__(self, state):
        saved = state.pop("_fastntk_version", None)
        if saved != __version__:
            from ._persistence import ModelVersionError
            raise ModelVersionError(saved, __version__)
        super().__setstate__(state)

    # -- validation ----------------------------------------------------------------------
    def _check_params(self):
        """``(alphas, (gammas, tail_gammas))`` validated, or a ValueError; checks the other
        parameters too."""
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
            raise ValueError(f"alphas must be a non-empty sequence of positive floats, got "
                             f"{self.alphas!r}")
        gammas = _check_weights(self.gammas, "gammas")
        tail_gammas = (self.tail_gammas if isinstance(self.tail_gammas, str)
                       and self.tail_gammas in ("auto", "same")
                       else _check_weights(self.tail_gammas, "tail_gammas",
                                           "'auto', 'same' or "))
        if (not isinstance(self.batch_size, numbers.Integral)
                or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.solver != "auto":
            get_solver(self.solver)
        if self.criterion not in ("auto", "gcv", "loo", "holdout"):
            raise ValueError(f"criterion must be 'auto', 'gcv', 'loo' or 'holdout', got "
                             f"{self.criterion!r}")
        if isinstance(self.feature_map, str) and self.feature_map not in _EXACT_KERNELS:
            raise ValueError(f"feature_map must be a transformer, None, 'exact' or "
                             f"'exact-cntk', got {self.feature_map!r}")
        if not (self.feature_map is None or isinstance(self.feature_map, str)
                or hasattr(self.feature_map, "transform")):
            raise ValueError(f"feature_map must be a transformer, None, 'exact' or "
                             f"'exact-cntk', got {self.feature_map!r}")
        return np.sort(alphas), (gammas, tail_gammas)

    def _validate_X(self, X, reset, y="no_validation"):
        kwargs = dict(accept_sparse="csr", dtype=(np.float64, np.float32),
                      allow_nd=True, reset=reset)
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, **kwargs)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, **kwargs)
        if not np.all(np.isfinite(np.asarray(y, dtype=np.float64))):
            raise ValueError("y contains NaN, infinity or values that are not numbers")
        return X, y

    def _progress(self, total, desc):
        if not self.verbose:  # a disabled tqdm still costs ~20 us, a one-row request's tenth
            return _NO_PROGRESS
        return tqdm(total=total, desc=desc, unit="rows", delay=1.0, leave=False)

    # -- fitting -------------------------------------------------------------------------
    def _new_feature_map(self, X, pieces=False):
        """A clone of the feature map fitted on ``X``; ``pieces``: for a fit from pieces
        of rows, of which ``X`` is the first."""
        template = (self.feature_map if self.feature_map is not None
                    else _default_feature_map(self.random_state))
        if pieces:
            template = _for_pieces(template, X)
        return clone(template).fit(X)

    def _design(self, feature_map, X, Y, sample_weight, bar, row_offset=0):
        progress = None if bar is None else bar.update
        if feature_map is None:                          # exact kernel ridge
            return Design(None, X, Y, sample_weight, self.batch_size, 0, 0, False,
                          kernel=lambda: self._kernel(X), progress=progress)
        sketched = keeps_tail(feature_map, self.tail_gammas)
        exact, tail = _feature_blocks(feature_map, X[:1], sketched=sketched)
        n_exact, n_tail = _block_widths(exact, tail)
        return Design(lambda rows: _feature_blocks(feature_map, rows, sketched=sketched), X,
                      Y, sample_weight, self.batch_size, n_exact, n_tail, sp.issparse(exact),
                      row_offset=row_offset, progress=progress,
                      n_linear=getattr(feature_map, "n_linear_features_", n_exact))

    def _choose_solver(self, design, streaming):
        if self.solver != "auto":
            return self.solver
        if design.kernel is not None:
            return "dual"
        n, p = design.n_samples, design.n_exact + design.n_tail
        if streaming:
            return "primal" if design.dense and p <= _PRIMAL_MAX else "cg"
        if n <= min(p, _DUAL_MAX):
            return "dual"
        if design.dense and p < n and p <= _PRIMAL_MAX:
            return "primal"
        # krylov keeps the rows, and its unpreconditioned iterations grow with n; cg's
        # statistics do not grow with n, and its preconditioner keeps iterations few
        dense_width = design.n_tail + (0 if design.sparse_exact else design.n_exact)
        max_rows = _KRYLOV_MAX_ROWS if dense_width else _KRYLOV_SPARSE_MAX_ROWS
        if n <= max_rows and n * dense_width * 8 <= _KRYLOV_MAX_BYTES:
            return "krylov"
        return "cg"

    def _spec(self, alphas, weights, design, feature_map, resumable=False):
        """The spec of a fit of ``feature_map``'s ``design``; ``weights`` is ``(gammas,
        tail_gammas)`` of _check_params."""
        candidates = _candidate_weights(
            *weights, has_high=design.n_linear < design.n_exact,
            has_tail=design.n_exact > 0 and design.n_tail > 0,
            tail_left_out=not keeps_tail(feature_map, self.tail_gammas))
        return RidgeSpec(alphas=alphas, gammas=candidates,
                         fit_intercept=bool(self.fit_intercept),
                         criterion=self.criterion, verbose=bool(self.verbose),
                         resumable=resumable)

    def _fit_targets(self, X, Y, sample_weight):
        """Fit from scratch; the attributes are set only once everything succeeded."""
        alphas, weights = self._check_params()
        feature_map = self._new_feature_map(X) if _is_streaming(self) else None
        with self._progress(X.shape[0], "features + statistics") as bar, _jobs(self.n_jobs):
            design = self._design(feature_map, X, Y, sample_weight, bar)
            solver = self._choose_solver(design, streaming=False)
            solution = get_solver(solver)(design, self._spec(alphas, weights, design,
                                                             feature_map))
        if feature_map is None:
            self.X_fit_ = X
        else:
            self.feature_map_ = feature_map
        self._set_solution(solution, solver, feature_map)
        self.n_samples_seen_ = X.shape[0]
        return self

    def _partial_fit_targets(self, X, Y, sample_weight):
        alphas, weights = self._check_params()
        state = getattr(self, "_statistics", None)
        if state is None:
            if hasattr(self, "intercept_"):
                raise ValueError("this model was trained by fit(), which does not keep its "
                                 "statistics; use partial_fit from a fresh estimator")
            feature_map, seen, solver = self._new_feature_map(X, pieces=True), 0, None
        else:
            feature_map, seen, solver = self.feature_map_, self.n_samples_seen_, self.solver_
            if Y.shape[1] != state.n_targets:
                raise ValueError(f"y has {Y.shape[1]} targets, the model was started with "
                                 f"{state.n_targets}")
        with self._progress(X.shape[0], "features + statistics") as bar:
            design = self._design(feature_map, X, Y, sample_weight, bar, row_offset=seen)
            solver = solver or self._choose_solver(design, streaming=True)
            if solver not in ("primal", "cg"):
                raise ValueError(f"partial_fit needs a streaming solver ('primal' or "
                                 f"'cg'), got solver={solver!r}")
            solution = get_solver(solver)(
                design, self._spec(alphas, weights, design, feature_map, True), state)
        self.feature_map_ = feature_map
        self._set_solution(solution, solver, feature_map)
        self._statistics = solution.state
        self.n_samples_seen_ = seen + X.shape[0]
        return self

    def _check_streamable(self):
        """ValueError unless this model can be fitted from pieces of rows."""
        if not _is_streaming(self):
            raise ValueError(f"feature_map={self.feature_map!r} (exact kernel ridge) needs "
                             f"all the rows at once (an n x n kernel); fitting from chunks "
                             f"or a Dask array takes a feature map")
        if self.solver not in ("auto", *STREAMING):
            get_streaming(self.solver)                   # raises, naming the way out

    def _stream_plan(self, alphas, weights, feature_map, X, Y, sample_weight):
        """``(solver name, solver module, spec, design)`` of a fit from pieces of rows.

        Decided on the first piece (``X``, ``Y``, ``sample_weight``): fitting from chunks
        or a Dask array reduces every piece to the statistics of a streaming solver.
        """
        design = self._design(feature_map, X, Y, sample_weight, None)
        solver = self._choose_solver(design, streaming=True)
        module = get_streaming(solver)
        spec = self._spec(alphas, weights, design, feature_map)
        module.check(design, spec)
        return solver, module, spec, design

    def _fit_stream_targets(self, chunks):
        """Fit from an iterable of validated ``(X, Y, sample_weight)`` pieces, one pass.

        The feature map is fitted on the first piece (fastntk's maps read mostly its
        width, sparsity and dtype; see :meth:`NTKRidge.fit_stream`); the pieces are
        accumulated one after the other into the streaming solver's statistics, each at
        its global row offset, and solved once at the end.  Only one piece is held at a
        time.
        """
        alphas, weights = self._check_params()
        self._check_streamable()
        feature_map = stats = None
        seen = 0
        with self._progress(None, "features + statistics") as bar:
            for X, Y, sample_weight in chunks:
                if feature_map is None:
                    feature_map = self._new_feature_map(X, pieces=True)
                    solver, module, spec, first = self._stream_plan(
                        alphas, weights, feature_map, X, Y, sample_weight)
                design = self._design(feature_map, X, Y, sample_weight, bar,
                                      row_offset=seen)
                stats = module.accumulate(design, spec, stats)
                seen += X.shape[0]
        if feature_map is None:
            raise ValueError("no rows to fit: the chunks were empty")
        solution = module.solve_statistics(stats, spec, first.n_linear, first.n_exact)
        solution.state = None                            # as fit: statistics are freed
        self.feature_map_ = feature_map
        self._set_solution(solution, solver, feature_map)
        self.n_samples_seen_ = seen
        return self

    def _adopt(self, fitted):
        """Take the fitted state of ``fitted`` (a clone that succeeded), dropping ours.

        Fitting a clone and adopting its state only at the end means that a call that
        raises leaves the model as it was.
        """
        for name in [k for k in self.__dict__ if _is_fitted_state(k)]:
            del self.__dict__[name]
        self.__dict__.update({k: v for k, v in fitted.__dict__.items()
                              if _is_fitted_state(k)})
        return self

    def _set_solution(self, solution, solver, feature_map=None):
        """Set the fitted attributes of ``solution`` (of a design of ``feature_map``'s
        blocks, None for exact kernel ridge)."""
        if solution.dual_coef is not None:
            self.dual_coef_ = solution.dual_coef.T
        elif keeps_tail(feature_map, self.tail_gammas):
            self.coef_ = solution.coef.T
        else:
            self.coef_ = _with_tail_zeros(solution.coef, feature_map).T
        self.intercept_ = solution.intercept
        self.alpha_ = solution.alpha
        self.gamma_ = solution.gamma
        self.tail_gamma_ = solution.tail_gamma
        self.alphas_ = solution.alphas
        self.cv_values_ = solution.scores
        self.gamma_candidates_ = solution.gammas
        self.criterion_ = solution.criterion
        self.solver_ = solver

    # -- exact kernel ridge --------------------------------------------------------------
    def _kernel(self, X, Y=None):
        params = dict(self.kernel_params or {})
        if self.feature_map == "exact":
            from .kernels import ntk_kernel
            try:
                return ntk_kernel(X, Y, **params)
            except TypeError as exc:
                raise ValueError(f"kernel_params {sorted(params)} do not fit ntk_kernel: "
                                 f"{exc}") from None
        from .kernels import cntk_kernel
        image_shape = params.pop("image_shape", None)
        X, Y = (self._as_images(Z, image_shape) for Z in (X, Y))
        try:
            return cntk_kernel(X, Y, **params)
        except TypeError as exc:
            raise ValueError(f"kernel_params {sorted(params)} do not fit cntk_kernel: "
                             f"{exc}") from None

    @staticmethod
    def _as_images(X, image_shape):
        if X is None or X.ndim == 4:
            return X
        if sp.issparse(X):
            raise ValueError("feature_map='exact-cntk' takes dense images; sparse input "
                             "is not densified")
        if image_shape is None:
            raise ValueError("feature_map='exact-cntk' needs images of shape (n, H, W, C) "
                             "or kernel_params={'image_shape': (H, W, C)}")
        return X.reshape((X.shape[0], *image_shape))

    # -- prediction ----------------------------------------------------------------------
    def _decision(self, X):
        with _jobs(getattr(self, "n_jobs", None)):  # models saved before n_jobs existed
            return self._decision_rows(X)

    def _decision_rows(self, X):
        check_is_fitted(self, "intercept_")
        X = validate_rows(self, X, accept_sparse="csr", dtype=(np.float64, np.float32),
                          allow_nd=True)
        intercept = np.atleast_1d(self.intercept_)
        out = np.empty((X.shape[0], intercept.shape[0]))
        if hasattr(self, "dual_coef_"):
            dual = np.atleast_2d(self.dual_coef_).T
        else:
            coef = np.atleast_2d(self.coef_).T
        with self._progress(X.shape[0], "predict") as bar:
            for start in range(0, X.shape[0], self.batch_size):
                rows = slice(start, min(start + self.batch_size, X.shape[0]))
                if hasattr(self, "dual_coef_"):
                    out[rows] = self._kernel(X[rows], self.X_fit_) @ dual
                else:
                    batch = X if rows.stop - rows.start == X.shape[0] else X[rows]
                    out[rows] = self._linear_decision(batch, coef)
                bar.update(rows.stop - rows.start)
        out += intercept
        return out

    def _linear_decision(self, X, coef):
        """``[E(X) | T(X)] @ coef`` for validated rows (maps that can apply their blocks
        to the weights without forming them do so; a tail whose weights are all zero, as
        when the tail was left out, is not computed)."""
        fm = self.feature_map_
        head = getattr(fm, "n_exact_features_", 0)
        sketched = not (head and hasattr(fm, "transform_blocks") and not coef[head:].any())
        if not sketched:
            coef = coef[:head]
        if hasattr(fm, "_validated_dot"):
            return fm._validated_dot(X, coef, sketched)
        exact, tail = _feature_blocks(fm, X, validated=True, sketched=sketched)
        head = 0 if exact is None else exact.shape[1]
        out = np.zeros((X.shape[0], coef.shape[1]))
        if exact is not None:
            out += np.asarray(exact @ coef[:head])
        if tail is not None:
            out += tail @ coef[head:]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _targets_2d(y):
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


_SHARED_PARAMETERS = """    alphas : sequence of float, default=DEFAULT_ALPHAS
        Candidate ridge parameters (half decades 1e-6 .. 1e6), all scored (see
        ``criterion``); the best is kept in ``alpha_``.  When the best lies at an edge of
        the grid, the grid is widened (up to 12 half decades each way) and a warning says
        so if the best is still at the edge.  Alphas are absolute, as in
        sklearn.linear_model.Ridge: the NTK scales like ``||x||^2``, so scale the inputs
        (or the grid) accordingly.
    gammas : sequence of float, default=DEFAULT_GAMMAS
        Candidate weights of the nonlinear part (the exact degrees >= 2 and the sketched
        tail) relative to the exact degrees 0 and 1 (0: a linear ridge on them; 1: the
        feature map's kernel).  Only used when the feature map has an exact block (e.g.
        fastntk.NTKSketch with its default exact degrees).
    tail_gammas : {"auto", "same"} or sequence of float, default="auto"
        Candidate weights of the sketched tail, when the map has exact degrees >= 2 too.
        "auto": for every ``gamma``, both blocks weighted by ``gamma`` (the map's kernel,
        scaled), the tail left out (``tail_gamma = 0``) and the exact degrees >= 2 left
        out (``gamma = 0``): an estimate of the high degrees whose noise costs more than
        its signal is dropped if the criterion says so, and so are exact degrees that
        only fit noise (on puma32h at 4,096 features, degree 2 exactly and degree 3
        sketched: the model without degree 2 is the one within 2% of exact kernel
        ridge).  "same": the tail weighted by ``gamma`` only.  A sequence: every pair of
        ``gammas`` and ``tail_gammas``.  When the map has no exact degree >= 2, ``gammas``
        alone weights the tail; with no tail, the exact degrees >= 2.
        Under "auto", a tail the map measured far below its own noise on the fit rows
        (``tail_signal_to_noise_ < 0.1``, fastntk.NTKSketch: short texts beside their
        exact pairs of words, whose cosines are ~0.01) is left out: its weight is 0, it
        is not computed in fit or predict, and ``coef_`` has zeros for its columns.  On
        the text sets measured the held-out fold had chosen the tail's weight 0 every
        time; leaving it out gave the same models in 7-13% of the fit's CPU time.
    batch_size : int, default=4096
        Rows transformed at a time in fit, partial_fit and predict (memory
        ``batch_size x n_components``).  The fitted model does not depend on it beyond
        rounding.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (by centring the statistics).
    solver : {"auto", "dual", "primal", "cg", "krylov"}, default="auto"
        See the module docstring of :mod:`fastntk.ridge`.  partial_fit uses "primal"
        (dense features) or "cg"; exact kernel ridge uses "dual".
    criterion : {"auto", "gcv", "loo", "holdout"}, default="auto"
        How alpha (and the weights) are chosen: "loo", exact leave-one-out squared error
        (dual solver; primal solver in :meth:`fit`), "gcv", generalised cross-validation
        (dual and primal solvers), "holdout", the held-out fold (cg and krylov solvers).
        "auto" is "loo" for the dual and for the primal in :meth:`fit`, "gcv" for the
        primal fitted from pieces, "holdout" for cg and krylov.
    kernel_params : dict, default=None
        Keyword arguments of the exact kernel (``depth``, ``kind``; for "exact-cntk" also
        ``filter_size``, ``padding``, ``pooling`` and ``image_shape`` to reshape flat rows).
        Ignored by feature maps.
    random_state : int, RandomState instance or None, default=None
        Seeds the default feature map (``feature_map=None``); a given feature map keeps
        its own ``random_state``.
    n_jobs : int or None, default=None
        Threads of fastntk feature maps (and exact kernels) in fit and predict,
        replacing their own ``n_jobs`` (None: keep theirs).  Can be changed on a fitted
        model, e.g. ``set_params(n_jobs=1)`` for a server with one worker per core.
    verbose : bool, default=False
        Show a tqdm progress bar on operations longer than a second.
"""

_SHARED_ATTRIBUTES = """    alpha_ : float
        The chosen ridge parameter.
    gamma_ : float
        The chosen weight of the exact degrees >= 2 (equal to ``tail_gamma_`` when the
        map has none; 1.0 when it has no exact block).
    tail_gamma_ : float
        The chosen weight of the sketched tail (equal to ``gamma_`` when there is none;
        0 when ``tail_gammas="auto"`` left it out).
    alphas_ : ndarray
        The alpha grid finally scored at the chosen weights (widened if needed).
    gamma_candidates_ : ndarray of shape (n_candidates, 2)
        The ``(gamma, tail_gamma)`` pairs scored, one per row of ``cv_values_``.
    cv_values_ : ndarray of shape (n_candidates, n_alphas)
        Score of every candidate weighting and alpha under ``criterion_`` (mean over
        targets; the smallest wins; NaN where the path of the cg or krylov solver stopped
        past its best).
    criterion_ : {"gcv", "loo", "holdout"}
        The criterion that chose them.
    solver_ : {"dual", "primal", "cg", "krylov"}
        The solver that was used.
    feature_map_ : transformer
        The fitted clone of ``feature_map`` (not with "exact").
    n_samples_seen_ : int
    n_features_in_ : int
"""


class NTKRidge(RegressorMixin, _BaseNTKRidge):
    __doc__ = f"""Ridge regression on NTK features (or exact NTK kernel ridge).

    Minimises ``sum_i s_i (y_i - b - <E_1(x_i), a_1> - gamma <E_2(x_i), a_2> - tail_gamma
    <T(x_i), c>)^2 + alpha (||a||^2 + ||c||^2)`` over the exact block ``[E_1 | E_2]``
    (degrees 0-1, degrees >= 2) and the sketched tail ``T`` of a feature map
    whose inner products approximate the NTK, streaming the features through sufficient
    statistics so the ``n_samples x n_features`` feature matrix is never formed (see
    :mod:`fastntk.ridge` for the solvers).

    Parameters
    ----------
    feature_map : transformer, None, "exact" or "exact-cntk", default=None
        Any scikit-learn transformer mapping rows to features (fastntk.NTKSketch,
        fastntk.NTKRandomFeatures, fastntk.CNTKSketch, sklearn's RBFSampler, ...); it is
        cloned and fitted on X in :meth:`fit`.  None means
        ``fastntk.NTKSketch(random_state=random_state)``.  ``"exact"`` runs exact kernel
        ridge regression with ``fastntk.kernels.ntk_kernel(..., **kernel_params)`` and
        ``"exact-cntk"`` with ``cntk_kernel`` (O(n^2) memory, O(n^3) time: the reference
        for small n).
{_SHARED_PARAMETERS}
    Attributes
    ----------
    coef_ : ndarray of shape (n_features_out,) or (n_targets, n_features_out)
        Weights on the feature map's output columns (``gamma_`` and ``tail_gamma_`` folded
        in; not with "exact").
    dual_coef_ : ndarray of shape (n_samples,) or (n_targets, n_samples)
        With "exact": prediction is ``K(x, X_fit_) @ dual_coef_.T + intercept_``.
    X_fit_ : ndarray or sparse matrix
        With "exact": the training inputs.
    intercept_ : float or ndarray of shape (n_targets,)
{_SHARED_ATTRIBUTES}
    Notes
    -----
    The dual and primal solvers use the symmetric eigensolver (LAPACK ``dsyevd``), never
    a Cholesky factorisation, and accumulate Gram matrices wider than 4,096 by blocks:
    OpenBLAS's AVX-512 kernels crash ``cho_factor`` on 16,000 x 16,000 matrices and
    ``dsyrk`` at 16,384 columns (``asv_benchmarks/ridge_large.py``).  From 2,048 rows the
    dual eigendecomposes in single precision (``ssyevd``, about half the time), scores
    alpha from those eigenpairs, redoes the decomposition in double precision when the
    best alpha lies below ``6e-6`` of the kernel's largest eigenvalue (where single
    precision no longer resolves the criterion), and refines the chosen solution to
    double precision against the double-precision kernel.

    :meth:`fit` frees its statistics after solving, so a model trained by fit cannot be
    continued with partial_fit; a model trained by partial_fit keeps them (and pickles
    them).  Statistics are accumulated in float64 whatever the feature dtype; predictions
    are float64.

    References
    ----------
    Golub, Heath & Wahba (1979), "Generalized cross-validation as a method for choosing a
    good ridge parameter", Technometrics 21(2).
    Zandieh et al. (2021), "Scaling Neural Tangent Kernels via Sketching and Random
    Features", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_approximation import RBFSampler
    >>> from fastntk import NTKRidge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 5)); y = np.sin(X[:, 0])
    >>> model = NTKRidge(RBFSampler(n_components=100, random_state=0)).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def fit(self, X, y, sample_weight=None):
        """Fit on all of X at once (streamed in batches of ``batch_size`` rows).

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidge

        Notes
        -----
        With ``X`` a ``dask.array`` (row chunks of dense arrays or of scipy.sparse CSR
        matrices) and ``y`` (and ``sample_weight``) Dask or NumPy arrays, every chunk is
        reduced to the statistics of a streaming solver on the Dask workers (the current
        ``dask.distributed`` client, else Dask's default scheduler), the statistics are
        added up by a tree reduction and solved here: the same model as this fit on the
        whole array in memory with the same solver, up to rounding, whatever the
        chunking (see :meth:`fit_stream` for the solver and the feature map).
        """
        if _is_dask(X) or _is_dask(y) or _is_dask(sample_weight):
            from ._dask import fit as fit_dask
            return fit_dask(self, X, y, sample_weight)
        fitted = clone(self)
        X, y = fitted._validate_X(X, reset=True, y=y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        fitted._fit_targets(X, _targets_2d(y), sample_weight)
        fitted._set_output_shape(y)
        return self._adopt(fitted)

    @available_if(_is_streaming)
    def fit_stream(self, chunks):
        """Fit from chunks of rows, in one pass, holding one chunk at a time.

        For data larger than memory: the chunks (e.g. from
        :func:`fastntk.streaming.read_chunks`) are reduced one after the other to the
        statistics of a streaming solver, whose size does not depend on the number of
        rows, and solved once at the end.  The result is the model :meth:`fit` gives on
        the concatenated chunks with the same solver, up to rounding.

        The solver is "primal" or "cg" ("auto": "primal" for dense features of width up
        to 16,384, else "cg"); "dual" and "krylov" need all rows at once and raise
        ValueError.  The feature map is fitted on the first chunk.  Most of fastntk's
        maps read only its width, sparsity and dtype (as does sklearn's RBFSampler), and
        are then the maps :meth:`fit` draws; NTKSketch also reads the cosines of the
        first 1,000 rows (for dense rows ``sketch_degrees="auto"``; for any rows
        ``tail_signal_to_noise_``, which decides whether the tail is fitted), with
        ``exact_degrees=2`` the pairs of columns of its rows, and with a Nyström tail
        (dense rows of a handful of columns) draws its landmarks from its rows.  With
        ``exact_degrees="auto"`` on sparse rows it takes degrees 0 and 1 only (not the
        pairs of columns :meth:`fit` takes for short rows, whose statistics grow with
        the number of rows): the model is then the one :meth:`fit` gives with
        ``exact_degrees=1``.  A map whose fit learns from the data sees the first chunk
        only.
        Like :meth:`fit`, the statistics are freed after the solve.

        Parameters
        ----------
        chunks : iterable of tuples ``(X, y)`` or ``(X, y, sample_weight)``
            Consecutive pieces of the training rows (every ``X`` of the same width, every
            ``y`` of the same number of targets).

        Returns
        -------
        self : NTKRidge
        """
        fitted = clone(self)
        first = []

        def pieces():
            for chunk in chunks:
                X, y, sample_weight = _unpack_chunk(chunk)
                X, y = fitted._validate_X(X, reset=not first, y=y)
                Y = _targets_2d(y)
                if not first:
                    first.append((np.ndim(y), Y.shape[1]))
                elif (np.ndim(y), Y.shape[1]) != first[0]:
                    raise ValueError(f"every chunk's y must have the shape of the first "
                                     f"one's rows: {Y.shape[1]} targets (ndim "
                                     f"{np.ndim(y)}) after {first[0][1]} (ndim "
                                     f"{first[0][0]})")
                yield X, Y, _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)

        fitted._fit_stream_targets(pieces())
        fitted._set_output_shape(np.empty((0,) * first[0][0]))
        return self._adopt(fitted)

    @available_if(_is_streaming)
    def partial_fit(self, X, y, sample_weight=None):
        """Add a piece of the training data and re-solve.

        The first call fits the feature map on its piece (as :meth:`fit_stream` does:
        NTKSketch's ``exact_degrees="auto"`` takes sparse degrees 0 and 1 only).  Fitting
        in pieces gives the same model as :meth:`fit` with the same solver and map on
        their concatenation, up to rounding.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidge
        """
        first_call = getattr(self, "_statistics", None) is None
        if first_call and hasattr(self, "intercept_"):
            raise ValueError("this model was trained by fit(), which does not keep its "
                             "statistics; use partial_fit from a fresh estimator")
        candidate = clone(self) if first_call else self
        X, y = candidate._validate_X(X, reset=first_call, y=y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        Y = _targets_2d(y)
        if not first_call and (np.ndim(y) == 1) != self._single_target:
            raise ValueError("y must have the same number of dimensions in every "
                             "partial_fit call")
        candidate._partial_fit_targets(X, Y, sample_weight)
        candidate._set_output_shape(y)
        return self._adopt(candidate) if first_call else self

    def _set_output_shape(self, y):
        self._single_target = np.ndim(y) == 1
        if self._single_target:
            self.intercept_ = float(np.atleast_1d(self.intercept_)[0])
            for name in ("coef_", "dual_coef_"):
                value = getattr(self, name, None)
                if value is not None and value.ndim == 2:
                    setattr(self, name, value[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predict in batches of ``batch_size`` rows.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets), float64
            A lazy dask array (computed chunk by chunk) when ``X`` is a dask array.
        """
        if _is_dask(X):
            from ._dask import predict as predict_dask
            return predict_dask(self, X, "predict")
        out = self._decision(X)
        return out[:, 0] if self._single_target else out


class NTKRidgeClassifier(ClassifierMixin, _BaseNTKRidge):
    __doc__ = f"""Classifier by ridge regression of one-hot labels on NTK features.

    Every class gets a {{0, 1}} indicator target; the targets share one ``alpha`` and one
    ``gamma`` (chosen by the criterion summed over the targets); the prediction is the
    arg-max.  Everything else (streaming, solvers, exact kernel) is as in
    :class:`NTKRidge`.

    Parameters
    ----------
    feature_map : transformer, None, "exact" or "exact-cntk", default=None
{_SHARED_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features_out)
    dual_coef_ : ndarray of shape (n_classes, n_samples)
        With "exact" only.
    intercept_ : ndarray of shape (n_classes,)
{_SHARED_ATTRIBUTES}
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.kernel_approximation import RBFSampler
    >>> from fastntk import NTKRidgeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NTKRidgeClassifier(RBFSampler(n_components=200, random_state=0)).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def fit(self, X, y, sample_weight=None):
        """Fit on all of X at once.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidgeClassifier

        Notes
        -----
        ``X`` may be a ``dask.array`` and ``y`` a Dask array, as in :meth:`NTKRidge.fit`
        (the classes are found by one pass over ``y`` first).
        """
        if _is_dask(X) or _is_dask(y) or _is_dask(sample_weight):
            from ._dask import fit as fit_dask
            return fit_dask(self, X, y, sample_weight)
        fitted = clone(self)
        X, y = validate_data(fitted, X, y, accept_sparse="csr",
                             dtype=(np.float64, np.float32), allow_nd=True)
        check_classification_targets(y)
        fitted.classes_ = np.unique(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        fitted._check_two_classes()
        fitted._fit_targets(X, fitted._one_hot(y), sample_weight)
        return self._adopt(fitted)

    @available_if(_is_streaming)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add a piece of the training data and re-solve.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidgeClassifier
        """
        first_call = getattr(self, "_statistics", None) is None
        if first_call and hasattr(self, "intercept_"):
            raise ValueError("this model was trained by fit(), which does not keep its "
                             "statistics; use partial_fit from a fresh estimator")
        candidate = clone(self) if first_call else self
        X, y = validate_data(candidate, X, y, accept_sparse="csr",
                             dtype=(np.float64, np.float32), allow_nd=True,
                             reset=first_call)
        if first_call:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            candidate.classes_ = np.unique(classes)
            candidate._check_two_classes()
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError("classes differ from those of the first call to partial_fit")
        Y = candidate._encode(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        candidate._partial_fit_targets(X, Y, sample_weight)
        return self._adopt(candidate) if first_call else self

    @available_if(_is_streaming)
    def fit_stream(self, chunks, classes):
        """Fit from chunks of rows, in one pass, holding one chunk at a time.

        As :meth:`NTKRidge.fit_stream`: the same model as :meth:`fit` on the concatenated
        chunks with the same streaming solver, up to rounding.

        Parameters
        ----------
        chunks : iterable of tuples ``(X, y)`` or ``(X, y, sample_weight)``
        classes : array-like of shape (n_classes,)
            All the classes (every chunk's labels must be among them): the one-hot
            targets are fixed before the first chunk is read.

        Returns
        -------
        self : NTKRidgeClassifier
        """
        fitted = clone(self)
        fitted.classes_ = np.unique(np.asarray(classes))
        fitted._check_two_classes()
        first = []

        def pieces():
            for chunk in chunks:
                X, y, sample_weight = _unpack_chunk(chunk)
                X, y = validate_data(fitted, X, y, accept_sparse="csr",
                                     dtype=(np.float64, np.float32), allow_nd=True,
                                     reset=not first)
                first.append(True)
                yield (X, fitted._encode(y),
                       _check_sample_weight(sample_weight, X, dtype=np.float64,
                                            ensure_non_negative=True))

        fitted._fit_stream_targets(pieces())
        return self._adopt(fitted)

    def _encode(self, y):
        """One-hot targets of labels that must all be in ``classes_``."""
        check_classification_targets(y)
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y contains classes not in `classes`: {unknown[:5]}")
        return self._one_hot(y)

    def _check_two_classes(self):
        if self.classes_.shape[0] < 2:
            raise ValueError(f"classification needs at least 2 classes; the labels hold a "
                             f"single class (1 class: {self.classes_[0]!r})")

    def _one_hot(self, y):
        return (np.asarray(y)[:, None] == self.classes_[None, :]).astype(np.float64)

    def decision_function(self, X):
        """Regression scores: (n_samples, n_classes), or (n_samples,) for two classes.

        For two classes the score is that of the second class minus that of the first, so
        that it is positive where ``classes_[1]`` is predicted.  A lazy dask array when
        ``X`` is a dask array.
        """
        if _is_dask(X):
            from ._dask import predict as predict_dask
            return predict_dask(self, X, "decision_function")
        scores = self._decision(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """Class with the largest regression score, predicted in batches.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            A lazy dask array when ``X`` is a dask array.
        """
        if _is_dask(X):
            from ._dask import predict as predict_dask
            return predict_dask(self, X, "predict")
        scores = self._decision(X)
        return self.classes_[np.argmax(scores, axis=1)]
