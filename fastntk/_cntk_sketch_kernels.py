"""Numba kernels of :class:`fastntk.CNTKSketch`, fused over all pixels of a batch.

Every per-pixel feature map lives in a 2-D array of shape ``(n_pixels, width)`` whose rows
are the pixels of a batch of images, image-major then row-major (pixel ``(k, i, j)`` of a
map of size ``h x w`` is row ``(k h + i) w + j``).  The kernels never draw random numbers:
signs, weights and sampled coordinates are drawn with NumPy at ``fit`` and passed in.

Conventions (those of :mod:`fastntk._hadamard`): ``H`` is the unnormalised Walsh–Hadamard
matrix of a power-of-two order ``n_pad``; the *sampled transform* of ``x`` with signs ``s``
and coordinates ``idx`` is ``(H D_s x)[idx]``; for ``idx`` uniform on ``[0, n_pad)``,
``E_idx[(H D x)_idx (H D y)_idx] = <x, y>`` whatever the signs, which is what makes every
product of independently sampled coordinates below an unbiased sketch.
"""
import math

import numpy as np
from numba import prange

from ._jit import jit

from ._hadamard import fwht_inplace

__all__ = [
    "window_features",
    "signed_window_sum",
    "relu_sketch_layer",
    "tree_constants",
    "mean_pool",
    "signed_pool",
]


@jit
def _transform(x, signs, buf):
    """``buf = H D x`` (``x`` zero-padded to ``len(buf)``)."""
    d = x.shape[0]
    for j in range(d):
        buf[j] = signs[j] * x[j]
    for j in range(d, buf.shape[0]):
        buf[j] = 0
    fwht_inplace(buf)


@jit
def _sampled_transform(x, signs, idx, buf, out):
    """``out = (H D x)[idx]``."""
    _transform(x, signs, buf)
    for r in range(idx.shape[0]):
        out[r] = buf[idx[r]]


@jit(inline="always")
def _block_bounds(n, n_blocks, b):
    return (b * n) // n_blocks, ((b + 1) * n) // n_blocks


# ---------------------------------------------------------------------------
# convolutions: direct sums of the q x q neighbours
# ---------------------------------------------------------------------------
@jit(parallel=True)
def window_features(images, q, offset, out_h, out_w, out):
    """Exact first-layer features: ``(1/q) (+)_delta x_{p + delta}``, zeros outside.

    ``<out[p](x), out[p'](y)> = (1/q^2) sum_delta <x_{p+delta}, y_{p'+delta}>`` is
    ``Sigma^(1)_{p,p'}`` of the CNTK (:mod:`fastntk.kernels`) exactly.

    Parameters
    ----------
    images : ndarray of shape (b, H, W, C)
    q : int
        Filter size.
    offset : int
        Row/column offset of the window's first tap (``-((q-1)//2)`` for "same", 0 for
        "valid").
    out_h, out_w : int
        Size of the first layer's map.
    out : ndarray of shape (b * out_h * out_w, q * q * C), overwritten
    """
    n_img, in_h, in_w, n_ch = images.shape
    inv_q = 1.0 / q
    n_rows = n_img * out_h * out_w
    for row in prange(n_rows):
        k = row // (out_h * out_w)
        i = (row // out_w) % out_h
        j = row % out_w
        o = out[row]
        for a in range(q):
            r = i + offset + a
            for c in range(q):
                col = j + offset + c
                base = (a * q + c) * n_ch
                if 0 <= r < in_h and 0 <= col < in_w:
                    for ch in range(n_ch):
                        o[base + ch] = inv_q * images[k, r, col, ch]
                else:
                    for ch in range(n_ch):
                        o[base + ch] = 0


@jit(parallel=True)
def signed_window_sum(feat, in_h, in_w, weights, q, offset, out_h, out_w, out):
    """Convolution of per-pixel features: ``out[p] = sum_delta w_delta * feat[p + delta]``.

    With ``weights[delta]`` = independent random signs divided by ``q``, this reduces the
    direct sum ``(1/q) (+)_delta feat[p + delta]`` (width ``q^2 m``) to width ``m``
    unbiasedly: the cross terms between different ``delta`` have mean zero.  Pixels
    outside the map contribute nothing ("same" padding).

    Parameters
    ----------
    feat : ndarray of shape (b * in_h * in_w, m)
    in_h, in_w : int
        Size of the input map.
    weights : ndarray of shape (q * q, m)
    q, offset, out_h, out_w : int
        Window geometry, as in :func:`window_features`.
    out : ndarray of shape (b * out_h * out_w, m), overwritten
    """
    m = feat.shape[1]
    n_rows = out.shape[0]
    for row in prange(n_rows):
        k = row // (out_h * out_w)
        i = (row // out_w) % out_h
        j = row % out_w
        o = out[row]
        for r in range(m):
            o[r] = 0
        for a in range(q):
            ri = i + offset + a
            if ri < 0 or ri >= in_h:
                continue
            for c in range(q):
                cj = j + offset + c
                if cj < 0 or cj >= in_w:
                    continue
                src = feat[(k * in_h + ri) * in_w + cj]
                w = weights[a * q + c]
                for r in range(m):
                    o[r] += w[r] * src[r]


# ---------------------------------------------------------------------------
# one ReLU layer: PolySketch of the normalised features, K and KDot, Theta * KDot + K
# ---------------------------------------------------------------------------
@jit
def _poly_tree(t0, e0, degree, n_leaves, leaf_idx, node_signs, node_idx, const_right, scale,
               prev, cur, tl, buf, q):
    """All PolySketch degrees 1..degree of one unit vector from its transform ``t0``.

    The leaves are the input itself (its width is already at most ``m``), so the
    leaves' parents sample the one transform ``t0 = H D_0 u`` directly:
    ``scale * t0[a] * t0[b]`` (both leaves fed with ``u``) or ``scale * t0[a] * e0``
    (right leaf fed with ``e_1``, whose transform is the constant ``e0 = D_0[0]``).
    A higher node combines its children ``l``, ``r`` (sketches of width ``m``) as
    ``(H D l)[idx] * r``: a TensorSRHT whose right factor is used as it is, which stays
    unbiased because ``E_idx[(H D l)_idx (H D l')_idx] = <l, l'>`` for any ``r``
    (``sum_k r_k r'_k = <r, r'>``), and loses little variance because ``r`` is itself a
    product of sampled Hadamard coordinates, spread evenly over its coordinates.

    Degree ``j`` feeds ``u`` to the first ``j`` leaves and ``e_1`` to the others, so a
    node over leaves ``[s, s + w)`` takes ``r = clip(j - s, 0, w)`` copies of ``u``;
    variant ``r = 0`` is a constant (the right ones are precomputed in
    ``const_right``) and each non-constant variant is computed once and shared by all
    the degrees that need it.  Every node samples its own coordinates, so children are
    independent given the signs and each degree is unbiased:
    ``E <Q^j(u), Q^j(v)> = <u, v>^j``.

    Writes ``Q^j`` into ``q[j]`` for j = 1..degree.
    """
    m = q.shape[1]
    # leaves' parents: node i covers leaves 2i, 2i + 1; variant r at row 3 i + r
    n_nodes = n_leaves // 2
    for i in range(n_nodes):
        r_max = min(2, max(0, degree - 2 * i))
        a = leaf_idx[i, 0]
        b = leaf_idx[i, 1]
        one = prev[3 * i + 1]
        two = prev[3 * i + 2]
        if r_max == 2:
            for k in range(m):
                ta = scale * t0[a[k]]
                one[k] = e0 * ta
                two[k] = ta * t0[b[k]]
        elif r_max == 1:
            for k in range(m):
                one[k] = scale * e0 * t0[a[k]]
    w = 2  # leaves under each child of the next level
    g = 0  # index of the current node in node_signs / node_idx / const_right
    while w < n_leaves:
        n_nodes //= 2
        for i in range(n_nodes):
            r_max = min(2 * w, max(0, degree - 2 * w * i))
            left = 2 * i * (w + 1)
            right = (2 * i + 1) * (w + 1)
            for r in range(1, min(w, r_max) + 1):
                _sampled_transform(prev[left + r], node_signs[g], node_idx[g], buf, tl[r - 1])
            for r in range(1, r_max + 1):
                r_left = min(r, w)
                a = tl[r_left - 1]
                bb = prev[right + r - r_left] if r > w else const_right[g]
                row = cur[i * (2 * w + 1) + r]
                for k in range(m):
                    row[k] = a[k] * bb[k]
            g += 1
        prev, cur = cur, prev
        w *= 2
    # the root is node 0 of the last level: variant j at row j
    for j in range(1, degree + 1):
        for k in range(m):
            q[j, k] = prev[j, k]


@jit(parallel=True)
def relu_sketch_layer(phi, psi, norms, layer, leaf_signs, leaf_idx, node_signs, node_idx,
                      const_right, degree, n_leaves, k1_weights, k0_weights, psi_signs,
                      psi_idx, prod_weights, k_weights, kphi_out, t_out, n_blocks):
    """One ReLU layer of the CNTK sketch for every pixel of a batch.

    For each pixel, with ``N`` its exact diagonal ``Sigma_{p,p}``, ``u = phi / ||phi||``
    and ``Q^j`` its PolySketch of degree ``j`` (``Q^0`` the flat constant
    ``1/sqrt(m)``)::

        kphi = sqrt(N) sum_j k1_weights[j] * Q^j     features of K = sqrt(N N') k1(rho)
        kdot =         sum_j k0_weights[j] * Q^j     features of KDot = k0(rho)
        t    = prod_weights * (H D psi')[psi_idx] * kdot + k_weights * kphi

    with ``psi' = psi * sqrt(layer N) / ||psi||``: ``layer N`` is the exact diagonal of
    Theta at this layer (``Theta_{p,p} = h N_p`` at layer ``h``, since ``k0(1) = k1(1)
    = 1`` make ``T_{p,p} = Theta_{p,p} + N_p`` and the window average is linear).

    Both normalisations use the features' own norms, not only the exact diagonals: the
    polynomials see an exactly unit vector, and the norm of ``psi`` does not drift.
    Dividing by ``sqrt(N)`` alone let the sketching error of ``||phi||`` grow layer
    after layer (a polynomial with ``P(1) = 1`` and ``P'(1) >= 1`` maps a squared norm
    ``s > 1`` to ``P(s) > s``), which made the features of deep networks explode (off
    by 1e17 and more at depth 14, NaN at 20); with both, the diagonal of every layer is
    exact and off-diagonal estimates carry an O(1/m) bias.

    ``k1_weights[j]`` is ``sqrt(c_j)`` times independent random signs, which reduces the
    direct sum ``(+)_j sqrt(c_j) Q^j`` to width ``m`` without bias; likewise ``t`` is the
    signed sum of the features of ``Theta * KDot`` (a one-sided TensorSRHT of
    ``psi (x) kdot``, see :func:`_poly_tree`) and of ``K``.  A pixel whose diagonal is 0
    has ``Sigma = Theta = 0`` against every pixel: its outputs are 0.

    Parameters
    ----------
    phi, psi : ndarray of shape (n_pixels, d)
        Features of Sigma and Theta at this layer.
    norms : ndarray of shape (n_pixels,)
        Exact diagonals ``N_p``.
    layer : int
        ``h``, the 1-based index of this layer.
    leaf_signs : ndarray of shape (d,)
    leaf_idx : ndarray of shape (n_leaves // 2, 2, m), values in ``[0, pow2(d))``
    node_signs : ndarray of shape (n_leaves // 2 - 1, m)
    node_idx : ndarray of shape (n_leaves // 2 - 1, m), values in ``[0, pow2(m))``
        Nodes above the leaves' parents, level by level, root last.
    const_right : ndarray of shape (n_leaves // 2 - 1, m)
        Constant (all-``e_1``) output of each such node's right child.
    degree, n_leaves : int
        Polynomial degree ``p`` and ``max(2, 2**ceil(log2(p)))``.
    k1_weights, k0_weights : ndarray of shape (degree + 1, m)
    psi_signs : ndarray of shape (d,)
    psi_idx : ndarray of shape (m,), values in ``[0, pow2(d))``
    prod_weights, k_weights : ndarray of shape (m,)
    kphi_out, t_out : ndarray of shape (n_pixels, m), overwritten
    n_blocks : int
        Number of contiguous blocks of pixels processed in parallel, each with its own
        scratch (a few per thread balance the load).  Passed in rather than read from
        ``numba.get_num_threads()``, which would keep Numba from caching this function.
    """
    n, d = phi.shape
    m = kphi_out.shape[1]
    pad_d = 1
    while pad_d < d:
        pad_d *= 2
    pad_m = 1
    while pad_m < m:
        pad_m *= 2
    scale = 1.0 / math.sqrt(m)
    e0 = leaf_signs[0]
    n_rows = n_leaves + n_leaves // 2
    for blk in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, blk)
        u = np.empty(d, dtype=kphi_out.dtype)
        buf_d = np.empty(pad_d, dtype=kphi_out.dtype)
        buf_m = np.empty(pad_m, dtype=kphi_out.dtype)
        prev = np.empty((n_rows, m), dtype=kphi_out.dtype)
        cur = np.empty((n_rows, m), dtype=kphi_out.dtype)
        tl = np.empty((n_leaves // 2, m), dtype=kphi_out.dtype)
        q = np.empty((degree + 1, m), dtype=kphi_out.dtype)
        psi_t = np.empty(m, dtype=kphi_out.dtype)
        kdot = np.empty(m, dtype=kphi_out.dtype)
        for k in range(m):
            q[0, k] = scale
        for p in range(start, stop):
            kphi = kphi_out[p]
            t = t_out[p]
            phi_sq = 0.0
            psi_sq = 0.0
            for k in range(d):
                phi_sq += phi[p, k] * phi[p, k]
                psi_sq += psi[p, k] * psi[p, k]
            if norms[p] <= 0 or phi_sq <= 0 or psi_sq <= 0:
                for k in range(m):
                    kphi[k] = 0
                    t[k] = 0
                continue
            root = math.sqrt(norms[p])
            inv = 1.0 / math.sqrt(phi_sq)
            for k in range(d):
                u[k] = inv * phi[p, k]
            _transform(u, leaf_signs, buf_d)
            _poly_tree(buf_d, e0, degree, n_leaves, leaf_idx, node_signs, node_idx,
                       const_right, scale, prev, cur, tl, buf_m, q)
            _sampled_transform(psi[p], psi_signs, psi_idx, buf_d, psi_t)
            psi_scale = math.sqrt(layer * norms[p] / psi_sq)
            for k in range(m):
                psi_t[k] *= psi_scale
            # degree-outer loops: unit-stride inner loops that vectorise
            for k in range(m):
                kphi[k] = k1_weights[0, k] * q[0, k]
                kdot[k] = k0_weights[0, k] * q[0, k]
            for j in range(1, degree + 1):
                for k in range(m):
                    kphi[k] += k1_weights[j, k] * q[j, k]
                    kdot[k] += k0_weights[j, k] * q[j, k]
            for k in range(m):
                kphi[k] *= root
                t[k] = prod_weights[k] * psi_t[k] * kdot[k] + k_weights[k] * kphi[k]


@jit
def tree_constants(node_signs, node_idx, n_leaves, m):
    """``const_right`` of :func:`relu_sketch_layer`: the tree fed with ``e_1`` only.

    The leaves' parents then output the flat vector ``1/sqrt(m)`` (``e0^2 = 1``); every
    higher node outputs ``(H D c_left)[idx] * c_right``.

    Returns
    -------
    ndarray of shape (n_leaves // 2 - 1, m), float64
    """
    pad_m = 1
    while pad_m < m:
        pad_m *= 2
    buf = np.empty(pad_m)
    left = np.empty(m)
    out = np.empty((node_signs.shape[0], m))
    n_nodes = n_leaves // 2
    level = np.full((n_nodes, m), 1.0 / math.sqrt(m))
    g = 0
    while n_nodes > 1:
        n_nodes //= 2
        nxt = np.empty((n_nodes, m))
        for i in range(n_nodes):
            _sampled_transform(level[2 * i], node_signs[g].astype(np.float64), node_idx[g],
                               buf, left)
            out[g] = level[2 * i + 1]
            for k in range(m):
                nxt[i, k] = left[k] * out[g, k]
            g += 1
        level = nxt
    return out


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
@jit(parallel=True)
def mean_pool(t, n_pixels, out):
    """Global average pooling: ``out[k] = mean of the rows of image k`` (pixel order)."""
    m = t.shape[1]
    for k in prange(out.shape[0]):
        o = out[k]
        for r in range(m):
            o[r] = 0
        for p in range(k * n_pixels, (k + 1) * n_pixels):
            row = t[p]
            for r in range(m):
                o[r] += row[r]
        inv = 1.0 / n_pixels
        for r in range(m):
            o[r] *= inv


@jit(parallel=True)
def signed_pool(t, weights, out):
    """Flatten pooling: ``out[k] = sum_p weights[p] * t[k, p]``.

    With ``weights[p]`` independent random signs divided by ``sqrt(P)`` this reduces the
    concatenation ``(+)_p t_p / sqrt(P)`` (features of ``(1/P) sum_p T_{p,p}``) to
    width ``m`` without bias.
    """
    n_pixels, m = weights.shape
    for k in prange(out.shape[0]):
        o = out[k]
        for r in range(m):
            o[r] = 0
        for p in range(n_pixels):
            row = t[k * n_pixels + p]
            w = weights[p]
            for r in range(m):
                o[r] += w[r] * row[r]
