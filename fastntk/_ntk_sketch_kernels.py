"""Fused Numba kernels of NTKSketch: a budget-split polynomial sketch of one row.

A *polynomial map* sketches ``sum_j a_j <x, y>^j`` (``a_j >= 0``) as the concatenation of
independent blocks ``sqrt(a_j) Q^j(x)``, one per degree ``j`` with its own output width
``m_j``:

* degree 0 is the exact constant ``sqrt(a_0)`` (one coordinate, no noise);
* degree 1 is a CountSketch of ``x`` straight into ``m_1`` coordinates;
* degree ``j >= 2`` is a PolySketch of ``j`` independent CountSketch leaves of width
  ``W_j`` (a power of two) combined pairwise by TensorSRHT nodes (Ahle et al., 2020);
  an odd node is carried up a level unchanged, which is what feeding the padding
  vector would do without its noise.  The root samples ``m_j`` coordinates.

Blocks are independent, so the variance of the estimate is the sum of the blocks'
variances, and the widths ``m_j`` can be chosen to minimise it (see
:mod:`fastntk.ntk_sketch`).  Only the leaves read the input row: O(nnz) each, so the
cost of a row is ``O(p^2 nnz + sum_j j W_j log W_j)``, independent of the number of
input features.

CountSketch hashes of wide inputs are computed on the fly (a splitmix64 finaliser of
the column index and a per-leaf key), so no table of the input width is stored.
Narrower inputs (the dense features of later layers, small dense tables) use stored
codes drawn with NumPy in ``fit``, balanced so that a leaf at least as wide as its input
is an exact signed isometry (no collisions).
"""
import numpy as np
from numba import prange

from ._jit import jit

from ._hadamard import _block_bounds, _n_blocks, fwht_inplace



@jit(inline="always")
def _mix64(z):
    """splitmix64 finaliser: a bijection of 64-bit integers with good avalanche."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def _countsketch_leaf(vals, cols, key, codes, scale, out):
    """``out = scale * C x`` for the sparse row ``x = (vals, cols)``; ``out`` is zeroed first.

    With a non-empty ``codes`` table, column ``c`` goes to bucket ``codes[c]`` with sign +1
    or to ``~codes[c]`` with sign -1.  Otherwise both come from ``mix(c + key)``: the
    sign from its top bit, the bucket from its low 32 bits.
    """
    width = out.shape[0]
    out[:] = 0
    if codes.shape[0] > 0:
        for k in range(vals.shape[0]):
            b = codes[cols[k]]
            if b >= 0:
                out[b] += scale * vals[k]
            else:
                out[~b] -= scale * vals[k]
        return
    for k in range(vals.shape[0]):
        h = _mix64(np.uint64(cols[k]) + key)
        b = np.int64(((h & np.uint64(0xFFFFFFFF)) * np.uint64(width)) >> np.uint64(32))
        if h >> np.uint64(63):
            out[b] += scale * vals[k]
        else:
            out[b] -= scale * vals[k]


@jit
def _tensor_srht(a, b, sign, idx, out, buf_a, buf_b):
    """``out = sqrt(1/m) (H D_1 a)[idx_1] * (H D_2 b)[idx_2]``, m = len(out)."""
    w = a.shape[0]
    for r in range(w):
        buf_a[r] = sign[0, r] * a[r]
        buf_b[r] = sign[1, r] * b[r]
    fwht_inplace(buf_a[:w])
    fwht_inplace(buf_b[:w])
    m = out.shape[0]
    scale = 1.0 / np.sqrt(m)
    for r in range(m):
        out[r] = scale * buf_a[idx[0, r]] * buf_b[idx[1, r]]


@jit
def _block_row(vals, cols, deg, width, leaf0, node0, leaf_keys, leaf_codes, node_signs,
               node_idx, cur, buf_a, buf_b, out):
    """Degree-``deg >= 2`` PolySketch of one row into ``out`` (length m_j)."""
    for l in range(deg):
        _countsketch_leaf(vals, cols, leaf_keys[leaf0 + l], leaf_codes[leaf0 + l], 1.0,
                          cur[l, :width])
    count = deg
    node = node0
    while count > 2:
        for q in range(count // 2):
            _tensor_srht(cur[2 * q, :width], cur[2 * q + 1, :width], node_signs[node],
                         node_idx[node], cur[q, :width], buf_a, buf_b)
            node += 1
        if count % 2:
            cur[count // 2, :width] = cur[count - 1, :width]
        count = (count + 1) // 2
    _tensor_srht(cur[0, :width], cur[1, :width], node_signs[node], node_idx[node], out,
                 buf_a, buf_b)


@jit
def _poly_row(vals, cols, blk_deg, blk_off, blk_m, blk_w, blk_coef, blk_leaf0, blk_node0,
              leaf_keys, leaf_codes, node_signs, node_idx, normalize, cur, buf_a, buf_b,
              out):
    """All blocks of a polynomial map for one row (see module docstring)."""
    for k in range(blk_deg.shape[0]):
        deg = blk_deg[k]
        o = out[blk_off[k]:blk_off[k] + blk_m[k]]
        if deg == 0:
            o[:] = 0
            o[0] = blk_coef[k]
            continue
        if deg == 1:
            _countsketch_leaf(vals, cols, leaf_keys[blk_leaf0[k]], leaf_codes[blk_leaf0[k]],
                              1.0, o)
        else:
            _block_row(vals, cols, deg, blk_w[k], blk_leaf0[k], blk_node0[k], leaf_keys,
                       leaf_codes, node_signs, node_idx, cur, buf_a, buf_b, o)
        scale = blk_coef[k]
        if normalize:
            sq = 0.0
            for r in range(o.shape[0]):
                sq += o[r] * o[r]
            # a unit input has ||x^(⊗j)|| = 1: making the block norm exact removes the
            # norm fluctuation from the estimate (a ratio estimator)
            if sq > 0.0:
                scale = scale / np.sqrt(sq)
        for r in range(o.shape[0]):
            o[r] *= scale


@jit(parallel=True)
def poly_map_csr(data, indices, indptr, blk_deg, blk_off, blk_m, blk_w, blk_coef, blk_leaf0,
                 blk_node0, leaf_keys, leaf_codes, node_signs, node_idx, normalize, out):
    """Polynomial map of every CSR row (``indptr`` may be a slice; offsets absolute).

    ``out`` has shape (n_rows, total width); rows are independent and computed by the
    same operations whatever the batch or thread count.
    """
    n = indptr.shape[0] - 1
    w_max = max(1, node_signs.shape[2])
    p_max = max(1, np.max(blk_deg)) if blk_deg.shape[0] else 1
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        cur = np.empty((p_max, w_max), dtype=out.dtype)
        buf_a = np.empty(w_max, dtype=out.dtype)
        buf_b = np.empty(w_max, dtype=out.dtype)
        for i in range(start, stop):
            lo = indptr[i]
            hi = indptr[i + 1]
            _poly_row(data[lo:hi], indices[lo:hi], blk_deg, blk_off, blk_m, blk_w, blk_coef,
                      blk_leaf0, blk_node0, leaf_keys, leaf_codes, node_signs, node_idx,
                      normalize, cur, buf_a, buf_b, out[i])


@jit(parallel=True)
def poly_map_dense(X, blk_deg, blk_off, blk_m, blk_w, blk_coef, blk_leaf0, blk_node0,
                   leaf_keys, leaf_codes, node_signs, node_idx, normalize, out):
    """:func:`poly_map_csr` for the rows of a dense matrix (all columns are read)."""
    n = X.shape[0]
    cols = np.arange(X.shape[1])
    w_max = max(1, node_signs.shape[2])
    p_max = max(1, np.max(blk_deg)) if blk_deg.shape[0] else 1
    n_blocks = _n_blocks(n)
    for b in prange(n_blocks):
        start, stop = _block_bounds(n, n_blocks, b)
        cur = np.empty((p_max, w_max), dtype=out.dtype)
        buf_a = np.empty(w_max, dtype=out.dtype)
        buf_b = np.empty(w_max, dtype=out.dtype)
        for i in range(start, stop):
            _poly_row(X[i], cols, blk_deg, blk_off, blk_m, blk_w, blk_coef, blk_leaf0,
                      blk_node0, leaf_keys, leaf_codes, node_signs, node_idx, normalize,
                      cur, buf_a, buf_b, out[i])
