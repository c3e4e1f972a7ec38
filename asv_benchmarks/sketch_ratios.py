"""Ratio targets of the sketching primitives, measured in one run.

    python asv_benchmarks/sketch_ratios.py [--repeats 5] [--threads 1] [--sklearn-repeats 1]

1. Input sparsity: PolySketch(degree=4, n_components=1024) on CSR with 100 non-zeros a
   row, n = 10,000, n_features 2^10 .. 2^22: time at the largest width over the time at
   the smallest (target <= 1.3).
2. CountSketch(256) on CSR, n = 10,000 rows of 1,000 non-zeros, d = 2^20, one thread:
   non-zeros per second (target >= 1e8).
3. Degree 2 on CSR, n = 20,000, d = 100,000, 100 non-zeros a row, n_components = 2048:
   fastntk (PolySketch degree-2 block, and TensorSketch) against
   sklearn.kernel_approximation.PolynomialCountSketch: time ratio (target >= 20) and the
   relative Frobenius error of the (x.y)^2 Gram matrix of the first 1,000 rows, averaged
   over seeds (target: fastntk no worse).

Sparse inputs are synthetic: Zipf-like column frequencies (exponent 1), unit-norm rows
(benchmarks/bench_sketches.py:zipf_csr).  Timings are medians of ``--repeats`` runs of
``transform`` (after a warm-up that compiles the kernels), the widths of part 1
interleaved so that a change of machine load hits them alike.  ``--threads`` sets the
fastntk ``n_jobs`` (default 1: one core, the figures asked for, and the stable choice on
a shared machine).

PolynomialCountSketch walks the columns in a Python loop, extracting one column of the
input per feature and degree; a CSR column costs O(nnz), which makes it far slower on
CSR than on CSC.  It is therefore timed on the CSC copy of the same matrix (its fastest
sparse path: conservative for the ratio) and, to show the CSR cost, on the first
``--sklearn-csr-rows`` rows in CSR.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.bench_sketches import zipf_csr  # noqa: E402

from fastntk.sketches import CountSketch, PolySketch, TensorSketch  # noqa: E402


def _time(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def input_sparsity(repeats, n_jobs):
    print("1. PolySketch(degree=4, n_components=1024), CSR, n=10,000, 100 nnz/row")
    widths = [2**10, 2**14, 2**18, 2**22]
    setups = {}
    for d in widths:
        X = zipf_csr(10_000, d, 100)
        poly = PolySketch(degree=4, n_components=1024, random_state=0, n_jobs=n_jobs).fit(X)
        poly.transform(X[:10])
        setups[d] = (poly, X)
    # With one thread, the CPU time of the process is the cost on one core; the wall
    # time also counts waiting for a core on a shared machine.
    clocks = {"CPU": time.process_time, "wall": time.perf_counter}
    if n_jobs != 1:
        clocks.pop("CPU")
    for label, clock in clocks.items():
        times = {d: [] for d in widths}
        for _ in range(repeats):  # interleaved
            for d in widths:
                poly, X = setups[d]
                times[d] += _time(lambda: poly.transform(X), 1, clock)
        for d in widths:
            print(f"   d = 2^{int(np.log2(d)):<2d}  median {label} time {np.median(times[d]):.3f} s"
                  f"  (runs: {', '.join(f'{t:.3f}' for t in times[d])})")
        ratio = np.median(times[widths[-1]]) / np.median(times[widths[0]])
        best = min(times[widths[-1]]) / min(times[widths[0]])
        print(f"   {label} time(d=2^22) / time(d=2^10) = {ratio:.2f} (medians), {best:.2f} "
              "(minima, the least disturbed runs)   (target <= 1.3)")


def countsketch_throughput(repeats):
    print("2. CountSketch(n_components=256), CSR 10,000 x 2^20, 1,000 nnz/row, one thread")
    X = zipf_csr(10_000, 2**20, 1000)
    cs = CountSketch(n_components=256, random_state=0, n_jobs=1).fit(X)
    cs.transform(X[:10])
    # CPU time of this (single-threaded) process, and wall time: on a shared machine the
    # first is the cost on one core, the second includes waiting for a core.
    for label, clock in (("CPU", time.process_time), ("wall", time.perf_counter)):
        times = _time(lambda: cs.transform(X), repeats, clock)
        print(f"   nnz = {X.nnz:,}  {label} time median {np.median(times):.4f} s, min "
              f"{min(times):.4f} s  -> {X.nnz / np.median(times) / 1e6:.0f} (median), "
              f"{X.nnz / min(times) / 1e6:.0f} (best) million nnz/s   (target >= 100 million)")


def _gram_error(Z, G):
    return np.linalg.norm(Z @ Z.T - G) / np.linalg.norm(G)


def degree_two(repeats, sklearn_repeats, sklearn_csr_rows, n_seeds, n_jobs):
    from sklearn.kernel_approximation import PolynomialCountSketch

    print("3. degree 2, n_components=2048, CSR 20,000 x 100,000, 100 nnz/row")
    X = zipf_csr(20_000, 100_000, 100)
    X_csc = X.tocsc()
    m = 2048
    makers = {
        "fastntk PolySketch (degree-2 block)": lambda s: PolySketch(
            degree=2, n_components=m, leaf="countsketch", random_state=s, n_jobs=n_jobs),
        "fastntk TensorSketch": lambda s: TensorSketch(
            degree=2, n_components=m, random_state=s, n_jobs=n_jobs),
    }

    def features(name, est, rows):
        Z = est.transform(rows)
        return Z[:, 2] if "PolySketch" in name else Z

    sk = PolynomialCountSketch(degree=2, n_components=m, random_state=0).fit(X)
    sk_times = _time(lambda: sk.transform(X_csc), sklearn_repeats)
    sk_csr = _time(lambda: sk.transform(X[:sklearn_csr_rows]), 1)[0]
    print(f"   sklearn PolynomialCountSketch: median {np.median(sk_times):.2f} s on CSC "
          f"(runs: {', '.join(f'{t:.2f}' for t in sk_times)}); on CSR, "
          f"{sklearn_csr_rows} rows alone take {sk_csr:.2f} s")
    for name, make in makers.items():
        est = make(0).fit(X)
        est.transform(X[:10])
        times = _time(lambda: est.transform(X), repeats)
        print(f"   {name}: median {np.median(times):.3f} s  -> "
              f"{np.median(sk_times) / np.median(times):.0f}x faster than sklearn on CSC "
              "(target >= 20)")

    rows = X[:1000]
    G = (rows @ rows.T).toarray() ** 2
    errors = {"sklearn PolynomialCountSketch": []}
    errors.update({name: [] for name in makers})
    for seed in range(n_seeds):
        sk = PolynomialCountSketch(degree=2, n_components=m, random_state=seed).fit(X)
        errors["sklearn PolynomialCountSketch"].append(_gram_error(sk.transform(rows.tocsc()), G))
        for name, make in makers.items():
            errors[name].append(_gram_error(features(name, make(seed).fit(X), rows), G))
    print(f"   relative Frobenius error of the (x.y)^2 Gram, 1,000 rows, mean over {n_seeds} "
          "seeds (+- standard error):")
    for name, errs in errors.items():
        errs = np.asarray(errs)
        print(f"     {name:<38s} {errs.mean():.4f} +- {errs.std(ddof=1) / np.sqrt(len(errs)):.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="fastntk n_jobs")
    parser.add_argument("--sklearn-repeats", type=int, default=1)
    parser.add_argument("--sklearn-csr-rows", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    import platform

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if 1 in args.parts:
        input_sparsity(args.repeats, args.threads)
    if 2 in args.parts:
        countsketch_throughput(args.repeats)
    if 3 in args.parts:
        degree_two(args.repeats, args.sklearn_repeats, args.sklearn_csr_rows, args.seeds,
                   args.threads)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
