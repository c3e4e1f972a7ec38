"""asv benchmarks of the exact kernels (the ground truth and the kernel-ridge baseline)."""
import numpy as np
import scipy.sparse as sp

from fastntk.kernels import cntk_kernel, ntk_kernel

from ._profile import size


def _tfidf_20k(n_rows=4000):
    """Health tweets as TF-IDF with a 20,000-word vocabulary (synthetic Zipf CSR if absent)."""
    try:
        from fastntk.datasets import load_health_tweets, tfidf_split

        texts, labels = load_health_tweets()
        # the vocabulary of 50,000 tweets, capped at 20,000 words; then n_rows of them
        X, _, _, _ = tfidf_split(texts, labels, n_train=50_000, n_test=1, max_features=20_000)
        return X[:n_rows]
    except ImportError:
        rng = np.random.default_rng(0)
        nnz = 12
        cols = np.minimum(rng.zipf(1.3, size=n_rows * nnz) - 1, 19_999)
        rows = np.repeat(np.arange(n_rows), nnz)
        X = sp.csr_matrix((rng.random(n_rows * nnz), (rows, cols)), shape=(n_rows, 20_000))
        return X


class NTKDense:
    """ntk_kernel on dense n=4000, d=1000 against the bare Gram product."""

    params = [1, 2, 3]
    param_names = ["depth"]

    def setup(self, depth):
        self.X = np.random.default_rng(0).standard_normal((size(4000, 400), 1000))
        ntk_kernel(self.X[:10], depth=depth)  # JIT warm-up outside the timing

    def time_gram_baseline(self, depth):
        self.X @ self.X.T

    def time_ntk_kernel(self, depth):
        ntk_kernel(self.X, depth=depth)

    def peakmem_ntk_kernel(self, depth):
        ntk_kernel(self.X, depth=depth)


class NTKSparseText:
    """ntk_kernel on a sparse TF-IDF matrix with 20,000 columns."""

    params = [1, 2, 3]
    param_names = ["depth"]

    def setup(self, depth):
        self.X = _tfidf_20k(size(4000, 400))
        ntk_kernel(self.X[:10], depth=depth)

    def time_gram_baseline(self, depth):
        (self.X @ self.X.T).toarray()

    def time_ntk_kernel(self, depth):
        ntk_kernel(self.X, depth=depth)


class CNTKMnist:
    """cntk_kernel on 16 MNIST-sized images, depth 3 (136 pairs of 784-pixel images)."""

    params = ["gap", "flatten"]
    param_names = ["pooling"]
    timeout = 300

    def setup(self, pooling):
        try:
            from fastntk.datasets import load_mnist_5k

            self.X = load_mnist_5k()[0][:size(16, 2)]
        except ImportError:
            self.X = np.random.default_rng(0).random((size(16, 2), 28, 28, 1))
        cntk_kernel(self.X[:1, :6, :6], depth=3, pooling=pooling)

    def time_cntk_kernel(self, pooling):
        cntk_kernel(self.X, depth=3, pooling=pooling)
