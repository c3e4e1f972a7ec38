"""Is a gap in test accuracy between two methods larger than the noise of the split?

Usage::

    python asv_benchmarks/paired_difference.py rotten-tomatoes \
        "exact NTK kernel ridge" "fastntk NTKSketch" [--splits 6]

Fits both methods of compare.py on the data set's split (in this process, one after the
other), predicts the test split, and prints each method's accuracy, the difference, the
standard error and 95% interval of the difference from a paired bootstrap of the test
rows (both methods judged on the same resampled rows, so the noise they share cancels),
and how many test rows the two classify differently.  With ``--splits k`` it does so on
``k`` random splits of the same sizes (split seeds ``0..k-1``; seed 0 is compare.py's)
and then prints the mean difference over the splits and its standard error across them,
which also counts the noise of which rows land in the training set: the bootstrap of
one split does not.  Classification sets only.
"""
import argparse

import numpy as np

from compare import SPLITS, _width, load, make_method

N_BOOTSTRAP = 10_000


def paired_bootstrap(correct_a, correct_b, n_resamples=N_BOOTSTRAP, seed=0):
    """Mean difference of two 0/1 vectors over resampled rows: (SE, 2.5%, 97.5%)."""
    rng = np.random.default_rng(seed)
    diff = np.asarray(correct_a, np.float64) - np.asarray(correct_b, np.float64)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean()
                      for _ in range(n_resamples)])
    return means.std(), *np.percentile(means, [2.5, 97.5])


def compare_on_split(dataset, methods, seed):
    """Each method's 0/1 vector of correct test rows on the split drawn by ``seed``."""
    X_train, X_test, y_train, y_test, task = load(dataset, *SPLITS[dataset], seed=seed)
    if task != "classification":
        raise SystemExit(f"{dataset} is a regression set; this compares accuracies")
    correct = []
    for method in methods:
        model = make_method(method, "classification", _width(dataset)).fit(X_train, y_train)
        correct.append(model.predict(X_test) == y_test)
        print(f"split {seed}, {method}: accuracy {correct[-1].mean():.4f}", flush=True)
    return correct


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(SPLITS))
    parser.add_argument("methods", nargs=2)
    parser.add_argument("--splits", type=int, default=1,
                        help="number of random splits (seeds 0..k-1)")
    args = parser.parse_args()
    if args.splits < 1:
        parser.error("--splits must be at least 1")
    differences = []
    for seed in range(args.splits):
        a, b = compare_on_split(args.dataset, args.methods, seed)
        se, low, high = paired_bootstrap(a, b)
        differences.append(a.mean() - b.mean())
        print(f"split {seed}: difference {differences[-1]:+.4f}, paired bootstrap SE "
              f"{se:.4f}, 95% interval [{low:+.4f}, {high:+.4f}]; {int(np.sum(a != b))} of "
              f"{len(a)} test rows differ ({int(np.sum(a & ~b))} right by the first only, "
              f"{int(np.sum(b & ~a))} by the second only)", flush=True)
    if args.splits > 1:
        differences = np.array(differences)
        se = differences.std(ddof=1) / np.sqrt(len(differences))
        print(f"over {args.splits} splits: mean difference {differences.mean():+.4f}, "
              f"standard error across splits {se:.4f} (differences "
              f"{', '.join(f'{d:+.4f}' for d in differences)})")


if __name__ == "__main__":
    main()
