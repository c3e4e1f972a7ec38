"""asv benchmarks of the sketching primitives (fastntk.sketches).

Sparse inputs are synthetic CSR matrices with a Zipf-like column distribution (see
:func:`zipf_csr`), the shape of bag-of-words text.  ``asv_benchmarks/sketch_ratios.py``
measures the ratio targets of the sketches in one run.
"""
import numpy as np

from fastntk.sketches import SRHT, CountSketch, PolySketch, TensorSketch

from ._profile import size


def zipf_csr(n_rows, n_features, nnz_per_row, *, exponent=1.0, dtype=np.float64, seed=0):
    """Random CSR matrix whose columns follow a Zipf-like law, rows of unit norm.

    Column ranks are drawn with probability proportional to ``1 / rank**exponent``
    over ``n_features`` ranks, mapped to columns by a fixed random permutation (so the
    frequent columns are spread over the index range, as in a real vocabulary).  Every
    row holds exactly ``nnz_per_row`` distinct columns: the first distinct ones of an
    i.i.d. sequence of draws, i.e. weighted sampling without replacement.  Values are
    standard normal, then every row is scaled to unit norm (as TF-IDF rows are).

    Parameters
    ----------
    n_rows, n_features, nnz_per_row : int
    exponent : float, default=1.0
    dtype : float dtype, default=float64
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_rows, n_features), sorted indices
    """
    import scipy.sparse as sp

    if nnz_per_row > n_features:
        raise ValueError("nnz_per_row exceeds n_features")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, n_features + 1) ** exponent)
    cdf /= cdf[-1]
    rank_to_col = rng.permutation(n_features)
    indices = np.empty((n_rows, nnz_per_row), dtype=np.int64)
    for i in range(n_rows):  # benchmark set-up, not a hot path
        draws = 2 * nnz_per_row
        while True:
            ranks = np.minimum(np.searchsorted(cdf, rng.random(draws)), n_features - 1)
            _, first = np.unique(ranks, return_index=True)
            if len(first) >= nnz_per_row:
                break
            draws *= 2
        chosen = ranks[np.sort(first)[:nnz_per_row]]
        indices[i] = np.sort(rank_to_col[chosen])
    data = rng.standard_normal((n_rows, nnz_per_row))
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    indptr = np.arange(0, n_rows * nnz_per_row + 1, nnz_per_row)
    X = sp.csr_matrix(
        (data.ravel().astype(dtype), indices.ravel(), indptr), shape=(n_rows, n_features)
    )
    X.has_sorted_indices = True
    return X


class CountSketchCSR:
    """CountSketch(256) of a Zipf CSR matrix, one thread: 10^7 non-zeros (fast: 10^6)."""

    params = [[2**14, 2**20]]
    param_names = ["n_features"]

    def setup(self, n_features):
        self.X = zipf_csr(size(10_000, 1_000), n_features, 1000)
        self.cs = CountSketch(n_components=256, random_state=0, n_jobs=1).fit(self.X)
        self.cs.transform(self.X[:10])

    def time_transform(self, n_features):
        self.cs.transform(self.X)

    def track_nnz_per_second(self, n_features):
        import time

        times = []
        for _ in range(5):
            start = time.perf_counter()
            self.cs.transform(self.X)
            times.append(time.perf_counter() - start)
        return self.X.nnz / float(np.median(times))

    track_nnz_per_second.unit = "nnz/s"


class PolySketchInputSparsity:
    """PolySketch(4, 1024) on CSR with 100 non-zeros a row: time must not grow with d."""

    params = [[2**10, 2**14, 2**18, 2**22]]
    param_names = ["n_features"]
    timeout = 300

    def setup(self, n_features):
        self.X = zipf_csr(size(10_000, 1_000), n_features, 100)
        self.poly = PolySketch(degree=4, n_components=1024, random_state=0).fit(self.X)
        self.poly.transform(self.X[:10])

    def time_transform(self, n_features):
        self.poly.transform(self.X)

    def peakmem_transform(self, n_features):
        self.poly.transform(self.X)


class DegreeTwoCSR:
    """Degree-2 sketches of n=20,000 x d=100,000 CSR (100 nnz/row), n_components=2048.

    sklearn's PolynomialCountSketch extracts one input column per feature and degree in
    a Python loop, which costs O(nnz) per column on CSR; it is given the CSC copy (its
    fastest sparse path), and still takes minutes at full size.
    """

    params = [["PolySketch", "TensorSketch", "sklearn"]]
    param_names = ["method"]
    timeout = 1800

    def setup(self, method):
        from sklearn.kernel_approximation import PolynomialCountSketch

        self.X = zipf_csr(size(20_000, 2_000), 100_000, 100)
        self.est = {
            "PolySketch": PolySketch(degree=2, n_components=2048, leaf="countsketch",
                                     random_state=0),
            "TensorSketch": TensorSketch(degree=2, n_components=2048, random_state=0),
            "sklearn": PolynomialCountSketch(degree=2, n_components=2048, random_state=0),
        }[method].fit(self.X)
        if method == "sklearn":
            self.X = self.X.tocsc()
        else:
            self.est.transform(self.X[:10])

    def time_transform(self, method):
        self.est.transform(self.X)


class DenseSketches:
    """SRHT and PolySketch(4, 1024, srht leaves) of dense float32 rows (CNTK-like)."""

    params = [["SRHT", "PolySketch"], [1024, 4096]]
    param_names = ["method", "n_features"]
    timeout = 300

    def setup(self, method, n_features):
        rng = np.random.default_rng(0)
        self.X = rng.standard_normal((size(10_000, 1_000), n_features)).astype(np.float32)
        if method == "SRHT":
            self.est = SRHT(n_components=1024, random_state=0)
        else:
            self.est = PolySketch(degree=4, n_components=1024, leaf="srht", random_state=0)
        self.est.fit(self.X).transform(self.X[:10])

    def time_transform(self, method, n_features):
        self.est.transform(self.X)
