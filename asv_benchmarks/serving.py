"""Serving figures: cold start, warm one-row latency, model file size and memory.

Measures, in one run and against scikit-learn baselines measured in the same run:

* cold start: a fresh process that imports the library, loads a saved model and predicts
  one row (wall clock of the whole process), for NTKRidge + NTKSketch (as fitted by
  default, and with the map's kernel: ``gammas=(1.0,), tail_gammas="same"``, whose
  requests are always sketched) fully cold (no kernel cache) and after ``fastntk
  warmup``, and for a pickled sklearn Nystroem + Ridge pipeline; also the peak RSS of
  those processes;
* warm latency: p50 / p99 of one-row (and 32-row) predictions of the two NTKRidge +
  NTKSketch models, NTKRidge + NTKRandomFeatures and sklearn Ridge on the same rows (wall
  clock);
* model file sizes.

The data (``--data``): ``zipf``, CSR rows of 10^5 features with 50 non-zeros each
(text-like), 2,000 for training; or ``tweets``, the TF-IDF rows of the health tweets
(15 non-zeros a row on average), 10,000 for training, on which the default NTKSketch
takes the exact pairs of words.  Usage::

    PYTHONPATH=$PWD python asv_benchmarks/serving.py [--cache-dir DIR] [--repeats 3] \
        [--data zipf]

``--cache-dir`` reuses a cache already filled by ``fastntk warmup --cache-dir DIR``
(the warm-up takes minutes); by default a temporary one is filled first.
"""
import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_FASTNTK_CHILD = """
import time, sys
start = time.perf_counter()
import fastntk
import scipy.sparse as sp
model, _ = fastntk.load_model(sys.argv[1])
model.predict(sp.load_npz(sys.argv[2]))
elapsed = time.perf_counter() - start
with open("/proc/self/status") as status:  # peak RSS of this process only (KiB)
    print(elapsed, next(line.split()[1] for line in status if line.startswith("VmHWM")))
"""

_SKLEARN_CHILD = """
import time, sys
start = time.perf_counter()
import pickle
import scipy.sparse as sp
with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
model.predict(sp.load_npz(sys.argv[2]))
elapsed = time.perf_counter() - start
with open("/proc/self/status") as status:  # peak RSS of this process only (KiB)
    print(elapsed, next(line.split()[1] for line in status if line.startswith("VmHWM")))
"""


def _data(n, d=100_000, nnz=50, seed=0):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, d, n * nnz)
    X = sp.csr_matrix((rng.random(n * nnz), (rows, cols)), shape=(n, d))
    w = rng.standard_normal(d)
    return X, np.asarray(X @ w).ravel() + 0.1 * rng.standard_normal(n)


def _tweets():
    """Training and new rows of the health tweets (TF-IDF); the target is the label's code."""
    from fastntk import datasets

    texts, labels = datasets.load_health_tweets()
    X, X_new, y, _ = datasets.tfidf_split(texts, labels, n_train=10_000, n_test=1_100)
    y = np.unique(y, return_inverse=True)[1].astype(float)     # the source, as a number
    return (X, y), (X_new, None)


def _cold(script, model_path, row_path, env):
    """Wall seconds of a fresh process to its first prediction, and its peak RSS (MiB,
    Linux's VmHWM)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, model_path, row_path], env=env,
                          capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    _, rss_kib = done.stdout.split()
    return total, int(rss_kib) / 1024


def _latency(predict, X, n_calls=1000, batch=1):
    times = []
    for i in range(n_calls):
        start = (i * batch) % (X.shape[0] - batch)
        rows = X[start:start + batch]
        t = time.perf_counter()
        predict(rows)
        times.append(time.perf_counter() - t)
    times = np.array(times[50:]) * 1e3
    return np.percentile(times, 50), np.percentile(times, 99)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=("zipf", "tweets"), default="zipf")
    args = parser.parse_args()

    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    import fastntk
    from fastntk import NTKRandomFeatures, NTKRidge, NTKSketch

    work = tempfile.mkdtemp(prefix="fastntk-serving-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTNTK_", "NUMBA_"))}
    env["PYTHONPATH"] = ROOT
    cache = args.cache_dir or os.path.join(work, "cache")
    if args.cache_dir is None:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastntk", "warmup", "--cache-dir", cache],
                       env=env, check=True, capture_output=True)
        print(f"fastntk warmup --cache-dir {cache}: {time.perf_counter() - start:.0f} s")

    (X, y), (X_new, _) = (_tweets() if args.data == "tweets"
                          else (_data(2000), _data(1100, seed=1)))
    row_path = os.path.join(work, "row.npz")
    sp.save_npz(row_path, X_new[:1])
    alphas = (1e-2, 1e-1, 1.0, 10.0)
    sketch = NTKRidge(NTKSketch(n_components=4096, random_state=0), alphas=alphas).fit(X, y)
    # the same with the map's kernel (the tail weighted 1): on these rows the default
    # leaves the tail out (its signal is far below its noise) and no request is sketched
    sketch_tail = NTKRidge(NTKSketch(n_components=4096, random_state=0), alphas=alphas,
                           gammas=(1.0,), tail_gammas="same").fit(X, y)
    features = NTKRidge(NTKRandomFeatures(n_components=4096, random_state=0),
                        alphas=alphas).fit(X, y)
    ridge = Ridge(alpha=1.0).fit(X, y)
    nystroem = make_pipeline(Nystroem(n_components=300, random_state=0),
                             Ridge(alpha=1.0)).fit(X, y)
    paths = {name: os.path.join(work, f"{name}.fastntk")
             for name in ("NTKRidge+NTKSketch", "NTKRidge+NTKSketch, tail 1",
                          "NTKRidge+NTKRandomFeatures")}
    fastntk.save_model(sketch, paths["NTKRidge+NTKSketch"])
    fastntk.save_model(sketch_tail, paths["NTKRidge+NTKSketch, tail 1"])
    fastntk.save_model(features, paths["NTKRidge+NTKRandomFeatures"])
    sk_path = os.path.join(work, "nystroem_ridge.pkl")
    with open(sk_path, "wb") as f:
        pickle.dump(nystroem, f, protocol=pickle.HIGHEST_PROTOCOL)

    print(f"data {args.data}: {X.shape[0]} training rows, {X.shape[1]} features, "
          f"{X.nnz / X.shape[0]:.1f} non-zeros a row; NTKSketch exact degrees "
          f"{sketch.feature_map_.exact_degrees_}, {sketch.feature_map_.n_exact_features_} "
          f"exact columns, tail_signal_to_noise_ "
          f"{sketch.feature_map_.tail_signal_to_noise_:.3g} (tail weights: default "
          f"{sketch.tail_gamma_:g}, the map's kernel {sketch_tail.tail_gamma_:g})")
    print(f"fastntk {fastntk.__version__}; wall clock; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.repeats} repeats, "
          f"median")
    print("\ncold start: fresh process -> import, load, predict one row")
    fastntk_models = ("NTKRidge+NTKSketch", "NTKRidge+NTKSketch, tail 1")
    runs = {"sklearn Nystroem(300)+Ridge, pickle": []}
    runs.update({f"{model}, {how}": [] for model in fastntk_models
                 for how in ("warm cache", "no cache")})
    for _ in range(args.repeats):  # interleaved, so that load changes hit all alike
        runs["sklearn Nystroem(300)+Ridge, pickle"].append(
            _cold(_SKLEARN_CHILD, sk_path, row_path, env))
        for model in fastntk_models:
            for how, cache_dir in (("warm cache", cache), ("no cache", "")):
                runs[f"{model}, {how}"].append(
                    _cold(_FASTNTK_CHILD, paths[model], row_path,
                          dict(env, FASTNTK_CACHE_DIR=cache_dir)))
    baseline = np.median([t for t, _ in runs["sklearn Nystroem(300)+Ridge, pickle"]])
    for name, values in runs.items():
        seconds = np.median([t for t, _ in values])
        rss = np.median([r for _, r in values])
        print(f"  {name:<42} {seconds:7.2f} s  {seconds / baseline:5.2f}x   "
              f"peak RSS {rss:6.0f} MiB")

    print("\nwarm latency (same process, ms): p50 / p99")
    for batch in (1, 32):
        for name, predict in (("sklearn Ridge (linear, baseline)", ridge.predict),
                              ("NTKRidge+NTKSketch(4096)", sketch.predict),
                              ("the same, tail weighted 1", sketch_tail.predict),
                              ("NTKRidge+NTKRandomFeatures(4096)", features.predict)):
            p50, p99 = _latency(predict, X_new, batch=batch)
            print(f"  {batch:>2} row{'s' if batch > 1 else ' '} {name:<34} {p50:7.3f} / "
                  f"{p99:7.3f}")

    print("\nmodel files")
    for name, path in [*paths.items(), ("sklearn Nystroem(300)+Ridge (pickle)", sk_path)]:
        print(f"  {name:<38} {os.path.getsize(path) / 2**20:7.2f} MiB")
    print(f"\nthis process's peak RSS (it fitted all the models): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
