"""Exact NTK / NNGP kernels of fully-connected and convolutional ReLU networks.

These are the ground truth every sketch in fastntk approximates.  They cost O(n^2)
memory (NTK) and O(n^2 P^2 q^2 L) time (CNTK), so they serve as the reference on small
inputs and as the exact kernel-ridge baseline, not as production paths.

Definitions
-----------
With the arc-cosine functions of :mod:`fastntk.arccos` (``t`` clipped to [-1, 1])::

    k0(t) = 1 - arccos(t) / pi
    k1(t) = (sqrt(1 - t^2) + t (pi - arccos t)) / pi

*Fully-connected NTK*, depth ``L >= 1`` (``L`` hidden ReLU layers, no biases)::

    Sigma_0(x, y) = Theta_0(x, y) = <x, y>
    for h = 1..L:
        rho        = Sigma_{h-1}(x, y) / sqrt(Sigma_{h-1}(x, x) Sigma_{h-1}(y, y))
        Sigma_h    = sqrt(Sigma_{h-1}(x, x) Sigma_{h-1}(y, y)) k1(rho)
        Theta_h    = Theta_{h-1} k0(rho) + Sigma_h
    NTK(x, y) = Theta_L,  NNGP(x, y) = Sigma_L;  both 0 when x or y is 0.

Since ``k1(1) = 1``, ``Sigma_h(x, x) = ||x||^2`` at every layer and
``NTK(x, y) = ||x|| ||y|| K_L(<x, y> / (||x|| ||y||))`` with ``K_L`` the function of the
cosine computed by :func:`ntk_dot_product`.  Depth 1 is the two-layer network,
``<x, y> k0(rho) + ||x|| ||y|| k1(rho)``.  The kernel is positively homogeneous,
``NTK(a x, b y) = a b NTK(x, y)`` for ``a, b > 0``, which is how every finite input whose
kernel is finite gets it (rows too large or too small to square are rescaled exactly by
powers of two, :mod:`fastntk._scaling`).

*Convolutional NTK* (Arora et al., 2019), images channels-last ``(H, W, C)``, ``L`` conv
layers of ``q x q`` filters, stride 1, "same" (zeros outside the image) or "valid"
padding, each followed by ReLU, then pooling and a linear readout.  For pixels ``p, p'``
let ``W[A]_{p,p'} = (1/q^2) sum_{delta in window} A_{p+delta, p'+delta}``; then::

    Sigma^(1) = W[G],  G_{p,p'} = <x_p, y_p'>   (channel dot product)
    Theta^(1) = Sigma^(1)
    for h = 1..L, with N_p = Sigma^(h)_{p,p}(x, x), N'_p' likewise for y:
        K^(h)_{p,p'}    = sqrt(N_p N'_p') k1(Sigma^(h)_{p,p'} / sqrt(N_p N'_p'))
        KDot^(h)_{p,p'} = k0(same argument)
        T^(h) = Theta^(h) * KDot^(h) + K^(h)          (elementwise)
        if h < L:  Sigma^(h+1) = W[K^(h)],  Theta^(h+1) = W[T^(h)]
    "gap":     CNTK(x, y) = (1/P^2) sum_{p,p'} T^(L)_{p,p'}   (P pixels in the last map)
    "flatten": CNTK(x, y) = (1/P)   sum_p      T^(L)_{p,p}
    the NNGP uses K^(L) in place of T^(L).

The diagonal has an exact cheap recursion, ``N^(1)`` = box filter of ``||x_p||^2 / q^2``
and ``N^(h+1) = W[N^(h)]`` (:func:`cntk_diagonals`), and ``Theta^(h)_{p,p} = h N^(h)_p``.
A 1x1 image with ``q = 1`` reduces the CNTK to the NTK.

Relation to neural-tangents: ``ntk_kernel(X, depth=L)`` equals the NTK that
``neural_tangents.stax`` computes for ``serial(Dense(1, W_std=sqrt(d)), Relu(),
[Dense(1, W_std=sqrt(2)), Relu()] * (L-1), Dense(1, W_std=sqrt(2)))`` without biases, and
``cntk_kernel`` the one of ``serial(Conv(1, (q, q), padding, W_std=sqrt(C)), Relu(),
[Conv(1, (q, q), padding, W_std=sqrt(2)), Relu()] * (L-1), GlobalAvgPool() or Flatten(),
Dense(1, W_std=sqrt(2)))``: neural-tangents divides by the fan-in and its Relu carries a
factor 1/2, which these ``W_std`` values cancel.
"""
import math
import numbers

import numpy as np
import scipy.sparse as sp
from numba import prange

from ._jit import jit
from .arccos import acos
from ._scaling import row_exponents, scale_rows
from ._validation import check_array

__all__ = ["ntk_kernel", "ntk_dot_product", "cntk_kernel", "cntk_diagonals"]

_KINDS = ("ntk", "nngp")
_PADDINGS = ("same", "valid")
_POOLINGS = ("gap", "flatten")


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_matrix(X, name):
    return check_array(
        X,
        accept_sparse=("csr", "csc", "coo"),
        dtype=(np.float64, np.float32),
        ensure_all_finite=True,
        input_name=name,
    )


def _check_images(X, name):
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of channels-last images of shape (n, H, W, C), "
            f"got an array of ndim {X.ndim}"
        )
    if X.size == 0:
        raise ValueError(f"{name} is empty: shape {X.shape}")
    X = check_array(
        X, dtype=(np.float64, np.float32), ensure_all_finite=True, allow_nd=True, input_name=name
    )
    return np.ascontiguousarray(X, dtype=np.float64)


# ---------------------------------------------------------------------------
# fully-connected NTK
# ---------------------------------------------------------------------------
@jit(inline="always")
def _relu_layer_inplace(sigma, theta, nngp):
    """One layer of the unit-norm recursion on vectors of cosines (vectorisable loop).

    ``theta <- theta k0(sigma) + k1(sigma)`` and ``sigma <- k1(sigma)``; k0 and k1 share
    one arccos.  With ``nngp`` only sigma is updated.
    """
    for j in range(sigma.shape[0]):
        t = min(max(sigma[j], -1.0), 1.0)
        angle = acos(t)
        k1 = (math.sqrt(max(1.0 - t * t, 0.0)) + t * (math.pi - angle)) / math.pi
        if not nngp:
            theta[j] = theta[j] * (1.0 - angle / math.pi) + k1
        sigma[j] = k1


@jit
def _unit_ntk_vector(t, depth, nngp):
    """K_L(t) (or k1^(L)(t) for the NNGP) for a vector of cosines t, in place.

    Cosines are clipped to [-1, 1] first, in the layers' input as in ``Theta_0``.
    """
    for j in range(t.shape[0]):
        t[j] = min(max(t[j], -1.0), 1.0)
    theta = t.copy()
    for _ in range(depth):
        _relu_layer_inplace(t, theta, nngp)
    return t if nngp else theta


@jit(inline="always")
def _ntk_row(gram, i, start, norms_x, norms_y, depth, nngp, at_zero):
    """NTK(x_i, y_j) for j >= start, in place on row i of the Gram matrix.

    Orthogonal pairs (the bulk of a sparse text Gram matrix, where most documents share
    no word) all take the value ``||x|| ||y|| K_L(0)``; only the non-zero cosines are
    gathered and pushed through the layer recursion.
    """
    row = gram[i, start:]
    scale = norms_x[i] * norms_y[start:]
    where = np.empty(row.shape[0], dtype=np.int64)
    cosine = np.empty(row.shape[0])
    count = 0
    for j in range(row.shape[0]):
        if row[j] != 0.0 and scale[j] > 0.0:
            where[count] = j
            cosine[count] = row[j] / scale[j]
            count += 1
    values = _unit_ntk_vector(cosine[:count], depth, nngp)
    for j in range(row.shape[0]):
        row[j] = scale[j] * at_zero
    for c in range(count):
        row[where[c]] = scale[where[c]] * values[c]


@jit(parallel=True)
def _ntk_from_gram(gram, norms_x, norms_y, depth, nngp):
    """Overwrite a Gram matrix <x_i, y_j> with NTK(x_i, y_j), in place."""
    at_zero = _unit_ntk_vector(np.zeros(1), depth, nngp)[0]
    for i in prange(gram.shape[0]):
        _ntk_row(gram, i, 0, norms_x, norms_y, depth, nngp, at_zero)
    return gram


@jit(parallel=True)
def _ntk_from_gram_symmetric(gram, norms, depth, nngp):
    """Symmetric variant: computes the upper triangle, then mirrors it.

    Rows are handled in pairs (i, n-1-i) so that every task has the same triangular
    work and the threads stay balanced.  The diagonal uses cos(x, x) = 1 exactly,
    avoiding arccos(1 - eps) rounding.
    """
    n = gram.shape[0]
    unit = _unit_ntk_vector(np.ones(1), depth, nngp)[0]
    at_zero = _unit_ntk_vector(np.zeros(1), depth, nngp)[0]
    for task in prange((n + 1) // 2):
        first = np.int64(task)
        last = n - 1 - first
        _ntk_row(gram, first, first + 1, norms, norms, depth, nngp, at_zero)
        gram[first, first] = norms[first] * norms[first] * unit
        if last != first:
            _ntk_row(gram, last, last + 1, norms, norms, depth, nngp, at_zero)
            gram[last, last] = norms[last] * norms[last] * unit
    for i in prange(n):
        for j in range(i):
            gram[i, j] = gram[j, i]
    return gram


@jit(parallel=True)
def _ntk_dot_product_1d(t, depth, nngp):
    out = np.empty_like(t)
    block = 4096
    for b in prange((t.shape[0] + block - 1) // block):
        chunk = t[b * block:(b + 1) * block].copy()
        out[b * block:(b + 1) * block] = _unit_ntk_vector(chunk, depth, nngp)
    return out


def _row_norms(X):
    if sp.issparse(X):
        from ._compiled import csr_row_norms_sq

        X = X.tocsr()
        return np.sqrt(csr_row_norms_sq(X.data, X.indptr))
    return np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))


def _gram(X, Y):
    """<x_i, y_j> as a dense float64 C-contiguous array (BLAS or sparse product)."""
    if sp.issparse(X) or (Y is not None and sp.issparse(Y)):
        X = sp.csr_matrix(X, dtype=np.float64)
        Y = X if Y is None else sp.csr_matrix(Y, dtype=np.float64)
        product = X @ Y.T
        return np.ascontiguousarray(product.toarray())
    X = np.asarray(X, dtype=np.float64)
    if Y is None:
        # the same buffer lets numpy use a symmetric rank-k update for X @ X.T
        return np.ascontiguousarray(X @ X.T)
    Y = np.asarray(Y, dtype=np.float64)
    if np.may_share_memory(X, Y):
        # an explicit Y always takes the general product, so that K(X, Y) does not
        # change in the last bit with whether Y happens to alias X
        Y = Y.copy()
    return np.ascontiguousarray(X @ Y.T)


def ntk_kernel(X, Y=None, *, depth=1, kind="ntk"):
    """Exact NTK (or NNGP) of a fully-connected ReLU network without biases.

    Implements the recursion of the module docstring (Jacot et al., 2018; Arora et al.,
    2019): with rho the cosine of the previous layer's covariance,
    ``Sigma_h = sqrt(Sigma_{h-1}(x,x) Sigma_{h-1}(y,y)) k1(rho)``,
    ``Theta_h = Theta_{h-1} k0(rho) + Sigma_h``, starting from ``Theta_0 = Sigma_0 = <x,y>``.
    Equivalently ``NTK(x, y) = ||x|| ||y|| K_L(cos(x, y))`` (see :func:`ntk_dot_product`).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples_X, n_features)
    Y : {array-like, sparse matrix} of shape (n_samples_Y, n_features), default=None
        If None, ``Y = X`` and only the upper triangle is evaluated.
    depth : int, default=1
        Number L >= 1 of hidden ReLU layers (1 = the two-layer network).
    kind : {"ntk", "nngp"}, default="ntk"
        "ntk" returns Theta_L, "nngp" the Gaussian-process kernel Sigma_L.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y), float64
        Zero wherever x or y is the zero vector.

    Notes
    -----
    The Gram matrix comes from one BLAS (or sparse) product; the layer recursion runs in
    Numba, in parallel over rows, in place on that matrix (no extra n_X x n_Y buffer).
    """
    depth = _check_positive_int("depth", depth)
    _check_choice("kind", kind, _KINDS)
    X = _check_matrix(X, "X")
    symmetric = Y is None
    if not symmetric:
        Y = _check_matrix(Y, "Y")
        if Y.shape[1] != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match"
            )
    # NTK(a x, b y) = a b NTK(x, y): rows too large or too small to square are scaled by
    # powers of two (exactly), and the kernel back
    exp_x = row_exponents(X)
    exp_y = exp_x if symmetric else row_exponents(Y)
    X = scale_rows(X, exp_x)
    Y = None if symmetric else scale_rows(Y, exp_y)
    norms_x = _row_norms(X)
    norms_y = norms_x if symmetric else _row_norms(Y)
    gram = _gram(X, Y)
    if symmetric:
        K = _ntk_from_gram_symmetric(gram, norms_x, depth, kind == "nngp")
    else:
        K = _ntk_from_gram(gram, norms_x, norms_y, depth, kind == "nngp")
    return _scale_back(K, exp_x, exp_y)


def _scale_back(K, exp_x, exp_y):
    """``K[i, j] * 2^(exp_x[i] + exp_y[j])`` in place: a kernel homogeneous of degree 1
    in each argument, computed on rows scaled by :func:`fastntk._scaling.scale_rows`."""
    if np.any(exp_x) or np.any(exp_y):
        np.ldexp(K, exp_x[:, None] + exp_y[None, :], out=K)
    return K


def ntk_dot_product(t, *, depth=1, kind="ntk"):
    """The unit-norm NTK as a function of the cosine: K_L(t), elementwise.

    ``K_L(t) = sum_{h=0..L} k1^(h)(t) prod_{j=h..L-1} k0(k1^(j)(t))`` (k1^(h) the h-fold
    composition), so that ``NTK(x, y) = ||x|| ||y|| K_L(<x, y> / (||x|| ||y||))``.
    With ``kind="nngp"`` it returns ``k1^(L)(t)``.

    Parameters
    ----------
    t : array_like
        Cosines; values outside [-1, 1] are clipped to it (``K_L(1.5) = K_L(1)``).
    depth : int, default=1
    kind : {"ntk", "nngp"}, default="ntk"

    Returns
    -------
    ndarray of the shape of ``t``, float64
    """
    depth = _check_positive_int("depth", depth)
    _check_choice("kind", kind, _KINDS)
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise ValueError("t contains NaN or infinity")
    flat = np.ascontiguousarray(t).ravel()
    return _ntk_dot_product_1d(flat, depth, kind == "nngp").reshape(t.shape)


# ---------------------------------------------------------------------------
# convolutional NTK
# ---------------------------------------------------------------------------
def _conv_geometry(height, width, filter_size, padding, depth):
    """Map sizes per layer and the window offset, checking the image is large enough."""
    if padding == "same":
        return [(height, width)] * depth, -((filter_size - 1) // 2)
    sizes = []
    h, w = height, width
    for layer in range(depth):
        h, w = h - filter_size + 1, w - filter_size + 1
        if h < 1 or w < 1:
            raise ValueError(
                f"images of size {height}x{width} are too small for {depth} 'valid' "
                f"convolution(s) with filter_size={filter_size} (layer {layer + 1} would be "
                f"{h}x{w})"
            )
        sizes.append((h, w))
    return sizes, 0


@jit
def _box_filter(A, out_h, out_w, q, offset):
    """(1/q^2) sum over the q x q window of a 2-D map (zeros outside), per output pixel."""
    in_h, in_w = A.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            acc = 0.0
            for a in range(q):
                r = i + offset + a
                if r < 0 or r >= in_h:
                    continue
                for b in range(q):
                    c = j + offset + b
                    if 0 <= c < in_w:
                        acc += A[r, c]
            out[i, j] = acc / (q * q)
    return out


@jit
def _image_diagonals(image, sizes, q, offset, out):
    """Write N^(h) of one image into out[h, :H_h, :W_h] for every layer h."""
    height, width, _ = image.shape
    current = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            current[i, j] = np.sum(image[i, j] ** 2)
    for h in range(sizes.shape[0]):
        current = _box_filter(current, sizes[h, 0], sizes[h, 1], q, offset)
        out[h, : sizes[h, 0], : sizes[h, 1]] = current


@jit(parallel=True)
def _diagonals(images, sizes, q, offset):
    """N^(h) for every image and layer, stacked as (depth, n, max H_h, max W_h)."""
    n, height, width, _ = images.shape
    out = np.zeros((sizes.shape[0], n, height, width))
    for k in prange(n):
        _image_diagonals(images[k], sizes, q, offset, out[:, k])
    return out


def cntk_diagonals(X, *, depth, filter_size=3, padding="same"):
    """Exact per-pixel diagonals N^(h)_p = Sigma^(h)_{p,p}(x, x) of the CNTK, h = 1..depth.

    ``N^(1)`` is the q x q box filter of ``||x_p||^2`` divided by q^2 and
    ``N^(h+1) = W[N^(h)]`` (see the module docstring), because k1(1) = 1 keeps each layer's
    diagonal equal to the previous layer's window average.  Every sketch of the CNTK uses
    these for its per-pixel normalisation.

    Parameters
    ----------
    X : array-like of shape (n, H, W, C)
    depth : int
    filter_size : int, default=3
    padding : {"same", "valid"}, default="same"

    Returns
    -------
    list of ``depth`` ndarrays, the h-th of shape (n, H_h, W_h), float64
    """
    depth = _check_positive_int("depth", depth)
    filter_size = _check_positive_int("filter_size", filter_size)
    _check_choice("padding", padding, _PADDINGS)
    X = _check_images(X, "X")
    sizes, offset = _conv_geometry(X.shape[1], X.shape[2], filter_size, padding, depth)
    # N is homogeneous of degree 2 in the image: scale too large or small images exactly
    exponents = row_exponents(X)
    stacked = _diagonals(scale_rows(X, exponents), np.array(sizes, dtype=np.int64),
                         filter_size, offset)
    if np.any(exponents):
        np.ldexp(stacked, 2 * exponents[None, :, None, None], out=stacked)
    return [np.ascontiguousarray(stacked[h, :, :hh, :ww]) for h, (hh, ww) in enumerate(sizes)]


@jit
def _window_average(A, out_h, out_w, q, offset):
    """W[A]: (1/q^2) sum_delta A[p + delta, p' + delta] on a (h, w, h, w) pixel-pair array.

    The last axis is innermost and its valid range is computed once per offset, so the
    inner loop is a branch-free contiguous add that vectorises.  Each entry still sums
    its terms in the order of the offsets (a, b).
    """
    in_h, in_w = A.shape[0], A.shape[1]
    out = np.zeros((out_h, out_w, out_h, out_w))
    scale = 1.0 / (q * q)
    for i in range(out_h):
        for j in range(out_w):
            for k in range(out_h):
                row = out[i, j, k]
                for a in range(q):
                    r, r2 = i + offset + a, k + offset + a
                    if r < 0 or r >= in_h or r2 < 0 or r2 >= in_h:
                        continue
                    for b in range(q):
                        c = j + offset + b
                        if c < 0 or c >= in_w:
                            continue
                        shift = offset + b
                        src = A[r, c, r2]
                        for l in range(max(0, -shift), min(out_w, in_w - shift)):
                            row[l] += src[l + shift]
                for l in range(out_w):
                    row[l] *= scale
    return out


@jit
def _relu_step(sigma, theta, nx, ny, same_image):
    """K, T of one layer from Sigma, Theta and the diagonals (all on one pixel grid).

    One arccos per entry serves both k0 and k1, and the loop over the last axis has no
    call that would stop it vectorising.  With ``same_image`` a pixel paired with itself
    takes cos = 1 exactly, as :func:`ntk_kernel` does on its diagonal: k0 has an infinite
    slope at 1, so a rounded cos of 1 - 1e-16 would shift the kernel by ~1e-8.  (Setting
    Sigma there to the diagonal itself gives t = n / sqrt(n * n) = 1 exactly in IEEE
    arithmetic, and keeps a branch out of the inner loop.)
    """
    h, w = nx.shape
    if same_image:
        for i in range(h):
            for j in range(w):
                sigma[i, j, i, j] = nx[i, j]
    k_map = np.zeros_like(sigma)
    for i in range(h):
        for j in range(w):
            for k in range(h):
                for l in range(w):
                    scale = math.sqrt(nx[i, j] * ny[k, l])
                    if scale == 0.0:
                        # then |Sigma| = |Theta| = 0 here too (Cauchy-Schwarz)
                        theta[i, j, k, l] = 0.0
                        continue
                    t = min(max(sigma[i, j, k, l] / scale, -1.0), 1.0)
                    angle = acos(t)
                    k1 = (math.sqrt(max(1.0 - t * t, 0.0)) + t * (math.pi - angle)) / math.pi
                    k_map[i, j, k, l] = scale * k1
                    theta[i, j, k, l] = (theta[i, j, k, l] * (1.0 - angle / math.pi)
                                         + k_map[i, j, k, l])
    return k_map, theta


@jit
def _cntk_pair(x, y, diag_x, diag_y, sizes, q, offset, flatten, nngp, same_image):
    """CNTK of one pair of images: O(P^2) memory, O(P^2 q^2 L) time."""
    height, width, channels = x.shape
    depth = sizes.shape[0]
    # G_{p,p'} = <x_p, y_p'> as a (H, W, H, W) array
    gram = (x.reshape(height * width, channels) @ y.reshape(height * width, channels).T)
    gram = gram.reshape(height, width, height, width)
    sigma = _window_average(gram, sizes[0, 0], sizes[0, 1], q, offset)
    theta = sigma.copy()
    for h in range(depth):
        hh, ww = sizes[h, 0], sizes[h, 1]
        k_map, theta = _relu_step(
            sigma, theta, diag_x[h, :hh, :ww], diag_y[h, :hh, :ww], same_image
        )
        if h + 1 < depth:
            nh, nw = sizes[h + 1, 0], sizes[h + 1, 1]
            sigma = _window_average(k_map, nh, nw, q, offset)
            theta = _window_average(theta, nh, nw, q, offset)
    final = k_map if nngp else theta
    hh, ww = sizes[depth - 1, 0], sizes[depth - 1, 1]
    n_pixels = hh * ww
    if flatten:
        acc = 0.0
        for i in range(hh):
            for j in range(ww):
                acc += final[i, j, i, j]
        return acc / n_pixels
    return final.sum() / (n_pixels * n_pixels)


@jit(parallel=True)
def _cntk_pairs(X, Y, diag_x, diag_y, pairs, sizes, q, offset, flatten, nngp, symmetric):
    out = np.empty(pairs.shape[0])
    for k in prange(pairs.shape[0]):
        i, j = pairs[k, 0], pairs[k, 1]
        out[k] = _cntk_pair(X[i], Y[j], diag_x[:, i], diag_y[:, j], sizes, q, offset,
                            flatten, nngp, symmetric and i == j)
    return out


def cntk_kernel(X, Y=None, *, depth=1, filter_size=3, padding="same", pooling="gap",
                kind="ntk"):
    """Exact convolutional NTK (or NNGP) of a ReLU CNN, after Arora et al. (2019).

    ``depth`` conv layers with ``filter_size x filter_size`` filters, stride 1, each
    followed by ReLU, then global average pooling ("gap") or flattening ("flatten") and a
    linear readout; no biases; the module docstring gives the recursion.  For "same"
    padding the window of pixel p covers offsets ``-(q-1)//2 .. q-1-(q-1)//2`` (zeros
    outside the image, as TensorFlow / neural-tangents pad); "valid" shrinks each map by
    ``q - 1``.  A 1x1 image with ``filter_size=1`` gives :func:`ntk_kernel`.

    Parameters
    ----------
    X : array-like of shape (n_X, H, W, C), channels last
    Y : array-like of shape (n_Y, H, W, C), default=None
        If None, ``Y = X`` and only pairs ``i <= j`` are evaluated.
    depth : int, default=1
    filter_size : int, default=3
    padding : {"same", "valid"}, default="same"
    pooling : {"gap", "flatten"}, default="gap"
    kind : {"ntk", "nngp"}, default="ntk"

    Returns
    -------
    K : ndarray of shape (n_X, n_Y), float64

    Notes
    -----
    Each pair costs O(P^2 q^2 L) time and O(P^2) memory (P = H W); pairs run in parallel
    (Numba), so the working memory is O(P^2) per thread, never O(n^2 P^2).  This is the
    ground truth for small inputs, not a production path.
    """
    depth = _check_positive_int("depth", depth)
    filter_size = _check_positive_int("filter_size", filter_size)
    _check_choice("padding", padding, _PADDINGS)
    _check_choice("pooling", pooling, _POOLINGS)
    _check_choice("kind", kind, _KINDS)
    X = _check_images(X, "X")
    symmetric = Y is None
    Y = X if symmetric else _check_images(Y, "Y")
    if Y.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X has images of shape {X.shape[1:]} but Y has {Y.shape[1:]}; they must match"
        )
    sizes, offset = _conv_geometry(X.shape[1], X.shape[2], filter_size, padding, depth)
    sizes = np.array(sizes, dtype=np.int64)
    # CNTK(a x, b y) = a b CNTK(x, y): scale too large or small images exactly, and back
    exp_x = row_exponents(X)
    exp_y = exp_x if symmetric else row_exponents(Y)
    X = scale_rows(X, exp_x)
    Y = X if symmetric else scale_rows(Y, exp_y)
    diag_x = _diagonals(X, sizes, filter_size, offset)
    diag_y = diag_x if symmetric else _diagonals(Y, sizes, filter_size, offset)
    n_x, n_y = X.shape[0], Y.shape[0]
    if symmetric:
        rows, cols = np.triu_indices(n_x)
    else:
        rows, cols = np.divmod(np.arange(n_x * n_y), n_y)
    pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    values = _cntk_pairs(X, Y, diag_x, diag_y, pairs, sizes, filter_size, offset,
                         pooling == "flatten", kind == "nngp", symmetric)
    K = np.empty((n_x, n_y))
    K[rows, cols] = values
    if symmetric:
        K[cols, rows] = values
    return _scale_back(K, exp_x, exp_y)
