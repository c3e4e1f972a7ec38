"""NTKSketch: input-sparsity-time feature map of the fully-connected ReLU NTK.

Implements the NTKSketch of Zandieh et al. (NeurIPS 2021) for dense and sparse (CSR)
input.  The NTK (defined in :mod:`fastntk.kernels`) is ``||x|| ||y|| K_L(cos)``: rows
are normalised (exactly, in float64), sketched, and the features multiplied back by
``||x||``, so that zero rows give zero features.

Two methods share one building block, the *budget-split polynomial sketch* of
:mod:`fastntk._ntk_sketch_kernels`: a dot-product kernel ``sum_j a_j t^j`` (``a_j >= 0``)
is sketched as the concatenation of independent blocks ``sqrt(a_j) Q^j(x)``, the
constant exactly, degree 1 by a CountSketch, degree ``j >= 2`` by a PolySketch
(CountSketch leaves, TensorSRHT tree).  Block ``j`` gets ``m_j`` of the available
coordinates with ``m_j`` proportional to ``a_j sqrt(V_j)``, ``V_j`` its variance per
coordinate: for independent blocks this minimises the variance of the estimate at a
fixed total width.  Each block is rescaled to its exact norm ``sqrt(a_j)`` (a unit
vector has ``||x^(⊗j)|| = 1``), which makes the diagonal exact and cuts the variance of
large cosines.

``method="polyfit"`` fits one non-negative polynomial to ``K_L`` and sketches it once.
``method="layerwise"`` follows the paper's recursion layer by layer: polynomials of
``k1`` and ``k0`` sketched from the previous layer's ``Sigma`` features, a TensorSRHT of
the previous ``Theta`` features with the ``k0`` features, and an SRHT of their
concatenation with the ``k1`` features back to the working width.

References
----------
Zandieh, Han, Avron, Shoham, Kim, Shin, "Scaling neural tangent kernels via sketching
and random features", NeurIPS 2021.
Ahle et al., "Oblivious sketching of high-degree polynomial kernels", SODA 2020.
"""
import numbers
from collections import namedtuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _hadamard
from ._jit import jit
from ._exact_features import (MonomialFeatures, SparsePairFeatures, monomial_dimension,
                              sparse_linear_block)
from ._ntk_sketch_kernels import poly_map_csr, poly_map_dense
from ._scaling import row_exponents, scale_rows
from ._compiled import csr_row_norms_sq, csr_scale_rows
from .nystroem import RemainderNystroem
from .polyfit import fit_nbytes, kernel_polynomial
from ._threading import effective_n_threads as _effective_n_threads
from ._threading import next_pow2 as _next_pow2
from ._threading import limit as _limit_threads
from ._validation import check_memory, fit_method, validate_data, validate_rows

__all__ = ["NTKSketch"]

# Variance per output coordinate of a degree-j block, for unit inputs (measured:
# about 2 to 3 for PolySketch blocks whatever the cosine, about 1 + t^2 for CountSketch).
_BLOCK_VARIANCE = {1: 1.0}
_TREE_VARIANCE = 2.0

_TINY = 1e-30

# Widest input whose CountSketch codes are stored (int32, one row per leaf) rather than
# hashed on the fly.
_MAX_TABLE_FEATURES = 2048

# Bytes of working memory per batch (features and intermediate blocks).
_BATCH_BYTES = 64 * 2**20

# Rows of the fit input whose pairwise cosines decide which degrees are sketched.
_COSINE_ROWS = 1000

# exact_degrees="auto" on sparse input takes the exact pairs of columns for fit inputs of
# short rows (a row costs k (k + 1) / 2 pairs: 528 at this mean of k, an eighth of the
# default tail) and at most this many rows (a one-shot fit keeps its rows' tail, 4 n m
# bytes, in memory: 1.5 GiB at n_components=4,096).
_AUTO_PAIRS_MEAN_NNZ = 32
_AUTO_PAIRS_MAX_ROWS = 100_000


# tail="auto" takes landmarks only where the monomials of degrees 0..8 (at least) fit in
# half of n_components: at most 5 features at the default width
_NYSTROEM_MIN_DEGREE = 8


def split_widths(coef, n_components):
    """Output width of every degree of a budget-split polynomial sketch.

    Degree 0 (if ``coef[0] > 0``) takes one coordinate (it is exact); the rest goes to
    degrees ``j >= 1`` in proportion to ``coef[j] sqrt(V_j)``, rounded by largest
    remainders so that the widths sum to ``n_components`` exactly.

    Parameters
    ----------
    coef : ndarray of shape (degree + 1,), non-negative
    n_components : int
        Total width.

    Returns
    -------
    ndarray of int64, shape (degree + 1,)
    """
    coef = np.asarray(coef, dtype=float)
    widths = np.zeros(coef.shape[0], dtype=np.int64)
    budget = n_components
    if budget == 0:
        return widths
    if coef[0] > 0:
        widths[0] = 1
        budget -= 1
    degrees = np.arange(1, coef.shape[0])
    score = coef[1:] * np.sqrt([_BLOCK_VARIANCE.get(j, _TREE_VARIANCE) for j in degrees])
    if score.sum() == 0:
        widths[0] = n_components if coef[0] > 0 else 0
        return widths
    raw = score / score.sum() * budget
    widths[1:] = np.floor(raw)
    remainder = budget - widths[1:].sum()
    widths[1 + np.argsort(-(raw - np.floor(raw)), kind="stable")[:remainder]] += 1
    return widths


def choose_exact_degrees(coef, n_components, n_features, sparse, exact_degrees):
    """Degrees of ``sum_j coef[j] t^j`` represented exactly, and the sketched tail's widths.

    ``exact_degrees="auto"``: for sparse input degrees 0 and 1 (one column and the row
    itself, outside the ``n_components`` budget, which the tail then gets whole); for
    dense input the lowest degrees, in order, while each one's monomials
    (``C(d + j - 1, j)`` for degree ``j``) take at most half of the width still free,
    and then every other degree whose
    monomials fit in the width the budget split would give it, re-splitting the freed
    width over the sketched degrees until no further degree fits.  An integer ``k`` asks for degrees
    ``0..k`` (at most 2 for sparse input).

    Returns
    -------
    exact : tuple of int
        The exactly represented degrees with a non-zero coefficient.
    widths : ndarray of int64
        Width of every sketched degree (zero for the exact ones).
    """
    coef = np.asarray(coef, dtype=float)
    top = coef.shape[0] - 1
    if exact_degrees == "auto":
        wanted = set(range(min(1, top) + 1)) if sparse else {0}
    else:
        if sparse and exact_degrees > 2:
            raise ValueError(f"exact_degrees={exact_degrees} needs degree-{exact_degrees} "
                             f"features of a sparse row (n_features^{exact_degrees} "
                             f"columns); sparse input supports exact_degrees <= 2 or "
                             f"'auto'")
        wanted = set(range(min(exact_degrees, top) + 1))

    def dense_width(degrees):
        return sum(monomial_dimension(n_features, j) for j in degrees if coef[j] > 0)

    def tail_widths(degrees):
        tail = coef.copy()
        tail[list(degrees)] = 0.0
        budget = n_components if sparse else n_components - dense_width(degrees)
        return split_widths(tail, budget)

    if not sparse and dense_width(wanted) > n_components:
        raise ValueError(f"exact_degrees={exact_degrees} needs "
                         f"{dense_width(wanted)} exact columns for {n_features} features, "
                         f"more than n_components={n_components}")
    if exact_degrees == "auto" and not sparse:
        # an exact degree is the kernel itself, its sketch only an estimate of it: take
        # the low degrees whole while each takes at most half of the width still free,
        # so that the sketched degrees are not starved (MNIST at 1,024: degree 1 alone,
        # 784 monomials, would leave degrees >= 2 a fifth of the width)
        for j in range(top + 1):
            if coef[j] > 0 and j not in wanted:
                free = n_components - dense_width(wanted)
                if monomial_dimension(n_features, j) > free / 2:
                    break
                wanted.add(j)
    widths = tail_widths(wanted)
    while exact_degrees == "auto" and not sparse:
        fits = {j for j in range(top + 1) if j not in wanted and coef[j] > 0
                and monomial_dimension(n_features, j) <= widths[j]}
        if not fits:
            break
        wanted |= fits
        widths = tail_widths(wanted)
    return tuple(j for j in sorted(wanted) if coef[j] > 0), widths


def remainder_exact_degrees(coef, n_components, n_features, exact_degrees):
    """Degrees of the Taylor polynomial ``coef`` kept exact beside a Nyström remainder.

    ``"auto"``: the lowest degrees, in order, while their monomials fit in half of
    ``n_components`` together (the landmarks of the remainder get the other half at
    least); an integer ``k``: degrees ``0..k``, which must leave at least one column.
    """
    if exact_degrees == "auto":
        top, limit = len(coef) - 1, n_components // 2
    else:
        top, limit = min(exact_degrees, len(coef) - 1), n_components - 1
    exact, width = [], 0
    for j in range(top + 1):
        width += monomial_dimension(n_features, j)
        if width > limit:
            if exact_degrees != "auto":
                raise ValueError(f"exact_degrees={exact_degrees} needs {width} exact "
                                 f"columns for {n_features} features; tail='nystroem' "
                                 f"needs them to leave at least one of "
                                 f"n_components={n_components} to the landmarks")
            break
        exact.append(j)
    return tuple(j for j in exact if coef[j] > 0)


def takes_nystroem_tail(coef, n_components, n_features):
    """Whether ``tail="auto"`` completes the exact degrees of dense rows with landmarks.

    Yes for rows of a handful of columns: the monomials of every degree up to that of
    the polynomial, and at least up to 8, fit in half of ``n_components`` (495 of them
    for 4 features).  Nothing is then left to sketch, and what the polynomial misses
    (the NTK near cosine 1) is what limits the model.  A lower ``degree`` does not make
    wider rows take landmarks: it asks for a cheaper map, not a Nyström one.
    """
    top = max(len(coef) - 1, _NYSTROEM_MIN_DEGREE)
    return (sum(monomial_dimension(n_features, j) for j in range(top + 1))
            <= n_components // 2)


def takes_exact_pairs(X):
    """Whether ``exact_degrees="auto"`` represents degree 2 of the sparse ``X`` exactly.

    Yes for short rows (on average at most 32 non-zeros) and at most 100,000 of them:
    short texts, whose pairs of words are few and carry the degree-2 signal a sketch
    only estimates.
    """
    n_rows = X.shape[0]
    return (0 < n_rows <= _AUTO_PAIRS_MAX_ROWS
            and X.nnz <= _AUTO_PAIRS_MEAN_NNZ * n_rows)


def represented_degrees(coef, exact, widths):
    """The degrees with a non-zero coefficient that are exact or have sketched width."""
    return tuple(j for j in range(len(coef)) if coef[j] > 0 and (j in exact or widths[j] > 0))


def mean_powers_of_cosines(X, degrees, n_rows=_COSINE_ROWS):
    """``E[t^(2j)]`` for every ``j`` of ``degrees``, ``t`` the cosines between rows.

    Over the pairs of distinct non-zero rows among the first ``n_rows`` rows of ``X``
    (dense or sparse: a sparse product, never densified), the rows a fit from pieces
    sees first too.  NaN without two such rows.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    degrees : sequence of int
    n_rows : int

    Returns
    -------
    ndarray of shape (len(degrees),)
    """
    sample = (X.tocsr() if sp.issparse(X) and X.format == "coo" else X)[:n_rows]
    if sp.issparse(sample):
        norms = np.sqrt(np.asarray(sample.multiply(sample).sum(axis=1)).ravel())
        gram = np.asarray((sample @ sample.T).todense())
    else:
        sample = np.asarray(sample, dtype=np.float64)
        norms = np.linalg.norm(sample, axis=1)
        gram = sample @ sample.T
    keep = norms > 0
    if keep.sum() < 2:
        return np.full(len(degrees), np.nan)
    gram = gram[np.ix_(keep, keep)] / np.outer(norms[keep], norms[keep])
    t2 = np.clip(gram[np.triu_indices(gram.shape[0], 1)], -1.0, 1.0) ** 2
    return np.array([np.mean(t2 ** j) for j in degrees])


def signal_to_noise(coef, widths, mean_powers):
    """Off-diagonal signal over sketch noise of every sketched degree, on the data.

    A sketched degree ``j`` adds ``a_j t^j`` to the kernel of two unit rows of cosine
    ``t``, estimated with variance ``a_j^2 V_j / m_j`` (``V_j`` its variance per
    coordinate, ``m_j`` its width): its ratio is ``E[t^(2j)] m_j / V_j`` over the data's
    pairs.

    Parameters
    ----------
    coef : ndarray of shape (degree + 1,)
    widths : ndarray of int64, shape (degree + 1,)
        Widths of the sketched degrees (zero for the others).
    mean_powers : callable
        ``mean_powers(degrees) -> E[t^(2j)]`` per degree
        (:func:`mean_powers_of_cosines` of the rows).

    Returns
    -------
    dict of int to float
        The ratio of every degree with width and a positive coefficient (NaN where the
        data have no two non-zero rows).
    """
    degrees = [j for j in range(len(coef)) if widths[j] > 0 and coef[j] > 0]
    if not degrees:
        return {}
    powers = mean_powers(degrees)
    return {j: float(power * widths[j] / _BLOCK_VARIANCE.get(j, _TREE_VARIANCE))
            for j, power in zip(degrees, powers)}


def drop_noisy_degrees(coef, widths, mean_powers):
    """Sketched widths without the degrees whose signal on the data is below their noise.

    Where a degree's :func:`signal_to_noise` is below 1, its off-diagonal part on the
    data is smaller than the noise its sketch adds; what is left of it is its diagonal
    ``a_j``, which acts on a kernel matrix like a multiple of the identity, the part of a
    ridge penalty.  Such degrees are dropped one at a time (the lowest signal-to-noise
    ratio first) and the width re-split over the others (:func:`split_widths`); the
    lowest sketched degree is always kept.

    Parameters
    ----------
    coef, widths, mean_powers
        As for :func:`signal_to_noise`.

    Returns
    -------
    ndarray of int64, shape (degree + 1,)
    """
    coef = np.asarray(coef, dtype=float)
    widths = np.asarray(widths, dtype=np.int64)
    kept = [j for j in range(coef.shape[0]) if j >= 1 and widths[j] > 0 and coef[j] > 0]
    if len(kept) < 2:
        return widths
    power = dict(zip(kept, mean_powers(kept)))
    if not np.all(np.isfinite(list(power.values()))):
        return widths
    budget = int(widths[kept].sum())
    while len(kept) > 1:
        candidates = np.zeros_like(widths)               # the lowest degree stays
        candidates[kept[1:]] = widths[kept[1:]]
        ratio = signal_to_noise(coef, candidates, lambda degrees: [power[j] for j in degrees])
        worst = min(ratio, key=ratio.get)
        if ratio[worst] >= 1.0:
            break
        kept.remove(worst)
        tail = np.zeros_like(coef)
        tail[kept] = coef[kept]
        widths = split_widths(tail, budget)
    return widths


class _PolynomialSketch:
    """Random state of one budget-split polynomial sketch (arrays for the kernels).

    Parameters
    ----------
    coef : ndarray of shape (degree + 1,), non-negative
        ``a_j``; degrees with ``a_j = 0`` or no width are left out.
    widths : ndarray of int, shape (degree + 1,)
        Output width ``m_j`` of every degree (:func:`split_widths`).
    n_features : int
        Input width.
    rng : numpy.random.RandomState
    """

    def __init__(self, coef, widths, n_features, rng):
        degrees = [j for j in range(len(coef)) if coef[j] > 0 and widths[j] > 0]
        self.n_components = int(sum(widths[j] for j in degrees))
        inner = {j: int(widths[j]) if j <= 1 else _next_pow2(widths[j]) for j in degrees}
        leaf_widths = [inner[j] for j in degrees for _ in range(j)]
        node_widths = []  # (inner width, output width) of every TensorSRHT node
        self.blk_node0 = []
        for j in degrees:
            self.blk_node0.append(len(node_widths))
            count = j
            while count > 2:
                node_widths += [(inner[j], inner[j])] * (count // 2)
                count = (count + 1) // 2
            if j >= 2:
                node_widths.append((inner[j], int(widths[j])))
        self.blk_deg = np.array(degrees, dtype=np.int64)
        self.blk_m = np.array([widths[j] for j in degrees], dtype=np.int64)
        self.blk_off = np.concatenate([[0], np.cumsum(self.blk_m)[:-1]]).astype(np.int64)
        self.blk_w = np.array([inner[j] for j in degrees], dtype=np.int64)
        self.blk_coef = np.sqrt(np.array([coef[j] for j in degrees], dtype=float))
        self.blk_leaf0 = np.concatenate(
            [[0], np.cumsum([j for j in degrees])[:-1]]).astype(np.int64)
        self.blk_node0 = np.array(self.blk_node0, dtype=np.int64)
        n_leaves = len(leaf_widths)
        self.leaf_keys = rng.randint(0, 2**63, size=max(n_leaves, 1), dtype=np.uint64)
        # Inputs up to _MAX_TABLE_FEATURES wide get stored codes (cheaper than hashing),
        # balanced: injective (an exact signed isometry) when the leaf is at least as wide
        # as the input, even bucket loads otherwise.
        use_tables = n_leaves > 0 and n_features <= _MAX_TABLE_FEATURES
        self.leaf_codes = np.zeros((max(n_leaves, 1), n_features if use_tables else 0),
                                   dtype=np.int32)
        if use_tables:
            for leaf, width in enumerate(leaf_widths):
                buckets = rng.permutation(max(width, n_features))[:n_features] % width
                negative = rng.randint(0, 2, size=n_features).astype(bool)
                self.leaf_codes[leaf] = np.where(negative, ~buckets, buckets)
        w_max = max([w for w, _ in node_widths], default=1)
        self.node_signs = np.ones((max(len(node_widths), 1), 2, w_max), dtype=np.int8)
        self.node_idx = np.zeros((max(len(node_widths), 1), 2, w_max), dtype=np.int64)
        for g, (width, _) in enumerate(node_widths):
            self.node_signs[g, :, :width] = 2 * rng.randint(0, 2, size=(2, width)) - 1
            self.node_idx[g, 0, :width] = rng.permutation(width)
            self.node_idx[g, 1, :width] = rng.permutation(width)

    def transform(self, X, out, normalize=True):
        """Sketch the rows of ``X`` (unit norm; CSR or dense) into ``out`` in place.

        ``normalize=False`` skips the rescaling of the blocks to their exact norms,
        leaving the unbiased estimator ``E <phi(x), phi(y)> = sum_j a_j <x, y>^j``.
        """
        args = (self.blk_deg, self.blk_off, self.blk_m, self.blk_w,
                self.blk_coef.astype(out.dtype), self.blk_leaf0, self.blk_node0,
                # int8 signs: a float copy per call costs more than a one-row sketch
                self.leaf_keys, self.leaf_codes, self.node_signs,
                self.node_idx, normalize, out)
        if sp.issparse(X) or isinstance(X, _CSRParts):
            poly_map_csr(X.data, X.indices, X.indptr, *args)
        else:
            poly_map_dense(X, *args)
        return out


class _TensorReduction:
    """TensorSRHT ``(a, b) -> R^m``, then optionally an SRHT of ``[that, c]`` to R^m.

    The two random maps of one layer of the layerwise recursion.
    """

    def __init__(self, width_in, width_out, rng, concat_width=0):
        self.n_pad = _next_pow2(width_in)
        self.tensor_signs = 2 * rng.randint(0, 2, size=(2, width_in)) - 1
        self.tensor_idx = np.stack(
            [rng.choice(self.n_pad, width_out, replace=False) for _ in range(2)])
        self.concat_width = concat_width
        if concat_width:
            n_cat = width_out + concat_width
            self.cat_pad = _next_pow2(n_cat)
            self.cat_signs = 2 * rng.randint(0, 2, size=(1, n_cat)) - 1
            self.cat_idx = rng.choice(self.cat_pad, width_in, replace=False)[None, :]

    def tensor(self, A, B):
        dtype = A.dtype
        out = np.empty((A.shape[0], self.tensor_idx.shape[1]), dtype=dtype)
        signs = self.tensor_signs.astype(dtype)
        _hadamard.tensor_srht_rows(A, B, signs[0], self.tensor_idx[0], self.n_pad, signs[1],
                                   self.tensor_idx[1], self.n_pad,
                                   dtype.type(np.sqrt(1.0 / out.shape[1])), out)
        return out

    def reduce(self, T, C):
        cat = np.hstack([T, C])
        out = np.empty((cat.shape[0], 1, self.cat_idx.shape[1]), dtype=cat.dtype)
        _hadamard.srht_rows(cat, self.cat_signs.astype(cat.dtype), self.cat_idx,
                            self.cat_pad, cat.dtype.type(np.sqrt(1.0 / out.shape[2])), out)
        return out[:, 0]


@jit
def _dense_row_norms_sq(X):
    """Squared row norms accumulated in float64, in column order (as the CSR helper)."""
    out = np.zeros(X.shape[0])
    for i in range(X.shape[0]):
        acc = 0.0
        for j in range(X.shape[1]):
            acc += np.float64(X[i, j]) * np.float64(X[i, j])
        out[i] = acc
    return out


class _CSRParts(namedtuple("_CSRParts", "data indices indptr shape")):
    """The arrays of a CSR matrix, for the compiled kernels alone: building a scipy
    matrix costs more than sketching a row, which a one-row request would pay."""

    @property
    def dtype(self):
        return self.data.dtype


def _normalized_rows(X, n_threads, parts=False):
    """Unit-norm copy of the rows of ``X`` (zero rows stay zero) and the norms.

    Rows beyond the range where squares are safe are first divided by a power of two
    (exactly, :mod:`fastntk._scaling`), so every finite row gets its unit vector and a
    norm that is finite whenever it is representable.  With ``parts``, a sparse copy is
    returned as :class:`_CSRParts`.
    """
    exponents = row_exponents(X)
    U, norms = _normalized_scaled_rows(scale_rows(X, exponents), n_threads, parts)
    return U, np.ldexp(norms, exponents)


def _normalized_scaled_rows(X, n_threads, parts=False):
    if sp.issparse(X):
        norms = np.sqrt(csr_row_norms_sq(X.data, X.indptr, n_threads))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        data = X.data.copy()
        csr_scale_rows(data, X.indptr, inv, n_threads)
        if parts:
            return _CSRParts(data, X.indices, X.indptr, X.shape), norms
        return sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape), norms
    norms = np.sqrt(_dense_row_norms_sq(X))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (X * inv[:, None]).astype(X.dtype, copy=False), norms


class NTKSketch(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Input-sparsity-time random features of the fully-connected ReLU NTK.

    ``<phi(x), phi(y)>`` approximates ``NTK(x, y) = ||x|| ||y|| K_L(cos(x, y))`` of an
    ``L = depth`` hidden-layer ReLU network without biases (:mod:`fastntk.kernels`; the NTK that
    ``neural_tangents`` computes for ``Dense(W_std=sqrt(d)), Relu, [Dense(W_std=sqrt(2)),
    Relu] * (L-1), Dense(W_std=sqrt(2))``).  A sparse row costs
    ``O(degree^2 nnz + poly(degree) m log m)``: only CountSketch leaves read the input,
    so the cost does not depend on ``n_features``.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden ReLU layers ``L``.
    n_components : int, default=4096
        Number of output features (exactly).
    degree : int, default=8
        Degree of the polynomial approximations.
    method : {"polyfit", "layerwise"}, default="polyfit"
        ``"layerwise"``: the paper's recursion (polynomials of ``k1`` and ``k0`` at every
        layer).  ``"polyfit"``: one polynomial fitted to ``K_L``, sketched once.  The
        default is "polyfit" because it measured more accurate per feature at every depth
        >= 2 (equal at depth 1) and 3-7x faster (``asv_benchmarks/ntk_sketch_report.py``;
        e.g. MNIST, depth 2, 4,096 features: relative error 0.019 against 0.035).
    poly : {"fit", "taylor"}, default="fit"
        Non-negative least-squares fit on Chebyshev nodes
        (:func:`fastntk.polyfit.fit_nonnegative_polynomial`), or truncated Taylor series.
    exact_degrees : "auto" or int, default="auto"
        Degrees of the polynomial represented exactly, by explicit features with no
        variance, rather than sketched (``method="polyfit"`` only; ``"layerwise"`` takes
        ``"auto"``, meaning none, or 0).  Sparse input (the matrix given to ``fit``):
        degree 0 is one column ``sqrt(a_0) ||x||`` and degree 1 the row itself,
        ``sqrt(a_1) x``, a sparse block of ``n_features`` columns (never densified, never
        hashed); the ``n_components`` sketched columns all go to the degrees >= 2, and
        :meth:`transform` returns CSR of width ``n_exact_features_ + n_components``
        (``1 + n_features``, plus the pairs below with degree 2).  Dense
        input: degree ``j`` takes the ``C(d + j - 1, j)`` weighted monomials of the unit
        row, inside the ``n_components`` budget.  ``"auto"`` takes, for dense input, the
        lowest degrees, in order, while each one's monomials take at most half of the
        width still free, then every other degree whose monomials fit in the width a budget
        split would have given it (re-splitting the freed width over the sketched
        degrees); for sparse input degrees 0, 1 and 2 when the rows given to ``fit``
        are short (on average at most 32 non-zeros) and at most 100,000, else degrees 0
        and 1.  An integer ``k`` asks for degrees ``0..k`` (at most 2 for sparse
        input).  Why: text has cosines near 0, so its kernel is mostly ``a_0 + a_1 t``,
        which a hashed degree 1 spoils with collisions as large as the signal; a dense
        low-dimensional input has low degrees of small rank, on which a sketch wastes its
        width.  Sparse degree 2 is ``sqrt(a_2) (x ⊗ x) / ||x||`` over the pairs of columns
        that at least ``min_pair_df`` of the rows given to ``fit`` hold (one column per
        such pair, as a vectoriser's vocabulary of words; the other pairs are dropped at
        transform).  A row costs its ``k (k + 1) / 2`` pairs (``k`` non-zeros), so the
        cost grows with the square of a row's length: hence the limit on the mean row
        length.  On short texts (tweets, sentences, titles), with the default
        ``min_pair_df=2`` and :class:`fastntk.NTKRidge`'s default grids, the pairs were
        the best model measured on three TF-IDF sets of 10,000 rows: above a linear ridge
        on the raw TF-IDF, and within 0.1 points of exact NTK kernel ridge or above it,
        in 2-11% of the CPU time of scikit-learn's RidgeCV (with the tail, which carries
        nothing there, left out by :class:`fastntk.NTKRidge`; see the README).  A fit
        from pieces (``partial_fit``, ``fit_stream``, Dask) with ``"auto"`` takes
        degrees 0 and 1 only: the statistics of the pairs have ~``k^4 / 4`` entries a
        row, without bound in ``n``; an explicit ``exact_degrees=2`` learns the pairs
        from its first piece only.
    min_pair_df : int, default=2
        With sparse degree 2 exact: the rows given to ``fit`` that must hold a pair of
        columns for it to get a column of the exact block (1: every pair seen).  A pair
        held by one row only adds to the kernel between the fitted rows on that row's
        diagonal alone (a row-specific change of the ridge, not a similarity); on short
        texts most pairs are such (76-81% of the pairs of three TF-IDF sets), and
        dropping them made the pairs 4.2-5.4x fewer and more accurate (e.g. Trump tweets:
        RMSE 1.8849 against 1.9043 with every pair kept).  Unused otherwise.
    sketch_degrees : {"auto", "all"}, default="auto"
        Which of the other degrees are sketched (``method="polyfit"`` only; layerwise
        sketches all).  ``"all"``: every degree of the polynomial, an unbiased estimate
        of it.  ``"auto"``: for sparse input the same; for dense input, not the degrees
        whose part of the kernel between the rows given to ``fit`` is below the noise
        their sketch would add: over the pairs of its first 1,000 rows (a fit from
        pieces: of its first piece), degree ``j`` is dropped when ``E[t^(2j)] < V_j /
        m_j`` (``t`` the cosines, ``m_j`` its width, ``V_j`` about 2 its variance per
        coordinate), the lowest signal-to-noise ratio first, re-splitting the width over
        the others; the lowest sketched degree is always kept.  Why: the high degrees of
        the NTK's polynomial carry large coefficients (they fit its behaviour near
        ``t = 1``) but, at the cosines of real data, almost nothing off the diagonal:
        there they act like a multiple of the identity, which the ridge penalty supplies,
        while their sketches add noise to every entry.  On MNIST (depth 2, 8,192
        features) dropping them took NTKRidgeClassifier from 0.950 to 0.962 (exact NTK
        kernel ridge: 0.959; see the README).  On TF-IDF text it left the test metrics
        as they were and made the kernel error larger (the dropped degrees' diagonal),
        hence "all" for sparse input.  The dropped degrees have width 0 in ``widths_``,
        and ``<phi(x), phi(y)>`` estimates the polynomial without them (so ``<phi(x),
        phi(x)>`` is ``||x||^2`` times the sum of the kept coefficients).
    tail : {"auto", "sketch", "nystroem"}, default="auto"
        What the columns beside the exact degrees carry (``method="polyfit"``, dense
        input for ``"nystroem"``).  ``"sketch"``: the polynomial's other degrees,
        sketched.  ``"nystroem"``: the exact degrees take the NTK's Taylor coefficients
        and the other columns are Nyström features of the rest of the NTK,
        ``R(x, y) = ||x|| ||y|| (K_L(t) - sum_{j exact} c_j t^j)`` (positive
        semi-definite, as the NTK's Taylor coefficients are non-negative), on landmark
        rows drawn uniformly from the non-zero rows given to ``fit``
        (:class:`fastntk.nystroem.RemainderNystroem`): the features are then those of the
        NTK itself, exact on the landmarks, with no polynomial in the cosine.  Its
        exact degrees: with ``exact_degrees="auto"`` the lowest while their monomials
        fit in half of ``n_components``, with an integer ``k`` degrees ``0..k``.  It
        costs ``O(m d + m^2)`` per row for ``m`` landmarks, ``m^2`` floats of memory
        and of model file; with fewer non-zero rows in ``fit`` than ``m``, every one is
        a landmark (the features are then exact on the fit rows) and the other columns
        are zero.  ``"auto"``: ``"nystroem"`` for dense input when, with
        ``exact_degrees="auto"``, the monomials of every degree up to ``max(degree, 8)``
        fit in half of ``n_components`` (a handful of columns: at most 5 at the default
        width); ``"sketch"`` otherwise.  Why: a
        polynomial of degree 8 misses the NTK near cosine 1, where its derivative is
        infinite, and on low-dimensional data near neighbours are what the model is
        made of: on the ccpp regression (d = 4) kernel ridge with the exact degree-8
        polynomial stays 10% above exact NTK kernel ridge's test MSE, and its exact
        degrees plus a Nyström remainder come within 1% of it (see the README).
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches and the landmarks, drawn in ``fit``.
    n_jobs : int or None, default=None
        Threads of the compiled loops (None: all cores).

    Attributes
    ----------
    n_features_in_ : int
    coef_ : dict of str to ndarray
        Polynomial coefficients: ``{"ntk": a}`` (polyfit) or ``{"k1": c, "k0": b}``
        (layerwise); ``coef[j]`` multiplies ``t**j``.
    poly_max_error_ : dict of str to float
        Largest error of each polynomial on [-1, 1], same keys (0 with the Nyström
        tail, whose features are those of the NTK itself).
    widths_ : dict of str to ndarray of int
        Sketched coordinates given to every degree, same keys (``"ntk"``, or the last
        layer's ``"k1"``/``"k0"`` widths for layerwise); zero for the exact degrees and
        for those ``sketch_degrees="auto"`` dropped.
    exact_degrees_ : tuple of int
        Degrees represented exactly (empty for layerwise).
    degrees_ : tuple of int
        Degrees represented, exactly or sketched (polyfit only): the features estimate
        ``sum_{j in degrees_} a_j t^j`` (times the norms); with the Nyström tail the
        exact degrees, beside which the tail carries the rest of the NTK.
    tail_ : {"sketch", "nystroem"}
        What the tail carries (``tail="auto"`` resolved).
    tail_signal_to_noise_ : float
        Over the pairs of the first 1,000 rows given to ``fit``, the largest ratio, over
        the sketched degrees, of a degree's off-diagonal part of the kernel to the noise
        its sketch adds, ``E[t^(2j)] m_j / V_j`` (polyfit; NaN for layerwise, without a
        sketched degree or without two non-zero rows).  Far below 1, the tail is a noisy
        multiple of the identity on these data (short texts beside their exact pairs of
        words, depth 2, 4,096 features: 0.002 to 0.005); :class:`fastntk.NTKRidge` then
        leaves it out.
    n_exact_features_ : int
        Width of the exact block: the first ``n_exact_features_`` output columns.
    n_linear_features_ : int
        Width of its degrees 0 and 1 (its first columns): the part of the kernel that
        is linear in the row; :class:`fastntk.NTKRidge` weights the other columns.
    sparse_output_ : bool
        Whether :meth:`transform` returns CSR (the exact block of a sparse ``fit`` input).

    Notes
    -----
    Each degree-``j`` block is rescaled to its exact norm ``sqrt(a_j)``, which makes
    ``<phi(x), phi(x)> = ||x||^2 P(1)`` exact (``P`` the polynomial of the exact and
    sketched degrees) and slightly biases off-diagonal estimates
    (by ``O(1/m_j)``, far below their standard deviation).  The layerwise method also
    rescales the intermediate ``Sigma`` and ``SigmaDot`` features to unit norm.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fastntk import NTKSketch
    >>> X = sp.random(5, 1000, density=0.01, format="csr", random_state=0)
    >>> NTKSketch(n_components=64, depth=2, random_state=0).fit_transform(X).shape
    (5, 64)
    """

    _parameter_constraints = {
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "degree": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions({"layerwise", "polyfit"})],
        "poly": [StrOptions({"fit", "taylor"})],
        "exact_degrees": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None,
                                                         closed="left")],
        "sketch_degrees": [StrOptions({"auto", "all"})],
        "min_pair_df": [Interval(numbers.Integral, 1, None, closed="left")],
        "tail": [StrOptions({"auto", "sketch", "nystroem"})],
        "random_state": ["random_state"],
        "n_jobs": [None, numbers.Integral],
    }

    def __init__(self, *, depth=1, n_components=4096, degree=8, method="polyfit",
                 poly="fit", exact_degrees="auto", sketch_degrees="auto", min_pair_df=2,
                 tail="auto", random_state=None, n_jobs=None):
        self.depth = depth
        self.n_components = n_components
        self.degree = degree
        self.method = method
        self.poly = poly
        self.exact_degrees = exact_degrees
        self.sketch_degrees = sketch_degrees
        self.min_pair_df = min_pair_df
        self.tail = tail
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_exact_features_ + self._n_sketched

    @fit_method
    def fit(self, X, y=None):
        """Draw the sketches for inputs of ``X.shape[1]`` features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Its width, and with ``method="polyfit"``: for dense input (and
            ``sketch_degrees="auto"``) the cosines between its first 1,000 rows, which
            choose the sketched degrees; for sparse input with ``exact_degrees=2`` the
            pairs of columns its rows hold, and how many rows hold each.  Nothing else
            of the rows is kept.
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"),
                          dtype=(np.float64, np.float32), reset=True)
        # at least: per sketch, p TensorSRHT nodes (int8 signs and int64 coordinates, at
        # least m / p wide, for 2 inputs) and p int32 hash tables; a row of scratch
        p, m, d = self.degree, self.n_components, self.n_features_in_
        n_sketches = 1 if self.method == "polyfit" else 2 * self.depth + 1
        table = d if d <= _MAX_TABLE_FEATURES else 0
        check_memory(n_sketches * (18 * m + 4 * p * table) + 48 * m + fit_nbytes(p),
                     f"NTKSketch(n_components={m}, degree={p}, depth={self.depth})")
        if self.tail == "nystroem" and (self.method != "polyfit" or sp.issparse(X)):
            raise ValueError("tail='nystroem' needs method='polyfit' and dense input (its "
                             "exact degrees are monomials of dense rows)")
        rng = check_random_state(self.random_state)
        if self.method == "polyfit":
            self._fit_polyfit(rng, X)
        else:
            if self.exact_degrees not in ("auto", 0):
                raise ValueError(f"method='layerwise' has no exact degrees: exact_degrees "
                                 f"must be 'auto' or 0, got {self.exact_degrees!r}")
            self._fit_layerwise(rng)
            self.tail_ = "sketch"
            self.tail_signal_to_noise_ = np.nan
            self.exact_degrees_ = ()
            self.n_exact_features_ = self.n_linear_features_ = 0
            self.sparse_output_ = False
            self._n_sketched = self.n_components
        return self

    def _fit_polyfit(self, rng, X):
        sparse = sp.issparse(X)
        if not sparse and self.tail != "sketch":
            d = self.n_features_in_
            taylor, _ = kernel_polynomial("ntk", self.degree, poly="taylor", depth=self.depth)
            if self.tail == "nystroem" or (self.exact_degrees == "auto" and
                                           takes_nystroem_tail(taylor, self.n_components, d)):
                exact = remainder_exact_degrees(taylor, self.n_components, d,
                                                self.exact_degrees)
                n_landmarks = self.n_components - sum(monomial_dimension(d, j)
                                                      for j in exact)
                U, norms = _normalized_rows(np.asarray(X, dtype=np.float64), 1)
                self._fit_nystroem_tail(rng, U[norms > 0], taylor, exact, n_landmarks)
                return
        coef, error = kernel_polynomial("ntk", self.degree, poly=self.poly, depth=self.depth)
        exact_degrees = self.exact_degrees
        if exact_degrees == "auto" and sparse and takes_exact_pairs(X):
            exact_degrees = 2
        exact, widths = choose_exact_degrees(coef, self.n_components, self.n_features_in_,
                                             sparse, exact_degrees)
        powers = {}                      # E[t^(2j)] by degree, each computed once per fit

        def mean_powers(degrees):
            missing = [j for j in degrees if j not in powers]
            if missing:
                powers.update(zip(missing, mean_powers_of_cosines(X, missing)))
            return np.array([powers[j] for j in degrees])

        if self.sketch_degrees == "auto" and not sparse:
            widths = drop_noisy_degrees(coef, widths, mean_powers)
        self.tail_signal_to_noise_ = max(signal_to_noise(coef, widths, mean_powers).values(),
                                         default=np.nan)
        self.degrees_ = represented_degrees(coef, exact, widths)
        self.coef_ = {"ntk": coef}
        self.poly_max_error_ = {"ntk": error}
        self.widths_ = {"ntk": widths}
        self.exact_degrees_ = exact
        self.sparse_output_ = sparse
        # degrees 0 and 1 come first in both layouts
        self.n_linear_features_ = sum(monomial_dimension(self.n_features_in_, j)
                                      for j in exact if j <= 1)
        if sparse:
            self.exact_ = (SparsePairFeatures(X, coef[2], self.min_pair_df)
                           if 2 in exact else None)
            self.n_exact_features_ = self.n_linear_features_ + (
                self.exact_.n_components if 2 in exact else 0)
        else:
            self.exact_ = MonomialFeatures(self.n_features_in_, exact, coef)
            self.n_exact_features_ = self.exact_.n_components
        self.sketch_ = _PolynomialSketch(coef, widths, self.n_features_in_, rng)
        self._n_sketched = self.sketch_.n_components
        self.tail_ = "sketch"

    def _fit_nystroem_tail(self, rng, U, taylor, exact, n_landmarks):
        """The Taylor coefficients ``taylor`` of the degrees ``exact`` as monomials, and
        Nyström features of the rest of the NTK on ``n_landmarks`` landmarks drawn from
        the unit rows ``U`` (the non-zero rows of the fit input)."""
        d = self.n_features_in_
        n_drawn = min(n_landmarks, U.shape[0])
        # the landmarks' kernel, its eigenvectors and its inverse square root
        check_memory(8 * n_drawn * (3 * n_drawn + d),
                     f"NTKSketch(n_components={self.n_components}, tail='nystroem')")
        landmarks = U[np.sort(rng.choice(U.shape[0], n_drawn, replace=False))]
        represented = np.zeros_like(taylor)
        represented[list(exact)] = taylor[list(exact)]
        self.coef_ = {"ntk": taylor}
        self.poly_max_error_ = {"ntk": 0.0}
        self.widths_ = {"ntk": np.zeros(taylor.shape[0], dtype=np.int64)}
        self.exact_degrees_ = self.degrees_ = exact
        self.tail_signal_to_noise_ = np.nan
        self.sparse_output_ = False
        self.n_linear_features_ = sum(monomial_dimension(d, j) for j in exact if j <= 1)
        self.exact_ = MonomialFeatures(d, exact, taylor)
        self.n_exact_features_ = self.exact_.n_components
        self.sketch_ = RemainderNystroem(landmarks, represented, self.depth)
        self._n_sketched = n_landmarks          # columns past the landmarks' stay zero
        self.tail_ = "nystroem"

    def _fit_layerwise(self, rng):
        c1, e1 = kernel_polynomial("k1", self.degree, poly=self.poly)
        c0, e0 = kernel_polynomial("k0", self.degree, poly=self.poly)
        self.coef_ = {"k1": c1, "k0": c0}
        self.poly_max_error_ = {"k1": e1, "k0": e0}
        m = self.n_components
        # Last layer: Theta_L = Theta_{L-1} SigmaDot_L + Sigma_L with
        # Theta_{L-1} SigmaDot_L <= L and Sigma_L <= 1 on the diagonal: coordinates are
        # split in proportion to these magnitudes (standard deviations of the sketches).
        m_sigma = min(round(m / (self.depth + 1)), m - 1)
        d_in = self.n_features_in_
        self.theta0_ = _PolynomialSketch(np.array([0.0, 1.0]), np.array([0, m]), d_in, rng)
        self.layers_ = []
        for h in range(1, self.depth + 1):
            last = h == self.depth
            w1 = split_widths(c1, m_sigma if last else m)
            w0 = split_widths(c0, m)
            self.layers_.append((
                _PolynomialSketch(c1, w1, d_in, rng),
                _PolynomialSketch(c0, w0, d_in, rng),
                _TensorReduction(m, m - m_sigma if last else m, rng,
                                 concat_width=0 if last else m),
            ))
            d_in = m
        self.widths_ = {"k1": w1, "k0": w0}

    def _batch_size(self):
        per_row = 8 * self.n_components * (6 if self.method == "layerwise" else 2)
        return max(1, _BATCH_BYTES // per_row)

    def transform(self, X):
        """NTK features of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            CSR/CSC/COO input is used as CSR, never densified.

        Returns
        -------
        ndarray or CSR matrix of shape (n_samples, n_exact_features_ + sketched width)
            ``[exact block | sketched tail]``: a dense array, or CSR when ``fit`` saw
            sparse input (``sparse_output_``), whose first ``n_exact_features_`` columns are
            the sparse exact block.  float32 for float32 input, float64 otherwise.
        """
        exact, tail = self.transform_blocks(X)
        if not self.sparse_output_:
            return tail
        return sp.hstack([exact, sp.csr_matrix(tail)], format="csr")

    def transform_blocks(self, X, *, sketched=True):
        """The exact block and the sketched tail of the features, separately.

        ``<phi(x), phi(y)> = <E(x), E(y)> + <T(x), T(y)>``: the exact block ``E`` carries
        the degrees ``exact_degrees_`` without variance, the tail ``T`` the sketched
        degrees.  Learners that weight the two parts differently (e.g.
        :class:`fastntk.NTKRidge`) use this instead of :meth:`transform`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        sketched : bool, default=True
            Whether to compute the sketched tail; without it, the tail has no columns
            (for dense output: only the exact block's), and costs nothing.

        Returns
        -------
        exact : CSR matrix of shape (n_samples, n_exact_features_) or None
            With ``sparse_output_``; None otherwise (a dense exact block is the first
            ``n_exact_features_`` columns of ``tail``).
        tail : ndarray of shape (n_samples, n_features_out - n_exact_features_) or \
(n_samples, n_features_out)
            The sketched features; for dense output, the whole dense feature matrix
            ``[exact block | sketched tail]``.
        """
        check_is_fitted(self)
        X = validate_rows(self, X, accept_sparse=("csr", "csc", "coo"),
                          dtype=(np.float64, np.float32), order="C")
        return self._validated_blocks(X, sketched)

    def _validated_blocks(self, X, sketched=True):
        """:meth:`transform_blocks` of rows already validated (a float32/float64 ndarray
        or canonical CSR of the fitted width): learners that validated their input call
        this, so that a request is checked once."""
        X, out, norms = self._validated_tail(X, sketched)
        if not self.sparse_output_:
            return None, out
        coef = self.coef_["ntk"]
        exact = sparse_linear_block(X, norms, coef[0],
                                    coef[1] if 1 in self.exact_degrees_ else None, X.dtype)
        if self.exact_ is not None:
            exact = sp.hstack([exact, self._pairs(X, norms)], format="csr")
        return exact, out

    def _pairs(self, X, norms):
        """The exact degree-2 block of validated sparse rows."""
        n_threads = _effective_n_threads(self.n_jobs, X.nnz)
        return self.exact_.transform(X, norms, X.dtype, n_threads)

    def _validated_dot(self, X, W, sketched=True):
        """``phi(X) @ W`` for validated rows, each block applied the cheapest way.

        ``W`` has one row per output column (per exact column only, without
        ``sketched``: the tail is then not computed).  A predictor needs this product,
        not the features:

        - a sparse exact block ``[sqrt(a_0) ||x||, sqrt(a_1) x, pairs]`` is applied
          without being built, ``sqrt(a_0) ||x|| W[0] + sqrt(a_1) x W[1:1 + d] +
          pairs(x) W[1 + d:]`` (for one row, building it costs more than the sketch);
        - a Nyström tail ``||x|| R(u, L) N`` (``N`` the landmarks' inverse square root)
          is applied as ``||x|| R(u, L) (N W_tail)``: ``O(m d + m k)`` per row instead of
          ``O(m^2)`` (:meth:`fastntk.nystroem.RemainderNystroem.dot`).
        """
        if self.sparse_output_:
            return self._sparse_output_dot(X, W, sketched)
        if sketched and self.tail_ == "nystroem":
            return self._nystroem_dot(X, W)
        _, features, _ = self._validated_tail(X, sketched)
        return features.astype(np.float64, copy=False) @ W

    def _sparse_output_dot(self, X, W, sketched):
        """:meth:`_validated_dot` of a sparse exact block, applied without being built."""
        X, tail, norms = self._validated_tail(X, sketched)
        coef = self.coef_["ntk"]
        head, linear = self.n_exact_features_, self.n_linear_features_
        product = np.sqrt(coef[0]) * norms[:, None] * W[0]
        if 1 in self.exact_degrees_:
            product += np.sqrt(coef[1]) * np.asarray(X @ W[1:linear])
        if self.exact_ is not None:
            product += np.asarray(self._pairs(X, norms) @ W[linear:head])
        if sketched:
            product += tail.astype(np.float64, copy=False) @ W[head:]
        return product

    def _nystroem_dot(self, X, W):
        """:meth:`_validated_dot` of dense rows with a Nyström tail, applied through its
        folded factor."""
        head = self.n_exact_features_
        _, exact, norms = self._validated_tail(X, sketched=False)
        product = exact.astype(np.float64, copy=False) @ W[:head]
        weights = W[head:head + self.sketch_.n_components]
        step = self._batch_size()
        n_threads = _effective_n_threads(self.n_jobs, X.shape[0] * self.sketch_.n_components)
        with _limit_threads(n_threads):
            for start in range(0, X.shape[0], step):
                U, _ = _normalized_rows(np.asarray(X[start:start + step], dtype=np.float64),
                                        n_threads)
                rows = slice(start, start + U.shape[0])
                product[rows] += norms[rows, None] * self.sketch_.dot(U, weights)
        return product

    def _validated_tail(self, X, sketched=True):
        """The rows (as the exact block reads them), the dense features (the sketched
        ones if ``sketched``, after the dense exact block of dense output), the norms."""
        if not sp.issparse(X):
            X = np.ascontiguousarray(X)
        if self.sparse_output_ and not sp.issparse(X):
            X = sp.csr_matrix(X)
        width = ((self._n_sketched if sketched else 0)
                 + (0 if self.sparse_output_ else self.n_exact_features_))
        n_threads = _effective_n_threads(self.n_jobs, X.shape[0] * width * self.degree)
        out = np.zeros((X.shape[0], width), dtype=X.dtype)
        norms_all = np.empty(X.shape[0])
        step = self._batch_size()
        # only the polyfit sketch reads a sparse batch, and it takes the bare arrays
        parts = self.method == "polyfit" and self.sparse_output_
        with _limit_threads(n_threads):
            for start in range(0, X.shape[0], step):
                stop = min(start + step, X.shape[0])
                # slicing costs more than the kernels for a request of one row
                rows = X if stop - start == X.shape[0] else X[start:stop]
                U, norms = _normalized_rows(rows, n_threads, parts)
                if width:
                    # a Nyström tail with fewer landmarks than its columns fills the first
                    unit = self._transform_unit(U, sketched)
                    out[start:stop, :unit.shape[1]] = unit
                    out[start:stop, :unit.shape[1]] *= norms[:, None].astype(X.dtype)
                norms_all[start:stop] = norms
        return X, out, norms_all

    def _transform_unit(self, U, sketched=True):
        """Features of unit-norm (or zero) rows (the sketched ones if ``sketched``)."""
        if self.method == "polyfit":
            # each part into its own C-ordered array (the kernels take no strided views)
            parts = [np.empty((U.shape[0], 0), dtype=U.dtype)]
            if not self.sparse_output_:
                # a model fitted on dense rows has a dense exact block at least as wide
                # as the input: a sparse batch is expanded (one batch at a time) for it
                rows = U.toarray() if sp.issparse(U) else U
                parts.append(self.exact_.transform(
                    rows, np.empty((U.shape[0], self.n_exact_features_), dtype=U.dtype)))
            if self.sketch_.n_components and sketched:
                parts.append(self.sketch_.transform(
                    U, np.empty((U.shape[0], self.sketch_.n_components), dtype=U.dtype)))
            return np.hstack(parts) if len(parts) > 2 else parts[-1]
        out = np.empty((U.shape[0], self.n_components), dtype=U.dtype)
        theta = self.theta0_.transform(U, np.empty_like(out))
        for sigma_map, dot_map, reduction in self.layers_:
            sigma = sigma_map.transform(U, np.empty((U.shape[0], sigma_map.n_components),
                                                    dtype=U.dtype))
            dot = dot_map.transform(U, np.empty_like(out))
            tensor = reduction.tensor(theta, dot)
            if reduction.concat_width:
                theta = reduction.reduce(tensor, sigma)
                # the next layer's polynomial sketches assume unit-norm input (exact for
                # poly="fit", whose k1 polynomial is exact at t = 1; not for Taylor)
                U = sigma / np.maximum(np.linalg.norm(sigma, axis=1), _TINY)[:, None]
            else:
                out[:, :tensor.shape[1]] = tensor
                out[:, tensor.shape[1]:] = sigma
        return out
