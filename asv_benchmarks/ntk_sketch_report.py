"""NTKSketch measurements in one run: input-sparsity scaling, accuracy, throughput, ridge.

Usage::

    python asv_benchmarks/ntk_sketch_report.py [--quick] [--sections scaling,error,...]

Sections (all by default):

- ``scaling``: transform time against n_features (2^10 .. 2^22) at 100 non-zeros a row,
  and against non-zeros a row (25 .. 400) at n_features = 100,000, on *synthetic* CSR
  rows whose columns follow a Zipf-like law (p(j) ~ 1/(j+1)), one thread;
- ``error``: relative Frobenius error ||FF^T - K||_F / ||K||_F against the exact NTK on
  1,000 rows of the health tweets (TF-IDF) and of MNIST (rows flattened, unit norm),
  depth 1..3 (``--depths``), the default map and its variants, n_components 1024 / 4096
  / 16384 (``--error-widths``), with transform times; ``--seeds S`` gives the mean and
  standard error over the seeds 0..S-1 instead, ``--data`` one of the data sets;
- ``throughput``: rows/s on one thread and peak memory (RSS growth, in a fresh
  subprocess) on synthetic Zipf CSR, n_features = 100,000, 100 non-zeros a row,
  n_components = 4096, depth 2;
- ``ridge``: health tweets (16 classes), test accuracy of a ridge classifier on the raw
  TF-IDF matrix, on its CountSketch (the same model, hashed) and on NTKSketch features,
  n_components ``--widths`` (alpha by scikit-learn's RidgeClassifierCV and by fastntk's
  NTKRidgeClassifier: leave-one-out where n_samples <= width, GCV above).

Timings are medians of repeats (the machine may be shared); ratios come from one run.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

from fastntk import NTKRidgeClassifier, NTKSketch
from fastntk.kernels import ntk_kernel

METHODS = ("polyfit", "layerwise")


def zipf_csr(n_rows, n_features, nnz, seed=0):
    """Synthetic CSR: ``nnz`` distinct columns a row drawn with p(j) ~ 1/(j+1).

    Columns are drawn by inverse-CDF sampling of the harmonic law (never O(n_features)
    memory per row), oversampled and de-duplicated per row; values uniform in [0.1, 1.1).
    """
    rng = np.random.default_rng(seed)
    log_d = np.log(n_features + 1.0)
    indices = np.empty((n_rows, nnz), dtype=np.int64)
    for i in range(n_rows):
        cols = np.unique(np.minimum(np.exp(rng.random(8 * nnz) * log_d).astype(np.int64) - 1,
                                    n_features - 1))
        while cols.size < nnz:  # tiny n_features: fall back to uniform extra columns
            cols = np.unique(np.append(cols, rng.integers(0, n_features, nnz)))
        indices[i] = np.sort(rng.choice(cols, nnz, replace=False))
    data = rng.random(n_rows * nnz) + 0.1
    indptr = np.arange(0, n_rows * nnz + 1, nnz)
    return sp.csr_matrix((data, indices.ravel(), indptr), shape=(n_rows, n_features))


def median_time(func, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        func()
        times.append(clock() - start)
    return float(np.median(times))


def interleaved_cpu_times(jobs, repeats):
    """Median process CPU time of every job, the jobs run round-robin ``repeats`` times.

    CPU time and interleaving keep other processes on a shared machine from biasing one
    setting more than another.
    """
    times = [[] for _ in jobs]
    for _ in range(repeats):
        for k, job in enumerate(jobs):
            start = time.process_time()
            job()
            times[k].append(time.process_time() - start)
    return [float(np.median(t)) for t in times]


def _fitted(X, random_state=0, **params):
    est = NTKSketch(random_state=random_state, n_jobs=1, **params).fit(X)
    est.transform(X[:4])  # JIT warm-up outside the timing
    return est


def _scaling_table(title, label, settings, make_X, n_rows, repeats):
    print(title + "\n")
    print(f"| {label} | " + " | ".join(f"{m} ms per 1k rows" for m in METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    inputs = [make_X(v) for v in settings]
    results = {}
    for method in METHODS:
        ests = [_fitted(X, method=method, depth=2, n_components=4096) for X in inputs]
        jobs = [lambda e=e, X=X: e.transform(X) for e, X in zip(ests, inputs)]
        results[method] = np.array(interleaved_cpu_times(jobs, repeats)) / n_rows * 1e6
    for k, v in enumerate(settings):
        print(f"| {v} | " + " | ".join(f"{results[m][k]:.0f}" for m in METHODS) + " |")
    return results


def section_scaling(args):
    quick = args.quick
    n_rows = 300 if quick else 1000
    repeats = 3 if quick else 7
    common = (f"synthetic Zipf CSR, {n_rows} rows, n_components=4096, depth=2, 1 thread, "
              f"median CPU time of {repeats} interleaved runs")
    results = _scaling_table(
        f"\n## Time against n_features (100 nnz/row, {common})", "n_features",
        [2**10, 2**14, 2**18, 2**22], lambda d: zipf_csr(n_rows, d, 100, seed=1), n_rows,
        repeats)
    for method in METHODS:
        t = results[method]
        print(f"\n{method}: largest / smallest time = {t.max() / t.min():.2f}")
    nnzs = [25, 50, 100, 200, 400]
    results = _scaling_table(
        f"\n## Time against nnz per row (n_features=100,000, {common})", "nnz/row", nnzs,
        lambda nnz: zipf_csr(n_rows, 100_000, nnz, seed=2), n_rows, repeats)
    for method in METHODS:
        t = results[method]
        slope, intercept = np.polyfit(nnzs, t, 1)
        print(f"\n{method}: time ~ {intercept:.0f} + {slope:.2f} * nnz  (ms per 1k rows); "
              f"the nnz part is {slope * 100 / (intercept + slope * 100):.0%} at 100 nnz, "
              f"{slope * 400 / (intercept + slope * 400):.0%} at 400")


def _datasets(n_rows):
    from fastntk.datasets import load_health_tweets, load_mnist_5k, tfidf_split

    texts, labels = load_health_tweets()
    X_text, _, _, _ = tfidf_split(texts, labels, n_train=n_rows, n_test=1)
    images, _ = load_mnist_5k()
    X_mnist = images[:n_rows].reshape(n_rows, -1)
    X_mnist = X_mnist / np.linalg.norm(X_mnist, axis=1, keepdims=True)
    return {"health tweets TF-IDF": X_text, "MNIST": X_mnist}


#: Maps of the error table: the default polyfit map (which leaves out of the sketch the
#: degrees the data's cosines do not carry, and on short texts takes the pairs of words
#: held by two rows exactly), the same sketching every degree (the unbiased estimate of
#: the NTK's polynomial), and the layerwise recursion; on text also the default without
#: the pairs (degrees 0-1 exact) and with every pair seen (degree 2 exact).
ERROR_VARIANTS = [("polyfit", {"method": "polyfit"}),
                  ("polyfit, every degree", {"method": "polyfit", "sketch_degrees": "all"}),
                  ("layerwise", {"method": "layerwise"})]
TEXT_VARIANTS = [("polyfit, exact_degrees=1", {"method": "polyfit", "exact_degrees": 1}),
                 ("polyfit, every pair (min_pair_df=1)", {"method": "polyfit",
                                                          "min_pair_df": 1})]


def _relative_errors(est, X, kernel, off):
    """Whole and off-diagonal relative Frobenius error of ``est``'s features, and the
    transform time."""
    start = time.perf_counter()
    F = est.transform(X)
    elapsed = time.perf_counter() - start
    gram = F @ F.T
    diff = (gram.toarray() if sp.issparse(gram) else gram) - kernel
    return (np.linalg.norm(diff) / np.linalg.norm(kernel),
            np.linalg.norm(diff[off]) / np.linalg.norm(kernel[off]), elapsed)


def _error_cell(X, kernel, off, seeds, **params):
    """One seed: "error (off-diagonal, time)"; several: the mean and its standard error
    of both errors over the seeds 0..seeds-1."""
    runs = np.array([_relative_errors(_fitted(X, random_state=seed, **params), X, kernel,
                                      off) for seed in range(seeds)])
    if seeds == 1:
        error, error_off, elapsed = runs[0]
        return f"{error:.4f} ({error_off:.4f}, {elapsed:.2f} s)"
    mean = runs[:, :2].mean(axis=0)
    se = runs[:, :2].std(axis=0, ddof=1) / np.sqrt(seeds)
    return f"{mean[0]:.4f} ± {se[0]:.4f} ({mean[1]:.4f} ± {se[1]:.4f})"


def section_error(args):
    quick = args.quick
    n_rows = 300 if quick else 1000
    widths = args.error_widths or ([1024, 4096] if quick else [1024, 4096, 16384])
    seeds = args.seeds
    what = ("seed 0; in brackets: off the diagonal, and the transform time of all rows on "
            "1 thread" if seeds == 1 else
            f"mean ± standard error over the seeds 0..{seeds - 1}; in brackets: off the "
            "diagonal")
    print(f"\n## Relative Frobenius error against the exact NTK ({n_rows} rows, degree 8, "
          f"poly='fit', {what})\n")
    print("| data | depth | method | " + " | ".join(f"m={m}" for m in widths) + " |")
    print("|---|---|---|" + "---|" * len(widths))
    for name, X in _datasets(n_rows).items():
        if args.data and name not in args.data:
            continue
        for depth in args.depths:
            kernel = ntk_kernel(X, depth=depth)
            off = ~np.eye(n_rows, dtype=bool)
            variants = ERROR_VARIANTS + (TEXT_VARIANTS if sp.issparse(X) else [])
            for label, params in variants:
                cells = [_error_cell(X, kernel, off, seeds, depth=depth, n_components=m,
                                     **params) for m in widths]
                print(f"| {name} | {depth} | {label} | " + " | ".join(cells) + " |")


def _throughput_child(method, n_rows):
    """Run in a fresh interpreter: rows/s and RSS growth of one transform."""
    import resource

    X = zipf_csr(n_rows, 100_000, 100, seed=3)
    est = _fitted(X, method=method, depth=2, n_components=4096)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall = median_time(lambda: est.transform(X), 3)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = median_time(lambda: est.transform(X), 3, clock=time.process_time)
    output_mb = n_rows * 4096 * 8 / 2**20
    print(json.dumps({"rows_per_cpu_s": n_rows / cpu, "rows_per_s": n_rows / wall,
                      "peak_growth_mb": (after - before) / 1024, "output_mb": output_mb}))


def section_throughput(args):
    quick = args.quick
    n_rows = 1000 if quick else 5000
    print(f"\n## Throughput (synthetic Zipf CSR, n_features=100,000, 100 nnz/row, {n_rows} rows, "
          "n_components=4096, depth=2, 1 thread, float64)\n")
    print("| method | rows per CPU-second | rows/s wall clock | peak RSS growth during "
          "transform (MB) | of which output (MB) |")
    print("|---|---|---|---|---|")
    for method in METHODS:
        result = subprocess.run(
            [sys.executable, __file__, "--child", method, str(n_rows)],
            capture_output=True, text=True, check=True)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {method} | {r['rows_per_cpu_s']:.0f} | {r['rows_per_s']:.0f} | "
              f"{r['peak_growth_mb']:.0f} | {r['output_mb']:.0f} |")


def _linear_accuracy(X_train, y_train, X_test, y_test, alphas):
    """scikit-learn's RidgeClassifierCV on the raw sparse TF-IDF (alpha by leave-one-out)."""
    from sklearn.linear_model import RidgeClassifierCV

    clf = RidgeClassifierCV(alphas=alphas).fit(X_train, y_train)
    return float(clf.score(X_test, y_test)), float(clf.alpha_)


def _ntk_ridge_accuracy(feature_map, X_train, y_train, X_test, y_test, alphas):
    """fastntk's NTKRidgeClassifier on ``feature_map`` and its fit time (wall clock)."""
    t0 = time.perf_counter()
    clf = NTKRidgeClassifier(feature_map, alphas=alphas).fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    return float(clf.score(X_test, y_test)), clf.alpha_, seconds


def _mean_cosine(X):
    """Mean cosine over pairs of distinct rows, in O(nnz): (||sum u_i||^2 - n) / (n (n-1))."""
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    keep = norms > 0
    unit = sp.diags(1.0 / norms[keep]) @ X[keep]
    total = np.asarray(unit.sum(axis=0)).ravel()
    n = unit.shape[0]
    return (total @ total - n) / (n * (n - 1))


def section_ridge(args):
    from fastntk.datasets import load_health_tweets, tfidf_split
    from fastntk.sketches import CountSketch

    quick, widths = args.quick, args.widths
    n_train, n_test = (4000, 2000) if quick else (10000, 5000)
    texts, labels = load_health_tweets()
    X_train, X_test, y_train, y_test = tfidf_split(texts, labels, n_train=n_train,
                                                   n_test=n_test)
    alphas = np.logspace(-4, 4, 17)
    print(f"\n## Health tweets, ridge classification ({n_train} train / {n_test} test, "
          f"{X_train.shape[1]} TF-IDF columns, {X_train.nnz / n_train:.1f} nnz/row, mean "
          f"cosine of two documents {_mean_cosine(X_train):.3f}; alpha by leave-one-out or "
          "GCV)\n")
    print("| features | width | test accuracy | alpha | fit (s) |")
    print("|---|---|---|---|---|", flush=True)
    acc, alpha = _linear_accuracy(X_train, y_train, X_test, y_test, alphas)
    print(f"| raw TF-IDF (linear ridge) | {X_train.shape[1]} | {acc:.4f} | {alpha:.3g} | |")
    for m in widths[:1] if quick else widths:
        # the hashed linear model isolates what squeezing the columns into m costs
        maps = {"CountSketch of TF-IDF (linear, hashed)": CountSketch(m, random_state=0)}
        # degree 2 keeps the constant, linear and quadratic terms: most of the NTK at
        # the small cosines of documents, and most of the width for the linear block
        for method, depth, degree in [("polyfit", 1, 8), ("polyfit", 2, 8), ("polyfit", 1, 2),
                                      ("layerwise", 1, 8)]:
            maps[f"NTKSketch {method} depth {depth} degree {degree}"] = NTKSketch(
                n_components=m, depth=depth, method=method, degree=degree, random_state=0)
        for name, feature_map in maps.items():
            acc, alpha, seconds = _ntk_ridge_accuracy(feature_map, X_train, y_train,
                                                      X_test, y_test, alphas)
            print(f"| {name} | {m} | {acc:.4f} | {alpha:.3g} | {seconds:.1f} |", flush=True)


SECTIONS = {"scaling": section_scaling, "error": section_error,
            "throughput": section_throughput, "ridge": section_ridge}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _throughput_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--widths", type=int, nargs="+", default=[4096, 8192, 16384],
                        help="n_components of the ridge section")
    parser.add_argument("--error-widths", type=int, nargs="+",
                        help="n_components of the error section (default 1024 4096 16384)")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3],
                        help="depths of the error section")
    parser.add_argument("--data", nargs="+", choices=["health tweets TF-IDF", "MNIST"],
                        help="data sets of the error section (default both)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="error section: seeds 0..SEEDS-1, mean and standard error")
    args = parser.parse_args()
    for name in args.sections.split(","):
        SECTIONS[name](args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
