"""Streaming ridge regression on NTK features, with the ridge chosen by GCV or LOO.

:class:`NTKRidge` fits ``y ~ b + phi(x)^T w`` by minimising
``sum_i s_i (y_i - b - phi(x_i)^T w)^2 + alpha ||w||^2`` (``s_i`` the sample weights), where
``phi`` is a feature map whose inner products approximate the NTK (DESIGN.md section 5).
With ``feature_map="exact"`` it is exact kernel ridge regression with the NTK itself, the
reference the feature maps are measured against.  :class:`NTKRidgeClassifier` regresses the
one-hot encoding of the labels and predicts the arg-max.

How the problem is solved
-------------------------
*Primal* (``n_samples > n_components``, and always in :meth:`NTKRidge.partial_fit`): the
rows are transformed ``batch_size`` at a time and only the sufficient statistics are kept,
``G = sum_i s_i phi_i phi_i^T`` (a symmetric rank-k update, BLAS ``dsyrk``), ``sum_i s_i phi_i
y_i^T``, ``sum_i s_i phi_i``, ``sum_i s_i y_i`` and ``sum_i s_i y_i^2``, so the
``n_samples x n_components`` feature matrix never exists.  The intercept is handled by
centring these sums (after shifting every batch by the first batch's means, which keeps the
centring free of cancellation).  One eigendecomposition ``G_c = V diag(lambda) V^T`` then gives
the solution for every ``alpha``, and generalised cross-validation (Golub, Heath & Wahba, 1979)

    GCV(alpha) = n RSS(alpha) / (n - df(alpha))^2,   df(alpha) = sum_k lambda_k / (lambda_k + alpha)
                                                            (+ 1 for the intercept)

is evaluated exactly from the same statistics: with ``q = V^T Phi_c^T y_c``,
``RSS(alpha) = ||y_c||^2 - sum_k q_k^2 / lambda_k + sum_k (alpha / (lambda_k + alpha))^2
q_k^2 / lambda_k`` (the sums over the numerically non-zero ``lambda_k``).  Several targets
share one ``alpha`` (GCV summed over targets).

*Dual* (``n_samples <= n_components`` in :meth:`NTKRidge.fit`, and ``feature_map="exact"``):
the centred, weighted ``n x n`` Gram matrix ``P D K D P`` (``D = diag(sqrt(s))``, ``P`` the
weighted centring projection) is eigendecomposed instead; the solution and the GCV curve are
the same functions of its eigenpairs, so both paths give the same model up to rounding.

Here, though, alpha is chosen by default by the exact leave-one-out error (Allen's PRESS),
which the eigenvectors give for every alpha at O(n^2) cost per alpha and target.  GCV
replaces each sample's leverage ``H_ii`` by the mean ``df / n``, which fails exactly where
the dual is used: with ``n <= n_components`` the model can nearly interpolate, and
duplicated rows (common in text: retweets) leave a few null directions that keep
``n - df`` small while the residual vanishes, so GCV keeps falling as alpha goes to zero.
Measured on 2,000 health tweets hashed to 4,096 columns: GCV chose alpha = 1e-4 (test
accuracy 0.880), leave-one-out chose 1.0 (0.907, as scikit-learn's RidgeClassifierCV).
``criterion="gcv"`` restores GCV in the dual (then both paths agree); the primal solve,
which never sees individual rows after accumulating them, always uses GCV, which is sound
there because ``df <= n_components < n``.

Large problems (the OpenBLAS hazard of DESIGN.md section 5)
------------------------------------------------------------
With the AVX-512 ("SkylakeX") kernels of the OpenBLAS bundled in NumPy/SciPy wheels
(scipy-openblas 0.3.31), ``cho_factor`` and ``solve(assume_a="pos")`` crash the process on
16,000 x 16,000 SPD matrices.  Measured here (``env -u OPENBLAS_CORETYPE``), the culprit is
broader: a single ``dsyrk`` producing a 16384 x 16384 result from 1024 or more rows also
segfaults (scipy's ``dsyrk`` and NumPy's ``A.T @ A`` alike), while 14,000 columns, or 512
rows, or a general ``dgemm`` of the same size, do not.  Hence:

* no Cholesky factorisation anywhere: both paths use the symmetric eigensolver
  (``scipy.linalg.eigh``, LAPACK ``dsyevd``, which overwrites the Gram matrix with the
  eigenvectors, so the peak memory is three ``n_components^2`` (or ``n_samples^2``)
  float64 arrays, the matrix and the solver's workspace, plus a batch);
* Gram matrices wider than 4,096 are accumulated by blocks of 4,096 rows (matrix products
  off the diagonal, ``dsyrk`` of at most 4,096 columns on it): same flops, no crash.

``asv_benchmarks/ridge_large.py`` runs ``n_components=16384`` and exact kernel ridge on
16,000 rows, with a Cholesky control that shows the crash being avoided.
"""
import numbers

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.blas import dsyr, dsyr2, dsyrk
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._version import __version__

__all__ = ["NTKRidge", "NTKRidgeClassifier", "DEFAULT_ALPHAS"]

#: Default grid of ridge parameters: half decades from 1e-6 to 1e6.
DEFAULT_ALPHAS = tuple(float(10.0 ** (k / 2)) for k in range(-12, 13))

_EXACT_KERNELS = ("exact", "exact-cntk")


# --------------------------------------------------------------------------------------
# Linear algebra shared by both paths
# --------------------------------------------------------------------------------------
#: Widest Gram block handed to one BLAS ``dsyrk`` call; wider Grams are updated by blocks.
_SYRK_BLOCK = 4096


def _add_gram(gram, Z):
    """``gram += Z^T Z`` on the upper triangle (``gram`` Fortran-ordered, ``Z`` (k, N)).

    One ``dsyrk`` call when ``N <= _SYRK_BLOCK``; otherwise row blocks of ``_SYRK_BLOCK``:
    the diagonal-and-right part of each block row by a matrix product (the last one a
    ``dsyrk`` of at most ``_SYRK_BLOCK`` columns).  Reason: the AVX-512 OpenBLAS ``dsyrk``
    (also behind ``Z.T @ Z`` in NumPy) segfaults at N = 16384 with k >= 1024, measured on
    scipy-openblas 0.3.31, while general matrix products and narrower ``dsyrk`` calls do
    not; the flop count is the same.
    """
    n_cols = gram.shape[0]
    if n_cols <= _SYRK_BLOCK:
        # pass whichever of Z, Z.T is Fortran-ordered, so that dsyrk reads it without a copy
        if Z.flags.f_contiguous:
            return dsyrk(1.0, Z, beta=1.0, c=gram, trans=1, overwrite_c=1)
        return dsyrk(1.0, np.ascontiguousarray(Z).T, beta=1.0, c=gram, overwrite_c=1)
    for start in range(0, n_cols, _SYRK_BLOCK):
        stop = min(start + _SYRK_BLOCK, n_cols)
        gram[start:stop, start:] += Z[:, start:stop].T @ Z[:, start:]
    return gram


def _eigh_psd(gram):
    """Eigenpairs of a symmetric PSD matrix held in its upper triangle (overwritten).

    An eigensolver rather than a Cholesky factorisation: see the module docstring.
    Divide and conquer (``dsyevd``) rather than MRRR (``dsyevr``): kernels of real text
    have tight clusters of eigenvalues (duplicate documents), on which ``dsyevr`` slows
    down badly (exact NTK of 4,000 Trump tweets: 43.5 s against 5.9 s; health tweets,
    without such clusters: 7.3 s against 5.5 s).  Rounding can make tiny eigenvalues
    negative; they are clipped to zero.
    """
    eigvals, eigvecs = scipy.linalg.eigh(gram, lower=False, overwrite_a=True,
                                         check_finite=False, driver="evd")
    np.maximum(eigvals, 0.0, out=eigvals)
    return eigvals, eigvecs


def _gcv_curve(eigvals, proj_sq, total_ss, n_eff, alphas, n_fixed):
    """GCV score of each alpha, averaged over targets.

    Parameters
    ----------
    eigvals : ndarray of shape (k,)
        Eigenvalues of the centred Gram matrix (primal or dual; the non-zero ones agree).
    proj_sq : ndarray of shape (k, n_targets)
        Squared norm of the centred targets along each eigen-direction of the dual
        (``(u_k^T y_c)^2``); only entries with a numerically non-zero eigenvalue are used.
    total_ss : ndarray of shape (n_targets,)
        ``||y_c||^2``; what the non-zero directions do not explain is unexplainable residual.
    n_eff : float
        Number of samples (sum of the sample weights).
    alphas : ndarray of shape (n_alphas,)
    n_fixed : int
        Unpenalised parameters (1 for the intercept, else 0), added to the degrees of freedom.
    """
    tol = eigvals.max(initial=0.0) * eigvals.shape[0] * np.finfo(np.float64).eps
    keep = eigvals > tol
    lam = eigvals[keep][:, None]
    proj = proj_sq[keep]
    residual_floor = np.maximum(total_ss - proj.sum(axis=0), 0.0).sum()
    scores = np.empty(len(alphas))
    for i, alpha in enumerate(alphas):
        shrink = alpha / (lam + alpha)
        rss = residual_floor + np.sum(shrink ** 2 * proj)
        dof = n_fixed + np.sum(lam / (lam + alpha))
        denominator = n_eff - dof
        scores[i] = (n_eff * rss / denominator ** 2 if denominator > 0 else np.inf)
    return scores / proj_sq.shape[1]


def _best_alpha(alphas, scores):
    """Index of the smallest score; the largest alpha if no score is finite."""
    if not np.isfinite(scores).any():
        return int(np.argmax(alphas))
    return int(np.nanargmin(np.where(np.isfinite(scores), scores, np.inf)))


def _solve_primal(gram_c, cross_c, total_ss, n_eff, alphas, n_fixed):
    """Ridge weights from centred primal statistics through one eigendecomposition.

    Returns the weights (n_components, n_targets), the chosen index and the GCV scores.
    ``gram_c`` (upper triangle) is overwritten.
    """
    eigvals, eigvecs = _eigh_psd(gram_c)
    del gram_c
    proj = eigvecs.T @ cross_c                      # q = V^T Phi_c^T y_c
    with np.errstate(divide="ignore", invalid="ignore"):
        proj_sq = np.where(eigvals[:, None] > 0, proj ** 2 / eigvals[:, None], 0.0)
    scores = _gcv_curve(eigvals, proj_sq, total_ss, n_eff, alphas, n_fixed)
    best = _best_alpha(alphas, scores)
    weights = eigvecs @ (proj / (eigvals + alphas[best])[:, None])
    return weights, best, scores


def _loo_curve(eigvals, eigvecs, proj, base_leverage, n_eff, alphas, block=1024):
    """Weighted mean squared leave-one-out error of each alpha, averaged over targets.

    In the weighted, centred dual space the fitted values are ``H(alpha) y~`` with
    ``H = U diag(lambda / (lambda + alpha)) U^T + d d^T / sum(w)`` (the last term, the
    unpenalised intercept, is ``base_leverage`` on the diagonal), so the residuals are
    ``r = U (alpha / (lambda + alpha) * q)`` with ``q = U^T P D y`` and the leave-one-out
    residuals ``r_i / (1 - H_ii)`` (Allen's PRESS).  ``r_i / sqrt(w_i)`` is the residual in
    the units of y, hence the score ``sum_i (r_i / (1 - H_ii))^2 / sum(w)``.  Rows are
    taken ``block`` at a time, so the extra memory is O(block n + n n_alphas n_targets).
    """
    n_targets = proj.shape[1]
    shrink = alphas[None, :] / (eigvals[:, None] + alphas[None, :])      # (k, n_alphas)
    residual_coef = (shrink[:, :, None] * proj[:, None, :]).reshape(len(eigvals), -1)
    kept = 1.0 - shrink
    scores = np.zeros(len(alphas))
    for start in range(0, eigvecs.shape[0], block):
        rows = eigvecs[start:start + block]
        residual = (rows @ residual_coef).reshape(rows.shape[0], len(alphas), n_targets)
        slack = 1.0 - ((rows * rows) @ kept + base_leverage[start:start + block, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = np.where(slack[:, :, None] > 0, residual / slack[:, :, None],
                           np.where(residual == 0, 0.0, np.inf))
        scores += np.einsum("ijk,ijk->j", loo, loo)
    return scores / (n_eff * n_targets)


def _solve_dual(gram_c, target_c, alphas, n_fixed, n_eff, base_leverage=None):
    """Dual variables ``z = (P D K D P + alpha I)^{-1} P D y`` for the chosen alpha.

    ``gram_c`` is the centred, weighted Gram matrix (upper triangle, overwritten) and
    ``target_c = P D y``.  With ``base_leverage`` (the intercept's share of the hat-matrix
    diagonal, ``w_i / sum(w)``, or zeros) alpha is chosen by exact leave-one-out error,
    otherwise by GCV.  Returns z (n_samples, n_targets), the chosen index and the scores.
    """
    eigvals, eigvecs = _eigh_psd(gram_c)
    del gram_c
    proj = eigvecs.T @ target_c
    if base_leverage is None:
        total_ss = np.einsum("ij,ij->j", target_c, target_c)
        scores = _gcv_curve(eigvals, proj ** 2, total_ss, n_eff, alphas, n_fixed)
    else:
        scores = _loo_curve(eigvals, eigvecs, proj, base_leverage, n_eff, alphas)
    best = _best_alpha(alphas, scores)
    dual = eigvecs @ (proj / (eigvals + alphas[best])[:, None])
    return dual, best, scores


def _centre_weighted_gram(gram, sqrt_w, fit_intercept):
    """``P D K D P`` in place (upper triangle), ``D = diag(sqrt_w)``, ``P = I - d d^T / sum(w)``.

    ``gram`` must hold the full symmetric K on entry (Fortran order).  With
    ``r = D K D d / sw`` and ``u = r - (d^T r / 2 sw) d``, ``P (DKD) P = DKD - u d^T - d u^T``:
    a symmetric rank-2 update, so no ``n x n`` temporary is allocated.
    """
    gram *= sqrt_w[:, None]
    gram *= sqrt_w[None, :]
    if fit_intercept:
        sw = sqrt_w @ sqrt_w
        row = gram @ sqrt_w / sw
        update = row - (sqrt_w @ row / (2.0 * sw)) * sqrt_w
        gram = dsyr2(-1.0, update, sqrt_w, a=gram, overwrite_a=1)
    return gram


def _centre_weighted_target(Y, sample_weight, fit_intercept):
    """Weighted mean of Y (zero without intercept) and ``P D y``."""
    sqrt_w = np.sqrt(sample_weight)
    y_mean = (sample_weight @ Y / sample_weight.sum() if fit_intercept
              else np.zeros(Y.shape[1]))
    return y_mean, (Y - y_mean) * sqrt_w[:, None]


# --------------------------------------------------------------------------------------
# Streaming sufficient statistics
# --------------------------------------------------------------------------------------
class _PrimalStatistics:
    """Weighted sums of features and targets, accumulated batch by batch.

    Every batch is shifted by the weighted means of the first one (``shift_phi``,
    ``shift_y``) before accumulation; centring is shift-invariant, and the shift keeps the
    final ``G - s s^T / n`` free of the cancellation that raw sums would suffer when the
    features have a large mean.  Without an intercept the shift is zero.
    """

    def __init__(self, n_components, n_targets, fit_intercept):
        self.fit_intercept = fit_intercept
        self.sum_w = 0.0
        self.shift_phi = None
        self.shift_y = None
        self.sum_phi = np.zeros(n_components)
        self.sum_y = np.zeros(n_targets)
        self.gram = np.zeros((n_components, n_components), order="F")  # upper triangle
        self.cross = np.zeros((n_components, n_targets))
        self.sum_y_sq = np.zeros(n_targets)

    def update(self, phi, Y, sample_weight):
        """Add one batch (phi: dense float64 (b, m); Y: (b, t); weights (b,))."""
        if self.shift_phi is None:
            if self.fit_intercept and sample_weight.sum() > 0:
                self.shift_phi = sample_weight @ phi / sample_weight.sum()
                self.shift_y = sample_weight @ Y / sample_weight.sum()
            else:
                self.shift_phi = np.zeros(phi.shape[1])
                self.shift_y = np.zeros(Y.shape[1])
        phi = phi - self.shift_phi
        Y = Y - self.shift_y
        self.sum_w += sample_weight.sum()
        self.sum_phi += sample_weight @ phi
        self.sum_y += sample_weight @ Y
        self.sum_y_sq += sample_weight @ Y ** 2
        weighted_y = Y * sample_weight[:, None]
        self.cross += phi.T @ weighted_y
        phi *= np.sqrt(sample_weight)[:, None]
        self.gram = _add_gram(self.gram, phi)

    def centred(self, copy):
        """Centred Gram (upper triangle), cross products, target sum of squares and means."""
        gram = self.gram.copy(order="F") if copy else self.gram
        cross = self.cross.copy()
        total_ss = self.sum_y_sq.copy()
        phi_mean = self.shift_phi.copy()
        y_mean = self.shift_y.copy()
        if self.fit_intercept:
            mean_phi = self.sum_phi / self.sum_w
            mean_y = self.sum_y / self.sum_w
            # G - s s^T / n, a rank-1 update of the upper triangle, in place
            gram = dsyr(-1.0 / self.sum_w, self.sum_phi, a=gram, overwrite_a=1)
            cross -= np.outer(self.sum_phi, mean_y)
            total_ss -= self.sum_y * mean_y
            phi_mean += mean_phi
            y_mean += mean_y
        return gram, cross, total_ss, phi_mean, y_mean


def _as_dense_float64(phi):
    """A feature batch as a C-ordered float64 ndarray (feature maps may return sparse)."""
    if sp.issparse(phi):
        phi = phi.toarray()
    return np.ascontiguousarray(phi, dtype=np.float64)


def _batches(n_samples, batch_size):
    for start in range(0, n_samples, batch_size):
        yield slice(start, min(start + batch_size, n_samples))


# --------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------
def _default_feature_map():
    """fastntk.NTKSketch, imported lazily (it is the heavy part of the package)."""
    try:
        from .ntk_sketch import NTKSketch
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError("feature_map=None needs fastntk.NTKSketch, which is not "
                          "available in this installation; pass a feature map") from exc
    return NTKSketch()


def _is_streaming(estimator):
    """partial_fit is offered by the feature-map learners, not by exact kernel ridge."""
    return not (isinstance(estimator.feature_map, str)
                and estimator.feature_map in _EXACT_KERNELS)


class _BaseNTKRidge(BaseEstimator):
    """Shared machinery of NTKRidge and NTKRidgeClassifier (targets as a 2-D float array)."""

    def __init__(self, feature_map=None, *, alphas=DEFAULT_ALPHAS, batch_size=4096,
                 fit_intercept=True, solver="auto", criterion="auto", kernel_params=None,
                 verbose=False):
        self.feature_map = feature_map
        self.alphas = alphas
        self.batch_size = batch_size
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.criterion = criterion
        self.kernel_params = kernel_params
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
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
            raise ValueError(f"alphas must be a non-empty sequence of positive floats, got "
                             f"{self.alphas!r}")
        if (not isinstance(self.batch_size, numbers.Integral)
                or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.solver not in ("auto", "primal", "dual"):
            raise ValueError(f"solver must be 'auto', 'primal' or 'dual', got {self.solver!r}")
        if self.criterion not in ("auto", "gcv", "loo"):
            raise ValueError(f"criterion must be 'auto', 'gcv' or 'loo', got "
                             f"{self.criterion!r}")
        if isinstance(self.feature_map, str) and self.feature_map not in _EXACT_KERNELS:
            raise ValueError(f"feature_map must be a transformer, None, 'exact' or "
                             f"'exact-cntk', got {self.feature_map!r}")
        return alphas

    def _check_primal_criterion(self):
        if self.criterion == "loo":
            raise ValueError("criterion='loo' needs the dual solve (an exact kernel, or "
                             "fit with solver='dual' or n_samples <= n_components); the "
                             "primal solve and partial_fit offer criterion='gcv'")

    def _dual_criterion(self, sample_weight):
        """The dual's criterion and, for "loo", the intercept's share of diag(H)."""
        if self.criterion == "gcv":
            return "gcv", None
        if self.fit_intercept:
            return "loo", sample_weight / sample_weight.sum()
        return "loo", np.zeros_like(sample_weight)

    def _validate_X(self, X, reset, y="no_validation"):
        kwargs = dict(accept_sparse="csr", dtype=(np.float64, np.float32),
                      allow_nd=True, reset=reset)
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, **kwargs)
        return validate_data(self, X, y, multi_output=True, y_numeric=True, **kwargs)

    def _progress(self, total, desc):
        return tqdm(total=total, desc=desc, unit="rows", disable=not self.verbose,
                    delay=1.0, leave=False)

    # -- fitting -------------------------------------------------------------------------
    def _reset(self):
        for name in ("_statistics", "coef_", "dual_coef_", "X_fit_", "feature_map_"):
            self.__dict__.pop(name, None)

    def _fit_targets(self, X, Y, sample_weight):
        alphas = self._check_params()
        n_fixed = int(bool(self.fit_intercept))
        if not _is_streaming(self):
            self._fit_exact(X, Y, sample_weight, alphas, n_fixed)
            return self
        self.feature_map_ = clone(self.feature_map if self.feature_map is not None
                                  else _default_feature_map()).fit(X)
        first = _as_dense_float64(self.feature_map_.transform(X[:self.batch_size]))
        n_components = first.shape[1]
        use_dual = (self.solver == "dual"
                    or (self.solver == "auto" and X.shape[0] <= n_components))
        if use_dual:
            self._fit_dual_features(X, Y, sample_weight, first, alphas, n_fixed)
        else:
            self._check_primal_criterion()
            stats = _PrimalStatistics(n_components, Y.shape[1], self.fit_intercept)
            self._accumulate(stats, X, Y, sample_weight, first)
            self._solve_from_statistics(stats, alphas, n_fixed, keep=False)
        self.n_samples_seen_ = X.shape[0]
        return self

    def _accumulate(self, stats, X, Y, sample_weight, first=None):
        with self._progress(X.shape[0], "features + Gram") as bar:
            for rows in _batches(X.shape[0], self.batch_size):
                if first is not None:
                    phi, first = first, None
                else:
                    phi = _as_dense_float64(self.feature_map_.transform(X[rows]))
                stats.update(phi, Y[rows], sample_weight[rows])
                bar.update(rows.stop - rows.start)

    def _solve_from_statistics(self, stats, alphas, n_fixed, keep):
        gram, cross, total_ss, phi_mean, y_mean = stats.centred(copy=keep)
        self._note_eigh(gram.shape[0])
        weights, best, scores = _solve_primal(gram, cross, total_ss, stats.sum_w, alphas,
                                              n_fixed)
        self.coef_ = weights.T
        self._set_solution(y_mean - phi_mean @ weights, alphas, best, scores, "gcv")

    def _fit_dual_features(self, X, Y, sample_weight, first, alphas, n_fixed):
        """Dual solve on the explicit feature matrix, for n_samples <= n_components."""
        phi = np.empty((X.shape[0], first.shape[1]))
        with self._progress(X.shape[0], "features") as bar:
            for rows in _batches(X.shape[0], self.batch_size):
                if first is not None:
                    phi[rows], first = first, None
                else:
                    phi[rows] = _as_dense_float64(self.feature_map_.transform(X[rows]))
                bar.update(rows.stop - rows.start)
        sw = sample_weight.sum()
        phi_mean = (sample_weight @ phi / sw if self.fit_intercept
                    else np.zeros(phi.shape[1]))
        y_mean, target_c = _centre_weighted_target(Y, sample_weight, self.fit_intercept)
        centred = (phi - phi_mean) * np.sqrt(sample_weight)[:, None]
        gram = _add_gram(np.zeros((X.shape[0], X.shape[0]), order="F"), centred.T)
        self._note_eigh(gram.shape[0])
        criterion, leverage = self._dual_criterion(sample_weight)
        dual, best, scores = _solve_dual(gram, target_c, alphas, n_fixed, sw, leverage)
        weights = centred.T @ dual                  # w = A^T z
        self.coef_ = weights.T
        self._set_solution(y_mean - phi_mean @ weights, alphas, best, scores, criterion)

    def _set_solution(self, intercept, alphas, best, scores, criterion):
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        self.intercept_ = intercept
        self.alpha_ = float(alphas[best])
        self.cv_values_ = scores
        self.criterion_ = criterion

    def _note_eigh(self, size):
        if self.verbose and size >= 2048:
            tqdm.write(f"eigendecomposition of the {size} x {size} Gram matrix ...")

    # -- exact kernel ridge --------------------------------------------------------------
    def _kernel(self, X, Y=None):
        params = dict(self.kernel_params or {})
        if self.feature_map == "exact":
            from .kernels import ntk_kernel
            return ntk_kernel(X, Y, **params)
        from .kernels import cntk_kernel
        image_shape = params.pop("image_shape", None)
        X, Y = (self._as_images(Z, image_shape) for Z in (X, Y))
        return cntk_kernel(X, Y, **params)

    @staticmethod
    def _as_images(X, image_shape):
        if X is None or X.ndim == 4:
            return X
        if image_shape is None:
            raise ValueError("feature_map='exact-cntk' needs images of shape (n, H, W, C) "
                             "or kernel_params={'image_shape': (H, W, C)}")
        if sp.issparse(X):
            X = X.toarray()
        return X.reshape((X.shape[0], *image_shape))

    def _fit_exact(self, X, Y, sample_weight, alphas, n_fixed):
        sw = sample_weight.sum()
        sqrt_w = np.sqrt(sample_weight)
        if self.verbose:
            tqdm.write(f"exact kernel on {X.shape[0]} rows ...")
        gram = np.asarray(self._kernel(X), dtype=np.float64)
        # K is symmetric: its transpose is the Fortran-ordered array LAPACK wants, no copy
        gram = gram.T if gram.flags.c_contiguous else np.asfortranarray(gram)
        # mean kernel row, needed for the intercept once the dual solution is known
        kernel_mean = gram @ sample_weight / sw
        gram = _centre_weighted_gram(gram, sqrt_w, self.fit_intercept)
        y_mean, target_c = _centre_weighted_target(Y, sample_weight, self.fit_intercept)
        self._note_eigh(gram.shape[0])
        criterion, leverage = self._dual_criterion(sample_weight)
        dual, best, scores = _solve_dual(gram, target_c, alphas, n_fixed, sw, leverage)
        if self.fit_intercept:                       # c = D P z
            dual -= np.outer(sqrt_w, sqrt_w @ dual) / sw
        dual *= sqrt_w[:, None]
        self.X_fit_ = X
        self.dual_coef_ = dual.T
        self._set_solution(y_mean - kernel_mean @ dual, alphas, best, scores, criterion)
        self.n_samples_seen_ = X.shape[0]

    # -- partial fit ---------------------------------------------------------------------
    def _partial_fit_targets(self, X, Y, sample_weight):
        alphas = self._check_params()
        self._check_primal_criterion()
        stats = getattr(self, "_statistics", None)
        if stats is None:
            if hasattr(self, "coef_"):
                raise ValueError("this model was trained by fit(), which does not keep the "
                                 "Gram matrix; use partial_fit from a fresh estimator")
            self.feature_map_ = clone(self.feature_map if self.feature_map is not None
                                      else _default_feature_map()).fit(X)
            first = _as_dense_float64(self.feature_map_.transform(X[:self.batch_size]))
            stats = _PrimalStatistics(first.shape[1], Y.shape[1], self.fit_intercept)
            self.n_samples_seen_ = 0
        else:
            first = None
            if Y.shape[1] != stats.cross.shape[1]:
                raise ValueError(f"y has {Y.shape[1]} targets, the model was started with "
                                 f"{stats.cross.shape[1]}")
        self._accumulate(stats, X, Y, sample_weight, first)
        self._statistics = stats
        self.n_samples_seen_ += X.shape[0]
        self._solve_from_statistics(stats, alphas, int(bool(self.fit_intercept)), keep=True)
        return self

    # -- prediction ----------------------------------------------------------------------
    def _decision(self, X):
        check_is_fitted(self, "intercept_")
        X = self._validate_X(X, reset=False)
        intercept = np.atleast_1d(self.intercept_)
        out = np.empty((X.shape[0], intercept.shape[0]))
        with self._progress(X.shape[0], "predict") as bar:
            for rows in _batches(X.shape[0], self.batch_size):
                if hasattr(self, "dual_coef_"):
                    kernel = self._kernel(X[rows], self.X_fit_)
                    out[rows] = kernel @ np.atleast_2d(self.dual_coef_).T
                else:
                    phi = self.feature_map_.transform(X[rows])
                    out[rows] = phi @ np.atleast_2d(self.coef_).T
                bar.update(rows.stop - rows.start)
        out += intercept
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _targets_2d(y):
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


class NTKRidge(RegressorMixin, _BaseNTKRidge):
    """Ridge regression on NTK features (or exact NTK kernel ridge), alpha by GCV or LOO.

    Minimises ``sum_i s_i (y_i - b - phi(x_i)^T w)^2 + alpha ||w||^2``: kernel ridge
    regression with the kernel ``<phi(x), phi(y)>`` approximating the NTK (DESIGN.md
    section 5), trained by streaming the features through sufficient statistics, so the
    ``n_samples x n_components`` feature matrix is never formed (see the module docstring
    for the algorithm).

    Parameters
    ----------
    feature_map : transformer, None, "exact" or "exact-cntk", default=None
        Any scikit-learn transformer mapping rows to features (fastntk.NTKSketch,
        fastntk.NTKRandomFeatures, fastntk.CNTKSketch, sklearn's RBFSampler, ...); it is
        cloned and fitted on X in :meth:`fit`.  None means ``fastntk.NTKSketch()``.
        ``"exact"`` runs exact kernel ridge regression with
        ``fastntk.kernels.ntk_kernel(..., **kernel_params)`` and ``"exact-cntk"`` with
        ``cntk_kernel`` (O(n^2) memory, O(n^3) time: the reference for small n).
    alphas : sequence of float, default=DEFAULT_ALPHAS
        Candidate ridge parameters (half decades 1e-6 .. 1e6).  All are scored (see
        ``criterion``) from a single eigendecomposition; the best is kept in ``alpha_``.
        Alphas are absolute, as in sklearn.linear_model.Ridge: the NTK scales like
        ``||x||^2``, so scale the inputs (or the grid) accordingly.
    batch_size : int, default=4096
        Rows transformed at a time in fit, partial_fit and predict (memory
        ``batch_size x n_components``).  The fitted model does not depend on it beyond
        rounding.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (by centring the accumulated statistics).
    solver : {"auto", "primal", "dual"}, default="auto"
        "primal" accumulates the ``n_components x n_components`` Gram matrix; "dual" keeps
        the ``n_samples x n_components`` features and eigendecomposes the
        ``n_samples x n_samples`` Gram matrix.  "auto" is dual when ``n_samples <=
        n_components``.  partial_fit is always primal; exact kernel ridge always dual.
    criterion : {"auto", "gcv", "loo"}, default="auto"
        How alpha is chosen: "gcv", generalised cross-validation (both solvers); "loo",
        exact leave-one-out squared error (dual solve only); "auto", leave-one-out in the
        dual and GCV in the primal (see the module docstring for why).
    kernel_params : dict, default=None
        Keyword arguments of the exact kernel (``depth``, ``kind``; for "exact-cntk" also
        ``filter_size``, ``padding``, ``pooling`` and ``image_shape`` to reshape flat rows).
        Ignored by feature maps.
    verbose : bool, default=False
        Show a tqdm progress bar on operations longer than a second.

    Attributes
    ----------
    feature_map_ : transformer
        The fitted clone of ``feature_map`` (not with "exact").
    coef_ : ndarray of shape (n_components,) or (n_targets, n_components)
        Weights on the features (not with "exact").
    dual_coef_ : ndarray of shape (n_samples,) or (n_targets, n_samples)
        With "exact": prediction is ``K(x, X_fit_) @ dual_coef_.T + intercept_``.
    X_fit_ : ndarray or sparse matrix
        With "exact": the training inputs.
    intercept_ : float or ndarray of shape (n_targets,)
    alpha_ : float
        The chosen ridge parameter.
    cv_values_ : ndarray of shape (n_alphas,)
        Score of each alpha under ``criterion_`` (mean over targets; the smallest wins).
    criterion_ : {"gcv", "loo"}
        The criterion that chose ``alpha_``.
    n_samples_seen_ : int
    n_features_in_ : int

    Notes
    -----
    Robustness at scale: OpenBLAS's AVX-512 kernels crash ``cho_factor`` on 16,000 x
    16,000 matrices, and ``dsyrk`` at 16,384 columns; so no Cholesky factorisation is used
    (the symmetric eigensolver, LAPACK ``dsyevd``, serves every alpha) and Gram
    matrices wider than 4,096 are accumulated by blocks (see the module docstring and
    ``asv_benchmarks/ridge_large.py``).  The cost is ``O(n_components^3)`` once per fit
    (or per partial_fit call), plus ``O(n_samples n_components^2)`` for the Gram matrix.

    :meth:`fit` frees the Gram matrix after solving, so a model trained by fit cannot be
    continued with partial_fit; a model trained by partial_fit keeps it (and pickles it).
    Statistics are accumulated in float64 whatever the feature dtype; predictions are
    float64.

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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidge
        """
        self._reset()
        X, y = self._validate_X(X, reset=True, y=y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        self._fit_targets(X, _targets_2d(y), sample_weight)
        self._set_output_shape(y)
        return self

    @available_if(_is_streaming)
    def partial_fit(self, X, y, sample_weight=None):
        """Add a piece of the training data and re-solve (one eigendecomposition per call).

        The first call fits the feature map on its piece.  Fitting in pieces gives the same
        model as :meth:`fit` on their concatenation, up to rounding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidge
        """
        first_call = getattr(self, "_statistics", None) is None
        X, y = self._validate_X(X, reset=first_call, y=y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        self._partial_fit_targets(X, _targets_2d(y), sample_weight)
        self._set_output_shape(y)
        return self

    def _set_output_shape(self, y):
        self._single_target = np.ndim(y) == 1
        if self._single_target:
            self.intercept_ = float(self.intercept_[0])
            for name in ("coef_", "dual_coef_"):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name)[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predict in batches of ``batch_size`` rows.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets), float64
        """
        out = self._decision(X)
        return out[:, 0] if self._single_target else out


class NTKRidgeClassifier(ClassifierMixin, _BaseNTKRidge):
    """Classifier by ridge regression of one-hot labels on NTK features; predicts arg-max.

    Every class gets a {0, 1} indicator target; the targets share one ``alpha`` (chosen by
    GCV or leave-one-out error summed over the targets).  Everything else (streaming,
    solvers, exact kernel, robustness at scale) is as in :class:`NTKRidge`, whose
    parameters it takes.

    Parameters
    ----------
    feature_map : transformer, None, "exact" or "exact-cntk", default=None
    alphas : sequence of float, default=DEFAULT_ALPHAS
    batch_size : int, default=4096
    fit_intercept : bool, default=True
    solver : {"auto", "primal", "dual"}, default="auto"
    criterion : {"auto", "gcv", "loo"}, default="auto"
    kernel_params : dict, default=None
    verbose : bool, default=False

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_components)
    dual_coef_ : ndarray of shape (n_classes, n_samples)
        With "exact" only.
    intercept_ : ndarray of shape (n_classes,)
    alpha_ : float
    cv_values_ : ndarray of shape (n_alphas,)
    criterion_ : {"gcv", "loo"}
    feature_map_ : transformer
    n_samples_seen_ : int
    n_features_in_ : int

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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidgeClassifier
        """
        self._reset()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=(np.float64, np.float32),
                             allow_nd=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        self._check_two_classes()
        self._fit_targets(X, self._one_hot(y), sample_weight)
        return self

    @available_if(_is_streaming)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add a piece of the training data and re-solve.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NTKRidgeClassifier
        """
        first_call = getattr(self, "_statistics", None) is None
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=(np.float64, np.float32),
                             allow_nd=True, reset=first_call)
        check_classification_targets(y)
        if first_call:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            self.classes_ = np.unique(classes)
            self._check_two_classes()
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError("classes differ from those of the first call to partial_fit")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y contains classes not in `classes`: {unknown[:5]}")
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        self._partial_fit_targets(X, self._one_hot(y), sample_weight)
        return self

    def _check_two_classes(self):
        if self.classes_.shape[0] < 2:
            raise ValueError(f"classification needs at least 2 classes; the labels hold a "
                             f"single class (1 class: {self.classes_[0]!r})")

    def _one_hot(self, y):
        return (np.asarray(y)[:, None] == self.classes_[None, :]).astype(np.float64)

    def decision_function(self, X):
        """Regression scores: (n_samples, n_classes), or (n_samples,) for two classes.

        For two classes the score is that of the second class minus that of the first, so
        that it is positive where ``classes_[1]`` is predicted.
        """
        scores = self._decision(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """Class with the largest regression score, predicted in batches.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        scores = self._decision(X)
        return self.classes_[np.argmax(scores, axis=1)]
