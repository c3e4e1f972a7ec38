"""Random features of the fully-connected ReLU NTK (the NTKRF of Zandieh et al., 2021).

Arc-cosine random features (Cho & Saul, 2009) give unbiased estimates of the two
functions of the NTK recursion (defined in :mod:`fastntk.kernels`):

    Phi0(z) = sqrt(2/m0) 1[W0^T z > 0]        E <Phi0(x), Phi0(y)> = k0(rho)
    Phi1(z) = sqrt(2/m1) ReLU(W1^T z)         E <Phi1(x), Phi1(y)> = ||x|| ||y|| k1(rho)

with Gaussian ``W0``, ``W1``.  Layer by layer, ``phi_h = Phi1_h(phi_{h-1})`` carries the
NNGP ``Sigma_h`` and ``psi_h = [phi_h, TensorSRHT(psi_{h-1}, Phi0_h(phi_{h-1}))]`` the NTK
``Theta_h = Theta_{h-1} SigmaDot_h + Sigma_h``, starting from
``phi_0 = psi_0 = x``.
"""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .leverage import sample_leverage_weights
from .sketches import CountSketch, TensorSRHT, unpack_codes
from ._validation import check_memory, fit_method, validate_data, validate_rows

__all__ = ["NTKRandomFeatures"]

# Rows are transformed in blocks of at most this many, which bounds the memory of the
# intermediate features; dense matrix products are always called on blocks of exactly
# this many rows (zero-padded): BLAS gives bit-identical rows only when called on the
# same shape.  Sparse products (CSR input) sum each row's terms in column order, the same
# whatever the other rows: they are never padded, so a one-row request costs one row.
_BLOCK_ROWS = 256

# ``input_sketch="auto"``: widest input multiplied by Gaussian matrices directly.
_AUTO_INPUT_SKETCH = 8192

_SEED_MAX = np.iinfo(np.int32).max


def _default_n_arccos(n_components):
    """Width m0 = m1 of the arc-cosine features when ``n_arccos`` is None (measured)."""
    return max(1, n_components // 2)


class NTKRandomFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Random features of the NTK of a fully-connected ReLU network.

    Maps each row ``x`` to ``psi_L(x)`` of width ``n_components`` with
    ``E <psi_L(x), psi_L(y)> ≈ NTK(x, y)``, the NTK of ``depth`` hidden ReLU layers
    without biases (:func:`fastntk.kernels.ntk_kernel`).  The map
    is the NTKRF of Zandieh et al. (2021): arc-cosine random features of widths
    ``m0 = m1 = n_arccos`` for the derivative and the activation of every layer, the two
    combined by a TensorSRHT of width ``ms = n_components - n_arccos``::

        phi_0 = psi_0 = x
        for h = 1..L:  phi_h = Phi1_h(phi_{h-1})
                       psi_h = [phi_h, TensorSRHT_h(psi_{h-1}, Phi0_h(phi_{h-1}))]

    ``<phi_h(x), phi_h(y)>`` estimates the NNGP ``Sigma_h`` without bias, and
    ``<psi_h(x), psi_h(y)>`` the NTK ``Theta_h`` (unbiased at depth 1; at depth >= 2 the
    arc-cosine functions are evaluated on estimated inputs, which leaves a bias of the
    order of the variance).  Rows are transformed independently.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden ReLU layers ``L``.
    n_components : int, default=4096
        Output width ``m1 + ms``.
    n_arccos : int or None, default=None
        Width ``m0 = m1`` of each arc-cosine feature map, ``1 <= n_arccos < n_components``;
        the TensorSRHT gets the rest.  None picks ``n_components // 2``, the best split
        measured: on 1,000 unit-norm MNIST rows at ``n_components=4096`` (relative
        Frobenius error, mean of 3 seeds, ``asv_benchmarks/ntkrf_quality.py``) 2048 gave
        0.040 / 0.066 at depth 1 / 2, against 0.057 / 0.072 for 1024 and 0.055 / 0.101
        for 3072; at depth 3 splits from 1536 to 2560 were within noise (0.093-0.100).
        The fitted weights hold ``(d + (depth - 1) n_arccos) * 2 n_arccos`` floats.
    leverage : bool, default=False
        Draw the ReLU weights ``W1`` from the leverage-score density
        ``q(w) = (||w||^2/d) N(0, I)`` and reweight each feature by ``sqrt(d)/||w||``
        (Han et al., 2021), which keeps the estimate unbiased and targets a better
        spectral approximation.  See :func:`fastntk.sample_leverage_weights`.
    sampler : {"gibbs", "exact"}, default="gibbs"
        How ``q`` is sampled when ``leverage=True``: the papers' Gibbs sampler or the
        exact law (uniform direction, chi radius with ``d + 2`` degrees of freedom).
    gibbs_sweeps : int, default=1
        Gibbs sweeps per weight vector; one is enough at these dimensions (see
        :func:`fastntk.sample_leverage_weights`).
    input_sketch : "auto", int or None, default="auto"
        Inputs wider than this are first reduced to this many columns by a
        :class:`fastntk.sketches.CountSketch` (O(nnz) per row), so that the fitted state
        is O(n_features + n_components^2) and never O(n_features * n_components).  "auto"
        means ``max(n_components, 8192)``; None never sketches the input.  The sketch
        replaces the NTK of ``x, y`` by the NTK of ``Cx, Cy``: it adds an error of order
        ``||x|| ||y|| / sqrt(input_sketch)`` to the inner product that every layer then
        sees (``Var <Cx, Cy> = (||x||^2 ||y||^2 + <x,y>^2 - 2 sum_j x_j^2 y_j^2) / k``),
        independent of ``n_components``.
    random_state : int, RandomState instance or None, default=None
        Draws all weights and sketches at ``fit``.
    n_jobs : int or None, default=None
        Threads of the compiled sketches of ``transform``; None uses every core (small
        batches use fewer).  The matrix products use the BLAS library's own threads,
        which this never changes: they are a process-wide setting (set them once, e.g.
        with ``OPENBLAS_NUM_THREADS`` or threadpoolctl, not per call).

    Attributes
    ----------
    weights_ : list of ndarray, one per layer
        ``weights_[h]`` has shape ``(d_h, n_arccos_ + n_arccos_)``: the columns of ``W0``
        then those of ``W1`` (``d_0`` the input width after the input sketch,
        ``d_h = n_arccos_`` after).
    relu_scales_ : list of ndarray of shape (n_arccos_,)
        Factor of every ReLU feature: ``sqrt(2/m1)``, times ``sqrt(d_h)/||w||`` with
        leverage sampling.
    tensor_sketches_ : list of TensorSRHT
        The fitted TensorSRHT of every layer.
    input_sketch_ : CountSketch or None
        The fitted input sketch, if the input is sketched.
    n_arccos_ : int
        Width ``m0 = m1`` actually used.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Notes
    -----
    All matrix products run in float64; dense ones in blocks of exactly 256 rows: with
    OpenBLAS the product gives a row different last bits depending on the shape of the
    call.  Sparse input is multiplied row by row (no padding: a one-row CSR request at
    depth 1 costs one row).  float32 input yields float32 output.

    Dense and sparse input of the same values give the same features up to rounding, not
    bit for bit: ``X @ W`` is a BLAS product for dense rows and a sparse product (its
    terms summed in column order) for CSR rows, and the two sum in different orders.
    Making them agree would mean densifying sparse rows (losing the O(nnz) cost that is
    the point of CSR input) or giving up BLAS on dense ones.  The last bits carry
    through the layers, and a pre-activation within rounding of 0 can fall on either
    side of the step ``1[z > 0]``, changing that feature by ``sqrt(2 / n_arccos)``.

    References
    ----------
    Zandieh, Han, Avron, Shoham, Kim, Shin, "Scaling neural tangent kernels via
    sketching and random features", NeurIPS 2021 (arXiv 2106.07880).
    Han, Avron, Shoham, Kim, Shin, "Random features for the neural tangent kernel",
    arXiv 2104.01351.
    Cho, Saul, "Kernel methods for deep learning", NeurIPS 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from fastntk import NTKRandomFeatures
    >>> X = np.random.default_rng(0).standard_normal((5, 20))
    >>> NTKRandomFeatures(depth=2, n_components=64, random_state=0).fit_transform(X).shape
    (5, 64)
    """

    _parameter_constraints = {
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_arccos": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "leverage": ["boolean"],
        "sampler": [StrOptions({"gibbs", "exact"})],
        "gibbs_sweeps": [Interval(numbers.Integral, 1, None, closed="left")],
        "input_sketch": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None,
                                                        closed="left"), None],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, *, depth=1, n_components=4096, n_arccos=None, leverage=False,
                 sampler="gibbs", gibbs_sweeps=1, input_sketch="auto", random_state=None,
                 n_jobs=None):
        self.depth = depth
        self.n_components = n_components
        self.n_arccos = n_arccos
        self.leverage = leverage
        self.sampler = sampler
        self.gibbs_sweeps = gibbs_sweeps
        self.input_sketch = input_sketch
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate_input(self, X, *, reset):
        return validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32),
                             reset=reset)

    def _input_sketch_width(self):
        if self.input_sketch is None:
            return None
        if self.input_sketch == "auto":
            return max(self.n_components, _AUTO_INPUT_SKETCH)
        return self.input_sketch

    @fit_method
    def fit(self, X, y=None):
        """Draw the weights and sketches for the width of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Only the width is used.
        y : ignored

        Returns
        -------
        self
        """
        X = self._validate_input(X, reset=True)
        m = self._check_n_arccos()
        ms = self.n_components - m
        width = self._input_sketch_width()
        d = self.n_features_in_
        sketched = width is not None and d > width
        # the Gaussian weights of every layer, a block of rows of features
        d_in = width if sketched else d
        check_memory(8 * (d_in + (self.depth - 1) * m) * 2 * m
                     + 8 * _BLOCK_ROWS * (2 * m + self.n_components),
                     f"NTKRandomFeatures(n_components={self.n_components}, n_arccos={m}, "
                     f"depth={self.depth}) on {d} features")
        rng = check_random_state(self.random_state)
        self.input_sketch_ = None
        if sketched:
            self.input_sketch_ = CountSketch(
                width, random_state=rng.randint(_SEED_MAX), n_jobs=self.n_jobs
            ).fit(X[:1])
            d = width
        self.weights_, self.relu_scales_, self.tensor_sketches_ = [], [], []
        psi_width = d
        for _ in range(self.depth):
            weights, scales = self._draw_layer(d, m, rng)
            self.weights_.append(weights)
            self.relu_scales_.append(scales)
            sketch = TensorSRHT(ms, random_state=rng.randint(_SEED_MAX), n_jobs=self.n_jobs)
            self.tensor_sketches_.append(sketch.fit(np.zeros((1, psi_width)), np.zeros((1, m))))
            d, psi_width = m, self.n_components
        self.n_arccos_ = m
        self._n_features_out = self.n_components
        return self

    def _check_n_arccos(self):
        if self.n_arccos is None:
            return _default_n_arccos(self.n_components)
        if self.n_arccos >= self.n_components:
            raise ValueError(
                f"n_arccos must be smaller than n_components={self.n_components} (the "
                f"TensorSRHT needs at least one component), got {self.n_arccos}"
            )
        return self.n_arccos

    def _draw_layer(self, d, m, rng):
        """Gaussian W0 and W1 (or leverage-sampled W1) of one layer, and the ReLU scales."""
        step_weights = rng.standard_normal((d, m))
        if self.leverage:
            relu_weights = sample_leverage_weights(
                d, m, method=self.sampler, sweeps=self.gibbs_sweeps,
                random_state=rng.randint(_SEED_MAX),
            ).T
            scales = np.sqrt(2.0 * d / m) / np.linalg.norm(relu_weights, axis=0)
        else:
            relu_weights = rng.standard_normal((d, m))
            scales = np.full(m, np.sqrt(2.0 / m))
        return np.hstack([step_weights, relu_weights]), scales

    def transform(self, X):
        """Random features of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            float32 if ``X`` is float32, else float64.
        """
        check_is_fitted(self)
        return self._validated_blocks(validate_rows(self, X, accept_sparse="csr",
                                                    dtype=(np.float64, np.float32)))[1]

    def _validated_blocks(self, X):
        """``(None, transform(X))`` for rows already validated (a float32/float64
        ndarray or canonical CSR of the fitted width): learners that validated their
        input call this, so that a request is checked once."""
        out = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        codes = None
        if self.input_sketch_ is not None and sp.issparse(X):
            codes = self.input_sketch_.codes_[:, 0]
        for start in range(0, X.shape[0], _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, X.shape[0])
            rows = X if stop - start == X.shape[0] else X[start:stop]
            out[start:stop] = self._transform_block(rows, codes)
        return None, out

    def _sketch_input(self, X, codes):
        """The input CountSketch; sparse rows stay sparse (nnz(Cx) <= nnz(x))."""
        if codes is None:
            return self.input_sketch_.transform(X)
        # only the codes of the stored entries: unpacking all n_features of them would
        # cost more than a one-row request
        buckets, signs = unpack_codes(codes[X.indices])
        sketched = sp.csr_matrix((X.data * signs, buckets, X.indptr),
                                 shape=(X.shape[0], self.input_sketch_.n_components))
        sketched.sum_duplicates()
        return sketched

    def _transform_block(self, X, codes):
        """Features (float64) of at most ``_BLOCK_ROWS`` rows.

        ``codes`` are the packed codes of the input CountSketch for sparse input, else
        None.
        """
        X = X.astype(np.float64)
        if self.input_sketch_ is not None:
            X = self._sketch_input(X, codes)
        m = self.n_arccos_
        step_scale = np.sqrt(2.0 / m)
        phi = psi = X
        for weights, scales, sketch in zip(self.weights_, self.relu_scales_,
                                           self.tensor_sketches_):
            z = _row_products(phi, weights)
            step = np.where(z[:, :m] > 0.0, step_scale, 0.0)
            phi = np.maximum(z[:, m:], 0.0)
            phi *= scales
            psi = np.hstack([phi, sketch._validated_transform(psi, step)])
        return psi


def _row_products(A, W):
    """``A @ W`` for at most ``_BLOCK_ROWS`` rows, each row's bits independent of the
    others: a sparse product (O(nnz * width), summed in column order) as it is, a dense
    one on exactly ``_BLOCK_ROWS`` rows (see ``_BLOCK_ROWS``)."""
    n_rows = A.shape[0]
    if sp.issparse(A) or n_rows == _BLOCK_ROWS:
        return A @ W
    padded = np.zeros((_BLOCK_ROWS, A.shape[1]))
    padded[:n_rows] = A
    return (padded @ W)[:n_rows]
