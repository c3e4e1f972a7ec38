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
