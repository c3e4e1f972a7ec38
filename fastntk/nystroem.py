"""Nyström features of the exact NTK: a data-dependent map for low-dimensional data.

The sketches and random features of this package approximate the NTK without looking at
the data, through its power series in the cosine (NTKSketch) or through random ReLU
units (NTKRandomFeatures).  On dense data with a handful of columns that approximation
is what limits kernel ridge: near neighbours (cosines near 1) are what the model is made
of, and there the power series converges slowly, the NTK's derivative being infinite at
cosine 1, while random features are unbiased but noisy.  The Nyström method (Williams
and Seeger, 2001) keeps the exact kernel instead, on the span of ``m`` landmark rows
``L``:

    phi(x) = K_LL^{+1/2} K(L, x),    <phi(x), phi(y)> = K(x, L) K_LL^+ K(L, y),

exact whenever ``x`` or ``y`` is a landmark, and the kernel's projection on the
landmarks' span (the error ``K - phi phi^T`` is positive semi-definite).  Its cost is
O(m d + m^2) per row (``m`` exact kernel evaluations, then the ``m x m`` factor),
``m x m`` memory, and the landmarks are stored in the model.
"""
import numbers

import numpy as np
import scipy.linalg
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import check_memory, fit_method, validate_data, validate_rows
from .kernels import ntk_dot_product, ntk_kernel

__all__ = ["NTKNystroem", "RemainderNystroem"]

#: Rows transformed at a time: bounds the ``rows x n_components`` kernel block.
_BLOCK_ROWS = 2048

#: Relative cut-off of K_LL's eigenvalues (see _inverse_sqrt).
_RCOND = 1e-10


def _inverse_sqrt(K):
    """``K^{+1/2}`` of a symmetric positive semi-definite matrix, and its rank.

    Eigenvalues below ``RCOND`` times the largest are dropped, not inverted: zero ones
    (the kernel of repeated or collinear landmarks) come out of ``eigh`` as rounding
    noise of either sign, which the inverse square root would blow up.
    """
    if K.shape[0] == 0:
        return np.zeros((0, 0)), 0
    lam, U = scipy.linalg.eigh(K)
    keep = lam > _RCOND * max(lam[-1], 0.0)
    U = U[:, keep]
    return (U / np.sqrt(lam[keep])) @ U.T, int(keep.sum())


class RemainderNystroem:
    """Nyström features of what the NTK's Taylor polynomial leaves out, on unit rows.

    For unit rows ``u, v`` of cosine ``t`` the remainder ``R(t) = K_L(t) - sum_j c_j
    t^j``, with ``c_j`` the NTK's Taylor coefficients of some degrees ``j``, is itself a
    dot-product kernel with the other (non-negative) Taylor coefficients, hence positive
    semi-definite; on landmark rows ``L`` its Nyström features ``R(u, L) R_LL^{+1/2}``
    complete exact features of those degrees into features of the NTK itself.  Unlike a
    truncated polynomial, the remainder keeps the NTK's behaviour near ``t = 1``, where
    its derivative is infinite.

    Parameters
    ----------
    landmarks : ndarray of shape (n_landmarks, n_features)
        Unit-norm rows (float64).
    taylor : ndarray
        ``c_j`` of the degrees represented elsewhere, zero for the others.
    depth : int
        Depth ``L`` of the NTK.
    """

    def __init__(self, landmarks, taylor, depth):
        self.landmarks = np.ascontiguousarray(landmarks, dtype=np.float64)
        self.taylor = np.asarray(taylor, dtype=np.float64)
        self.depth = int(depth)
        self.normalization, self.rank = _inverse_sqrt(self._kernel(self.landmarks))
        self.n_components = self.landmarks.shape[0]

    def _kernel(self, U):
        """``R(u, l)`` for every unit (or zero) row ``u`` of ``U`` and landmark ``l``."""
        t = np.clip(np.asarray(U @ self.landmarks.T, dtype=np.float64), -1.0, 1.0)
        return (ntk_dot_product(t, depth=self.depth)
                - np.polynomial.polynomial.polyval(t, self.taylor))

    def transform(self, U, out):
        """Features of the unit (or zero) rows of ``U`` (dense or CSR) into ``out``."""
        out[:] = self._kernel(U) @ self.normalization
        return out

    def dot(self, U, W):
        """``transform(U) @ W`` as ``R(U, L) (N W)``: ``O(m d + m k)`` a row.

        ``N W`` costs ``O(m^2 k)``, more than a one-row request's features: it is kept
        for the last ``W`` (a model predicts with one), and recomputed when ``W``
        changes.
        """
        cached = getattr(self, "_folded", None)
        if cached is None or not np.array_equal(cached[0], W):
            cached = (np.array(W, dtype=np.float64), self.normalization @ W)
            self._folded = cached                # one assignment: safe across threads
        return self._kernel(U) @ cached[1]


class NTKNystroem(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Nyström features of the exact NTK (or NNGP) of a fully-connected ReLU network.

    ``fit`` draws ``n_components`` landmark rows uniformly without replacement from ``X``
    and keeps them; ``transform`` maps a row ``x`` to ``K_LL^{+1/2} K(L, x)``, whose inner
    products are the exact kernel projected on the landmarks' span (exact on the
    landmarks themselves).  Use it where the data has a handful of columns and the
    sketches' polynomial in the cosine is what limits the model (on the ccpp regression,
    d = 4, it comes within 1% of exact kernel ridge where fastntk.NTKSketch stays 10%
    above it); with a few tens of columns NTKSketch's exact low degrees usually do
    better, and on sparse text prefer NTKSketch, whose cost does not grow with the
    number of landmarks and which keeps the rows' words exactly.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden ReLU layers (see fastntk.ntk_kernel).
    kind : {"ntk", "nngp"}, default="ntk"
        The kernel: the NTK or the Gaussian-process kernel of the same network.
    n_components : int, default=1024
        Number of landmarks, the output width.  If ``X`` in ``fit`` has fewer rows, every
        row is a landmark and the width is that number of rows.
    random_state : int, RandomState instance or None, default=None
        Draws the landmarks.

    Attributes
    ----------
    components_ : ndarray or CSR matrix of shape (n_components_, n_features_in_)
        The landmark rows, as given (CSR for sparse input, never densified): the model
        stores ``n_components_`` rows of the data.
    component_indices_ : ndarray of shape (n_components_,)
        Their rows in the ``X`` of ``fit``, sorted.
    normalization_ : ndarray of shape (n_components_, n_components_)
        ``K_LL^{+1/2}``.
    n_components_ : int
        The output width.
    rank_ : int
        The numerical rank of ``K_LL`` (lower than ``n_components_`` for repeated or
        collinear landmarks).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastntk import NTKNystroem, ntk_kernel
    >>> X = np.random.default_rng(0).standard_normal((50, 4))
    >>> F = NTKNystroem(depth=2, n_components=50, random_state=0).fit_transform(X)
    >>> bool(np.allclose(F @ F.T, ntk_kernel(X, depth=2)))
    True
    """

    _parameter_constraints = {
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "kind": [StrOptions({"ntk", "nngp"})],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, depth=1, kind="ntk", n_components=1024, random_state=None):
        self.depth = depth
        self.kind = kind
        self.n_components = n_components
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components_

    @fit_method
    def fit(self, X, y=None):
        """Draw the landmarks from the rows of ``X`` and factor their kernel matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32),
                          reset=True)
        m = min(self.n_components, X.shape[0])
        # K_LL, its eigenvectors and the factor; a block of rows in transform
        check_memory(8 * m * (3 * m + 2 * _BLOCK_ROWS),
                     f"NTKNystroem(n_components={self.n_components})")
        rng = check_random_state(self.random_state)
        self.component_indices_ = np.sort(rng.choice(X.shape[0], m, replace=False))
        self.components_ = X[self.component_indices_]
        K = ntk_kernel(self.components_.astype(np.float64, copy=False), depth=self.depth,
                       kind=self.kind)
        self.normalization_, self.rank_ = _inverse_sqrt(K)
        self.n_components_ = m
        return self

    def transform(self, X):
        """Nyström features of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components_)
            float32 if ``X`` is float32, else float64 (computed in float64 either way).
            A row's features agree to rounding, not bit for bit, across batches of
            different sizes.
        """
        check_is_fitted(self)
        X = validate_rows(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        out = np.empty((X.shape[0], self.n_components_), dtype=X.dtype)
        landmarks = self.components_.astype(np.float64, copy=False)
        for start in range(0, X.shape[0], _BLOCK_ROWS):
            rows = X[start:start + _BLOCK_ROWS].astype(np.float64, copy=False)
            K = ntk_kernel(rows, landmarks, depth=self.depth, kind=self.kind)
            # a BLAS product, whose rounding depends on the batch's shape; padding a
            # request to a fixed shape would cost a full block's product per row
            out[start:start + rows.shape[0]] = K @ self.normalization_
        return out
