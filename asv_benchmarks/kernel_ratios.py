"""Time of ntk_kernel over the bare Gram product X @ X.T, measured in one run.

Usage: python asv_benchmarks/kernel_ratios.py [--repeats 7]
Prints the median of the repeats for each input and depth, and the ratio (target <= 1.5).
"""
import argparse
import os
import sys
import time

import numpy as np

from fastntk.kernels import cntk_kernel, ntk_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks.bench_kernels import _tfidf_20k  # noqa: E402


def median_time(func, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    inputs = {
        "dense 4000x1000": np.random.default_rng(0).standard_normal((4000, 1000)),
        "TF-IDF 4000x20000 (CSR)": _tfidf_20k(),
    }
    print("| input | depth | X @ X.T (s) | ntk_kernel (s) | ratio |")
    print("|---|---|---|---|---|")
    for name, X in inputs.items():
        if hasattr(X, "toarray"):
            baseline = median_time(lambda: (X @ X.T).toarray(), args.repeats)
        else:
            baseline = median_time(lambda: X @ X.T, args.repeats)
        for depth in (1, 2, 3):
            ntk_kernel(X[:10], depth=depth)  # compile outside the timing
            t = median_time(lambda: ntk_kernel(X, depth=depth), args.repeats)
            print(f"| {name} | {depth} | {baseline:.3f} | {t:.3f} | {t / baseline:.2f} |")
    try:
        from fastntk.datasets import load_mnist_5k

        images = load_mnist_5k()[0][:16]
    except ImportError:
        images = np.random.default_rng(0).random((16, 28, 28, 1))
    cntk_kernel(images[:2, :6, :6], depth=3)
    t = median_time(lambda: cntk_kernel(images, depth=3), max(1, args.repeats // 3))
    print(f"\ncntk_kernel, 16 MNIST images, depth 3: {t:.2f} s "
          f"({t / 136 * 1e3:.1f} ms per pair of 28x28 images)")


if __name__ == "__main__":
    main()
