"""Which degrees of the NTK's polynomial carry the accuracy: exact kernel ridge on MNIST.

Not an asv benchmark (a few minutes of dense linear algebra): run it by hand::

    python asv_benchmarks/polynomial_degrees.py

On compare.py's MNIST split (4,000 / 1,000 shuffled digits), kernel ridge classification
(one-hot targets in {-1, 1}, an intercept by centring the kernel, alpha by leave-one-out
from fastntk's default grid, from one eigendecomposition per kernel) with, at depth 2:
the exact NTK, ``||x|| ||y|| P(t)`` for NTKSketch's non-negative polynomial fit ``P`` of
degree 8, and ``P`` truncated to its degrees ``<= k``.  No sketch: the differences are
those of the kernels themselves, which is what ``NTKSketch(sketch_degrees="auto")``
relies on when it leaves the high degrees out of its sketch.  It also prints the
quantiles of the training rows' cosines.
"""
import numpy as np

from compare import load
from fastntk.kernels import ntk_dot_product
from fastntk.polyfit import kernel_polynomial
from fastntk.ridge import DEFAULT_ALPHAS

DEPTH = 2
DEGREE = 8


def _cosines(A, B):
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    return np.clip((A @ B.T) / np.outer(na, nb), -1.0, 1.0), na, nb


def kernel_ridge_accuracy(K, K_test, y, y_test):
    """Test accuracy and alpha of leave-one-out kernel ridge with an intercept."""
    classes = np.unique(y)
    Y = np.where(y[:, None] == classes[None], 1.0, -1.0)
    n = K.shape[0]
    col_mean, total_mean = K.mean(axis=0), K.mean()
    Kc = K - col_mean[None] - col_mean[:, None] + total_mean
    Kt = K_test - col_mean[None] - K_test.mean(axis=1)[:, None] + total_mean
    lam, V = np.linalg.eigh(Kc)
    lam = np.maximum(lam, 0.0)
    Yc = Y - Y.mean(axis=0)
    VtY = V.T @ Yc
    best = None
    for alpha in DEFAULT_ALPHAS:
        shrink = 1.0 / (lam + alpha)
        dual = V @ (VtY * shrink[:, None])
        hat = np.einsum("ij,j,ij->i", V, lam * shrink, V) + 1.0 / n
        loo = np.mean(((Yc - Kc @ dual) / (1.0 - hat)[:, None]) ** 2)
        if best is None or loo < best[0]:
            best = (loo, alpha, dual)
    _, alpha, dual = best
    predicted = classes[(Kt @ dual).argmax(axis=1)]
    return float(np.mean(predicted == y_test)), float(alpha)


def main():
    X, X_test, y, y_test, _ = load("mnist", 4000, 1000)
    X, X_test = X.reshape(len(X), -1).astype(float), X_test.reshape(len(X_test), -1).astype(float)
    T, n, _ = _cosines(X, X)
    T_test, n_test, _ = _cosines(X_test, X)
    off = T[np.triu_indices(len(T), 1)]
    print("training cosines, quantiles 1/10/50/90/99%:",
          np.round(np.quantile(off, [0.01, 0.1, 0.5, 0.9, 0.99]), 3))
    coef, _ = kernel_polynomial("ntk", DEGREE, depth=DEPTH)
    print(f"degree-{DEGREE} fit, depth {DEPTH}: coefficients {np.round(coef, 3)}\n")
    kernels = {"exact NTK": lambda t: ntk_dot_product(t, depth=DEPTH),
               f"polynomial fit (degree {DEGREE})":
                   lambda t: np.polynomial.polynomial.polyval(t, coef)}
    for top in (2, 3, 4):
        kernels[f"its degrees <= {top}"] = (
            lambda t, c=coef[:top + 1]: np.polynomial.polynomial.polyval(t, c))
    print("| kernel (depth 2) | test accuracy | alpha (leave-one-out) |\n|---|---|---|")
    for name, func in kernels.items():
        accuracy, alpha = kernel_ridge_accuracy(np.outer(n, n) * func(T),
                                                np.outer(n_test, n) * func(T_test),
                                                y, y_test)
        print(f"| {name} | {accuracy:.4f} | {alpha:.3g} |", flush=True)


if __name__ == "__main__":
    main()
