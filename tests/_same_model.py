"""The equality of two ridge models fitted on the same rows in different ways (in memory,
from chunks, on a Dask cluster), and the data they are fitted on, shared by the
out-of-core and Dask tests."""
import numpy as np
import scipy.sparse as sp


def interaction_data(kind, n, n_features, density, seed=0):
    """Rows (CSR of ``n_features`` columns at ``density``, or dense with 5 columns) and
    a target with a linear part and an interaction, plus a little noise."""
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        X = sp.random(n, n_features, density=density, format="csr", random_state=seed)
    else:
        X = rng.standard_normal((n, 5))
    dense = X.toarray() if sp.issparse(X) else X
    y = dense[:, 0] + 2.0 * dense[:, 1] * dense[:, 2] + 0.05 * rng.standard_normal(n)
    return X, y


def assert_same_model(a, b, X=None):
    """Same choices, same weights: to rounding for the primal solver's eigensolve; for cg,
    to what single-precision cross statistics summed in another order allow (a relative
    1e-7 per entry, which the conjugate gradients amplify in ill-conditioned directions).
    With rows ``X``, cg models are compared by their predictions on them instead: along a
    null direction of the centred design (a constant column, e.g. the norm of rows that
    all have unit norm, or squares of unit rows summing to the constant) the weights are
    free, and conjugate gradients stop anywhere on it without changing a prediction."""
    assert (a.alpha_, a.gamma_, a.solver_) == (b.alpha_, b.gamma_, b.solver_)
    tol = 1e-8 if a.solver_ == "primal" else 1e-3
    if X is not None and a.solver_ == "cg":
        pa, pb = a.predict(X), b.predict(X)
        np.testing.assert_allclose(pb, pa, rtol=0, atol=tol * np.abs(pa).max())
        return
    scale = np.abs(a.coef_).max()
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=tol, atol=tol * scale)
