"""Block conjugate gradients on streaming statistics: any n, a wide sparse exact block.

For a design ``Z = [E | T]`` with ``E`` the exact block (for text, the sparse
TF-IDF row and one norm column: ``n_features + 1`` columns, never densified) and ``T`` the
dense sketched tail (``m`` columns), one pass over the rows accumulates

    E^T S E   (its upper triangle: sparse, or dense for a dense exact block),
    C = E^T S T   (dense, d x m),
    T^T S T,  E^T S y,  T^T S y,  and the weighted sums of E, T and y

(``S`` the sample weights), whose size does not depend on ``n``.  Every alpha and weights
``(gamma, tail_gamma)`` (below) is then a symmetric positive definite system in ``d + m``
unknowns, solved by preconditioned conjugate gradients with the block preconditioner
``diag(E^T S E) + alpha`` on the exact block and ``(tail_gamma^2 T^T S T + alpha)^{-1}``
(one eigendecomposition of ``T^T S T`` per fit) on the tail, warm-started along the alpha
path from large to small alpha.  The intercept is handled by centring the statistics (a
rank-one correction, applied as an operator, so the sparse block is never densified).

Alpha and the weights are chosen on a held-out fold: every fifth row (by its position in the
stream, so that fitting in pieces holds out the same rows as one fit), up to 10,000 rows,
is kept aside explicitly and scored for every candidate (weighted mean squared error over
the targets); a path stops three alphas after its best.  The chosen ones are then refitted
on all rows, the held-out ones included.

``C`` is held in single precision: it is the largest statistic (``4 d m`` bytes, the
limit below) and the one read in full at every iteration, so single precision halves
both the memory and the time of a fit; its rounding (a relative 1e-7 per entry) is far
below the solver's tolerances and the sketch's own error.  Everything else is double.
Memory: ``C``, the upper triangle of ``E^T E`` (at most half the sum of the squared
non-zeros per row: the sparse one is symmetric, so half of it is all a product needs),
two ``m x m`` arrays, the held-out rows, and a batch.

A one-shot fit (not :meth:`NTKRidge.partial_fit`, not a distributed fit) with fewer
training rows than exact columns (text: n below the vocabulary size), or with exact
pairs of columns in a sparse exact block, keeps the rows instead of ``C``: ``E`` (sparse, as given) and ``T`` (single precision), ``4 n m`` bytes
against ``4 d m``.  The products with ``C`` then go through the rows, ``E^T S (T B)`` and
``T^T S (E A)``, which reads less memory at every iteration; the solution is the same.
So do those with ``E^T S E`` (``E^T S (E A)``, never formed for a sparse ``E``): with the
exact pairs of columns of short texts, ``E^T S E`` has ~``k^4 / 4`` entries per row of
``k`` non-zeros, the rows ``k^2 / 2``.

The weights ``(gamma, tail_gamma)`` scale the exact block's columns from ``n_linear`` on
(its degrees >= 2, e.g. the pairs) and the tail, never the statistics: the systems are
those of ``[E D | tail_gamma T]``, ``D`` diagonal (1, then ``gamma``).
"""
import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import dsymm, dsyr, dsyr2, get_blas_funcs

from . import HOLDOUT_EVERY, RidgeSolution, column_scale, held_out, register, widen_alphas
from ._linalg import add_gram, eigh_psd, pcg, times, transposed

__all__ = ["solve", "check", "accumulate", "solve_statistics", "BlockStatistics",
           "MAX_CROSS_BYTES"]

#: Largest cross-product block ``E^T T`` (bytes, single precision) the solver accumulates.
MAX_CROSS_BYTES = 2 * 2**30
_CROSS_DTYPE = np.float32
#: Relative residual at which a path solve, and the final refit, stop.
_TOL_PATH = 1e-3
_TOL_FINAL = 1e-6
_MAX_ITER = 1000
#: Alphas scored past the best one before a path stops.
_PATIENCE = 3
#: Sparse batch products merged into the running E^T S E every this many batches.
_MERGE_EVERY = 16
#: A sparse E^T S E denser than this fraction is kept as a dense array instead, if that
#: takes at most _DENSE_ETE_BYTES: past a quarter full, its upper triangle in CSR (12
#: bytes an entry, and a copy at every addition) needs more memory than the dense matrix
#: (8 bytes an entry, added to in place).  Folded or hashed text reaches it: 1M Zipf
#: rows of 50 non-zeros folded to 8,192 columns fill E^T S E almost completely.
_DENSE_ETE_FILL = 0.25
_DENSE_ETE_BYTES = 2 * 2**30
#: Largest dense temporary (bytes) of the sparse product ``E^T T`` of a batch.
_CROSS_BLOCK_BYTES = 64 * 2**20
#: Rows of the cross block corrected at a time when statistics are merged.
_MERGE_ROWS = 4096


def check_cross_size(n_exact, n_tail):
    """ValueError, naming the limit and the ways out, if ``E^T T`` is too large."""
    itemsize = np.dtype(_CROSS_DTYPE).itemsize
    size = itemsize * n_exact * n_tail
    if size > MAX_CROSS_BYTES:
        widest = MAX_CROSS_BYTES // (itemsize * max(n_tail, 1)) - 1
        raise ValueError(
            f"the exact block has {n_exact} columns; with {n_tail} sketched columns its "
            f"cross products need {size / 2**30:.1f} GiB, more than the "
            f"{MAX_CROSS_BYTES / 2**30:.0f} GiB limit of solver='cg'.  Hash the input to at "
            f"most {widest} columns (e.g. sklearn's HashingVectorizer(n_features=2**"
            f"{int(np.log2(max(widest, 2)))})), lower n_components, or use "
            f"exact_degrees=1 (no exact pairs of columns) or 0 in the feature map")


class BlockStatistics:
    """Sums over the training rows of the blocks ``[E | T]``, and the held-out rows.

    ``T`` and ``y`` are shifted by the weighted means of the first batch (centring is
    shift-invariant; the shift keeps ``T^T T - s s^T / n`` free of cancellation).
    ``E`` is not shifted: it may be sparse.
    """

    def __init__(self, n_exact, n_tail, n_targets, sparse_exact, fit_intercept,
                 keep_rows=False):
        self.fit_intercept = fit_intercept
        self.keep_rows = keep_rows
        self.sparse_exact = sparse_exact
        self.n_exact, self.n_tail = n_exact, n_tail
        self.sum_w = 0.0
        self.shift_t = self.shift_y = None
        self.sum_e = np.zeros(n_exact)
        self.sum_t = np.zeros(n_tail)
        self.sum_y = np.zeros(n_targets)
        # the upper triangle of E^T S E (it is symmetric); a one-shot fit keeping its
        # sparse rows multiplies through them instead
        self.ete = (None if sparse_exact and keep_rows
                    else sp.csr_matrix((n_exact, n_exact)) if sparse_exact
                    else np.zeros((n_exact, n_exact), order="F"))
        self.sq_e = np.zeros(n_exact)                              # diagonal of E^T S E
        self._ete_pending = []
        # C = E^T S T, or the training rows it would be summed from (see the module doc)
        self.cross = None if keep_rows else np.zeros((n_exact, n_tail), dtype=_CROSS_DTYPE)
        self._rows = []                                            # (E, T, w) batches
        self._rows_t = None                     # (E^T, T, w) of all of them, once solved
        self.gram_t = np.zeros((n_tail, n_tail), order="F")       # upper triangle
        self.ety = np.zeros((n_exact, n_targets))
        self.tty = np.zeros((n_tail, n_targets))
        self.held = []                                             # (E, T, Y, w) batches
        self.n_held = 0

    @property
    def n_targets(self):
        return self.sum_y.shape[0]

    def update(self, batch):
        """Add one :class:`Batch`: its held-out rows kept, the others summed."""
        n_rows = batch.Y.shape[0]
        index = batch.start + np.arange(n_rows)
        held = held_out(index)
        if held.any():
            rows = np.flatnonzero(held)
            self.held.append(tuple(_take(part, rows) for part in
                                   (batch.exact, batch.tail, batch.Y, batch.sample_weight)))
            self.n_held += rows.size
        train = np.flatnonzero(~held)
        if train.size:
            self._accumulate(*(_take(part, train) for part in
                               (batch.exact, batch.tail, batch.Y, batch.sample_weight)))

    def _accumulate(self, E, T, Y, w):
        E, T = _blocks(E, T, Y.shape[0], self.n_exact, self.n_tail)
        if self.shift_t is None:
            use = self.fit_intercept and w.sum() > 0
            self.shift_t = w @ T / w.sum() if use else np.zeros(self.n_tail)
            self.shift_y = w @ Y / w.sum() if use else np.zeros(Y.shape[1])
        T = T - self.shift_t
        Y = Y - self.shift_y
        self.sum_w += w.sum()
        self.sum_e += np.asarray(E.T @ w).ravel()
        self.sq_e += np.asarray((E.multiply(E) if sp.issparse(E) else E * E).T @ w).ravel()
        self.sum_t += w @ T
        self.sum_y += w @ Y
        wY = Y * w[:, None]
        self.ety += np.asarray(E.T @ wY)
        self.tty += T.T @ wY
        sqrt_w = np.sqrt(w)
        if self.keep_rows:
            self._rows.append((E, T.astype(_CROSS_DTYPE), w))
        if self.sparse_exact:
            Ew = sp.diags(sqrt_w) @ E
            if not self.keep_rows:
                Tw = T * sqrt_w[:, None]
                # by blocks of tail columns: the whole product would be a dense temporary
                # of 8 d m bytes (1 GiB at d = 32,768, m = 4,096), on top of C, per batch
                step = max(1, _CROSS_BLOCK_BYTES // (8 * max(self.n_exact, 1)))
                for start in range(0, self.n_tail, step):
                    self.cross[:, start:start + step] += Ew.T @ Tw[:, start:start + step]
            if self.ete is not None:
                self._ete_pending.append(sp.triu(Ew.T @ Ew, format="csr"))
                # once dense, each batch product is added in place at once (no copies)
                if len(self._ete_pending) >= (_MERGE_EVERY if sp.issparse(self.ete) else 1):
                    self._merge()
        else:
            Ew = E * sqrt_w[:, None]
            if not self.keep_rows:
                self.cross += Ew.T @ (T * sqrt_w[:, None])
            self.ete = add_gram(self.ete, Ew)
        self.gram_t = add_gram(self.gram_t, T * sqrt_w[:, None])

    def merge(self, other):
        """Add the statistics of other rows, in place (``other`` is left unchanged).

        ``other``'s sums are moved to this object's shift first (``t - a = (t - b) + (b -
        a)``, rank-one corrections), and its held-out rows are appended: merging the
        statistics of consecutive row ranges in order equals one pass over all of them,
        up to rounding.  A partition of a distributed fit gives one object; the merged one
        is solved by :func:`solve_statistics`.
        """
        if self.keep_rows or other.keep_rows:
            raise ValueError("statistics that keep their rows (a one-shot fit) cannot be "
                             "merged")
        self.held.extend(other.held)
        self.n_held += other.n_held
        if other.shift_t is None:                      # no training rows
            return self
        if self.shift_t is None:
            self.shift_t, self.shift_y = other.shift_t.copy(), other.shift_y.copy()
        dt = other.shift_t - self.shift_t
        dy = other.shift_y - self.shift_y
        weight = other.sum_w
        if self.sparse_exact:
            self._ete_pending.extend([other.ete, *other._ete_pending])
            self._merge()
        else:
            self.ete += other.ete                      # E is not shifted: no correction
        self.cross += other.cross
        self.gram_t += other.gram_t
        if weight > 0 and np.any(dt):
            # sum w e (t - b + dt)^T, by row blocks (no d x m temporary)
            for start in range(0, self.n_exact, _MERGE_ROWS):
                rows = slice(start, start + _MERGE_ROWS)
                self.cross[rows] += np.outer(other.sum_e[rows], dt)
            self.gram_t = dsyr2(1.0, other.sum_t, dt, a=self.gram_t, overwrite_a=1)
            self.gram_t = dsyr(weight, dt, a=self.gram_t, overwrite_a=1)
        self.ety += other.ety + np.outer(other.sum_e, dy)
        self.tty += (other.tty + np.outer(other.sum_t, dy) + np.outer(dt, other.sum_y)
                     + weight * np.outer(dt, dy))
        self.sum_e += other.sum_e
        self.sq_e += other.sq_e
        self.sum_t += other.sum_t + weight * dt
        self.sum_y += other.sum_y + weight * dy
        self.sum_w += weight
        return self

    def _merge(self):
        """Add the pending products (sparse batch products, or merged statistics' dense
        ones) into E^T S E, switching it to a dense array once it is dense enough."""
        pending, self._ete_pending = self._ete_pending, []
        if not pending:
            return
        dense = [block for block in pending if not sp.issparse(block)]
        sparse = [block for block in pending if sp.issparse(block)]
        # the small batch products first, then one addition to the large E^T S E
        # (adding them one by one would copy it once per batch product)
        total = sum(sparse[1:], sparse[0]).tocsr() if sparse else None
        if sp.issparse(self.ete) and not dense:
            self.ete = (self.ete + total).tocsr()
            n = self.n_exact
            if (2 * self.ete.nnz > _DENSE_ETE_FILL * n * n
                    and 8 * n * n <= _DENSE_ETE_BYTES):
                self.ete = self.ete.toarray(order="F")
            return
        if sp.issparse(self.ete):
            self.ete = self.ete.toarray(order="F")
        for block in dense:
            self.ete += block
        if total is not None:
            _add_sparse(self.ete, total)

    def held_out(self):
        """The held-out rows stacked: ``E`` (CSR/dense), ``T``, ``Y``, ``w``."""
        if not self.held:
            return None
        E, T, Y, w = zip(*self.held)
        E = [_blocks(e, t, y.shape[0], self.n_exact, self.n_tail)[0]
             for e, t, y in zip(E, T, Y)]
        T = [_blocks(None, t, y.shape[0], 0, self.n_tail)[1] for t, y in zip(T, Y)]
        stack = sp.vstack if self.sparse_exact else np.vstack
        return (stack(E).tocsr() if self.sparse_exact else stack(E), np.vstack(T),
                np.vstack(Y), np.concatenate(w))


    def rows(self):
        """The kept training rows stacked once: ``E^T`` (:func:`transposed`: the layout
        both products through the rows are fastest in), ``T`` (shifted, single
        precision), ``w``."""
        if self._rows_t is None:
            E, T, w = zip(*self._rows)
            stack = sp.vstack if self.sparse_exact else np.vstack
            self._rows_t = (transposed(stack(E)), np.vstack(T), np.concatenate(w))
            self._rows = []
        return self._rows_t


def _add_sparse(dense, S):
    """``dense += S`` in place for a CSR ``S`` (duplicates summed first: fancy-index
    addition keeps one of several entries at the same position)."""
    S.sum_duplicates()
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    dense[rows, S.indices] += S.data


def _take(part, rows):
    return None if part is None else part[rows]


def _blocks(E, T, n_rows, n_exact, n_tail):
    """Missing blocks as empty arrays, so that every product has the right shape."""
    if E is None:
        E = np.zeros((n_rows, n_exact))
    if T is None:
        T = np.zeros((n_rows, n_tail))
    return E, np.asarray(T, dtype=np.float64)


class _NormalEquations:
    """The centred normal equations of ``[E D | tail_gamma T]`` from the statistics.

    With ``include_held=True`` the held-out rows are added (as explicit rows), which is
    the system of the final refit.  The methods take ``weights = (gamma, tail_gamma)``:
    ``D`` is diagonal, 1 on the exact block's first ``n_linear`` columns and ``gamma`` on
    the others (its degrees >= 2; :meth:`column_scale`).  The products with ``E^T S T``
    are in single precision; with ``dtype=np.float32`` so are those with ``T^T S T`` and the tail
    preconditioner (for the path solves, which stop at a relative residual of 1e-3).
    The iterates and everything else stay in double precision.
    """

    def __init__(self, stats, include_held, n_linear, dtype=np.float64):
        stats._merge()
        self.stats = stats
        self.dtype = np.dtype(dtype)
        self.gram_t = stats.gram_t.astype(dtype, order="F", copy=False)
        self._symm = get_blas_funcs("symm", (self.gram_t,))
        held = stats.held_out() if include_held else None
        self.held = held
        d = stats.n_exact
        self.d = d
        sum_w, sum_e, sum_t, sum_y = stats.sum_w, stats.sum_e, stats.sum_t, stats.sum_y
        self.n_linear = n_linear
        self._ete_diagonal = stats.ete.diagonal() if sp.issparse(stats.ete) else None
        self.diag_e = stats.sq_e.copy()
        ety, tty = stats.ety, stats.tty
        if held is not None:
            E, T, Y, w = held
            T = T - stats.shift_t
            Y = Y - stats.shift_y
            sum_w = sum_w + w.sum()
            sum_e = sum_e + np.asarray(E.T @ w).ravel()
            sum_t = sum_t + w @ T
            sum_y = sum_y + w @ Y
            ety = ety + np.asarray(E.T @ (Y * w[:, None]))
            tty = tty + T.T @ (Y * w[:, None])
            sq = E.multiply(E) if sp.issparse(E) else E * E
            self.diag_e = self.diag_e + np.asarray(sq.T @ w).ravel()
            self.held = (E, T, w)
        self.sum_w, self.sum_e, self.sum_t = sum_w, sum_e, sum_t
        self.mean_y = sum_y / sum_w if stats.fit_intercept else np.zeros_like(sum_y)
        if stats.fit_intercept:
            self.diag_e = self.diag_e - sum_e ** 2 / sum_w
            self.ety_c = ety - np.outer(sum_e, self.mean_y)
            self.tty_c = tty - np.outer(sum_t, self.mean_y)
        else:
            self.ety_c, self.tty_c = ety, tty
        self.mean_e = sum_e / sum_w if stats.fit_intercept else np.zeros(d)
        self.mean_t = stats.shift_t + (sum_t / sum_w if stats.fit_intercept else 0.0)
        self.intercept_y = stats.shift_y + self.mean_y
        self._tail_eigen = None

    def tail_eigen(self):
        """Eigenpairs of the centred training ``T^T S T`` (for the preconditioner); the
        eigenvectors in the system's precision."""
        if self._tail_eigen is None:
            stats = self.stats
            gram = stats.gram_t.copy(order="F")
            if stats.fit_intercept and stats.n_tail:
                gram = dsyr(-1.0 / stats.sum_w, stats.sum_t, a=gram, overwrite_a=1)
            lam, V = eigh_psd(gram)
            self._tail_eigen = lam, V.astype(self.dtype, copy=False)
        return self._tail_eigen

    def column_scale(self, weights):
        """``D``: 1 on the exact block's first ``n_linear`` columns, ``gamma`` after."""
        return column_scale(self.n_linear, self.d, self.d, *weights)

    def matvec(self, X, weights, alpha):
        """``(Z_c^T S Z_c + alpha I) X`` for ``X`` of shape (d + m, t)."""
        d, stats = self.d, self.stats
        tail = weights[1]
        scale = self.column_scale(weights)[:, None]
        A, B = X[:d] * scale, X[d:]
        if stats.ete is None:                                       # through the rows
            Et, _, w = stats.rows()
            top = np.asarray(Et @ (times(Et, A) * w[:, None]))
        elif sp.issparse(stats.ete):                                # U + U^T - diag(U)
            top = stats.ete @ A + stats.ete.T @ A - self._ete_diagonal[:, None] * A
        else:                                                       # dense: upper triangle
            top = dsymm(1.0, stats.ete, A, side=0, lower=0)
        bottom = np.zeros_like(B)
        if tail and B.shape[0]:
            # tail_gamma = 0 (a ridge on the exact block alone) skips the tail
            top += tail * self._cross(B)
            bottom += tail * self._cross_t(A)
            bottom += tail * tail * self._symm(1.0, self.gram_t, B.astype(self.dtype),
                                               side=0, lower=0)
        if self.held is not None:
            E, T, w = self.held
            u = np.asarray(E @ A) + (tail * (T @ B) if tail else 0.0)
            u *= w[:, None]
            top += np.asarray(E.T @ u)
            if tail:
                bottom += tail * (T.T @ u)
        if stats.fit_intercept:
            proj = (self.sum_e @ A + tail * (self.sum_t @ B)) / self.sum_w
            top -= np.outer(self.sum_e, proj)
            if tail:
                bottom -= tail * np.outer(self.sum_t, proj)
        return np.vstack([top * scale, bottom]) + alpha * X

    def _cross(self, B):
        """``E^T S T B`` (training rows), from ``C`` or through the kept rows."""
        if self.stats.cross is not None:
            return self.stats.cross @ B.astype(_CROSS_DTYPE)
        Et, T, w = self.stats.rows()
        return np.asarray(Et @ ((T @ B.astype(_CROSS_DTYPE)) * w[:, None]))

    def _cross_t(self, A):
        """``T^T S E A`` (training rows), from ``C`` or through the kept rows."""
        if self.stats.cross is not None:
            return self.stats.cross.T @ A.astype(_CROSS_DTYPE)
        Et, T, w = self.stats.rows()
        return T.T @ (times(Et, A) * w[:, None]).astype(_CROSS_DTYPE)

    def rhs(self, weights):
        return np.vstack([self.ety_c * self.column_scale(weights)[:, None],
                          weights[1] * self.tty_c])

    def preconditioner(self, weights, alpha):
        d, tail = self.d, weights[1]
        inv_e = 1.0 / np.maximum(self.column_scale(weights) ** 2 * self.diag_e + alpha,
                                 alpha)
        if self.stats.n_tail:
            lam, V = self.tail_eigen() if tail else (None, None)
            inv_t = (1.0 / (tail * tail * lam + alpha)).astype(V.dtype) if tail else None
        else:
            V = None

        def apply(R):
            out = np.empty_like(R)
            out[:d] = R[:d] * inv_e[:, None]
            if V is not None:
                out[d:] = V @ ((V.T @ R[d:].astype(V.dtype)) * inv_t[:, None])
            else:
                out[d:] = R[d:] / alpha
            return out
        return apply

    def intercept(self, X, weights):
        if not self.stats.fit_intercept:
            return np.zeros(X.shape[1])
        d = self.d
        return (self.intercept_y - self.mean_e @ (X[:d] * self.column_scale(weights)[:, None])
                - weights[1] * (self.mean_t @ X[d:]))


class _Path:
    """Solutions and held-out scores along the alpha grid at one ``(gamma, tail_gamma)``."""

    def __init__(self, system, held, weights):
        self.system, self.held, self.weights = system, held, weights
        # alpha -> solution, only those needed later (see _keep): each is (d + m) x t,
        # which with a wide exact block (pairs of words) and many targets is ~0.2 GB
        self.solutions = {}
        self._best = (np.inf, None)                    # (score, alpha) of the path

    def solve(self, alpha, start, tol):
        system, weights = self.system, self.weights
        return pcg(lambda X: system.matvec(X, weights, alpha),
                   system.preconditioner(weights, alpha), system.rhs(weights), start, tol,
                   _MAX_ITER)[0]

    def score(self, X):
        E, T, Y, w = self.held
        d = self.system.d
        pred = (np.asarray(E @ (X[:d] * self.system.column_scale(self.weights)[:, None]))
                + self.weights[1] * (T @ X[d:])
                + self.system.intercept(X, self.weights))
        return float(w @ ((Y - pred) ** 2).mean(axis=1) / w.sum())

    def scores(self, alphas, stop_early=True):
        """Held-out score of every alpha, visiting them from the largest down."""
        alphas = np.asarray(alphas, dtype=float)
        out = np.full(len(alphas), np.nan)
        order = np.argsort(-alphas, kind="stable")
        start = self.nearest(alphas[order[0]])
        best, since_best = np.inf, 0
        for k in order:
            start = self.solve(alphas[k], start, _TOL_PATH)
            out[k] = self.score(start)
            self._keep(float(alphas[k]), start, out[k])
            if out[k] < best:
                best, since_best = out[k], 0
            else:
                since_best += 1
                if stop_early and since_best >= _PATIENCE:
                    break
        return out

    def _keep(self, alpha, solution, score):
        """Store ``solution`` and drop those no longer needed: the refit starts from the
        best one, and a widened grid from the ends of the alphas visited."""
        self.solutions[alpha] = solution
        if score < self._best[0]:
            self._best = (score, alpha)
        needed = {self._best[1], min(self.solutions), max(self.solutions)}
        for visited in [a for a in self.solutions if a not in needed]:
            del self.solutions[visited]

    def nearest(self, alpha):
        """The stored solution of the alpha nearest ``alpha`` (log scale), or zeros."""
        if not self.solutions:
            return np.zeros((self.system.d + self.system.stats.n_tail,
                             self.system.stats.n_targets))
        key = min(self.solutions, key=lambda a: abs(np.log(a / alpha)))
        return self.solutions[key]


def check(design, spec, keep_rows=False):
    """ValueError if the cg solver cannot fit this design with this spec (``keep_rows``:
    as a one-shot fit that keeps its rows, which has no cross block)."""
    if spec.criterion not in ("auto", "holdout"):
        raise ValueError(f"solver='cg' chooses alpha on a held-out fold: criterion must be "
                         f"'auto' or 'holdout', got {spec.criterion!r}")
    if not keep_rows:
        check_cross_size(design.n_exact, design.n_tail)


def accumulate(design, spec, state=None, keep_rows=False):
    """The statistics of ``state`` (None: none yet) plus those of the design's rows;
    ``keep_rows`` keeps the training rows instead of ``C`` (a one-shot fit)."""
    stats = state or BlockStatistics(design.n_exact, design.n_tail, design.n_targets,
                                     design.sparse_exact, spec.fit_intercept, keep_rows)
    for batch in design.batches():
        stats.update(batch)
    return stats


@register("cg")
def solve(design, spec, state=None):
    """Block-CG ridge from streaming statistics, (alpha, gamma) by a held-out fold."""
    # the rows are kept when they are smaller than C (n below the exact width), or when
    # E^T S E has no bound: exact pairs of columns, ~k^4 / 4 entries a row
    pairs = design.sparse_exact and design.n_linear < design.n_exact
    keep_rows = (state is None and not spec.resumable
                 and ((design.n_tail > 0 and design.n_samples < design.n_exact) or pairs))
    check(design, spec, keep_rows)
    solution = solve_statistics(accumulate(design, spec, state, keep_rows), spec,
                                design.n_linear, design.n_exact)
    if keep_rows:
        solution.state = None                      # rows cannot be continued from
    return solution


def solve_statistics(stats, spec, n_linear, n_exact):
    """The solution from accumulated (or merged) :class:`BlockStatistics`.

    ``n_linear`` is the number of leading exact columns no weight scales (the exact
    degrees 0 and 1); ``gamma`` scales the other exact columns, ``tail_gamma`` the tail.
    ``n_exact`` is the exact block's width, as in the statistics.
    """
    if n_exact != stats.n_exact:
        raise ValueError(f"the statistics hold {stats.n_exact} exact columns, not {n_exact}")
    if stats.n_held == 0 or stats.sum_w <= 0:
        raise ValueError(f"solver='cg' holds out every {HOLDOUT_EVERY}th row to choose "
                         f"alpha and needs at least {HOLDOUT_EVERY} rows with positive "
                         f"weight; use solver='dual' for smaller data")
    held = stats.held_out()
    train_system = _NormalEquations(stats, include_held=False, n_linear=n_linear,
                                    dtype=np.float32)
    scores = np.full((len(spec.gammas), len(spec.alphas)), np.nan)
    best = None
    for g, weights in enumerate(spec.gammas):
        path = _Path(train_system, held, tuple(float(v) for v in weights))
        scores[g] = path.scores(spec.alphas)
        if best is None or np.nanmin(scores[g]) < np.nanmin(scores[best[0]]):
            best = (g, path)
    g, path = best
    alphas, _, k = widen_alphas(lambda new: path.scores(new, stop_early=False),
                                spec.alphas, scores[g])
    alpha, weights = float(alphas[k]), path.weights
    start = path.nearest(alpha)
    lam, V = train_system.tail_eigen() if weights[1] else (None, None)
    del best, path, train_system                       # free the single-precision copies
    full = _NormalEquations(stats, include_held=True, n_linear=n_linear)
    if weights[1]:
        full._tail_eigen = lam, V.astype(np.float64)   # close enough to precondition
    X = pcg(lambda Z: full.matvec(Z, weights, alpha), full.preconditioner(weights, alpha),
            full.rhs(weights), start, _TOL_FINAL, _MAX_ITER)[0]
    coef = X.copy()
    coef[:full.d] *= full.column_scale(weights)[:, None]
    coef[full.d:] *= weights[1]
    return RidgeSolution(coef=coef, dual_coef=None, intercept=full.intercept(X, weights),
                         alpha=alpha, gamma=weights[0], tail_gamma=weights[1],
                         alphas=alphas, gammas=spec.gammas, scores=scores,
                         criterion="holdout", state=stats)
