"""Oblivious sketches whose inner products estimate inner products.

Every map is linear (or multilinear, for the tensor sketches), drawn once at ``fit``
from ``random_state`` and applied row by row, with

    E <S a, S b> = <a, b>            (CountSketch, SRHT)
    E <S(x ⊗ y), S(x' ⊗ y')> = <x, x'> <y, y'>    (TensorSRHT)
    E <S x^(⊗p), S y^(⊗p)> = <x, y>^p              (TensorSketch, PolySketch)

``fit`` reads only the input width.  ``transform`` accepts CSR, CSC, COO (converted
to CSR in O(nnz), never densified) and dense input, keeps float32 as float32 (any
other dtype becomes float64), and gives bit-identical rows whatever the other rows
and whatever the number of threads.

References
----------
Charikar, Chen, Farach-Colton, "Finding frequent items in data streams", 2002.
Ailon, Chazelle, "The fast Johnson–Lindenstrauss transform", 2009.
Pham, Pagh, "Fast and scalable polynomial kernels via explicit feature maps", KDD 2013.
Ahle, Kapralov, Knudsen, Pagh, Velingker, Woodruff, Zandieh, "Oblivious sketching of
high-degree polynomial kernels", SODA 2020.
Zandieh, Han, Avron, Shoham, Kim, Shin, "Scaling neural tangent kernels via sketching
and random features", NeurIPS 2021.
"""
import numbers

import numpy as np
import scipy.fft
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _hadamard
from ._validation import check_array, check_memory, fit_method, validate_data
from ._threading import effective_n_threads as _effective_n_threads
from ._threading import next_pow2 as _next_pow2
from ._threading import limit as _limit_threads
from ._compiled import (
    countsketch_csr,
    countsketch_csr_hashed,
    countsketch_dense,
    hashed_codes,
)

__all__ = ["CountSketch", "SRHT", "TensorSRHT", "TensorSketch", "PolySketch", "unpack_codes"]

_FLOAT_DTYPES = (np.float64, np.float32)

# Values per batch of rows (~8 MB in float64): bounds the scratch memory of a transform
# and keeps a batch's leaves in cache while the PolySketch tree combines them.
_BATCH_VALUES = 2**20


# --------------------------------------------------------------------------- helpers


def _random_signs(rng, shape):
    return (2 * rng.randint(0, 2, size=shape) - 1).astype(np.int8)


def _random_codes(rng, n_features, n_sketches, n_components):
    """Packed CountSketch codes: bucket if the sign is +1, ``~bucket`` if it is -1."""
    buckets = rng.randint(0, n_components, size=(n_features, n_sketches)).astype(np.int32)
    negative = rng.randint(0, 2, size=(n_features, n_sketches)).astype(bool)
    return np.where(negative, ~buckets, buckets)


def unpack_codes(codes):
    """Buckets and signs of packed CountSketch codes.

    Parameters
    ----------
    codes : ndarray of int32
        ``bucket`` where the sign is +1, ``~bucket = -bucket - 1`` where it is -1.

    Returns
    -------
    buckets : ndarray of int32, same shape
    signs : ndarray of int8, same shape, values +-1
    """
    codes = np.asarray(codes, dtype=np.int32)
    negative = codes < 0
    return np.where(negative, ~codes, codes), np.where(negative, -1, 1).astype(np.int8)


def _sample_coordinates(rng, n_pad, n_components, n_sketches=None):
    """``n_components`` distinct coordinates of ``[0, n_pad)`` (int32), per sketch."""
    if n_sketches is None:
        return rng.choice(n_pad, n_components, replace=False).astype(np.int32)
    idx = np.empty((n_sketches, n_components), dtype=np.int32)
    for k in range(n_sketches):
        idx[k] = rng.choice(n_pad, n_components, replace=False)
    return idx


def _validate(estimator, X, *, reset):
    """Validated float32/float64 input: canonical CSR or C-contiguous dense."""
    return validate_data(estimator, X, accept_sparse="csr", dtype=_FLOAT_DTYPES, order="C",
                         reset=reset)


def _size(X):
    """Stored values of ``X``: the work of one pass over it."""
    return X.nnz if sp.issparse(X) else X.size


def _rows(X, start, stop, writable=False):
    """Rows ``start:stop`` of ``X`` as the compiled kernels take them.

    A dense block, or the CSR triple ``(data, indices, indptr)`` of the rows (views of
    ``X``; only ``indptr`` is rebased, a copy of ``stop - start + 1`` integers).
    ``writable=True`` copies a read-only block (e.g. from a read-only memmap): Numba
    would otherwise compile, at length, separate read-only specialisations of its
    kernels; the copy costs one batch of memory, not the matrix.
    """
    if sp.issparse(X):
        lo, hi = X.indptr[start], X.indptr[stop]
        data, indices = X.data[lo:hi], X.indices[lo:hi]
        if writable and not (data.flags.writeable and indices.flags.writeable):
            data, indices = data.copy(), indices.copy()
        return data, indices, X.indptr[start:stop + 1] - lo
    rows = X[start:stop]
    if writable and not rows.flags.writeable:
        rows = rows.copy()
    return rows


def _writable(a):
    """``a``, or a copy if it is read-only (fitted state loaded from a read-only memmap):
    Numba would compile separate read-only specialisations of its kernels."""
    return a if a.flags.writeable else a.copy()


def _batches(n_rows, values_per_row):
    """``(start, stop)`` of row batches holding about ``_BATCH_VALUES`` values each."""
    batch = max(1, _BATCH_VALUES // max(1, values_per_row))
    for start in range(0, n_rows, batch):
        yield start, min(n_rows, start + batch)


def _countsketch_into(X, codes, out, n_threads, first=0):
    """Add the CountSketches (packed ``codes``) of rows to ``out[:, first:]``.

    ``X`` is a dense block or a ``(data, indices, indptr)`` triple from :func:`_rows`.
    """
    if isinstance(X, tuple):
        countsketch_csr(*X, codes, out, first, n_threads)
    else:
        countsketch_dense(X, codes, out, first, n_threads)


def _srht_into(X, signs, idx, n_pad, scale, out, first=0):
    """SRHTs of rows into ``out[:, first:]``: ``out[i, first + l] = scale (H D_l x_i)[idx[l]]``.

    ``X`` is a dense block or a CSR triple from :func:`_rows` (writable); ``signs`` of
    shape (L, d) and ``scale`` are in the dtype of ``out``.
    """
    if isinstance(X, tuple):
        _hadamard.srht_csr_rows(*X, signs, idx, n_pad, scale, out, first)
    else:
        _hadamard.srht_rows(X, signs, idx, n_pad, scale, out, first)


class _BaseSketch(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared tags and validation of the sketches."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.requires_fit = True
        return tags


# ---------------------------------------------------------------------- CountSketch


class CountSketch(_BaseSketch):
    """CountSketch: hash every feature to a bucket with a random sign.

    ``(C x)_b = sum_{j : h(j) = b} s(j) x_j`` with ``h`` uniform on the buckets and ``s``
    uniform on ``{-1, +1}``, all independent; then ``E <C x, C y> = <x, y>`` and
    ``Var <C x, C y> = (||x||^2 ||y||^2 + <x, y>^2 - 2 sum_j x_j^2 y_j^2) / m``.
    O(nnz) per row (compiled, parallel over rows); sparse input is never densified.

    Parameters
    ----------
    n_components : int, default=256
        Sketch dimension ``m``.
    random_state : int, RandomState instance or None, default=None
        Draws the hash and the signs at ``fit``.
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    codes_ : ndarray of shape (n_features_in_, 1), int32
        Packed bucket and sign of every feature: ``h(j)`` if ``s(j) = +1``, ``~h(j)``
        otherwise (see :func:`unpack_codes`).  The whole fitted state: O(n_features).
    n_features_in_ : int

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fastntk.sketches import CountSketch
    >>> X = sp.random(5, 1000, density=0.01, format="csr", random_state=0)
    >>> CountSketch(n_components=16, random_state=0).fit_transform(X).shape
    (5, 16)
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, 2**31 - 1, closed="both")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, n_components=256, *, random_state=None, n_jobs=None):
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    @fit_method
    def fit(self, X, y=None):
        """Draw the hash and signs for the width of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        _validate(self, X, reset=True)
        # hash draws and packed codes per feature, a row of output
        check_memory(21 * self.n_features_in_ + 8 * self.n_components,
                     f"CountSketch(n_components={self.n_components})")
        rng = check_random_state(self.random_state)
        self.codes_ = _random_codes(rng, self.n_features_in_, 1, self.n_components)
        self._n_features_out = self.n_components
        return self

    def transform(self, X):
        """Sketch the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components), float32 if ``X`` is float32
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        out = np.zeros((X.shape[0], 1, self.n_components), dtype=X.dtype)
        n_threads = _effective_n_threads(self.n_jobs, _size(X))
        _countsketch_into(_rows(X, 0, X.shape[0]), self.codes_, out, n_threads)
        return out.reshape(X.shape[0], self.n_components)


# ----------------------------------------------------------------------------- SRHT


class SRHT(_BaseSketch):
    """Subsampled randomised Hadamard transform ``S x = sqrt(1/m) P H D x``.

    ``D`` multiplies by independent random signs, ``H`` is the unnormalised
    Walsh–Hadamard transform of order ``n_pad`` (the input zero-padded to the smallest
    power of two ``>= max(n_features, n_components)``) and ``P`` keeps ``m``
    coordinates sampled uniformly *without* replacement.  Since ``H^T H = n_pad I`` and
    each coordinate is kept with probability ``m / n_pad``, ``E <S x, S y> = <x, y>``
    (exactly, for any signs).  When ``m >= n_features`` the padding grows to cover
    ``m``, so ``n_components`` may exceed the input width; if ``m`` equals ``n_pad``,
    ``S`` is ``H D / sqrt(n_pad)`` up to a permutation of its outputs, an isometry that
    preserves inner products exactly.

    O(n_pad log n_pad) per row (Numba, parallel over rows).  Meant for dense input;
    sparse rows are accepted and scattered one at a time into the padded buffer
    (never the whole matrix), at the same cost.

    Parameters
    ----------
    n_components : int, default=256
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    signs_ : ndarray of shape (n_features_in_,), int8
    indices_ : ndarray of shape (n_components,), int32
        Sampled coordinates of the padded transform.
    n_pad_ : int
        Order of the Hadamard transform.
    n_features_in_ : int
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, 2**30, closed="both")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, n_components=256, *, random_state=None, n_jobs=None):
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    @fit_method
    def fit(self, X, y=None):
        """Draw signs and sampled coordinates for the width of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        _validate(self, X, reset=True)
        n_pad = _next_pow2(max(self.n_features_in_, self.n_components))
        # the permutation that samples coordinates, a transform buffer, a row of output
        check_memory(16 * n_pad + 9 * self.n_features_in_ + 12 * self.n_components,
                     f"SRHT(n_components={self.n_components})")
        rng = check_random_state(self.random_state)
        self.n_pad_ = n_pad
        self.signs_ = _random_signs(rng, self.n_features_in_)
        self.indices_ = _sample_coordinates(rng, self.n_pad_, self.n_components)
        self._n_features_out = self.n_components
        return self

    def transform(self, X):
        """Sketch the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components), float32 if ``X`` is float32
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        n, m = X.shape[0], self.n_components
        out = np.empty((n, 1, m), dtype=X.dtype)
        signs = self.signs_[None].astype(X.dtype)
        scale = X.dtype.type(np.sqrt(1.0 / m))
        with _limit_threads(_effective_n_threads(self.n_jobs, n * self.n_pad_)):
            for start, stop in _batches(n, self.n_pad_):
                _srht_into(_rows(X, start, stop, writable=True), signs,
                           _writable(self.indices_)[None],
                           self.n_pad_, scale, out[start:stop])
        return out.reshape(X.shape[0], self.n_components)


# ----------------------------------------------------------------------- TensorSRHT


class TensorSRHT(_BaseSketch):
    """TensorSRHT of row-wise tensor products, ``S(x ⊗ y) = sqrt(1/m) (P1 H D1 x) * (P2 H D2 y)``.

    Two independent SRHTs (signs and coordinates sampled without replacement, each
    padded as in :class:`SRHT`) multiplied elementwise (Ahle et al., 2020):
    ``E <S(x ⊗ y), S(x' ⊗ y')> = <x, x'> <y, y'>``, computed in
    O(d_x log d_x + d_y log d_y) per row, never forming ``x ⊗ y``.

    ``fit(X, Y)`` reads the widths of the two factors; ``transform(X, Y)`` sketches
    ``X[i] ⊗ Y[i]`` for every row ``i``.  ``Y=None`` means ``Y = X`` (the sketch of
    ``x ⊗ x``, a degree-2 polynomial sketch).  Because ``fit`` takes a second input
    matrix in place of a target, this transformer does not fit in a scikit-learn
    ``Pipeline`` with ``Y`` given.

    Parameters
    ----------
    n_components : int, default=256
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    signs_x_, signs_y_ : ndarray of int8, shapes (n_features_in_,), (n_features_y_,)
    indices_x_, indices_y_ : ndarray of shape (n_components,), int32
    n_pad_x_, n_pad_y_ : int
    n_features_in_ : int
        Width of ``X``.
    n_features_y_ : int
        Width of ``Y``.
    """

    _parameter_constraints = SRHT._parameter_constraints

    def __init__(self, n_components=256, *, random_state=None, n_jobs=None):
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    @fit_method
    def fit(self, X, Y=None):
        """Draw the two SRHTs for the widths of ``X`` and ``Y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_x)
        Y : {array-like, sparse matrix} of shape (n_samples, n_features_y), default=None
            The second factor; None means ``X``.

        Returns
        -------
        self
        """
        X = _validate(self, X, reset=True)
        n_features_y = X.shape[1] if Y is None else self._check_y(Y, None).shape[1]
        m = self.n_components
        n_pad_x = _next_pow2(max(self.n_features_in_, m))
        n_pad_y = _next_pow2(max(n_features_y, m))
        check_memory(16 * (n_pad_x + n_pad_y) + 9 * (self.n_features_in_ + n_features_y)
                     + 16 * m, f"TensorSRHT(n_components={m})")
        rng = check_random_state(self.random_state)
        self.n_features_y_ = n_features_y
        self.n_pad_x_, self.n_pad_y_ = n_pad_x, n_pad_y
        self.signs_x_ = _random_signs(rng, self.n_features_in_)
        self.signs_y_ = _random_signs(rng, n_features_y)
        self.indices_x_ = _sample_coordinates(rng, self.n_pad_x_, m)
        self.indices_y_ = _sample_coordinates(rng, self.n_pad_y_, m)
        self._n_features_out = m
        return self

    def _check_y(self, Y, n_rows):
        Y = check_array(Y, accept_sparse="csr", dtype=_FLOAT_DTYPES, order="C",
                        input_name="Y")
        if n_rows is not None and Y.shape[0] != n_rows:
            raise ValueError(f"X has {n_rows} rows but Y has {Y.shape[0]}")
        if hasattr(self, "n_features_y_") and Y.shape[1] != self.n_features_y_:
            raise ValueError(
                f"Y has {Y.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_y_} features as input"
            )
        return Y

    def transform(self, X, Y=None):
        """Sketch ``X[i] ⊗ Y[i]`` for every row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_x)
        Y : {array-like, sparse matrix} of shape (n_samples, n_features_y), default=None
            None means ``X``.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            float32 if both inputs are float32, else float64.
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        return self._validated_transform(X, X if Y is None else self._check_y(Y, X.shape[0]))

    def _validated_transform(self, X, Y):
        """:meth:`transform` of validated factors (float32/float64, canonical CSR or
        C-contiguous, the fitted widths): fastntk's feature maps call it on their own
        intermediate features, which need no checks."""
        dtype = np.result_type(X.dtype, Y.dtype)
        X, Y = X.astype(dtype, copy=False), Y.astype(dtype, copy=False)
        n, m = X.shape[0], self.n_components
        n_pad_x, n_pad_y = self.n_pad_x_, self.n_pad_y_
        signs_x = self.signs_x_[None].astype(dtype)
        signs_y = self.signs_y_[None].astype(dtype)
        scale = dtype.type(np.sqrt(1.0 / m))
        idx_x, idx_y = _writable(self.indices_x_), _writable(self.indices_y_)
        fused = not (sp.issparse(X) or sp.issparse(Y))
        out = np.empty((n, m), dtype=dtype)
        with _limit_threads(_effective_n_threads(self.n_jobs, n * (n_pad_x + n_pad_y))):
            for start, stop in _batches(n, n_pad_x + n_pad_y):
                x = _rows(X, start, stop, writable=True)
                y = _rows(Y, start, stop, writable=True)
                block = out[start:stop]
                if fused:
                    _hadamard.tensor_srht_rows(
                        x, y, signs_x[0], idx_x, n_pad_x, signs_y[0], idx_y, n_pad_y,
                        scale, block,
                    )
                    continue
                # Sparse factors: sketch each, then multiply; the same operations in
                # the same order as the fused kernel (y * (x * scale)), hence the same bits.
                a = np.empty((stop - start, 1, m), dtype=dtype)
                _srht_into(x, signs_x, idx_x[None], n_pad_x, scale, a)
                _srht_into(y, signs_y, idx_y[None], n_pad_y, dtype.type(1), block[:, None])
                block *= a[:, 0]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


# ------------------------------------------------------------------------ PolySketch


def _is_power_of_two(n):
    return n >= 1 and n & (n - 1) == 0


class PolySketch(_BaseSketch):
    """PolySketch of every degree 0..p at once (Ahle et al., 2020).

    ``p = degree`` (a power of two) independent leaf sketches map ``x`` to ``R^m``; a
    binary tree of ``p - 1`` independent TensorSRHTs combines them pairwise, level by
    level, into ``Q^p(x)`` with ``E <Q^p(x), Q^p(y)> = <x, y>^p`` and a variance that
    grows polynomially, not exponentially, in ``p``.

    Every lower degree comes from the same tree: ``Q^j(x)`` is the tree applied to
    ``x^(⊗j) ⊗ e^(⊗(p-j))`` for a fixed unit vector ``e``, so
    ``E <Q^j(x), Q^j(y)> = <x, y>^j``.  Feeding the padding vector at the leaves'
    outputs (``e = e_1`` in ``R^m``, the unit-norm leaf image of a unit vector)
    makes every all-padding subtree a constant computed once at ``fit``, and a node over
    ``2s`` leaves has only ``2s`` distinct inputs across the degrees: all degrees
    together cost ``p log2(p)`` TensorSRHT transforms of length ``m`` per row, plus the
    ``p`` leaves, instead of ``p - 1`` transforms per degree.  Degree 0 is exactly
    ``e_1`` for every row (the constant 1 of a polynomial kernel, including for a zero
    row); every degree ``j >= 1`` of a zero row is zero.

    Parameters
    ----------
    degree : int, default=2
        ``p``, a power of two (1, 2, 4, 8, ...).
    n_components : int, default=256
        ``m``, the dimension of every degree's sketch.
    leaf : {"auto", "countsketch", "srht"}, default="auto"
        The leaf sketches.  "countsketch" costs O(nnz(x)) per leaf (the
        input-sparsity-time choice, compiled loops over the CSR rows); "srht" costs
        O(n_pad log n_pad) per leaf with ``n_pad`` the input width padded to a power
        of two, and has smaller variance on dense rows whose mass is concentrated on
        a few coordinates.  "auto" picks "countsketch" if the input of ``fit`` is
        sparse and "srht" otherwise; the choice is fixed at ``fit`` (``leaf_``), so
        later sparse and dense inputs get identical features.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    leaf_ : str
        "countsketch" or "srht".
    leaf_keys_ : ndarray of shape (degree,), uint64
        CountSketch leaves: hash keys.  Leaf ``l`` sends column ``j`` to the bucket and
        sign packed in ``fastntk._countsketch.hashed_codes(leaf_keys_, d, m)[j, l]``,
        computed on the fly for sparse rows: no table of the input width is stored or
        fetched, so the cost of a non-zero does not depend on ``n_features_in_``.
    leaf_signs_ : ndarray of shape (degree, n_features_in_), int8
        SRHT leaves: signs.
    leaf_indices_ : ndarray of shape (degree, n_components), int32
        SRHT leaves: sampled coordinates (without replacement) of ``[0, leaf_n_pad_)``.
    leaf_n_pad_ : int
        SRHT leaves: Hadamard order, the smallest power of two
        ``>= max(n_features_in_, n_components)``.
    tree_signs_ : ndarray of shape (degree - 1, 2, n_components), int8
    tree_indices_ : ndarray of shape (degree - 1, 2, n_components), int32
        The TensorSRHT of every internal node (leaves' parents first, root last; left
        and right input), coordinates sampled without replacement from
        ``[0, tree_n_pad_)``.
    tree_n_pad_ : int
        Smallest power of two ``>= n_components``.
    tree_constants_ : ndarray of shape (degree - 1, n_components), float64
        Transformed constant (all-padding) right input of every node.
    n_features_in_ : int

    Notes
    -----
    ``transform`` returns an array of shape (n_samples, degree + 1, n_components);
    ``get_feature_names_out`` names the columns of its reshape to
    (n_samples, (degree + 1) * n_components), degree-major.
    """

    _parameter_constraints = {
        "degree": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, 2**30, closed="both")],
        "leaf": [StrOptions({"auto", "countsketch", "srht"})],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, degree=2, n_components=256, *, leaf="auto", random_state=None,
                 n_jobs=None):
        self.degree = degree
        self.n_components = n_components
        self.leaf = leaf
        self.random_state = random_state
        self.n_jobs = n_jobs

    @fit_method
    def fit(self, X, y=None):
        """Draw the leaves and the tree for the width of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not _is_power_of_two(self.degree):
            raise ValueError(f"degree must be a power of two, got {self.degree}")
        X = _validate(self, X, reset=True)
        p, m, d = self.degree, self.n_components, self.n_features_in_
        leaf = self.leaf
        if leaf == "auto":
            leaf = "countsketch" if sp.issparse(X) else "srht"
        # tree signs, coordinates and constants (with their float copies), SRHT leaves'
        # signs, a row of output
        check_memory(50 * (p - 1) * m + 8 * (p + 1) * m + (9 * p * d if leaf == "srht" else 0),
                     f"PolySketch(degree={p}, n_components={m})")
        rng = check_random_state(self.random_state)
        self.leaf_ = leaf
        if self.leaf_ == "countsketch":
            self.leaf_keys_ = rng.randint(0, 2**63, size=p, dtype=np.uint64)
        else:
            self.leaf_n_pad_ = _next_pow2(max(d, m))
            self.leaf_signs_ = _random_signs(rng, (p, d))
            self.leaf_indices_ = _sample_coordinates(rng, self.leaf_n_pad_, m, p)
        self.tree_n_pad_ = _next_pow2(m)
        self.tree_signs_ = _random_signs(rng, (p - 1, 2, m))
        self.tree_indices_ = _sample_coordinates(rng, self.tree_n_pad_, m, 2 * (p - 1))
        self.tree_indices_ = self.tree_indices_.reshape(p - 1, 2, m)
        self.tree_constants_ = _hadamard.polysketch_constants(
            self.tree_signs_.astype(np.float64), self.tree_indices_, self.tree_n_pad_,
            np.sqrt(1.0 / m),
        )
        self._n_features_out = (p + 1) * m
        return self

    def transform(self, X):
        """Sketches of every degree 0..p of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, degree + 1, n_components)
            ``out[i, j]`` is the degree-``j`` sketch of row ``i``; float32 if ``X`` is
            float32.
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        n, p, m = X.shape[0], self.degree, self.n_components
        dtype = X.dtype
        leaf_work = _size(X) if self.leaf_ == "countsketch" else n * self.leaf_n_pad_
        tree_work = n * p.bit_length() * self.tree_n_pad_
        n_threads = _effective_n_threads(self.n_jobs, p * (leaf_work + tree_work))
        out = np.zeros((n, p + 1, m), dtype=dtype)
        tree = (
            self.tree_signs_.astype(dtype), _writable(self.tree_indices_), self.tree_n_pad_,
            self.tree_constants_.astype(dtype), dtype.type(np.sqrt(1.0 / m)),
        )
        if self.leaf_ == "srht":
            leaf_signs = self.leaf_signs_.astype(dtype)
            leaf_indices = _writable(self.leaf_indices_)
            leaf_scale = dtype.type(np.sqrt(1.0 / m))
            row_values = max((p + 1) * m, self.leaf_n_pad_)
        else:
            row_values = (p + 1) * m
            if not sp.issparse(X):
                # Dense rows cost O(d p) each anyway: tabulate the hashes once per call.
                codes = hashed_codes(self.leaf_keys_, X.shape[1], m)
        with _limit_threads(n_threads):
            for start, stop in _batches(n, row_values):
                rows = _rows(X, start, stop, writable=True)
                block = out[start:stop]
                # Leaves go to slots 1..p, where the tree reads them.
                if self.leaf_ == "countsketch" and isinstance(rows, tuple):
                    countsketch_csr_hashed(*rows, self.leaf_keys_, block, 1, n_threads)
                elif self.leaf_ == "countsketch":
                    countsketch_dense(rows, codes, block, 1, n_threads)
                else:
                    _srht_into(rows, leaf_signs, leaf_indices, self.leaf_n_pad_,
                               leaf_scale, block, first=1)
                _hadamard.polysketch_tree(block, *tree)
        return out


# ---------------------------------------------------------------------- TensorSketch


class TensorSketch(_BaseSketch):
    """TensorSketch of ``x^(⊗p)`` (Pham and Pagh, 2013).

    ``T x = IFFT(prod_k FFT(C_k x))``: the circular convolution of ``p`` independent
    CountSketches, which is the CountSketch of ``x^(⊗p)`` under the hash
    ``(h_1(j_1) + ... + h_p(j_p)) mod m`` and the sign ``s_1(j_1)...s_p(j_p)``, hence
    ``E <T x, T y> = <x, y>^p``.  O(p nnz(x) + p m log m) per row; sparse input is
    never densified.  The variance grows exponentially with ``p``; for high degrees
    prefer :class:`PolySketch`.

    Parameters
    ----------
    degree : int, default=2
    n_components : int, default=256
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    codes_ : ndarray of shape (n_features_in_, degree), int32
        Packed bucket/sign codes of the ``degree`` CountSketches.
    n_features_in_ : int
    """

    _parameter_constraints = {
        "degree": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, 2**30, closed="both")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, degree=2, n_components=256, *, random_state=None, n_jobs=None):
        self.degree = degree
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    @fit_method
    def fit(self, X, y=None):
        """Draw the ``degree`` CountSketches for the width of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        _validate(self, X, reset=True)
        # hash draws and packed codes per feature and degree, a row of leaves and spectra
        check_memory(21 * self.n_features_in_ * self.degree + 16 * self.degree * self.n_components,
                     f"TensorSketch(degree={self.degree}, n_components={self.n_components})")
        rng = check_random_state(self.random_state)
        self.codes_ = _random_codes(rng, self.n_features_in_, self.degree, self.n_components)
        self._n_features_out = self.n_components
        return self

    def transform(self, X):
        """Sketch ``x^(⊗p)`` for every row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components), float32 if ``X`` is float32
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        n, p, m = X.shape[0], self.degree, self.n_components
        n_threads = _effective_n_threads(self.n_jobs, p * (_size(X) + n * m))
        out = np.empty((n, m), dtype=X.dtype)
        for start, stop in _batches(n, p * m):
            leaves = np.zeros((stop - start, p, m), dtype=X.dtype)
            _countsketch_into(_rows(X, start, stop), self.codes_, leaves, n_threads)
            spectra = scipy.fft.rfft(leaves, axis=2, workers=n_threads)
            out[start:stop] = scipy.fft.irfft(spectra.prod(axis=1), n=m, axis=1,
                                              workers=n_threads)
        return out
