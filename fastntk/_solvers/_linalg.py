"""Linear algebra shared by the ridge solvers: Gram updates, eigenpairs, GCV and LOO.

Large problems: with the AVX-512 ("SkylakeX") kernels of the OpenBLAS bundled in
NumPy/SciPy wheels (scipy-openblas 0.3.31), ``cho_factor`` and ``solve(assume_a="pos")``
crash the process on 16,000 x 16,000 SPD matrices, and so does a single ``dsyrk``
producing a 16384 x 16384 result from 1024 or more rows (scipy's ``dsyrk`` and NumPy's
``A.T @ A`` alike), while 14,000 columns, or 512 rows, or a general ``dgemm`` of the same
size, do not.  Hence no Cholesky factorisation anywhere (the symmetric eigensolver, LAPACK
``dsyevd``, serves every alpha) and Gram matrices wider than 4,096 are accumulated by
blocks.  ``asv_benchmarks/ridge_large.py`` runs those sizes.
"""
import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.blas import dsyr2, dsyrk

__all__ = ["transposed", "times", "add_gram", "eigh_psd", "eigh_psd_single", "refine_solve",
           "project", "SINGLE_RESOLUTION", "symmetrize_upper", "gcv_curve", "loo_curve",
           "press", "centre_weighted_gram", "centre_weighted_target", "SYRK_BLOCK"]

def transposed(Z):
    """``Z^T`` in the layout both products with the rows ``Z`` are fastest in (CSR for a
    sparse ``Z``; a view of a dense one).

    Solvers that multiply through the rows keep this copy only: ``Z^T U`` gathers from
    the ``n x k`` ``U``, and ``Z V`` as ``(Z^T)^T V`` (:func:`times`, a CSC product)
    scatters into the ``n x k`` output, where ``Z V`` by the rows of ``Z`` would gather
    from the ``p x k`` ``V``: a block of hundreds of thousands of columns (the pairs of
    words) makes that ``V`` larger than the caches, and the CSR product was 5x slower
    (measured on the pairs of 50,660 tweets, 16 targets).
    """
    return Z.T.tocsr() if sp.issparse(Z) else Z.T


def times(Zt, V):
    """``Z V`` from ``Zt = transposed(Z)``."""
    return np.asarray(Zt.T @ V)


#: Widest Gram block handed to one BLAS ``dsyrk`` call; wider Grams are updated by blocks.
SYRK_BLOCK = 4096


def add_gram(gram, Z):
    """``gram += Z^T Z`` on the upper triangle (``gram`` Fortran-ordered, ``Z`` (k, N)).

    One ``dsyrk`` call when ``N <= SYRK_BLOCK``; otherwise row blocks of ``SYRK_BLOCK``:
    the diagonal-and-right part of each block row by a matrix product (the last one a
    ``dsyrk`` of at most ``SYRK_BLOCK`` columns).  Reason: the AVX-512 OpenBLAS ``dsyrk``
    (also behind ``Z.T @ Z`` in NumPy) segfaults at N = 16384 with k >= 1024, measured on
    scipy-openblas 0.3.31, while general matrix products and narrower ``dsyrk`` calls do
    not; the flop count is the same.
    """
    n_cols = gram.shape[0]
    if Z.size == 0:                     # no rows or no columns (BLAS refuses empty arrays)
        return gram
    if n_cols <= SYRK_BLOCK:
        # pass whichever of Z, Z.T is Fortran-ordered, so that dsyrk reads it without a copy
        if Z.flags.f_contiguous:
            return dsyrk(1.0, Z, beta=1.0, c=gram, trans=1, overwrite_c=1)
        return dsyrk(1.0, np.ascontiguousarray(Z).T, beta=1.0, c=gram, overwrite_c=1)
    for start in range(0, n_cols, SYRK_BLOCK):
        stop = min(start + SYRK_BLOCK, n_cols)
        gram[start:stop, start:] += Z[:, start:stop].T @ Z[:, start:]
    return gram


def eigh_psd(gram):
    """Eigenpairs of a symmetric PSD matrix held in its upper triangle (overwritten).

    An eigensolver rather than a Cholesky factorisation: with the AVX-512 ("SkylakeX")
    kernels of the OpenBLAS bundled in NumPy/SciPy wheels, ``cho_factor`` crashes the
    process on 16,000 x 16,000 SPD matrices (measured on scipy-openblas 0.3.31).
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


def eigh_psd_single(gram):
    """Eigenpairs of a symmetric PSD matrix (upper triangle read, not modified), in float32.

    LAPACK ``ssyevd`` on a single-precision copy: about half the time and memory traffic
    of ``dsyevd``.  The eigenvalues are returned in float64 (clipped at zero), the
    eigenvectors in float32; they are exact for a matrix within about ``n eps_32 ||gram||``
    of ``gram``, so a solve with them needs refining against the float64 matrix
    (:func:`refine_solve`).
    """
    single = np.asfortranarray(gram, dtype=np.float32)
    eigvals, eigvecs = scipy.linalg.eigh(single, lower=False, overwrite_a=True,
                                         check_finite=False, driver="evd")
    return np.maximum(eigvals.astype(np.float64), 0.0), eigvecs


#: Smallest alpha, relative to the largest eigenvalue, at which single-precision eigenpairs
#: give the ridge criteria to about 1e-3: their eigenvalues are off by up to ~eps_32
#: lambda_max (Weyl), which moves the leave-one-out score by ~0.05 eps_32 lambda_max /
#: alpha (measured).  Neighbouring alphas of a half-decade grid differ by more wherever
#: the choice matters.
SINGLE_RESOLUTION = 50 * float(np.finfo(np.float32).eps)


def project(eigvecs, Z, block=1024):
    """``U^T Z`` in float64, without a float64 copy of float32 eigenvectors ``U``."""
    if eigvecs.dtype == np.float64:
        return eigvecs.T @ Z
    out = np.zeros((eigvecs.shape[1], Z.shape[1]))
    for start in range(0, eigvecs.shape[0], block):
        rows = slice(start, start + block)
        out += eigvecs[rows].astype(np.float64).T @ Z[rows]
    return out


def refine_solve(gram, alpha, rhs, eigvals, eigvecs, *, rtol=1e-10, max_steps=6):
    """Solve ``(gram + alpha I) z = rhs`` in float64, preconditioned by approximate eigenpairs.

    Iterative refinement: ``z <- z + U (U^T r) / (lambda + alpha)`` with the residual
    ``r = rhs - (gram + alpha I) z`` computed in float64 (``gram`` full and symmetric).
    With eigenpairs accurate to a relative ``delta`` of the spectrum the residual falls by
    a factor of about ``delta ||gram|| / alpha`` per step.  Returns ``(z, converged)``: ``converged`` is False when ``||r||`` has not fallen
    below ``rtol ||rhs||`` after ``max_steps`` steps (then fall back to a float64 solve).
    """
    shrink = 1.0 / (eigvals + alpha)

    def precondition(r):
        # in the eigenvectors' precision: the correction need only be approximate, the
        # residual it corrects is exact
        r = r.astype(eigvecs.dtype)
        return (eigvecs @ (shrink[:, None].astype(eigvecs.dtype) * (eigvecs.T @ r))
                ).astype(np.float64)

    z = precondition(rhs)
    target = rtol * np.linalg.norm(rhs)
    for _ in range(max_steps):
        residual = rhs - gram @ z - alpha * z
        if np.linalg.norm(residual) <= target:
            return z, True
        z += precondition(residual)
    residual = rhs - gram @ z - alpha * z
    return z, bool(np.linalg.norm(residual) <= target)


def symmetrize_upper(gram, block=SYRK_BLOCK):
    """Copy the upper triangle of square ``gram`` onto its lower one, in place, by blocks."""
    n = gram.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        gram[start:stop, :start] = gram[:start, start:stop].T
        square = gram[start:stop, start:stop]
        square[...] = np.triu(square) + np.triu(square, 1).T
    return gram


def gcv_curve(eigvals, proj_sq, total_ss, n_eff, alphas, n_fixed):
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


def loo_curve(eigvals, eigvecs, proj, base_leverage, n_eff, alphas, perp=None,
              block=1024):
    """Weighted mean squared leave-one-out error of each alpha, averaged over targets.

    In the weighted, centred dual space the fitted values are ``H(alpha) y~`` with
    ``H = U diag(lambda / (lambda + alpha)) U^T + d d^T / sum(w)`` (the last term, the
    unpenalised intercept, is ``base_leverage`` on the diagonal), so the residuals are
    ``r = U (alpha / (lambda + alpha) * q)`` with ``q = U^T P D y`` and the leave-one-out
    residuals ``r_i / (1 - H_ii)`` (Allen's PRESS).  ``r_i / sqrt(w_i)`` is the residual in
    the units of y, hence the score ``sum_i (r_i / (1 - H_ii))^2 / sum(w)``.  Rows are
    taken ``block`` at a time, so the extra memory is O(block n + n n_alphas n_targets).
    With ``U`` a basis of the kernel's range only (``n x k``, ``k < n``), ``perp`` is the
    part of ``P D y`` outside it, ``P D y - U q``, which every alpha leaves in the residual.
    """
    n_targets = proj.shape[1]
    shrink = alphas[None, :] / (eigvals[:, None] + alphas[None, :])      # (k, n_alphas)
    residual_coef = (shrink[:, :, None] * proj[:, None, :]).reshape(len(eigvals), -1)
    kept = 1.0 - shrink
    scores = np.zeros(len(alphas))
    for start in range(0, eigvecs.shape[0], block):
        rows = eigvecs[start:start + block]
        residual = (rows @ residual_coef).reshape(rows.shape[0], len(alphas), n_targets)
        if perp is not None:
            residual += perp[start:start + block, None, :]
        slack = 1.0 - ((rows * rows) @ kept + base_leverage[start:start + block, None])
        scores += press(residual, slack)
    return scores / (n_eff * n_targets)


def press(residual, slack):
    """``sum_i sum_t (r_it / (1 - H_ii))^2`` for every alpha: residuals ``r`` of shape
    (rows, n_alphas, n_targets) and ``slack = 1 - H_ii`` of shape (rows, n_alphas); a row
    with no slack left (it fits itself exactly) scores 0 if its residual is 0, else inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(slack[:, :, None] > 0, residual / slack[:, :, None],
                       np.where(residual == 0, 0.0, np.inf))
    return np.einsum("ijk,ijk->j", loo, loo)


def centre_weighted_gram(gram, sqrt_w, fit_intercept):
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


def centre_weighted_target(Y, sample_weight, fit_intercept):
    """Weighted mean of Y (zero without intercept) and ``P D y``."""
    sqrt_w = np.sqrt(sample_weight)
    y_mean = (sample_weight @ Y / sample_weight.sum() if fit_intercept
              else np.zeros(Y.shape[1]))
    return y_mean, (Y - y_mean) * sqrt_w[:, None]


def pcg(matvec, precondition, rhs, x0, tol, max_iter):
    """Preconditioned conjugate gradients, one independent solve per column of ``rhs``.

    Returns
    -------
    x : ndarray, like ``rhs``
    converged : bool
        Whether every column's residual fell below ``tol`` times its right-hand side's
        norm within ``max_iter`` iterations.
    """
    x = x0.copy()
    r = rhs - matvec(x)
    target = tol * np.maximum(np.linalg.norm(rhs, axis=0), np.finfo(float).tiny)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for _ in range(max_iter):
        active = np.linalg.norm(r, axis=0) > target
        if not active.any():
            return x, True
        q = matvec(p)
        pq = np.einsum("ij,ij->j", p, q)
        step = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
        x += p * step
        r -= q * step
        z = precondition(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        p = z + p * beta
        rz = rz_new
    return x, bool(np.all(np.linalg.norm(r, axis=0) <= target))
