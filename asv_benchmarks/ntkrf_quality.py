"""Kernel-approximation quality of NTKRandomFeatures against the exact NTK.

On 1,000 rows of MNIST (unit-normalised pixels, as in the authors' experiment) and of a
TF-IDF text set (health tweets, vocabulary of 20,000 documents, unit-norm rows), for
every depth, width and leverage setting asked for, prints the median over seeds of

* the relative Frobenius error ``||K~ - K||_F / ||K||_F``;
* the spectral error ``eps``: the smallest eps with
  ``(1-eps)(K + lam I) <= K~ + lam I <= (1+eps)(K + lam I)``, from the extreme
  eigenvalues of ``(K + lam I)^(-1/2) (K~ + lam I) (K + lam I)^(-1/2)``, for
  ``lam = c tr(K)/n`` with ``c`` = 1e-3, 1e-2 and 1e-1 (``tr(K)/n`` is ``depth + 1`` on
  unit-norm rows);
* the seconds of ``fit_transform`` on the 1,000 rows.

Usage (defaults reproduce the table of the closing report)::

    python asv_benchmarks/ntkrf_quality.py
    python asv_benchmarks/ntkrf_quality.py --datasets mnist --depths 2 --sizes 4096 \\
        --fractions 0.25 0.375 0.5 0.625 --seeds 5        # tune n_arccos / n_components
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp

from fastntk import NTKRandomFeatures
from fastntk.datasets import load_health_tweets, load_mnist_5k, tfidf_split
from fastntk.kernels import ntk_kernel

LAMBDA_FACTORS = (1e-3, 1e-2, 1e-1)


def mnist_rows(n_rows):
    images, _ = load_mnist_5k()
    X = images.reshape(len(images), -1)[:n_rows]
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def tfidf_rows(n_rows):
    texts, labels = load_health_tweets()
    X, _, _, _ = tfidf_split(texts, labels, n_train=20000, n_test=1, random_state=0)
    X = X[np.flatnonzero(X.getnnz(axis=1))[:n_rows]]  # drop empty documents
    return sp.csr_matrix(X)


def relative_frobenius(K_approx, K):
    return np.linalg.norm(K_approx - K) / np.linalg.norm(K)


def spectral_error(K_approx, K, lam):
    """eps of (1-eps)(K+lam I) <= K~+lam I <= (1+eps)(K+lam I)."""
    values, vectors = np.linalg.eigh(K)
    inv_sqrt = vectors / np.sqrt(np.maximum(values, 0.0) + lam)
    ratio = np.linalg.eigvalsh(inv_sqrt.T @ (K_approx + lam * np.eye(len(K))) @ inv_sqrt)
    return max(ratio[-1] - 1.0, 1.0 - ratio[0])


def measure(X, K, *, depth, n_components, n_arccos, leverage, input_sketch, seeds):
    """Median over seeds of [relF, eps for each lam, seconds], and the relF per seed.

    ``leverage`` is "no", or the sampler ("gibbs" or "exact") of leverage-score weights.
    """
    lams = [f * np.trace(K) / len(K) for f in LAMBDA_FACTORS]
    rows = []
    for seed in range(seeds):
        rf = NTKRandomFeatures(depth=depth, n_components=n_components, n_arccos=n_arccos,
                               leverage=leverage != "no",
                               sampler="exact" if leverage == "exact" else "gibbs",
                               input_sketch=input_sketch, random_state=seed)
        start = time.perf_counter()
        F = rf.fit_transform(X)
        seconds = time.perf_counter() - start
        K_approx = F @ F.T
        rows.append([relative_frobenius(K_approx, K),
                     *(spectral_error(K_approx, K, lam) for lam in lams), seconds])
    return np.median(np.array(rows), axis=0), np.array(rows)[:, 0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "tfidf"])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096, 16384])
    parser.add_argument("--fractions", nargs="+", type=float, default=[None],
                        help="n_arccos as a fraction of n_components (default: the default)")
    parser.add_argument("--leverage", nargs="+", choices=["no", "gibbs", "exact"],
                        default=["no", "gibbs"])
    parser.add_argument("--input-sketch", nargs="+", default=["auto"],
                        help="'auto', 'none' or an integer width (TF-IDF only)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    loaders = {"mnist": mnist_rows, "tfidf": tfidf_rows}
    print(f"{'data':6} {'L':>2} {'m':>6} {'n_arccos':>8} {'leverage':>8} {'in_sketch':>9} "
          f"{'relF':>7} {'relF_sd':>7} {'eps1e-3':>8} {'eps1e-2':>8} {'eps1e-1':>8} "
          f"{'seconds':>8}")
    for name in args.datasets:
        X = loaders[name](args.rows)
        sketches = args.input_sketch if name == "tfidf" else ["auto"]
        for depth in args.depths:
            K = ntk_kernel(X, depth=depth)
            for m in args.sizes:
                for fraction in args.fractions:
                    n_arccos = None if fraction is None else int(round(fraction * m))
                    for leverage in args.leverage:
                        for sketch in sketches:
                            input_sketch = (None if sketch == "none" else
                                            sketch if sketch == "auto" else int(sketch))
                            med, frob = measure(
                                X, K, depth=depth, n_components=m, n_arccos=n_arccos,
                                leverage=leverage, input_sketch=input_sketch,
                                seeds=args.seeds,
                            )
                            print(f"{name:6} {depth:2d} {m:6d} {str(n_arccos):>8} "
                                  f"{leverage:>8} {sketch:>9} {med[0]:7.4f} "
                                  f"{frob.std():7.4f} {med[1]:8.4f} {med[2]:8.4f} "
                                  f"{med[3]:8.4f} {med[4]:8.2f}", flush=True)


if __name__ == "__main__":
    main()
