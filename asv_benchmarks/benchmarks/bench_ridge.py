"""asv benchmarks of fastntk.ridge: streaming Gram accumulation, the GCV solve, exact ridge,
and the default learner on short text-like rows.

Except in ShortTextFit, features come from a fixed random matrix (a FunctionTransformer),
so that what is timed is the learner, not a feature map.
"""
import os
import sys

import numpy as np
from sklearn.preprocessing import FunctionTransformer

from fastntk import NTKSketch
from fastntk.ridge import NTKRidge

from ._profile import size

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ntk_sketch_report import zipf_csr  # noqa: E402


def _problem(n_samples, n_components, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_components))
    y = np.tanh(X[:, :10].sum(axis=1)) + 0.1 * rng.standard_normal(n_samples)
    return X, y


class PrimalFit:
    """fit = n m^2 Gram accumulation (dsyrk / blocks) + one m x m eigendecomposition (in
    single precision from 2,048 columns) + the leave-one-out pass over the kept rows."""

    params = ([1024, 2048, 4096], [256, 4096])
    param_names = ["n_components", "batch_size"]
    timeout = 600

    def setup(self, n_components, batch_size):
        self.X, self.y = _problem(2 * n_components, n_components)

    def time_fit(self, n_components, batch_size):
        NTKRidge(FunctionTransformer(), batch_size=batch_size, solver="primal").fit(self.X, self.y)

    def peakmem_fit(self, n_components, batch_size):
        NTKRidge(FunctionTransformer(), batch_size=batch_size, solver="primal").fit(self.X, self.y)


class PartialFit:
    """Ten partial_fit calls: each accumulates its piece and re-solves."""

    params = [512, 1024]
    param_names = ["n_components"]

    def setup(self, n_components):
        self.X, self.y = _problem(4 * n_components, n_components)

    def time_partial_fit_10_pieces(self, n_components):
        model = NTKRidge(FunctionTransformer())
        for X, y in zip(np.array_split(self.X, 10), np.array_split(self.y, 10)):
            model.partial_fit(X, y)


class ExactFit:
    """Exact NTK kernel ridge: n^2 kernel + one n x n eigendecomposition."""

    params = [1000, 2000, 4000]
    param_names = ["n_samples"]
    timeout = 600

    def setup(self, n_samples):
        self.X, self.y = _problem(n_samples, 20)
        NTKRidge("exact").fit(self.X[:20], self.y[:20])          # compile the kernel

    def time_fit(self, n_samples):
        NTKRidge("exact", kernel_params={"depth": 2}).fit(self.X, self.y)


class Predict:
    params = [1024, 4096]
    param_names = ["n_components"]

    def setup(self, n_components):
        self.X, self.y = _problem(2 * n_components, n_components)
        self.model = NTKRidge(FunctionTransformer(), alphas=(1.0,)).fit(self.X, self.y)

    def time_predict(self, n_components):
        self.model.predict(self.X)


class ShortTextFit:
    """NTKRidge on the default NTKSketch of short text-like rows (15 non-zeros, Zipf
    columns, d = 50,000: the exact pairs of words and a 4,096-column tail): the tail left
    out where its signal is below its noise (``tail_gammas="auto"``) or scored ("same")."""

    params = ["auto", "same"]
    param_names = ["tail_gammas"]
    timeout = 600

    def setup(self, tail_gammas):
        self.X = zipf_csr(size(5000, 300), 50_000, 15, seed=7)
        column = np.asarray(self.X[:, :20].sum(axis=1)).ravel()
        self.y = column + np.random.default_rng(0).standard_normal(self.X.shape[0]) * 0.1

    def _fit(self, tail_gammas):
        NTKRidge(NTKSketch(depth=2, n_components=4096, random_state=0),
                 tail_gammas=tail_gammas).fit(self.X, self.y)

    def time_fit(self, tail_gammas):
        self._fit(tail_gammas)

    def peakmem_fit(self, tail_gammas):
        self._fit(tail_gammas)


class TabularFit:
    """NTKRidge on the default NTKSketch of dense rows of 16 columns (exact degrees 0-3,
    969 columns, and a sketched tail, scored at the weights 0, 0.5 and 1): with fewer rows
    than features the dual solver, whose candidates that leave the tail out are
    decomposed from their 969 columns (thin SVD); with more rows, the primal solver."""

    params = [2000, 6000]
    param_names = ["n_samples"]
    timeout = 900

    def setup(self, n_samples):
        rng = np.random.default_rng(0)
        self.X = rng.standard_normal((size(n_samples, n_samples // 10), 16))
        self.y = (np.tanh(self.X[:, :3].sum(axis=1)) + self.X[:, 3] * self.X[:, 4]
                  + 0.1 * rng.standard_normal(self.X.shape[0]))
        self.n_components = size(4096, 409)

    def time_fit(self, n_samples):
        NTKRidge(NTKSketch(depth=2, n_components=self.n_components, random_state=0),
                 tail_gammas=(0.0, 0.5, 1.0)).fit(self.X, self.y)
