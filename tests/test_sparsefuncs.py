"""The compiled CSR row helpers agree with scipy on every dtype and index width."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastntk._sparsefuncs import csr_row_norms_sq, csr_scale_rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_row_norms_and_scaling(dtype, index_dtype, n_threads):
    X = sp.random(50, 30, density=0.2, format="csr", random_state=0, dtype=dtype)
    X.data[X.indptr[3]:X.indptr[4]] = 0  # an empty row
    X.eliminate_zeros()
    X.indptr = X.indptr.astype(index_dtype)
    X.indices = X.indices.astype(index_dtype)
    expected = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    norms = csr_row_norms_sq(X.data, X.indptr, n_threads)
    assert norms.dtype == np.float64
    np.testing.assert_allclose(norms, expected, rtol=1e-6 if dtype == np.float32 else 1e-13)
    assert norms[3] == 0

    scale = np.linspace(0.5, 2.0, 50)
    expected_scaled = sp.diags(scale) @ X
    csr_scale_rows(X.data, X.indptr, scale, n_threads)
    assert X.dtype == dtype
    np.testing.assert_allclose(X.toarray(), expected_scaled.toarray(), rtol=1e-6)


def test_scale_rows_checks_length():
    X = sp.random(4, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match="4 rows"):
        csr_scale_rows(X.data, X.indptr, np.ones(3))
