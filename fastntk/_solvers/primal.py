"""Primal ridge: streaming sufficient statistics and one ``p x p`` eigendecomposition.

The rows are transformed batch by batch and only the sufficient statistics are kept,
``G = sum_i s_i z_i z_i^T`` (a symmetric rank-k update, BLAS ``dsyrk``), ``sum_i s_i z_i
y_i^T``, ``sum_i s_i z_i``, ``sum_i s_i y_i`` and ``sum_i s_i y_i^2`` for ``z = [E | T]``
(dense), so the ``n x p`` feature matrix never exists.  The intercept is handled by
centring these sums (after shifting every batch by the first batch's means, which keeps
the centring free of cancellation).  For every candidate ``(gamma, tail_gamma)`` the
Gram matrix of the weighted columns ``[E_1 | gamma E_2 | tail_gamma T]`` is ``D G D``
(``D`` diagonal); one eigendecomposition ``V diag(lambda)
V^T`` of it gives the solution for every ``alpha``, and generalised cross-validation
(Golub, Heath & Wahba, 1979)

    GCV(alpha) = n RSS(alpha) / (n - df(alpha))^2,   df(alpha) = sum_k lambda_k / (lambda_k + alpha)
                                                            (+ 1 for the intercept)

is exact from the same statistics: with ``q = V^T Z_c^T y_c``, ``RSS(alpha) = ||y_c||^2 -
sum_k q_k^2 / lambda_k + sum_k (alpha / (lambda_k + alpha))^2 q_k^2 / lambda_k``.  Several
targets share one ``alpha`` (the criterion summed over targets).

GCV replaces every row's leverage by the mean, ``df / n``.  On low-dimensional tabular
data with heavy-tailed columns a few rows carry most of the leverage of the polynomial
features, and GCV then picks a far too small alpha (a 21-column regression, exact degrees
0-3: GCV alpha 0.03, test MSE 18.5; leave-one-out alpha 10, 8.7).  So a one-shot fit
(``criterion="auto"`` or ``"loo"``, every row given at once) scores alpha by the exact
leave-one-out error instead, from a second pass over the rows per weighting: with ``P =
Z_c V`` (weighted, centred rows), the fitted values are ``P diag(1 / (lambda + alpha))
q`` and the leverages ``H_ii = s_i / sum(s) + sum_k P_ik^2 / (lambda_k + alpha)``, about
twice the time of GCV.  Fits from pieces (partial_fit, fit_stream, Dask) see every row
once and use GCV.  Memory: three ``p x p`` float64 arrays and a batch (with leave-one-out,
also the batch's ``P`` and its fitted values at every alpha); time ``O(n p^2 + p^3)`` per
candidate, the second pass included.  The second pass reads the rows the first one
transformed, kept in memory, when they take at most ``LOO_KEEP_BYTES``, and transforms
them again otherwise (a feature map's transform can cost more than the pass itself: a
Nyström tail's is ``O(m^2)`` a row).

From ``SINGLE_PRECISION_MIN`` columns on, the eigendecomposition and the second pass's
products, nearly all of the time, run in single precision, as in the dual solver: the
criterion is read from those eigenpairs wherever they resolve it (alpha at least
``SINGLE_RESOLUTION`` times the largest eigenvalue; a best alpha below that is rescored
from a double-precision eigendecomposition), and the chosen coefficients are refined in
double precision against the float64 Gram until the residual is below ``1e-10`` of the
right-hand side's (a double-precision eigendecomposition if they do not get there).
"""
import numpy as np
from scipy.linalg.blas import dsyr, dsyr2

from . import Batch, RidgeSolution, _best_index, column_scale, register, widen_alphas
from ._linalg import (SINGLE_RESOLUTION, add_gram, eigh_psd, eigh_psd_single, gcv_curve,
                      press, project, refine_solve, symmetrize_upper)

__all__ = ["solve", "check", "accumulate", "solve_statistics", "PrimalStatistics"]

#: Kept columns from which the Gram is eigendecomposed in single precision (LAPACK
#: ``ssyevd``, about half the time of ``dsyevd``) and the solution refined in double.
SINGLE_PRECISION_MIN = 2048
#: Largest float64 feature matrix that a leave-one-out fit keeps from its first pass for
#: the passes of every candidate weighting, instead of transforming the rows again.
LOO_KEEP_BYTES = 2**30


class PrimalStatistics:
    """Weighted sums of features and targets, accumulated batch by batch.

    Every batch is shifted by the weighted means of the first one (``shift_z``,
    ``shift_y``) before accumulation; centring is shift-invariant, and the shift keeps the
    final ``G - s s^T / n`` free of the cancellation that raw sums would suffer when the
    features have a large mean.  Without an intercept the shift is zero.
    """

    def __init__(self, n_columns, n_targets, fit_intercept):
        self.fit_intercept = fit_intercept
        self.sum_w = 0.0
        self.shift_z = None
        self.shift_y = None
        self.sum_z = np.zeros(n_columns)
        self.sum_y = np.zeros(n_targets)
        self.gram = np.zeros((n_columns, n_columns), order="F")  # upper triangle
        self.cross = np.zeros((n_columns, n_targets))
        self.sum_y_sq = np.zeros(n_targets)

    @property
    def n_targets(self):
        return self.cross.shape[1]

    def update(self, Z, Y, sample_weight):
        """Add one batch (Z: dense float64 (b, p); Y: (b, t); weights (b,))."""
        if self.shift_z is None:
            if self.fit_intercept and sample_weight.sum() > 0:
                self.shift_z = sample_weight @ Z / sample_weight.sum()
                self.shift_y = sample_weight @ Y / sample_weight.sum()
            else:
                self.shift_z = np.zeros(Z.shape[1])
                self.shift_y = np.zeros(Y.shape[1])
        Z = Z - self.shift_z
        Y = Y - self.shift_y
        self.sum_w += sample_weight.sum()
        self.sum_z += sample_weight @ Z
        self.sum_y += sample_weight @ Y
        self.sum_y_sq += sample_weight @ Y ** 2
        self.cross += Z.T @ (Y * sample_weight[:, None])
        Z *= np.sqrt(sample_weight)[:, None]
        self.gram = add_gram(self.gram, Z)

    def merge(self, other):
        """Add the statistics of other rows, in place (``other`` is left unchanged).

        ``other``'s sums are moved to this object's shift first (``z - a = (z - b) + (b -
        a)``): rank-one and rank-two corrections of the Gram matrix, so statistics of
        disjoint row sets merged in any grouping equal those of all the rows, up to
        rounding.  A partition of a distributed fit gives one object; the merged one is
        solved by :func:`solve_statistics`.
        """
        if other.shift_z is None:                      # no rows
            return self
        if self.shift_z is None:
            self.shift_z, self.shift_y = other.shift_z.copy(), other.shift_y.copy()
        dz = other.shift_z - self.shift_z
        dy = other.shift_y - self.shift_y
        weight = other.sum_w
        self.gram += other.gram
        if weight > 0 and np.any(dz):
            # sum w (z - b + dz)(z - b + dz)^T on the upper triangle, in place
            self.gram = dsyr2(1.0, other.sum_z, dz, a=self.gram, overwrite_a=1)
            self.gram = dsyr(weight, dz, a=self.gram, overwrite_a=1)
        self.cross += (other.cross + np.outer(other.sum_z, dy) + np.outer(dz, other.sum_y)
                       + weight * np.outer(dz, dy))
        self.sum_y_sq += other.sum_y_sq + 2.0 * dy * other.sum_y + weight * dy ** 2
        self.sum_z += other.sum_z + weight * dz
        self.sum_y += other.sum_y + weight * dy
        self.sum_w += weight
        return self

    def centred(self):
        """Centred Gram (upper triangle, a copy), cross products, target sum of squares
        and the means of the features and targets."""
        gram = self.gram.copy(order="F")
        cross = self.cross.copy()
        total_ss = self.sum_y_sq.copy()
        z_mean = self.shift_z.copy()
        y_mean = self.shift_y.copy()
        if self.fit_intercept:
            mean_z = self.sum_z / self.sum_w
            mean_y = self.sum_y / self.sum_w
            # G - s s^T / n, a rank-1 update of the upper triangle, in place
            gram = dsyr(-1.0 / self.sum_w, self.sum_z, a=gram, overwrite_a=1)
            cross -= np.outer(self.sum_z, mean_y)
            total_ss -= self.sum_y * mean_y
            z_mean += mean_z
            y_mean += mean_y
        return gram, cross, total_ss, z_mean, y_mean


def _dense_rows(batch):
    """``[E | T]`` of a batch as one C-ordered float64 array."""
    parts = [np.asarray(p, dtype=np.float64) for p in (batch.exact, batch.tail)
             if p is not None]
    return np.ascontiguousarray(np.hstack(parts) if len(parts) > 1 else parts[0])


class _Eigen:
    """Eigenpairs of the centred Gram of the weighted columns and the criteria they give.

    Columns of weight 0 (a block left out: ``gamma = 0`` or ``tail_gamma = 0``) add only
    zero eigenvalues, which change neither the solution nor the criteria: the
    decomposition is of the other columns alone (``kept``), ``O(p_kept^3)``.  From
    ``SINGLE_PRECISION_MIN`` kept columns on, the eigenpairs are computed in single
    precision (about half the time), as the dual solver's: the criteria are read from them
    for alphas from ``resolution`` up (below, :meth:`scores_resolved` redoes the
    decomposition in double precision), and the chosen coefficients are refined against
    the float64 Gram.
    """

    def __init__(self, gram, cross, total_ss, sum_w, scale, fit_intercept):
        self.n_columns = scale.shape[0]
        self.kept = np.flatnonzero(scale)
        if self.kept.shape[0] < self.n_columns:
            # ascending indices keep the upper triangle where eigh_psd reads it
            gram = np.asfortranarray(gram[np.ix_(self.kept, self.kept)])
            cross, scale = cross[self.kept], scale[self.kept]
        gram *= scale[:, None]
        gram *= scale[None, :]
        self.rhs = cross * scale[:, None]
        self.total_ss = total_ss
        self.sum_w = sum_w
        self.scale = scale
        self.n_fixed = int(bool(fit_intercept))
        if gram.shape[0] >= SINGLE_PRECISION_MIN:
            self.gram = symmetrize_upper(gram)
            self.eigvals, self.eigvecs = eigh_psd_single(gram)
            self.resolution = SINGLE_RESOLUTION * self.eigvals.max(initial=0.0)
            self._project()
        else:
            self.gram = gram
            self.to_double()

    def to_double(self):
        """Redo the eigendecomposition in double precision (drops the kept Gram)."""
        self.eigvals, self.eigvecs = eigh_psd(self.gram)
        self.gram = None
        self.resolution = 0.0
        self._project()

    def _project(self):
        self.proj = project(self.eigvecs, self.rhs)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.proj_sq = np.where(self.eigvals[:, None] > 0,
                                    self.proj ** 2 / self.eigvals[:, None], 0.0)

    def columns(self, Z):
        """The kept columns of rows ``Z`` of ``[E | T]``."""
        return Z if self.kept.shape[0] == self.n_columns else Z[:, self.kept]

    def scores(self, alphas, rows=None):
        """GCV of every alpha; with ``rows`` (:class:`_LeaveOneOut`), the leave-one-out
        error."""
        alphas = np.asarray(alphas, dtype=float)
        if rows is not None:
            return rows.loo(self, alphas)
        return gcv_curve(self.eigvals, self.proj_sq, self.total_ss, self.sum_w, alphas,
                         self.n_fixed)

    def scores_resolved(self, alphas, rows=None):
        """:meth:`scores`, in double precision if single precision cannot resolve the best."""
        scores = self.scores(alphas, rows)
        if self.resolution and alphas[_best_index(scores, alphas)] < self.resolution:
            self.to_double()
            scores = self.scores(alphas, rows)
        return scores

    def coef(self, alpha):
        """Weights on the raw columns (the scale folded in; 0 on the columns left out)."""
        if self.gram is not None:
            weights, converged = refine_solve(self.gram, alpha, self.rhs, self.eigvals,
                                              self.eigvecs)
            if not converged:               # alpha below what single precision resolves
                self.to_double()
        if self.gram is None:
            weights = self.eigvecs @ (self.proj / (self.eigvals + alpha)[:, None])
        coef = np.zeros((self.n_columns, self.proj.shape[1]))
        coef[self.kept] = self.scale[:, None] * weights
        return coef


class _KeptRows:
    """The batches of a design as its first pass read them (dense rows ``[E | T]``)."""

    def __init__(self):
        self.kept = []

    def keep(self, rows, batch):
        self.kept.append(Batch(rows, None, batch.Y, batch.sample_weight, batch.start))

    def batches(self):
        return iter(self.kept)


class _LeaveOneOut:
    """The leave-one-out criterion, from the training rows read again batch by batch
    (``design``: the design, or :class:`_KeptRows`)."""

    def __init__(self, design, z_mean, y_mean, fit_intercept):
        self.design, self.z_mean, self.y_mean = design, z_mean, y_mean
        self.fit_intercept = fit_intercept

    def loo(self, eigen, alphas):
        """Weighted mean squared leave-one-out error of every alpha, averaged over targets."""
        inv = 1.0 / (eigen.eigvals[:, None] + alphas[None, :])            # (p, n_alphas)
        n_targets = eigen.proj.shape[1]
        fit_coef = (inv[:, :, None] * eigen.proj[:, None, :]).reshape(len(inv), -1)
        total = np.zeros(len(alphas))
        for batch in self.design.batches():
            sqrt_w = np.sqrt(batch.sample_weight)[:, None]
            rows = eigen.columns(_dense_rows(batch) - self.z_mean)
            # in the eigenvectors' precision: float32 ones would be copied to float64
            P = (((rows * eigen.scale) * sqrt_w).astype(eigen.eigvecs.dtype, copy=False)
                 @ eigen.eigvecs)
            target = (batch.Y - self.y_mean) * sqrt_w
            fitted = (P @ fit_coef).reshape(len(P), len(alphas), n_targets)
            leverage = (P * P) @ inv
            if self.fit_intercept:
                leverage += batch.sample_weight[:, None] / eigen.sum_w
            total += press(target[:, None, :] - fitted, 1.0 - leverage)
        return total / (eigen.sum_w * n_targets)


def accumulate(design, spec, state=None, kept=None):
    """The statistics of ``state`` (None: none yet) plus those of the design's rows;
    ``kept`` (:class:`_KeptRows` or None) keeps the rows."""
    stats = state or PrimalStatistics(design.n_exact + design.n_tail, design.n_targets,
                                      spec.fit_intercept)
    for batch in design.batches():
        rows = _dense_rows(batch)
        stats.update(rows, batch.Y, batch.sample_weight)
        if kept is not None:
            kept.keep(rows, batch)
    return stats


def check(design, spec, one_shot=False):
    """ValueError if the primal solver cannot fit this design with this spec
    (``one_shot``: every row given at once, which allows the leave-one-out criterion)."""
    if spec.criterion not in (("auto", "gcv", "loo") if one_shot else ("auto", "gcv")):
        raise ValueError(f"criterion={spec.criterion!r}: a fit from pieces of rows "
                         f"(partial_fit, fit_stream, Dask) with the primal solver offers "
                         f"criterion='gcv'; one fit of all rows also 'loo'")
    if not design.dense:
        raise ValueError("the primal solver needs dense features; a sparse exact block "
                         "takes solver='cg' (or 'dual')")


@register("primal")
def solve(design, spec, state=None):
    """Primal ridge from streaming statistics: leave-one-out for a one-shot fit with
    criterion "auto" or "loo", GCV for "gcv" and for partial_fit."""
    one_shot = state is None and not spec.resumable
    check(design, spec, one_shot)
    rows = design if one_shot and spec.criterion in ("auto", "loo") else None
    if rows is not None and 8 * design.n_samples * (
            design.n_exact + design.n_tail) <= LOO_KEEP_BYTES:
        rows = _KeptRows()
    stats = accumulate(design, spec, state, kept=rows if isinstance(rows, _KeptRows)
                       else None)
    return solve_statistics(stats, spec, design.n_linear, design.n_exact, rows)


def solve_statistics(stats, spec, n_linear, n_exact, rows=None):
    """The solution from accumulated (or merged) :class:`PrimalStatistics`.

    ``n_linear`` is the number of leading exact columns no weight scales (the exact
    degrees 0 and 1); ``gamma`` scales the other ``n_exact - n_linear`` exact columns,
    ``tail_gamma`` the tail.  ``rows``: the design the statistics were accumulated from,
    read again to score alpha by leave-one-out (None: GCV).
    """
    if stats.shift_z is None or stats.sum_w <= 0:
        raise ValueError("the primal solver needs at least one row with positive weight")
    gram, cross, total_ss, z_mean, y_mean = stats.centred()
    if rows is not None:
        rows = _LeaveOneOut(rows, z_mean, y_mean, spec.fit_intercept)
    scores = np.full((len(spec.gammas), len(spec.alphas)), np.nan)
    best = None
    for g, weights in enumerate(spec.gammas):
        scale = column_scale(n_linear, n_exact, gram.shape[0], *weights)
        # the last candidate may overwrite the Gram (a restricted one copies it anyway)
        eigen = _Eigen(gram.copy(order="F") if g + 1 < len(spec.gammas) and scale.all()
                       else gram, cross, total_ss, stats.sum_w, scale, spec.fit_intercept)
        scores[g] = eigen.scores_resolved(spec.alphas, rows)
        if best is None or np.nanmin(scores[g]) < np.nanmin(scores[best[0]]):
            best = (g, weights, eigen)
        del eigen
    g, (gamma, tail_gamma), eigen = best
    alphas, _, k = widen_alphas(lambda new: eigen.scores(new, rows), spec.alphas, scores[g])
    if alphas[k] < eigen.resolution:        # widened below what single precision resolves
        eigen.to_double()
        alphas, _, k = widen_alphas(lambda new: eigen.scores(new, rows), alphas,
                                    eigen.scores(alphas, rows))
    coef = eigen.coef(alphas[k])
    intercept = y_mean - z_mean @ coef if spec.fit_intercept else np.zeros(len(y_mean))
    return RidgeSolution(coef=coef, dual_coef=None, intercept=intercept,
                         alpha=float(alphas[k]), gamma=float(gamma),
                         tail_gamma=float(tail_gamma), alphas=alphas,
                         gammas=spec.gammas, scores=scores,
                         criterion="gcv" if rows is None else "loo", state=stats)
