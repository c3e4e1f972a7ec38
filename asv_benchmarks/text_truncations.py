"""Which degrees of the NTK make exact kernel ridge differ from a linear ridge on text?

Usage::

    python asv_benchmarks/text_truncations.py rotten-tomatoes [--degrees 1 2 3]

On compare.py's split of a text classification set (TF-IDF rows, unit norm, so the depth-2
NTK is a power series in the cosine ``K = X X^T``), it prints the test accuracy of
kernel ridge (one-vs-rest targets of -1/+1, alpha by exact leave-one-out on compare.py's
grid) with the exact NTK and with its power series (NTKSketch's ``polyfit`` coefficients)
cut at each degree, alone and with the dropped degrees' mass on the diagonal (their
value at cosine 1, where each row meets itself; elsewhere the cosines of documents are
small).  The diagonal acts as an extra ridge: models that differ only there differ only
in where alpha lands.  Each kernel costs one ``n x n`` eigendecomposition.
"""
import argparse

import numpy as np
import scipy.linalg

from compare import ALPHAS, SPLITS, load


def kernel_ridge_accuracy(K_train, K_test, y_train, y_test):
    """Test accuracy at the alpha of smallest leave-one-out squared error, and that alpha."""
    classes = np.unique(y_train)
    Y = np.where(y_train[:, None] == classes, 1.0, -1.0)
    lam, V = scipy.linalg.eigh(K_train, driver="evd")
    mean = Y.mean(axis=0)
    proj = V.T @ (Y - mean)
    best = None
    for alpha in ALPHAS:
        shrink = 1.0 / (lam + alpha)
        coef = V @ (proj * shrink[:, None])
        hat = np.einsum("ij,j,ij->i", V, lam * shrink, V)
        loo = np.mean(((Y - mean - K_train @ coef) / (1.0 - hat)[:, None]) ** 2)
        if best is None or loo < best[0]:
            predicted = classes[np.argmax(K_test @ coef + mean, axis=1)]
            best = (loo, np.mean(predicted == y_test), alpha)
    return best[1], best[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["health-tweets", "rotten-tomatoes"])
    parser.add_argument("--degrees", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()

    from fastntk import NTKSketch, ntk_kernel

    X, Xt, y, yt, _ = load(args.dataset, *SPLITS[args.dataset])
    coef = NTKSketch(depth=2, degree=8, n_components=64).fit(X).coef_["ntk"]
    cos, cos_test = (X @ X.T).toarray(), (Xt @ X.T).toarray()

    def show(label, K, K_test):
        accuracy, alpha = kernel_ridge_accuracy(K, K_test, y, yt)
        print(f"{args.dataset} {label:40s} accuracy {accuracy:.4f}  alpha {alpha:.3g}",
              flush=True)

    show("exact NTK", ntk_kernel(X, depth=2), ntk_kernel(Xt, X, depth=2))
    for degree in args.degrees:
        kept = coef[:degree + 1]
        K = np.polynomial.polynomial.polyval(cos, kept)
        K_test = np.polynomial.polynomial.polyval(cos_test, kept)
        show(f"degrees <= {degree}", K, K_test)
        K[np.diag_indices_from(K)] += coef[degree + 1:].sum()
        show(f"degrees <= {degree}, the rest on the diagonal", K, K_test)


if __name__ == "__main__":
    main()
