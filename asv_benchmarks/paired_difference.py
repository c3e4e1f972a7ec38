"""Is a gap in test accuracy between two methods larger than the test set's noise?

Usage::

    python asv_benchmarks/paired_difference.py rotten-tomatoes \
        "exact NTK kernel ridge" "fastntk NTKSketch"

Fits both methods of compare.py on the data set's split (in this process, one after the
other), predicts the test split, and prints each method's accuracy, the difference, the
standard error and 95% interval of the difference from a paired bootstrap of the test
rows (both methods judged on the same resampled rows, so the noise they share cancels),
and how many test rows the two classify differently.  Classification sets only.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(SPLITS))
    parser.add_argument("methods", nargs=2)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test, task = load(args.dataset, *SPLITS[args.dataset])
    if task != "classification":
        parser.error(f"{args.dataset} is a regression set; this compares accuracies")
    correct = []
    for method in args.methods:
        model = make_method(method, task, _width(args.dataset)).fit(X_train, y_train)
        correct.append(model.predict(X_test) == y_test)
        print(f"{method}: accuracy {correct[-1].mean():.4f}", flush=True)
    a, b = correct
    se, low, high = paired_bootstrap(a, b)
    print(f"difference {a.mean() - b.mean():+.4f}, paired bootstrap SE {se:.4f}, "
          f"95% interval [{low:+.4f}, {high:+.4f}]; {int(np.sum(a != b))} of {len(a)} test "
          f"rows differ ({int(np.sum(a & ~b))} right by the first only, "
          f"{int(np.sum(b & ~a))} by the second only)")


if __name__ == "__main__":
    main()
