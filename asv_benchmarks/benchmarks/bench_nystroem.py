"""asv benchmarks of NTKNystroem on low-dimensional dense rows (tabular data).

Its cost per row is ``m`` exact kernel evaluations and one ``m x m`` product, so
throughput falls like ``1 / m^2`` once ``m`` dominates ``d``; fit is one ``m x m`` kernel
matrix and its eigendecomposition.
"""
import numpy as np

from fastntk import NTKNystroem

from ._profile import size


def _tabular(n_rows, d=8):
    return np.random.default_rng(0).standard_normal((n_rows, d))


class NystroemTabular:
    """fit and transform of standardised rows with d = 8 columns."""

    params = ([1024, 4096],)
    param_names = ["n_components"]
    timeout = 600

    def setup(self, n_components):
        n_components = size(n_components, 128)
        self.X = _tabular(size(8192, 512))
        self.ny = NTKNystroem(depth=2, n_components=n_components, random_state=0)
        self.ny.fit(self.X)
        self.ny.transform(self.X[:1])  # JIT warm-up outside the timing

    def time_fit(self, n_components):
        self.ny.fit(self.X)

    def time_transform(self, n_components):
        self.ny.transform(self.X)

    def peakmem_transform(self, n_components):
        self.ny.transform(self.X)


class NystroemTailPredict:
    """NTKRidge on NTKSketch's Nyström tail (rows of a handful of columns: the exact
    Taylor degrees and landmarks for the rest of the NTK): predict applies the tail as
    ``R(u, L) (N w)``, ``O(m d + m)`` a row, where ``transform`` costs ``O(m^2)``."""

    timeout = 600

    def setup(self):
        from fastntk import NTKRidge, NTKSketch

        rng = np.random.default_rng(0)
        X = rng.standard_normal((size(4096, 512), size(4, 2)))
        y = np.sin(X.sum(axis=1))
        sketch = NTKSketch(depth=2, n_components=size(1024, 128), random_state=0)
        self.model = NTKRidge(sketch, alphas=(1.0,), gammas=(1.0,),
                              tail_gammas="same").fit(X, y)
        assert self.model.feature_map_.tail_ == "nystroem"
        self.row = X[:1]
        self.rows = X[:256]
        self.model.predict(self.row)             # JIT warm-up and N w outside the timing

    def time_predict_one_row(self):
        self.model.predict(self.row)

    def time_predict_256_rows(self):
        self.model.predict(self.rows)

    def time_transform_256_rows(self):
        self.model.feature_map_.transform(self.rows)
