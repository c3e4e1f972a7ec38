"""Exact pairs of words on short texts: fastntk against scikit-learn's RidgeCV, in one run.

Not an asv benchmark (minutes per data set): run it by hand on a quiet machine::

    python asv_benchmarks/text_pairs.py [health-tweets trump-tweets ...] \
        [--solver krylov] [--n-components 4096] [--min-pair-df 2] [--depth 2]

For every data set (the splits of ``compare.py``): the default ``NTKSketch(depth=2)``,
whose ``exact_degrees="auto"`` takes, on these short texts, the NTK's degrees 0, 1 and 2
exactly (the norm, the TF-IDF row
and its pairs of words held by at least ``--min-pair-df`` training rows) and a sketched
tail of ``--n-components`` columns (the degrees >= 3), with
``NTKRidge(Classifier)(solver=...)`` ("krylov": a held-out fold over alpha and the
weights of the pairs and of the tail; "dual": leave-one-out); then
scikit-learn's ``RidgeClassifierCV`` / ``RidgeCV`` on the raw TF-IDF with ``compare.py``'s
17 half decades.  Each fit's CPU and wall seconds in this process, the
CPU ratio, and the test metric (accuracy, or RMSE for Trump tweets); first, how many
pairs of words the training rows hold and how many of them one row only
(``--counts-only``: that alone).
"""
import argparse
import time

import numpy as np
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch, datasets

SETS = {"health-tweets": (datasets.load_health_tweets, (10_000, 5_000), True),
        "trump-tweets": (datasets.load_trump_tweets, (10_000, 5_000), False),
        "rotten-tomatoes": (datasets.load_rotten_tomatoes, (10_000, 2_808), True)}
ALPHAS = 10.0 ** np.arange(-4, 4.5, 0.5)


def _metric(model, X, y, classification):
    pred = model.predict(X)
    return np.mean(pred == y) if classification else np.sqrt(np.mean((pred - y) ** 2))


def _pair_counts(name, X):
    """How many pairs of words the training rows hold, and how many of them one row only."""
    seen, shared = (NTKSketch(n_components=1, exact_degrees=2, min_pair_df=k).fit(X)
                    .exact_.n_components for k in (1, 2))
    return (f"{name}: {seen:,} pairs of words in the training rows, {shared:,} held by two "
            f"rows or more; {1 - shared / seen:.0%} held by one row only")


def _timed_fit(model, X, y):
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(X, y)
    return time.process_time() - cpu, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # checked below: argparse (3.11) checks an empty nargs="*" list against ``choices``
    parser.add_argument("datasets", nargs="*", help=f"any of {', '.join(SETS)} (all)")
    parser.add_argument("--solver", default="krylov", choices=["krylov", "dual", "cg"])
    parser.add_argument("--n-components", type=int, default=4096,
                        help="width of the sketched tail (degrees >= 3)")
    parser.add_argument("--min-pair-df", type=int, default=2,
                        help="training rows that must hold a pair of words")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--counts-only", action="store_true",
                        help="print the pairs of words of the training rows, fit nothing")
    args = parser.parse_args()
    unknown = sorted(set(args.datasets) - set(SETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(SETS)}")
    for name in args.datasets or list(SETS):
        load, (n_train, n_test), classification = SETS[name]
        X, Xt, y, yt = datasets.tfidf_split(*load(), n_train=n_train, n_test=n_test)
        print(_pair_counts(name, X), flush=True)
        if args.counts_only:
            continue
        sketch = NTKSketch(depth=args.depth, n_components=args.n_components,
                           min_pair_df=args.min_pair_df, random_state=0)
        sketch.fit(X[:10]).transform(X[:10])                  # compile before timing
        learner = NTKRidgeClassifier if classification else NTKRidge
        baseline = RidgeClassifierCV if classification else RidgeCV
        ours = learner(sketch, solver=args.solver)
        theirs = baseline(alphas=ALPHAS)
        cpu_ours, wall_ours = _timed_fit(ours, X, y)
        cpu_theirs, wall_theirs = _timed_fit(theirs, X, y)
        what = "accuracy" if classification else "RMSE"
        print(f"{name} ({n_train}/{n_test}): fastntk depth {args.depth}, exact degrees "
              f"{ours.feature_map_.exact_degrees_} (min_pair_df {args.min_pair_df}) + "
              f"{args.n_components} sketched, solver {args.solver}: "
              f"{what} {_metric(ours, Xt, yt, classification):.4f} (alpha "
              f"{ours.alpha_:.3g}, gamma {ours.gamma_:g}, tail {ours.tail_gamma_:g}, "
              f"{ours.feature_map_.n_exact_features_} exact "
              f"columns), fit {cpu_ours:.1f} s CPU / {wall_ours:.1f} s wall; "
              f"{baseline.__name__} {_metric(theirs, Xt, yt, classification):.4f} "
              f"(alpha {float(np.ravel(theirs.alpha_)[0]):.3g}), fit {cpu_theirs:.1f} s CPU "
              f"/ {wall_theirs:.1f} s wall; CPU ratio {cpu_ours / cpu_theirs:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
