"""Regenerate the model-file fixtures of tests/test_persistence.py.

Run from the repository root with the fastntk being released (``PYTHONPATH=$PWD python
tests/data/make_model_fixture.py``): it writes ``model-format-<N>.fastntk`` files (N the
model format version) and the inputs and predictions they must reproduce.  Files of
earlier format versions are kept: every later fastntk must still load them.
"""
import os

import numpy as np
import scipy.sparse as sp

import fastntk
from fastntk import NTKRandomFeatures, NTKRidge, NTKRidgeClassifier, NTKSketch
from fastntk._persistence import FORMAT_VERSION

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(0)
    X_sparse = sp.random(60, 50, density=0.1, format="csr", random_state=0)
    y = np.asarray(X_sparse.sum(axis=1)).ravel() + 0.1 * rng.standard_normal(60)
    X_dense = rng.standard_normal((60, 6))
    models = {
        "ridge_sketch_csr": (NTKRidge(NTKSketch(n_components=64, degree=4, exact_degrees=2,
                                                random_state=0),
                                      alphas=(0.1, 1.0, 10.0)).fit(X_sparse, y), X_sparse),
        "classifier_rf": (NTKRidgeClassifier(NTKRandomFeatures(n_components=32, depth=2,
                                                               random_state=0),
                                             alphas=(0.1, 1.0, 10.0))
                          .fit(X_dense, X_dense[:, 0] > 0), X_dense),
    }
    arrays = {}
    for name, (model, X) in models.items():
        path = os.path.join(HERE, f"model-format-{FORMAT_VERSION}-{name}.fastntk")
        fastntk.save_model(model, path, {"name": name, "fastntk": fastntk.__version__})
        arrays[f"{name}_predictions"] = model.predict(X)
    sp.save_npz(os.path.join(HERE, f"model-format-{FORMAT_VERSION}-X_sparse.npz"), X_sparse)
    np.savez(os.path.join(HERE, f"model-format-{FORMAT_VERSION}-expected.npz"),
             X_dense=X_dense, **arrays)


if __name__ == "__main__":
    main()
