"""Is a gap in test metric between two methods larger than the noise of the split?

Usage::

    python asv_benchmarks/paired_difference.py rotten-tomatoes \
        "exact NTK kernel ridge" "fastntk NTKSketch" [--splits 6]

Fits both methods of compare.py on the data set's split (in this process, one after the
other), predicts the test split, and prints each method's test metric (accuracy, or RMSE
on a regression set), the difference, the standard error and 95% interval of the
difference from a paired bootstrap of the test rows (both methods judged on the same
resampled rows, so the noise they share cancels), and, on a classification set, how many
test rows the two classify differently.  With ``--splits k`` it does so on
``k`` random splits of the same sizes (split seeds ``0..k-1``; seed 0 is compare.py's)
and then prints the mean difference over the splits and its standard error across them,
which also counts the noise of which rows land in the training set: the bootstrap of
one split does not.
"""
import argparse

import numpy as np

from compare import SPLITS, _width, load, make_method

N_BOOTSTRAP = 10_000


def metric(task, losses):
    """The test metric from per-row losses (0/1 correct, or squared errors), along the
    last axis: accuracy, or RMSE."""
    return losses.mean(axis=-1) if task == "classification" else np.sqrt(losses.mean(axis=-1))


def paired_bootstrap(task, losses_a, losses_b, n_resamples=N_BOOTSTRAP, seed=0):
    """The metric's difference over resampled test rows: (SE, 2.5%, 97.5%)."""
    rng = np.random.default_rng(seed)
    losses_a, losses_b = (np.asarray(v, np.float64) for v in (losses_a, losses_b))
    diffs = []
    for start in range(0, n_resamples, 500):   # 500 resamples at a time: bounded memory
        rows = rng.integers(0, len(losses_a), (min(500, n_resamples - start), len(losses_a)))
        diffs.append(metric(task, losses_a[rows]) - metric(task, losses_b[rows]))
    diffs = np.concatenate(diffs)
    return diffs.std(), *np.percentile(diffs, [2.5, 97.5])


def compare_on_split(dataset, methods, seed):
    """The task and each method's per-row test losses (0/1 correct on a classification
    set, squared errors on a regression set) on the split drawn by ``seed``."""
    X_train, X_test, y_train, y_test, task = load(dataset, *SPLITS[dataset], seed=seed)
    losses = []
    for method in methods:
        model = make_method(method, task, _width(dataset)).fit(X_train, y_train)
        predicted = model.predict(X_test)
        losses.append(predicted == y_test if task == "classification"
                      else (predicted - y_test) ** 2)
        name = "accuracy" if task == "classification" else "RMSE"
        print(f"split {seed}, {method}: {name} {metric(task, losses[-1]):.4f}", flush=True)
    return task, losses


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
        task, (a, b) = compare_on_split(args.dataset, args.methods, seed)
        se, low, high = paired_bootstrap(task, a, b)
        differences.append(metric(task, a) - metric(task, b))
        line = (f"split {seed}: difference {differences[-1]:+.4f}, paired bootstrap SE "
                f"{se:.4f}, 95% interval [{low:+.4f}, {high:+.4f}]")
        if task == "classification":
            line += (f"; {int(np.sum(a != b))} of {len(a)} test rows differ "
                     f"({int(np.sum(a & ~b))} right by the first only, "
                     f"{int(np.sum(b & ~a))} by the second only)")
        print(line, flush=True)
    if args.splits > 1:
        differences = np.array(differences)
        se = differences.std(ddof=1) / np.sqrt(len(differences))
        print(f"over {args.splits} splits: mean difference {differences.mean():+.4f}, "
              f"standard error across splits {se:.4f} (differences "
              f"{', '.join(f'{d:+.4f}' for d in differences)})")


if __name__ == "__main__":
    main()
