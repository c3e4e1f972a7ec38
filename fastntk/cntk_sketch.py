"""CNTKSketch: features of the convolutional NTK in time linear in the number of pixels.

The method is the CNTKSketch of Zandieh et al. (NeurIPS 2021), for the convolutional NTK
defined in :mod:`fastntk.kernels` (:func:`fastntk.kernels.cntk_kernel`): per-pixel
features of Sigma and Theta, a PolySketch of the normalised features for the ReLU layers
and signed sums of the neighbours' features for the convolutions, so that the cost is
linear in the number of pixels (see :class:`CNTKSketch`).
"""
import math
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _cntk_sketch_kernels as _k
from ._scaling import row_exponents, scale_rows
from ._validation import check_array, check_memory, fit_method, validate_data
from ._threading import effective_n_threads as _n_threads
from ._threading import next_pow2 as _next_pow2
from ._threading import current_threads as _current_threads
from ._threading import limit as _limit_threads
from .kernels import _conv_geometry as _map_sizes
from .kernels import cntk_diagonals
from .arccos import k0, k1
from .polyfit import fit_nbytes, fit_nonnegative_polynomial

__all__ = ["CNTKSketch"]

_FLOAT_DTYPES = (np.float64, np.float32)

# Values per per-pixel feature array of a batch: bounds the working memory to a few
# such arrays (~16 MB each in float32) whatever the number of images.
_BATCH_VALUES = 2**22


def _signs(rng, shape):
    return 2.0 * rng.randint(0, 2, size=shape) - 1.0


def _coordinates(rng, n_pad, m, shape=()):
    """``m`` coordinates of ``[0, n_pad)`` per sketch: distinct if ``m <= n_pad``.

    Either way each coordinate is marginally uniform, which is all the unbiasedness of
    a sampled transform needs; without replacement lowers the variance.
    """
    n_sketches = int(np.prod(shape))
    out = np.empty((n_sketches, m), dtype=np.int32)
    for k in range(n_sketches):
        out[k] = rng.choice(n_pad, m, replace=m > n_pad)
    return out.reshape(*shape, m)


class CNTKSketch(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Random features of the convolutional NTK, linear in the number of pixels.

    Maps each image ``x`` to ``n_components`` features whose inner products estimate
    the CNTK of a ReLU CNN with ``depth`` conv layers, ``filter_size`` x
    ``filter_size`` filters, stride 1 and no biases, followed by global average pooling
    or flattening and a linear readout (:func:`fastntk.kernels.cntk_kernel`, defined in
    :mod:`fastntk.kernels`; the same kernel as neural-tangents' ``serial(Conv(1, (q, q), padding,
    W_std=sqrt(C)), Relu(), [Conv(1, (q, q), padding, W_std=sqrt(2)), Relu()] * (L-1),
    GlobalAvgPool() or Flatten(), Dense(1, W_std=sqrt(2)))``).

    Every pixel carries features ``phi_p`` of ``Sigma`` and ``psi_p`` of ``Theta``
    (after Zandieh et al., 2021):

    * layer 1: ``phi_p = psi_p = (1/q) (+)_delta x_{p + delta}``, exact;
    * each ReLU layer normalises ``phi_p`` by ``sqrt(N_p)``, the exact diagonal
      (:func:`fastntk.kernels.cntk_diagonals`), sketches all powers of it up to
      ``degree`` with one PolySketch tree, and combines them with the non-negative
      polynomial coefficients of ``k1`` and ``k0`` (least-squares fits, exact at
      ``t = 1``, :func:`fastntk.polyfit.fit_nonnegative_polynomial`) into features of
      ``K`` and ``KDot``; a TensorSRHT of ``psi_p`` and the ``KDot`` features gives
      those of ``Theta * KDot``, to which the ``K`` features are added;
    * a convolution is the direct sum of the ``q^2`` neighbours' features scaled by
      ``1/q`` (zeros outside the image for "same" padding);
    * "gap" averages the last layer's per-pixel features; "flatten" takes their
      direct sum divided by ``sqrt(P)``.

    Two economies keep the cost per pixel at four Hadamard transforms of length ``m``
    per layer (``degree=4``), all unbiased:

    * direct sums (of neighbours, of polynomial degrees, of pixels) are reduced back
      to ``n_components`` by a signed sum with independent random signs per block.
      This is the SRHT of the direct sum with its sampled rows taken as one block of
      the Kronecker factorisation ``H_{blocks} (x) H_m``, minus the orthogonal factor
      ``H_m`` (which the next sampled transform supplies anyway); its variance is that
      of a dense sketch because every block is an output of sampled Hadamard
      transforms, spread evenly over its coordinates;
    * the PolySketch leaves are the (normalised) input itself, whose one transform
      all leaves' parents sample, and every TensorSRHT above them (and the one for
      ``Theta * KDot``) transforms one factor only: ``E_idx[(H D a)_idx (H D a')_idx]
      = <a, a'>`` already makes ``(H D a)[idx] * b`` an unbiased sketch of ``a (x) b``
      for any ``b``, and ``b`` is itself a flat sketch.

    Cost per image ``O(P L (q^2 m + p log(p) m log m))`` with ``P`` pixels,
    ``m = n_components`` and ``p = degree``; working memory ``O(P m)`` per image of a
    batch.

    Parameters
    ----------
    depth : int, default=3
        Number of conv + ReLU layers ``L``.
    n_components : int, default=4096
        Dimension ``m`` of the output and of every per-pixel feature vector.
    degree : int, default=4
        Degree of the polynomials approximating ``k0`` and ``k1``.
    filter_size : int, default=3
        ``q``.
    padding : {"same", "valid"}, default="same"
        "same": the window of pixel ``p`` covers offsets ``-(q-1)//2 .. q-1-(q-1)//2``
        with zeros outside the image; "valid": each layer shrinks the map by ``q - 1``.
    pooling : {"gap", "flatten"}, default="gap"
    image_shape : tuple of 3 ints or None, default=None
        ``(H, W, C)`` of the rows of a 2-D input of shape (n, H*W*C) (channels-last,
        C order).  If None, a 2-D input of shape (n, d) is read as 1x1 images with ``d``
        channels (with ``filter_size=1`` the kernel is then the fully-connected NTK of
        depth ``L``); 4-D input (n, H, W, C) is always accepted.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int or None, default=None
        Threads of ``transform``; None or -1 use every core.

    Attributes
    ----------
    image_shape_ : tuple of 3 ints
        ``(H, W, C)`` of the images seen at ``fit``.
    map_sizes_ : list of (int, int)
        Size of the map after each convolution.
    k1_coef_, k0_coef_ : ndarray of shape (degree + 1,)
        Non-negative polynomial coefficients used for ``k1`` and ``k0``.
    layers_ : list of dict
        Random signs and sampled coordinates of each layer.
    conv_weights_ : list of (ndarray, ndarray)
        Signed neighbour weights of the convolutions between layers, for the features
        of Sigma and of Theta, each of shape (q*q, n_components).
    pool_weights_ : ndarray of shape (P_L, n_components) or None
        Signed pixel weights of "flatten" pooling.
    n_features_in_ : int
        ``H * W * C``.

    Notes
    -----
    The estimate is biased by the polynomial approximation of ``k0``, ``k1`` (their
    square-root singularity at ``t = 1`` limits low degrees) and by normalising, at
    every layer, the sketched features of ``Sigma`` to unit norm and those of ``Theta``
    to their exact norm ``sqrt(h N_p)`` (an O(1/m) ratio bias, which keeps the error
    from compounding with depth: it stays within 0.05-0.45 relative at depth 40 with
    1,024 features); its random error falls like ``1/sqrt(n_components)``.  Sparse
    input is densified one batch of images at a time (the per-pixel features are dense
    anyway).  Features are bit-identical for the same ``random_state`` whatever the
    batch and the number of threads.  The CNTK is homogeneous of degree 1 in each image:
    images whose pixels are too large or too small to square are scaled exactly by a
    power of two and their features scaled back, so every finite image gets finite
    features.

    References
    ----------
    Arora, Du, Hu, Li, Salakhutdinov, Wang, "On exact computation with an infinitely
    wide neural net", NeurIPS 2019.
    Zandieh, Han, Avron, Shoham, Kim, Shin, "Scaling neural tangent kernels via
    sketching and random features", NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from fastntk import CNTKSketch
    >>> X = np.random.RandomState(0).rand(5, 8, 8, 3)
    >>> CNTKSketch(depth=2, n_components=256, random_state=0).fit_transform(X).shape
    (5, 256)
    """

    _parameter_constraints = {
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, 2**30, closed="both")],
        "degree": [Interval(numbers.Integral, 1, None, closed="left")],
        "filter_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "padding": [StrOptions({"same", "valid"})],
        "pooling": [StrOptions({"gap", "flatten"})],
        "image_shape": [tuple, list, None],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, *, depth=3, n_components=4096, degree=4, filter_size=3,
                 padding="same", pooling="gap", image_shape=None, random_state=None,
                 n_jobs=None):
        self.depth = depth
        self.n_components = n_components
        self.degree = degree
        self.filter_size = filter_size
        self.padding = padding
        self.pooling = pooling
        self.image_shape = image_shape
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ input
    def _declared_shape(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(isinstance(s, numbers.Integral)
                                      and not isinstance(s, (bool, np.bool_)) and s >= 1
                                      for s in shape):
            raise ValueError(
                f"image_shape must be (H, W, C) with positive integers, got {self.image_shape!r}"
            )
        return tuple(int(s) for s in shape)

    def _validate(self, X, *, reset):
        """Validated input as a float32/float64 2-D array or CSR matrix, and its image shape."""
        shape = None
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        if not sp.issparse(X) and getattr(X, "ndim", None) == 4:
            X = check_array(X, dtype=_FLOAT_DTYPES, allow_nd=True, input_name="X")
            shape = X.shape[1:]
            X = X.reshape(X.shape[0], -1)
        X = validate_data(self, X, accept_sparse="csr", dtype=_FLOAT_DTYPES, order="C",
                          reset=reset)
        if shape is None:
            if not reset:
                return X, self.image_shape_
            shape = (1, 1, X.shape[1]) if self.image_shape is None else self._declared_shape()
        elif self.image_shape is not None and shape != self._declared_shape():
            raise ValueError(f"X has images of shape {shape} but image_shape={self.image_shape!r}")
        if not reset and shape != self.image_shape_:
            raise ValueError(
                f"X has images of shape {shape}, but {type(self).__name__} was fitted on "
                f"images of shape {self.image_shape_}"
            )
        if math.prod(shape) != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features per row but image_shape={shape} holds "
                f"{math.prod(shape)}"
            )
        return X, shape

    # --------------------------------------------------------------- fitting
    @fit_method
    def fit(self, X, y=None):
        """Draw the random signs and coordinates for images of the shape of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, H, W, C) or (n, H*W*C)
        y : ignored

        Returns
        -------
        self
        """
        X, shape = self._validate(X, reset=True)
        height, width, channels = shape
        q, m, p = self.filter_size, self.n_components, self.degree
        map_sizes, _ = _map_sizes(height, width, q, self.padding, self.depth)
        self._check_memory(shape, map_sizes)
        self.map_sizes_ = map_sizes
        self.image_shape_ = shape
        # exact at t = 1: the diagonals K(x, x) = N stay exact, which the next layer's
        # normalisation by the exact N relies on
        self.k1_coef_ = fit_nonnegative_polynomial(k1, p, exact_at_one=True)
        self.k0_coef_ = fit_nonnegative_polynomial(k0, p, exact_at_one=True)
        rng = check_random_state(self.random_state)
        widths = [q * q * channels] + [m] * (self.depth - 1)
        self.layers_ = [self._draw_layer(rng, d) for d in widths]
        self.conv_weights_ = [
            (_signs(rng, (q * q, m)) / q, _signs(rng, (q * q, m)) / q)
            for _ in range(self.depth - 1)
        ]
        self.pool_weights_ = None
        if self.pooling == "flatten":
            n_pixels = math.prod(self.map_sizes_[-1])
            self.pool_weights_ = _signs(rng, (n_pixels, m)) / math.sqrt(n_pixels)
        self._n_features_out = m
        return self

    def _check_memory(self, shape, map_sizes):
        """Refuse sizes whose largest arrays cannot be allocated (see ``check_memory``)."""
        q, m, p, depth = self.filter_size, self.n_components, self.degree, self.depth
        largest_map = max(h * w for h, w in map_sizes)
        last_map = map_sizes[-1][0] * map_sizes[-1][1]
        n_bytes = (
            depth * (20 * p + 48) * m                  # every layer's weights and coordinates
            + 16 * (depth - 1) * q * q * m             # convolution weights
            + (8 * last_map * m if self.pooling == "flatten" else 0)
            + 32 * largest_map * m                     # per-pixel buffers of one image
            + 8 * largest_map * q * q * shape[2]       # its first-layer windows
            + 2 * fit_nbytes(p)                        # the two polynomial fits
        )
        check_memory(n_bytes, f"CNTKSketch(n_components={m}, degree={p}, depth={depth}, "
                              f"filter_size={q}) on images of shape {shape}")

    def _draw_layer(self, rng, width):
        """Signs and coordinates of one ReLU layer whose input features have ``width``."""
        m, p = self.n_components, self.degree
        n_leaves = max(2, _next_pow2(p))
        pad_d, pad_m = _next_pow2(width), _next_pow2(m)
        n_nodes = n_leaves // 2 - 1  # nodes above the leaves' parents
        node_signs = _signs(rng, (n_nodes, m))
        node_idx = _coordinates(rng, pad_m, m, (n_nodes,))
        return {
            "leaf_signs": _signs(rng, width),
            "leaf_idx": _coordinates(rng, pad_d, m, (n_leaves // 2, 2)),
            "node_signs": node_signs,
            "node_idx": node_idx,
            "const_right": _k.tree_constants(node_signs, node_idx, n_leaves, m),
            "n_leaves": n_leaves,
            "k1_weights": np.sqrt(self.k1_coef_)[:, None] * _signs(rng, (p + 1, m)),
            "k0_weights": np.sqrt(self.k0_coef_)[:, None] * _signs(rng, (p + 1, m)),
            "psi_signs": _signs(rng, width),
            "psi_idx": _coordinates(rng, pad_d, m),
            "prod_weights": _signs(rng, m),
            "k_weights": _signs(rng, m),
        }

    # ------------------------------------------------------------- transform
    def transform(self, X):
        """CNTK features of the images of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, H, W, C) or (n, H*W*C)

        Returns
        -------
        ndarray of shape (n, n_components)
            float32 if ``X`` is float32, float64 otherwise.
        """
        check_is_fitted(self)
        X, shape = self._validate(X, reset=False)
        dtype = X.dtype
        n, m = X.shape[0], self.n_components
        layers = [self._layer_args(layer, dtype) for layer in self.layers_]
        convs = [(a.astype(dtype), b.astype(dtype)) for a, b in self.conv_weights_]
        pool = None if self.pool_weights_ is None else self.pool_weights_.astype(dtype)
        largest_map = max(h * w for h, w in self.map_sizes_)
        batch = min(n, max(1, _BATCH_VALUES // (largest_map * m)))
        # per-pixel features of kphi, t and of the next layer's Sigma, Theta; allocated
        # once and reused by every layer and batch (fresh pages cost ~20% at 64x64)
        buffers = [np.empty((batch * largest_map, m), dtype=dtype) for _ in range(4)]
        out = np.empty((n, m), dtype=dtype)
        with _limit_threads(_n_threads(self.n_jobs)):
            for start in range(0, n, batch):
                rows = X[start:start + batch]
                rows = rows.toarray() if sp.issparse(rows) else rows
                images = np.ascontiguousarray(rows.reshape(-1, *shape), dtype=dtype)
                # the CNTK is homogeneous of degree 1 in each image: images too large or
                # too small to square are scaled by powers of two, and the features back
                exponents = row_exponents(images)
                block = out[start:start + batch]
                self._transform_batch(scale_rows(images, exponents), layers, convs, pool,
                                      buffers, block)
                if np.any(exponents):
                    np.ldexp(block, exponents[:, None], out=block)
        return out

    def _layer_args(self, layer, dtype):
        """Arguments of :func:`relu_sketch_layer` for one layer, in the data dtype."""
        cast = lambda name: layer[name].astype(dtype)  # noqa: E731
        return (
            cast("leaf_signs"), layer["leaf_idx"], cast("node_signs"), layer["node_idx"],
            cast("const_right"), self.degree, layer["n_leaves"], cast("k1_weights"),
            cast("k0_weights"), cast("psi_signs"), layer["psi_idx"], cast("prod_weights"),
            cast("k_weights"),
        )

    def _transform_batch(self, images, layers, convs, pool, buffers, out):
        """Features of one batch of images (n_b, H, W, C) into ``out`` (n_b, m)."""
        n_img = images.shape[0]
        q = self.filter_size
        _, offset = _map_sizes(*self.image_shape_[:2], q, self.padding, self.depth)
        diagonals = cntk_diagonals(images, depth=self.depth, filter_size=q,
                                   padding=self.padding)
        in_h, in_w = self.map_sizes_[0]
        phi = np.empty((n_img * in_h * in_w, q * q * images.shape[3]), dtype=images.dtype)
        _k.window_features(images, q, offset, in_h, in_w, phi)
        psi = phi  # Theta^(1) = Sigma^(1)
        kphi_buf, t_buf, phi_buf, psi_buf = buffers
        for h, args in enumerate(layers):
            n_pixels = phi.shape[0]
            kphi, t = kphi_buf[:n_pixels], t_buf[:n_pixels]
            n_blocks = max(1, min(n_pixels, 4 * _current_threads()))
            _k.relu_sketch_layer(phi, psi, diagonals[h].reshape(-1), h + 1, *args, kphi, t,
                                 n_blocks)
            if h + 1 < self.depth:
                out_h, out_w = self.map_sizes_[h + 1]
                phi = phi_buf[:n_img * out_h * out_w]
                psi = psi_buf[:n_img * out_h * out_w]
                w_phi, w_psi = convs[h]
                _k.signed_window_sum(kphi, in_h, in_w, w_phi, q, offset, out_h, out_w, phi)
                _k.signed_window_sum(t, in_h, in_w, w_psi, q, offset, out_h, out_w, psi)
                in_h, in_w = out_h, out_w
        if pool is None:
            _k.mean_pool(t, in_h * in_w, out)
        else:
            _k.signed_pool(t, pool, out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.requires_fit = True
        return tags
