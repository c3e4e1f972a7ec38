"""Dual ridge: one eigendecomposition of the ``n x n`` kernel matrix per block weighting
(or a thin SVD of its columns, when they are fewer than the rows).

The centred, weighted kernel ``P D K D P`` (``D = diag(sqrt(s))``, ``P`` the weighted
centring projection, ``K = E_1 E_1^T + gamma^2 E_2 E_2^T + tail_gamma^2 T T^T``, ``E_1``
the exact block's first ``n_linear`` columns and ``E_2`` the rest, or an exact kernel) is
eigendecomposed once per candidate ``(gamma, tail_gamma)``; the solution and the criterion
of every alpha are then functions of its eigenpairs.  The default criterion is the exact
leave-one-out error (Allen's PRESS), which the eigenvectors give at O(n^2) per alpha and
target.  GCV replaces each sample's leverage ``H_ii`` by the mean ``df / n``, which fails
exactly where the dual is used: with ``n <= n_features`` the model can nearly interpolate,
and duplicated rows (common in text: retweets) leave a few null directions that keep ``n -
df`` small while the residual vanishes, so GCV keeps falling as alpha goes to zero (2,000
health tweets hashed to 4,096 columns: GCV chose alpha = 1e-4, test accuracy 0.880;
leave-one-out chose 1.0, 0.907, as scikit-learn's RidgeClassifierCV).  ``criterion="gcv"``
restores GCV.

From ``SINGLE_PRECISION_MIN`` rows on, the eigendecomposition, which is nearly all of the
time, runs in single precision: the criterion is read from those eigenpairs wherever they
resolve it (alpha at least ``SINGLE_RESOLUTION`` times the largest eigenvalue; a best alpha below
that is rescored from a double-precision eigendecomposition), and the chosen solution is
refined in double precision against the double-precision kernel until its residual is
below ``1e-10`` of the target's (a double-precision eigendecomposition if it does not get
there).

A candidate that keeps fewer dense columns than rows (one that leaves a wide block out,
``gamma = 0`` or ``tail_gamma = 0``) is decomposed from its columns instead: the thin SVD
``P D Z = U diag(s) V^T`` of its ``p < n`` weighted centred columns gives the kernel's
non-zero eigenpairs ``(s^2, U)`` in ``O(n p^2)``; the leave-one-out residuals add the part
of the target outside ``U``'s span, which no alpha fits, and the weights come out in
primal form, ``V diag(s / (s^2 + alpha)) U^T P D y``.

Memory: the kernel blocks and the eigenvectors, a few ``n^2`` float64 arrays.
"""
import numpy as np
import scipy.linalg
import scipy.sparse as sp

from . import RidgeSolution, _best_index, register, stack_rows, widen_alphas
from ._linalg import (SINGLE_RESOLUTION, add_gram, centre_weighted_gram,
                      centre_weighted_target, eigh_psd, eigh_psd_single, gcv_curve, loo_curve,
                      project, refine_solve, symmetrize_upper)

__all__ = ["solve", "SINGLE_PRECISION_MIN"]

#: Rows from which the kernel is eigendecomposed in single precision (LAPACK ``ssyevd``,
#: about half the time of ``dsyevd``) and the solution refined in double precision.
SINGLE_PRECISION_MIN = 2048


def _gram(Z, n):
    """``Z Z^T`` as a full symmetric Fortran-ordered float64 array (``Z`` may be sparse)."""
    if sp.issparse(Z):
        return np.asfortranarray((Z @ Z.T).toarray(), dtype=np.float64)
    gram = add_gram(np.zeros((n, n), order="F"), np.ascontiguousarray(Z.T))
    upper = np.triu(gram)
    return np.asfortranarray(upper + np.triu(upper, 1).T)


def _weighted_sum(grams, weights, n):
    """``sum_b weights[b] grams[b]`` over the blocks present (not None), a new array."""
    out = np.zeros((n, n), order="F")
    for gram, weight in zip(grams, weights):
        if gram is not None and weight:
            out += weight * gram
    return out


#: A candidate whose kept columns are dense and fewer than this fraction of the rows is
#: decomposed from them (thin SVD, ``O(n p^2)``) rather than from its ``n x n`` kernel.
THIN_FRACTION = 1.0


def _block_coef(blocks, scales, column_coef):
    """Weights on the raw columns of the blocks present, from the weights on the columns
    of ``Z = [scale_b B_b]`` over the blocks of non-zero scale (zero on the others)."""
    parts, start = [], 0
    for block, scale in zip(blocks, scales):
        if block is None:
            continue
        width = block.shape[1]
        if scale:
            parts.append(scale * column_coef[start:start + width])
            start += width
        else:
            parts.append(np.zeros((width, column_coef.shape[1])))
    return np.vstack(parts)


def _candidate_eigens(blocks, gammas, n, *args):
    """Yield ``((gamma, tail_gamma), eigen)`` for every candidate, ``eigen`` the
    :class:`_Eigen` of its kernel (``args``: the rest of its arguments): from the
    weighted columns (:meth:`_Eigen.from_rows`) where the blocks it keeps are dense and
    narrower than ``THIN_FRACTION * n`` in all, else from the ``n x n`` kernel matrix (the
    blocks' Grams computed once, when first needed).

    A candidate that leaves a wide block out (``gamma = 0`` or ``tail_gamma = 0``) often
    keeps few columns: ccpp at 8,192 features keeps 495 of them with the tail left out,
    whose kernel the thin SVD of 6,000 rows decomposes in a small part of the time of the
    ``6,000 x 6,000`` eigendecomposition.
    """
    grams = None
    for g, t in gammas:
        kept = [(block, scale) for block, scale in zip(blocks, (1.0, g, t))
                if block is not None and scale]
        width = sum(block.shape[1] for block, _ in kept)
        if 0 < width < THIN_FRACTION * n and not any(sp.issparse(b) for b, _ in kept):
            columns = np.hstack([scale * np.asarray(block, dtype=np.float64)
                                 for block, scale in kept])
            yield (g, t), _Eigen.from_rows(columns, *args)
            continue
        if grams is None:
            grams = [None if block is None else _gram(block, n) for block in blocks]
        yield (g, t), _Eigen(_weighted_sum(grams, (1.0, g * g, t * t), n), *args)


class _Eigen:
    """Eigenpairs of one centred kernel and the criterion they give for any alpha.

    From ``SINGLE_PRECISION_MIN`` rows on, the eigenpairs are computed in single precision
    and the float64 centred kernel is kept: the criterion is evaluated from the float32
    eigenpairs, and the chosen alpha's coefficients are refined against the float64 kernel
    (falling back to a float64 eigendecomposition if the refinement does not converge).
    Their rounding moves the criterion by about ``0.05 eps_32 lambda_max / alpha``
    (relative), so alphas below ``resolution`` are not resolved: :meth:`scores_resolved`
    redoes the decomposition in double precision when the best alpha lies there.

    :meth:`from_rows` builds the same object from fewer columns than rows, without the
    ``n x n`` kernel: its eigenvectors then span the kernel's range only, and ``perp``
    holds the part of the target outside it.
    """

    def __init__(self, gram, sample_weight, target_c, criterion, fit_intercept):
        self._weights(sample_weight, target_c, criterion, fit_intercept)
        self.kernel_mean = gram @ sample_weight / self.sw
        centred = centre_weighted_gram(gram, self.sqrt_w, fit_intercept)
        if centred.shape[0] >= SINGLE_PRECISION_MIN:
            self.centred = symmetrize_upper(centred)
            self.eigvals, self.eigvecs = eigh_psd_single(centred)
            self.resolution = SINGLE_RESOLUTION * self.eigvals.max(initial=0.0)
            self.proj = project(self.eigvecs, target_c)
        else:
            self.centred = centred
            self.to_double()

    @classmethod
    def from_rows(cls, Z, sample_weight, target_c, criterion, fit_intercept):
        """The eigenpairs of the kernel ``Z Z^T`` (``Z`` dense, ``n x p`` with ``p < n``)
        from the thin SVD of its centred weighted rows ``P D Z``: ``O(n p^2)`` where the
        kernel's eigendecomposition costs ``O(n^3)``."""
        self = cls.__new__(cls)
        self._weights(sample_weight, target_c, criterion, fit_intercept)
        column_mean = sample_weight @ Z / self.sw
        rows = self.sqrt_w[:, None] * (Z - column_mean if fit_intercept else Z)
        # the singular vectors of every column, zero singular values included: orthonormal
        # to rounding, they leave in ``perp`` only what lies outside the columns' span
        self.eigvecs, self.singular, self.right = scipy.linalg.svd(
            rows, full_matrices=False, check_finite=False)
        self.eigvals = self.singular ** 2
        self.column_mean = column_mean if fit_intercept else np.zeros_like(column_mean)
        self.centred = None
        self.resolution = 0.0
        self.proj = self.eigvecs.T @ target_c
        self.perp = target_c - self.eigvecs @ self.proj
        return self

    def column_coef(self, alpha):
        """Of an object made by :meth:`from_rows`: the ridge weights on the columns of
        ``Z``, ``V diag(s / (s^2 + alpha)) U^T P D y`` (``P D Z = U diag(s) V^T``)."""
        shrink = self.singular / (self.eigvals + alpha)
        return self.right.T @ (shrink[:, None] * self.proj)

    def _weights(self, sample_weight, target_c, criterion, fit_intercept):
        self.sw = sample_weight.sum()
        self.sqrt_w = np.sqrt(sample_weight)
        self.target_c = target_c
        self.perp = None
        self.n_fixed = int(bool(fit_intercept))
        self.criterion = criterion
        if criterion == "loo":
            self.leverage = (sample_weight / self.sw if fit_intercept
                             else np.zeros_like(sample_weight))

    def to_double(self):
        """Redo the eigendecomposition in double precision (drops the kept kernel)."""
        self.eigvals, self.eigvecs = eigh_psd(self.centred)
        self.centred = None
        self.resolution = 0.0
        self.proj = project(self.eigvecs, self.target_c)

    def scores_resolved(self, alphas):
        """:meth:`scores`, in double precision if single precision cannot resolve the best."""
        scores = self.scores(alphas)
        if self.resolution and alphas[_best_index(scores, alphas)] < self.resolution:
            self.to_double()
            scores = self.scores(alphas)
        return scores

    def scores(self, alphas):
        alphas = np.asarray(alphas, dtype=float)
        if self.criterion == "loo":
            return loo_curve(self.eigvals, self.eigvecs, self.proj, self.leverage, self.sw,
                             alphas, perp=self.perp)
        total_ss = np.einsum("ij,ij->j", self.target_c, self.target_c)
        return gcv_curve(self.eigvals, self.proj ** 2, total_ss, self.sw, alphas,
                         self.n_fixed)

    def _solve(self, alpha):
        """``z = (P D K D P + alpha I)^{-1} P D y``."""
        if self.centred is not None:
            z, converged = refine_solve(self.centred, alpha, self.target_c, self.eigvals,
                                        self.eigvecs)
            if converged:
                return z
            self.to_double()        # alpha below what single precision resolves
        return self.eigvecs @ (self.proj / (self.eigvals + alpha)[:, None])

    def dual_coef(self, alpha, fit_intercept):
        """``c = D P z`` with ``z = (P D K D P + alpha I)^{-1} P D y``."""
        z = self._solve(alpha)
        if fit_intercept:
            z -= np.outer(self.sqrt_w, self.sqrt_w @ z) / self.sw
        return z * self.sqrt_w[:, None]


@register("dual")
def solve(design, spec, state=None):
    """Dual ridge on the design's rows (criterion "auto" = "loo", or "loo", or "gcv")."""
    if spec.criterion not in ("auto", "loo", "gcv"):
        raise ValueError(f"the dual solver chooses alpha by 'loo' or 'gcv', got "
                         f"criterion={spec.criterion!r}")
    criterion = "gcv" if spec.criterion == "gcv" else "loo"
    w = design.sample_weight
    y_mean, target_c = centre_weighted_target(design.Y, w, spec.fit_intercept)
    n = design.n_samples
    eigen_args = (w, target_c, criterion, spec.fit_intercept)
    if design.kernel is not None:
        exact = tail = None
        gammas = np.ones((1, 2))
        eigens = [((1.0, 1.0), _Eigen(np.asfortranarray(design.kernel(), dtype=np.float64),
                                      *eigen_args))]
    else:
        exact, tail = stack_rows(design)
        split = design.n_linear
        # gamma scales the exact columns from n_linear on (degrees >= 2), tail_gamma the tail
        high = exact[:, split:] if exact is not None and split < exact.shape[1] else None
        if high is not None:
            exact = exact[:, :split]
        gammas = spec.gammas
        eigens = _candidate_eigens((exact, high, tail), gammas, n, *eigen_args)
    scores = np.full((len(gammas), len(spec.alphas)), np.nan)
    best = None
    for g, (weights, eigen) in enumerate(eigens):
        scores[g] = eigen.scores_resolved(spec.alphas)
        if best is None or np.nanmin(scores[g]) < np.nanmin(scores[best[0]]):
            best = (g, weights, eigen)
    g, (gamma, tail_gamma), eigen = best
    alphas, _, k = widen_alphas(eigen.scores, spec.alphas, scores[g])
    if alphas[k] < eigen.resolution:        # widened below what single precision resolves
        eigen.to_double()
        alphas, _, k = widen_alphas(eigen.scores, alphas, eigen.scores(alphas))
    alpha = float(alphas[k])
    if eigen.perp is not None:              # decomposed from the columns: primal weights
        column_coef = eigen.column_coef(alpha)
        coef = _block_coef((exact, high, tail), (1.0, gamma, tail_gamma), column_coef)
        return RidgeSolution(coef=coef, dual_coef=None,
                             intercept=y_mean - eigen.column_mean @ column_coef,
                             alpha=alpha, gamma=float(gamma), tail_gamma=float(tail_gamma),
                             alphas=alphas, gammas=gammas, scores=scores,
                             criterion=criterion)
    dual = eigen.dual_coef(alpha, spec.fit_intercept)
    intercept = y_mean - eigen.kernel_mean @ dual
    if not spec.fit_intercept:
        intercept = np.zeros_like(intercept)
    coef = None
    if design.kernel is None:
        parts = []
        if exact is not None:
            parts.append(np.asarray(exact.T @ dual))
        if high is not None:
            parts.append(gamma * gamma * np.asarray(high.T @ dual))
        if tail is not None:
            parts.append(tail_gamma * tail_gamma * (tail.T @ dual))
        coef = np.vstack(parts)
        dual = None
    return RidgeSolution(coef=coef, dual_coef=dual, intercept=intercept, alpha=alpha,
                         gamma=float(gamma), tail_gamma=float(tail_gamma), alphas=alphas,
                         gammas=gammas, scores=scores, criterion=criterion)
