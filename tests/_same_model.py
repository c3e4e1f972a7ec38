"""The equality of two ridge models fitted on the same rows in different ways (in memory,
from chunks, on a Dask cluster), shared by the out-of-core and Dask tests."""
import numpy as np


def assert_same_model(a, b):
    """Same choices, same weights: to rounding for the primal solver's eigensolve; for cg,
    to what single-precision cross statistics summed in another order allow (a relative
    1e-7 per entry, which the conjugate gradients amplify in ill-conditioned directions)."""
    assert (a.alpha_, a.gamma_, a.solver_) == (b.alpha_, b.gamma_, b.solver_)
    tol = 1e-8 if a.solver_ == "primal" else 1e-3
    scale = np.abs(a.coef_).max()
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=tol, atol=tol * scale)
