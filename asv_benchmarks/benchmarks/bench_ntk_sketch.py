"""asv benchmarks of NTKSketch: input-sparsity scaling, throughput, memory, accuracy.

The CSR inputs are synthetic (Zipf-like columns, a fixed number of non-zeros a row);
the ratio script ``asv_benchmarks/ntk_sketch_report.py`` reproduces the figures of the
closing note in one run, including the real-data accuracy tables.
"""
import os
import sys

import numpy as np

from fastntk import NTKSketch

from ._profile import size

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ntk_sketch_report import zipf_csr  # noqa: E402


def _fitted(X, **params):
    est = NTKSketch(random_state=0, n_jobs=1, **params).fit(X)
    est.transform(X[:4])  # JIT warm-up outside the timing
    return est


class NFeaturesScaling:
    """Transform time against n_features at 100 non-zeros a row (should be flat)."""

    params = [[2**10, 2**14, 2**18, 2**22], ["polyfit", "layerwise"]]
    param_names = ["n_features", "method"]

    def setup(self, n_features, method):
        self.X = zipf_csr(size(1000, 100), n_features, 100, seed=1)
        self.est = _fitted(self.X, method=method, depth=2, n_components=4096)

    def time_transform(self, n_features, method):
        self.est.transform(self.X)


class NnzScaling:
    """Transform time against non-zeros a row, n_features = 100,000: the sketch's cost
    (degrees 0-1 exact for polyfit, as "auto" takes above 32 non-zeros a row; the exact
    pairs of short rows are ExactPairs')."""

    params = [[25, 50, 100, 200, 400], ["polyfit", "layerwise"]]
    param_names = ["nnz_per_row", "method"]

    def setup(self, nnz, method):
        self.X = zipf_csr(size(1000, 100), 100_000, nnz, seed=2)
        exact = {"exact_degrees": 1} if method == "polyfit" else {}
        self.est = _fitted(self.X, method=method, depth=2, n_components=4096, **exact)

    def time_transform(self, nnz, method):
        self.est.transform(self.X)


class Throughput:
    """The issue's throughput setting: d=100,000, 100 nnz/row, m=4096, depth 2, 1 thread."""

    params = [["polyfit", "layerwise"], ["float64", "float32"]]
    param_names = ["method", "dtype"]

    def setup(self, method, dtype):
        self.X = zipf_csr(size(5000, 200), 100_000, 100, seed=3).astype(dtype)
        self.est = _fitted(self.X, method=method, depth=2, n_components=4096)

    def time_transform(self, method, dtype):
        self.est.transform(self.X)

    def peakmem_transform(self, method, dtype):
        self.est.transform(self.X)


class KernelError:
    """Relative Frobenius error against the exact NTK on dense synthetic rows."""

    params = [[1024, 4096], [1, 2, 3], ["polyfit", "layerwise"]]
    param_names = ["n_components", "depth", "method"]

    def setup(self, n_components, depth, method):
        from fastntk.kernels import ntk_kernel

        rng = np.random.default_rng(0)
        n = size(500, 100)
        self.X = np.abs(rng.standard_normal((n, 100))) * (rng.random((n, 100)) < 0.3)
        self.kernel = ntk_kernel(self.X, depth=depth)

    def track_relative_error(self, n_components, depth, method):
        F = NTKSketch(n_components=n_components, depth=depth, method=method,
                      random_state=0).fit_transform(self.X)
        return float(np.linalg.norm(F @ F.T - self.kernel) / np.linalg.norm(self.kernel))


class ExactPairs:
    """Exact degree 2 of short sparse rows (``exact_degrees=2``, which "auto" takes for
    them): the fit that counts the pairs of columns and the transform through their
    vocabulary, d = 50,000."""

    params = [[15, 30], [1, 2]]
    param_names = ["nnz_per_row", "min_pair_df"]

    def setup(self, nnz, min_pair_df):
        self.X = zipf_csr(size(10_000, 200), 50_000, nnz, seed=5)
        self.kwargs = dict(depth=2, n_components=256, exact_degrees=2,
                           min_pair_df=min_pair_df)
        self.est = _fitted(self.X, **self.kwargs)

    def time_fit(self, nnz, min_pair_df):
        NTKSketch(random_state=0, n_jobs=1, **self.kwargs).fit(self.X)

    def peakmem_fit(self, nnz, min_pair_df):
        NTKSketch(random_state=0, n_jobs=1, **self.kwargs).fit(self.X)

    def time_transform(self, nnz, min_pair_df):
        self.est.transform(self.X)
