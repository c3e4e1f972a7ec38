"""Check that NTKRidge survives the sizes where OpenBLAS's Cholesky crashes.

With the AVX-512 ("SkylakeX") kernels of the OpenBLAS in NumPy/SciPy wheels,
``cho_factor`` / ``solve(assume_a="pos")`` on a 16,000 x 16,000 SPD matrix die with a
segmentation fault.  NTKRidge uses the symmetric eigensolver instead; this script runs

* the primal path at ``n_components=16384`` (a 16384 x 16384 Gram matrix), and
* exact NTK kernel ridge on 16,000 rows (a 16,000 x 16,000 kernel matrix),

and prints the wall-clock time of each phase and the peak memory.  It takes minutes (most of
it in the eigendecomposition).  Run it both ways to see the hazard avoided::

    python asv_benchmarks/ridge_large.py
    env -u OPENBLAS_CORETYPE python asv_benchmarks/ridge_large.py

The features are sklearn's RBFSampler on synthetic Gaussian data, chosen because they are
cheap: what is being checked is the linear algebra, not the feature map.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
from sklearn.kernel_approximation import RBFSampler

from fastntk import NTKRidge


def _peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y


def primal(n_components, n_samples):
    X, y = _data(n_samples + 1000, 20)
    model = NTKRidge(RBFSampler(n_components=n_components, gamma=1.0, random_state=0),
                     solver="primal", batch_size=2048)
    start = time.perf_counter()
    model.fit(X[:n_samples], y[:n_samples])
    elapsed = time.perf_counter() - start
    r2 = model.score(X[n_samples:], y[n_samples:])
    print(f"primal  n_components={n_components} n_samples={n_samples}: fit {elapsed:.1f} s, "
          f"alpha={model.alpha_:.3g}, test R2={r2:.4f}, peak RSS {_peak_gb():.1f} GB", flush=True)


def exact(n_samples):
    X, y = _data(n_samples + 1000, 20)
    model = NTKRidge("exact", kernel_params={"depth": 1})
    start = time.perf_counter()
    model.fit(X[:n_samples], y[:n_samples])
    elapsed = time.perf_counter() - start
    r2 = model.score(X[n_samples:], y[n_samples:])
    print(f"exact   n_samples={n_samples}: fit {elapsed:.1f} s, alpha={model.alpha_:.3g}, "
          f"test R2={r2:.4f}, peak RSS {_peak_gb():.1f} GB", flush=True)


_CHOLESKY = """
import numpy as np, scipy.linalg
n = {n}
A = np.random.default_rng(0).random((n, n))
A += A.T
A[np.diag_indices(n)] += n          # diagonally dominant, hence SPD
scipy.linalg.cho_factor(A, overwrite_a=True, check_finite=False)
print("cho_factor completed")
"""


def cholesky_control(n):
    """What NTKRidge avoids: scipy's Cholesky at the same size, in a child process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHOLESKY.format(n=n)], capture_output=True,
                          text=True)
    status = ("completed" if done.returncode == 0
              else f"died with return code {done.returncode}"
                   + (" (segmentation fault)" if done.returncode == -11 else ""))
    print(f"control: scipy.linalg.cho_factor at {n} x {n} {status} "
          f"after {time.perf_counter() - start:.1f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["primal", "exact", "both"], default="both")
    parser.add_argument("--n-components", type=int, default=16384)
    parser.add_argument("--primal-rows", type=int, default=20000)
    parser.add_argument("--exact-rows", type=int, default=16000)
    parser.add_argument("--cholesky-control", type=int, default=0, metavar="N",
                        help="also run scipy's cho_factor on an N x N SPD matrix in a child "
                             "process, to show the crash NTKRidge avoids")
    args = parser.parse_args()
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"{os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}", flush=True)
    if args.cholesky_control:
        cholesky_control(args.cholesky_control)
    if args.part in ("primal", "both"):
        primal(args.n_components, args.primal_rows)
    if args.part in ("exact", "both"):
        exact(args.exact_rows)


if __name__ == "__main__":
    main()
