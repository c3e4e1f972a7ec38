"""Multi-shift conjugate gradients in the dual, through the rows: a whole alpha grid per run.

For the design ``Z = [E_1 | gamma E_2 | tail_gamma T]`` (the exact degrees 0 and 1, the exact
degrees >= 2, the sketched tail) the dual ridge system of one alpha is

    (P D Z Z^T D P + alpha I) z = P D y_c,        c = D P z,

``D = diag(sqrt(s))`` (``s`` the sample weights) and ``P`` the weighted centring
projection.  Its kernel products go through the rows, ``Z Z^T u = E_1 (E_1^T u) +
gamma^2 E_2 (E_2^T u) + tail_gamma^2 T (T^T u)``: sparse and dense products with the blocks as they
are, never an ``n x n`` or ``d x d`` matrix.  The Krylov space of the operator does not
depend on alpha, so conjugate gradients on the smallest alpha give the iterates of every
other alpha of the grid for a few vector operations per iteration (multi-shift CG:
Jegerlehner 1996, Frommer 2003); the residual of each shifted system is a known multiple
of the base one, so each alpha knows when it has converged.

Alpha and ``(gamma, tail_gamma)`` are chosen on a held-out fold (every fifth row, up to
10,000 rows, as solver "cg"): the held-out predictions of every alpha are carried along
the iterations (one product with the held-out rows per iteration), an alpha is scored once
its relative residual is below ``1e-4``, and the run stops three converged alphas past the
best (alphas converge from the largest down).  The chosen ones are refitted on all rows by
conjugate gradients.

The iterations needed grow like the square root of the condition number of the smallest
alpha reached (there is no preconditioner), so they grow with ``n``: past some tens of
thousands of rows the preconditioned "cg" solver is faster.  Each iteration is one
product with the rows instead of an ``n x n`` eigendecomposition per candidate.

Memory: the rows (the blocks as given, with the training rows put first; the sparse
blocks also as transposed copies, and as copies of the two folds while alpha is chosen),
and two arrays of ``n_held x n_targets x n_alphas``.
"""
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from . import HOLDOUT_EVERY, RidgeSolution, held_out, register, stack_rows, widen_alphas
from ._linalg import centre_weighted_target, pcg, times, transposed

__all__ = ["solve"]

#: Relative residual at which an alpha of the path is scored, and the refit stops.
_TOL_PATH = 1e-4
_TOL_FINAL = 1e-8
#: Iterations of one path (all alphas at one gamma), and of the refit.
_MAX_ITER = 3000
_MAX_ITER_FINAL = 3000
#: Converged alphas scored past the best one before a path stops.
_PATIENCE = 3


class _Rows:
    """Some rows of the design's blocks and the products of the dual system on them.

    Parameters
    ----------
    blocks : list of (CSR or dense) arrays
        ``[E_1, E_2, T]``, those present, on the same rows.
    sample_weight : ndarray of shape (n_rows,)
    fit_intercept : bool
    """

    def __init__(self, blocks, sample_weight, fit_intercept):
        self.transposed = [transposed(Z) for Z in blocks]
        self.sqrt_w = np.sqrt(sample_weight)
        self.sum_w = sample_weight.sum()
        self.fit_intercept = fit_intercept
        self.means = [np.asarray(Zt @ sample_weight).ravel() / self.sum_w if fit_intercept
                      else np.zeros(Z.shape[1]) for Z, Zt in zip(blocks, self.transposed)]

    @property
    def n_rows(self):
        return self.sqrt_w.shape[0]

    def _centre(self, V):
        """``P V``: ``V`` less its component along ``sqrt(s)`` (with an intercept)."""
        if not self.fit_intercept:
            return V
        return V - np.outer(self.sqrt_w, self.sqrt_w @ V) / self.sum_w

    def coefficients(self, Z, scales):
        """``g_b = s_b Z_b^T D P Z`` for every block: the weights on the raw columns of
        the dual variables ``Z`` (``scales`` ``s_b``: 1, ``gamma^2``, ``tail_gamma^2``)."""
        U = self._centre(Z) * self.sqrt_w[:, None]
        return [np.asarray(Zt @ U) * s if s else None
                for Zt, s in zip(self.transposed, scales)]

    def kernel_product(self, coefs):
        """``P D sum_b Z_b g_b`` (the dual operator applied, from :meth:`coefficients`)."""
        out = np.zeros((self.n_rows, next(g for g in coefs if g is not None).shape[1]))
        for Zt, g in zip(self.transposed, coefs):
            if g is not None:
                out += times(Zt, g)
        return self._centre(out * self.sqrt_w[:, None])

    def intercept_shift(self, coefs):
        """``sum_b mu_b^T g_b``: what the intercept subtracts (``mu_b`` the weighted means
        of the blocks)."""
        return sum(mu @ g for mu, g in zip(self.means, coefs) if g is not None)


def _predict(transposed, means, coefs):
    """``sum_b (Z_b - 1 mu_b^T) g_b`` on other rows (the held-out ones, given as
    ``transposed(Z_b)``)."""
    out = None
    for Zt, mu, g in zip(transposed, means, coefs):
        if g is None:
            continue
        part = times(Zt, g) - mu @ g
        out = part if out is None else out + part
    return out


def _scales_of(kinds):
    """``(gamma, tail_gamma) ->`` the kernel weights of blocks of the given kinds: 1 for
    ``E_1`` ("linear"), ``gamma^2`` for ``E_2`` ("high"), ``tail_gamma^2`` for ``T``."""
    def scales(weights):
        gamma, tail_gamma = weights
        of = {"linear": 1.0, "high": gamma * gamma, "tail": tail_gamma * tail_gamma}
        return [of[kind] for kind in kinds]
    return scales


class _Fold:
    """The held-out rows and what scores a prediction on them."""

    def __init__(self, blocks, Y, sample_weight):
        self.transposed = [transposed(Z) for Z in blocks]
        self.Y, self.sample_weight = Y, sample_weight

    def score(self, prediction):
        """Weighted mean squared error over the rows, averaged over the targets."""
        w = self.sample_weight
        return float(w @ ((self.Y - prediction) ** 2).mean(axis=1) / w.sum())


def _path_scores(train, fold, y_mean, rhs, scales, alphas):
    """Held-out score of every alpha (NaN where not reached) from one multi-shift run.

    Conjugate gradients on the smallest alpha; every other alpha's iterate, and so its
    held-out prediction, follows from the same Krylov vectors (its residual is ``zeta``
    times the base one).
    """
    alphas = np.asarray(alphas, dtype=float)
    order = np.argsort(alphas)
    shifts = alphas[order]
    base = shifts[0]
    offsets = (shifts - base)[:, None]
    n_shifts, n_targets = len(shifts), rhs.shape[1]

    def image(P):
        """Base operator on ``P`` and the held-out prediction of ``P`` as dual variables."""
        coefs = train.coefficients(P, scales)
        return (train.kernel_product(coefs) + base * P,
                _predict(fold.transposed, train.means, coefs))

    r = rhs.copy()
    rr = np.einsum("ij,ij->j", r, r)
    rhs_norm = np.maximum(np.sqrt(rr), np.finfo(float).tiny)
    # the product is taken with the residual, which gives its held-out prediction (what the
    # shifted directions are built from); the base direction's product follows from it
    q, held_r = image(r)
    p = r.copy()
    held_p = np.broadcast_to(held_r, (n_shifts, *held_r.shape)).copy()
    zeta = np.ones((n_shifts, n_targets))
    zeta_old = np.ones((n_shifts, n_targets))
    step_old, beta_old = np.ones(n_targets), np.zeros(n_targets)
    live = np.ones((n_shifts, n_targets), dtype=bool)          # not yet converged
    prediction = np.zeros_like(held_p)
    scores = np.full(n_shifts, np.nan)
    for _ in range(_MAX_ITER):
        active = live[0]                                        # the base converges last
        pq = np.einsum("ij,ij->j", p, q)
        step = np.where(active & (pq > 0), rr / np.where(pq > 0, pq, 1.0), 0.0)
        with np.errstate(all="ignore"):
            zeta_new = zeta * zeta_old * step_old / (
                step * beta_old * (zeta_old - zeta)
                + zeta_old * step_old * (1.0 + step * offsets))
            step_shift = np.where(live, step * zeta_new / zeta, 0.0)
        prediction += step_shift[:, None, :] * held_p
        r -= q * step
        rr_new = np.einsum("ij,ij->j", r, r)
        beta = np.where(active & (rr > 0), rr_new / np.where(rr > 0, rr, 1.0), 0.0)
        with np.errstate(all="ignore"):
            beta_shift = np.where(live, beta * (zeta_new / zeta) ** 2, 0.0)
        zeta_new = np.where(live, zeta_new, zeta)
        zeta_old, zeta = zeta, zeta_new
        step_old, beta_old, rr = np.where(active, step, step_old), beta, rr_new
        live &= np.abs(zeta) * np.sqrt(rr) / rhs_norm >= _TOL_PATH
        converged = ~live.any(axis=1)
        for k in np.flatnonzero(converged & np.isnan(scores)):
            scores[k] = fold.score(prediction[k] + y_mean)
        # alphas converge from the largest down: stop _PATIENCE past the best
        done = converged[::-1]
        reached = len(done) if done.all() else int(np.argmin(done))
        if reached == n_shifts or (reached and reached - 1 - int(
                np.argmin(scores[::-1][:reached])) >= _PATIENCE):
            break
        q_r, held_r = image(r)
        held_p = zeta[:, None, :] * held_r[None] + beta_shift[:, None, :] * held_p
        p = r + p * beta
        q = q_r + q * beta
    out = np.full(n_shifts, np.nan)
    out[order] = scores
    return out


def _choose(blocks, Y, w, n_train, spec, scales):
    """``(scores, alphas, alpha, weights)`` on the held-out fold: the rows past
    ``n_train``.

    ``scales`` maps ``(gamma, tail_gamma)`` to the blocks' kernel weights; the alpha grid
    is widened at the best weights if its best alpha is at an edge.
    """
    train = _Rows([Z[:n_train] for Z in blocks], w[:n_train], spec.fit_intercept)
    fold = _Fold([Z[n_train:] for Z in blocks], Y[n_train:], w[n_train:])
    y_mean, rhs = centre_weighted_target(Y[:n_train], w[:n_train], spec.fit_intercept)

    def path(weights, alphas):
        return _path_scores(train, fold, y_mean, rhs, scales(weights), alphas)

    scores = np.full((len(spec.gammas), len(spec.alphas)), np.nan)
    for g, weights in enumerate(spec.gammas):
        scores[g] = path(weights, spec.alphas)
    if not np.isfinite(scores).any():
        raise ValueError("solver='krylov' reached no alpha of the grid within "
                         f"{_MAX_ITER} iterations; use a grid of larger alphas or "
                         "solver='dual' / 'cg'")
    g = int(np.argmin(np.where(np.isfinite(scores), scores, np.inf).min(axis=1)))
    weights = tuple(float(v) for v in spec.gammas[g])
    alphas, _, k = widen_alphas(lambda new: path(weights, new), spec.alphas, scores[g])
    return scores, alphas, float(alphas[k]), weights


def _split_blocks(exact, tail, n_linear):
    """``[E_1, E_2, T]`` (those present) and their kinds ("linear", "high", "tail")."""
    blocks, kinds = [], []
    if exact is not None and n_linear:
        blocks.append(exact[:, :n_linear] if n_linear < exact.shape[1] else exact)
        kinds.append("linear")
    if exact is not None and n_linear < exact.shape[1]:
        blocks.append(exact[:, n_linear:])
        kinds.append("high")
    if tail is not None:
        blocks.append(tail)
        kinds.append("tail")
    return blocks, kinds


def _check(design, spec):
    if design.kernel is not None:
        raise ValueError("solver='krylov' works on feature maps; exact kernel ridge "
                         "(feature_map='exact') takes solver='dual'")
    if spec.criterion not in ("auto", "holdout"):
        raise ValueError(f"solver='krylov' chooses alpha on a held-out fold: criterion "
                         f"must be 'auto' or 'holdout', got {spec.criterion!r}")


@register("krylov")
def solve(design, spec, state=None):
    """Multi-shift CG ridge in the dual, (alpha, gamma) by a held-out fold."""
    _check(design, spec)
    w = design.sample_weight
    held = held_out(design.row_offset + np.arange(design.n_samples))
    if held.sum() == 0 or w[held].sum() <= 0 or w[~held].sum() <= 0:
        raise ValueError(f"solver='krylov' holds out every {HOLDOUT_EVERY}th row to choose "
                         f"alpha and needs at least {HOLDOUT_EVERY} rows with positive "
                         f"weight in both parts; use solver='dual' for smaller data")
    # training rows first: the two folds are then contiguous row ranges (views of the
    # dense blocks, the bulk of the memory)
    order = np.concatenate([np.flatnonzero(~held), np.flatnonzero(held)])
    exact, tail = stack_rows(design, order)
    n_linear = design.n_linear if exact is not None else 0
    blocks, kinds = _split_blocks(exact, tail, n_linear)
    del exact, tail
    Y, w = design.Y[order], w[order]
    n_train = int((~held).sum())
    scores, alphas, alpha, weights = _choose(blocks, Y, w, n_train, spec,
                                             _scales_of(kinds))
    full = _Rows(blocks, w, spec.fit_intercept)
    y_mean, rhs = centre_weighted_target(Y, w, spec.fit_intercept)
    scales = _scales_of(kinds)(weights)
    Z, converged = pcg(
        lambda V: full.kernel_product(full.coefficients(V, scales)) + alpha * V,
        lambda R: R, rhs, np.zeros_like(rhs), _TOL_FINAL, _MAX_ITER_FINAL)
    if not converged:
        warnings.warn(f"solver='krylov': the refit at alpha={alpha:.3g} did not reach a "
                      f"relative residual of {_TOL_FINAL:g} in {_MAX_ITER_FINAL} iterations",
                      ConvergenceWarning, stacklevel=2)
    coefs = full.coefficients(Z, scales)
    intercept = y_mean - full.intercept_shift(coefs) if spec.fit_intercept else (
        np.zeros(design.n_targets))
    widths = [Zb.shape[1] for Zb in blocks]
    coef = np.vstack([c if c is not None else np.zeros((width, design.n_targets))
                      for c, width in zip(coefs, widths)])
    return RidgeSolution(coef=coef, dual_coef=None, intercept=intercept, alpha=alpha,
                         gamma=weights[0], tail_gamma=weights[1], alphas=alphas,
                         gammas=spec.gammas, scores=scores, criterion="holdout")
