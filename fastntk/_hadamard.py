"""Numba kernels of the Hadamard-based sketches: FWHT, SRHT, TensorSRHT, PolySketch tree.

These are the dense building blocks of :mod:`fastntk.sketches`, exposed so that other
feature maps can fuse them into their own loops.  They never draw random numbers:
signs and sampled coordinates are drawn with NumPy at ``fit`` and passed in, which
keeps them thread-safe and reproducible.

Conventions shared by every kernel
----------------------------------
* ``H`` is the *unnormalised* Walsh–Hadamard matrix of order ``n_pad`` (a power of
  two), so ``H^T H = n_pad I``.
* An SRHT with signs ``s`` (length ``d <= n_pad``), sampled coordinates ``idx``
  (length ``m``, values in ``[0, n_pad)``) and scale ``c`` maps ``x`` in ``R^d`` to
  ``c * (H D x)[idx]``, where ``D x`` is ``s * x`` padded with zeros to ``n_pad``.
  With ``c = sqrt(1/m)`` and ``idx`` drawn uniformly (with or without replacement),
  ``E <S x, S y> = <x, y>`` whatever the signs.
* Arrays of signs have the dtype of the data (``+-1.0``) so the inner loops stay in
  one precision; float32 data is transformed in float32.
* Parallel kernels split the rows into contiguous blocks, one scratch buffer per
  block; every row is computed by the same sequence of operations whatever the
  number of threads or the batch it belongs to.
"""
import numpy as np
from numba import prange

from ._jit import jit

__all__ = [
    "fwht_inplace",
    "srht_vector",
    "srht_rows",
    "srht_csr_rows",
    "tensor_srht_rows",
    "polysketch_tree",
    "polysketch_constants",
]


@jit
def fwht_inplace(a):
    """Unnormalised fast Walsh–Hadamard transform of a 1-D array, in place.

    Parameters
    ----------
    a : ndarray of shape (n,), float32 or float64, contiguous
        ``n`` must be a power of two (not checked).  Overwritten by ``H a``.

    Notes
    -----
    ``n log2(n)`` additions, two butterfly levels per pass over the data (radix 4),
    which halves the memory traffic of radix 2 (measured about 1.7x faster at
    n = 1024 .. 16384), and one radix-2 level at the end when ``log2(n)`` is odd.
    The first pass works on consecutive quadruples (such short strides do not
    vectorise); the later ones on views ``b0 .. b3`` of the array rather than offsets
    into it: with distinct array objects LLVM emits a runtime overlap check and SIMD
    code, which it does not for ``a[j]``, ``a[j + h]`` (measured: ~5x faster at
    n = 1024).
    """
    n = a.shape[0]
    if n < 4:
        if n == 2:
            u = a[0]
            v = a[1]
            a[0] = u + v
            a[1] = u - v
        return
    for i in range(0, n, 4):
        a0 = a[i]
        a1 = a[i + 1]
        a2 = a[i + 2]
        a3 = a[i + 3]
        s01 = a0 + a1
        d01 = a0 - a1
        s23 = a2 + a3
        d23 = a2 - a3
        a[i] = s01 + s23
        a[i + 1] = d01 + d23
        a[i + 2] = s01 - s23
        a[i + 3] = d01 - d23
    h = 4
    while 4 * h <= n:
        for i in range(0, n, 4 * h):
            b0 = a[i:i + h]
            b1 = a[i + h:i + 2 * h]
            b2 = a[i + 2 * h:i + 3 * h]
            b3 = a[i + 3 * h:i + 4 * h]
            for j in range(h):
                x0 = b0[j]
                x1 = b1[j]
                x2 = b2[j]
                x3 = b3[j]
                s01 = x0 + x1
                d01 = x0 - x1
                s23 = x2 + x3
                d23 = x2 - x3
                b0[j] = s01 + s23
                b1[j] = d01 + d23
                b2[j] = s01 - s23
                b3[j] = d01 - d23
        h *= 4
    if h < n:
        for i in range(0, n, 2 * h):
            lo = a[i:i + h]
            hi = a[i + h:i + 2 * h]
            for j in range(h):
                u = lo[j]
                v = hi[j]
                lo[j] = u + v
                hi[j] = u - v


@jit
def srht_vector(x, signs, idx, buf, out):
    """Unscaled SRHT of one dense vector: ``out = (H D x)[idx]``.

    Parameters
    ----------
    x : ndarray of shape (d,)
    signs : ndarray of shape (d,), +-1 in the dtype of ``x``
    idx : ndarray of shape (m,), integer
        Sampled coordinates, in ``[0, n_pad)``.
    buf : ndarray of shape (n_pad,)
        Scratch; ``n_pad`` is a power of two ``>= d``.
    out : ndarray of shape (m,)

    Notes
    -----
    Multiply by ``sqrt(1/m)`` for an unbiased SRHT; callers fold that scale into their
    next pass over ``out`` instead.
    """
    d = x.shape[0]
    for j in range(d):
        buf[j] = signs[j] * x[j]
    for j in range(d, buf.shape[0]):
        buf[j] = 0
    fwht_inplace(buf)
    for r in range(idx.shape[0]):
        out[r] = buf[idx[r]]


@jit(inline="always")
def _scale(out, scale):
    for r in range(out.shape[0]):
        out[r] = out[r] * scale


@jit(inline="always")
def _block_bounds(n, n_blocks, b):
    return (b * n) // n_blocks, ((b + 1) * n) // n_blocks


@jit(inline="always")
def _n_blocks(n):
    # Blocks of >= 16 rows, at most 64 of them: enough to balance the threads, few
    # enough that allocating each block's scratch (page faults, for large buffers)
    # stays negligible.  (Asking Numba for the thread count here would stop the
    # kernels from caching.)
    return max(1, min(64, n // 16))


@jit(parallel=True)
def srht_rows(X, signs, idx, n_pad, scale, out, first=0):
    """Several independent SRHTs of every row of a dense matrix.

    ``out[i, first + l] = scale * (H D_l X[i])[idx[l]]``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    signs : ndarray of shape (n_sketches, d), +-1 in the dtype of ``X``
    idx : ndarray of shape (n_sketches, m), integer, values in ``[0, n_pad)``
    n_pad : int
        Power of two ``>= d``.
    scale : float
        ``sqrt(1/m)`` for an unbiased SRHT; pass it in the dtype of ``X``.
    out : ndarray of shape (n, first + n_sketches (or more), m)
    first : int
        Slot of ``out`` receiving the first sketch.
    """
    n = X.shape[0]
    n_sketches = signs.shape[0]
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        buf = np.empty(n_pad, dtype=X.dtype)
        for i in range(start, stop):
            for l in range(n_sketches):
                o = out[i, first + l]
                srht_vector(X[i], signs[l], idx[l], buf, o)
                _scale(o, scale)


@jit(parallel=True)
def srht_csr_rows(data, indices, indptr, signs, idx, n_pad, scale, out, first=0):
    """:func:`srht_rows` for CSR rows, scattering each row into the padded buffer.

    Costs O(nnz + n_pad log n_pad) per row and sketch, and never more memory than one
    buffer of length ``n_pad`` per block of rows.  ``indptr`` may be a slice of the
    full row pointers (offsets stay absolute).  Bit-identical to :func:`srht_rows` on
    the densified rows.
    """
    n = indptr.shape[0] - 1
    n_sketches = signs.shape[0]
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        buf = np.empty(n_pad, dtype=data.dtype)
        for i in range(start, stop):
            for l in range(n_sketches):
                buf[:] = 0
                sl = signs[l]
                for k in range(indptr[i], indptr[i + 1]):
                    j = indices[k]
                    buf[j] = sl[j] * data[k]
                fwht_inplace(buf)
                o = out[i, first + l]
                il = idx[l]
                for r in range(il.shape[0]):
                    o[r] = buf[il[r]]
                _scale(o, scale)


@jit(parallel=True)
def tensor_srht_rows(X, Y, signs_x, idx_x, n_pad_x, signs_y, idx_y, n_pad_y, scale, out):
    """TensorSRHT of the row-wise tensor products ``X[i] (x) Y[i]``, never formed.

    ``out[i] = scale * (H D_x X[i])[idx_x] * (H D_y Y[i])[idx_y]`` (Ahle et al., 2020).
    With ``scale = sqrt(1/m)`` and independently drawn ``idx_x``, ``idx_y``,
    ``E <out[i], out'[i]> = <x, x'> <y, y'>``.

    Parameters
    ----------
    X : ndarray of shape (n, d_x)
    Y : ndarray of shape (n, d_y)
    signs_x, signs_y : ndarray of shape (d_x,), (d_y,), +-1 in the data dtype
    idx_x, idx_y : ndarray of shape (m,), integer
    n_pad_x, n_pad_y : int
        Powers of two ``>= d_x``, ``>= d_y``.
    scale : float
    out : ndarray of shape (n, m)
    """
    n = X.shape[0]
    m = idx_x.shape[0]
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        buf_x = np.empty(n_pad_x, dtype=X.dtype)
        buf_y = np.empty(n_pad_y, dtype=X.dtype)
        tmp = np.empty(m, dtype=X.dtype)
        for i in range(start, stop):
            srht_vector(X[i], signs_x, idx_x, buf_x, tmp)
            o = out[i]
            srht_vector(Y[i], signs_y, idx_y, buf_y, o)
            for r in range(m):
                o[r] = o[r] * (tmp[r] * scale)


@jit
def _tree_row(row, signs, idx, const_right, scale, prev, cur, tmp_a, tmp_b, buf):
    """Combine the leaves ``row[1:]`` of one row up the tree, in place (see caller)."""
    p = row.shape[0] - 1
    m = row.shape[1]
    for l in range(p):
        for r in range(m):
            prev[l, r] = row[1 + l, r]
    size = 1  # number of leaves under a node of the children's level
    n_nodes = p
    offset = 0  # index of the first node of the current level in signs/idx
    while size < p:
        n_nodes //= 2
        for nd in range(n_nodes):
            g = offset + nd
            # Distinct inputs of node nd: variant t = number of leaves fed with x.
            # Left child variants t = 1..size, right child variants t = 1..size.
            for t in range(size):
                srht_vector(prev[2 * nd * size + t], signs[g, 0], idx[g, 0], buf, tmp_a[t])
                srht_vector(prev[(2 * nd + 1) * size + t], signs[g, 1], idx[g, 1], buf,
                            tmp_b[t])
            for t in range(1, 2 * size + 1):
                c = cur[nd * 2 * size + t - 1]
                if t <= size:
                    # x on t leaves of the left child only: right child is constant.
                    a = tmp_a[t - 1]
                    bb = const_right[g]
                else:
                    a = tmp_a[size - 1]
                    bb = tmp_b[t - size - 1]
                for r in range(m):
                    c[r] = scale * a[r] * bb[r]
        offset += n_nodes
        size *= 2
        prev, cur = cur, prev
    for r in range(m):
        row[0, r] = 0
    row[0, 0] = 1
    for l in range(p):
        for r in range(m):
            row[1 + l, r] = prev[l, r]


@jit(parallel=True)
def polysketch_tree(out, signs, idx, n_pad, const_right, scale):
    """PolySketch tree of TensorSRHTs, all degrees at once, in place.

    On entry ``out[i, 1 + l]`` holds leaf ``l`` (l = 0..p-1) of row ``i``, the sketch of
    ``x_i`` by the ``l``-th independent leaf sketch.  On exit ``out[i, j]`` is the
    degree-``j`` PolySketch ``Q^j(x_i)``, j = 0..p, with
    ``E <Q^j(x), Q^j(y)> = <x, y>^j``.

    Degree j is the full tree applied to ``x^(⊗j) ⊗ e^(⊗(p-j))`` where the leaf image of
    the padding vector is ``e = e_1`` in ``R^m`` (unit norm, as the leaf image of the
    input-space e_1 is for CountSketch and SRHT leaves).  A node over leaves
    ``[a, a + 2s)`` receives x on ``t = clip(j - a, 0, 2s)`` leaves, so it has only
    ``2s`` non-constant inputs: level by level the tree costs ``p`` TensorSRHT
    transforms per row, ``p log2(p)`` in all, instead of ``p - 1`` per degree.  The
    all-constant subtrees are precomputed (:func:`polysketch_constants`).  Degree 0
    is set exactly to ``e_1`` (``<Q^0(x), Q^0(y)> = 1``).

    Parameters
    ----------
    out : ndarray of shape (n, p + 1, m), C-contiguous; p a power of two
    signs : ndarray of shape (p - 1, 2, m), +-1 in the dtype of ``out``
        Signs of the left/right inputs of every node, leaves' parents first, level by
        level, root last.
    idx : ndarray of shape (p - 1, 2, m), integer, values in ``[0, n_pad)``
    n_pad : int
        Power of two ``>= m``.
    const_right : ndarray of shape (p - 1, m)
        ``(H D_right c)[idx_right]`` of every node, ``c`` the constant (all-padding)
        output of its right child.
    scale : float
        ``sqrt(1/m)``, in the dtype of ``out``.
    """
    n = out.shape[0]
    p = out.shape[1] - 1
    m = out.shape[2]
    half = max(1, p // 2)
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        prev = np.empty((p, m), dtype=out.dtype)
        cur = np.empty((p, m), dtype=out.dtype)
        tmp_a = np.empty((half, m), dtype=out.dtype)
        tmp_b = np.empty((half, m), dtype=out.dtype)
        buf = np.empty(n_pad, dtype=out.dtype)
        for i in range(start, stop):
            _tree_row(out[i], signs, idx, const_right, scale, prev, cur, tmp_a, tmp_b, buf)


@jit
def polysketch_constants(signs, idx, n_pad, scale):
    """Right-child constants of a PolySketch tree (see :func:`polysketch_tree`).

    Parameters
    ----------
    signs, idx : the tree's arrays, shape (p - 1, 2, m), float64 signs
    n_pad : int
    scale : float

    Returns
    -------
    const_right : ndarray of shape (p - 1, m), float64
    """
    n_internal = signs.shape[0]
    m = signs.shape[2]
    p = n_internal + 1
    const_right = np.empty((max(n_internal, 0), m))
    # Constant output of every node of the current level (leaves: e_1).
    level = np.zeros((p, m))
    level[:, 0] = 1.0
    buf = np.empty(n_pad)
    left = np.empty(m)
    n_nodes = p
    offset = 0
    while n_nodes > 1:
        n_nodes //= 2
        nxt = np.empty((n_nodes, m))
        for nd in range(n_nodes):
            g = offset + nd
            srht_vector(level[2 * nd], signs[g, 0], idx[g, 0], buf, left)
            srht_vector(level[2 * nd + 1], signs[g, 1], idx[g, 1], buf, const_right[g])
            for r in range(m):
                nxt[nd, r] = scale * left[r] * const_right[g, r]
        level = nxt
        offset += n_nodes
    return const_right
