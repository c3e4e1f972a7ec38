"""Out-of-core and Dask fits of NTKRidge on synthetic Zipf text, larger than memory.

Not an asv benchmark (it writes gigabytes and runs for many minutes): run it by hand::

    python asv_benchmarks/large_data.py --rows 1000000 --dir /scratch/fastntk-large
    python asv_benchmarks/large_data.py --rows 100000             # a check, ~10 minutes

Data.  ``--rows`` CSR rows over ``d = 2^20`` columns (``--n-features``) with 50 non-zeros
each (``--nnz``), column ``k`` drawn with probability proportional to ``1 / (k + 1)^1.1``
(Zipf, as words in text), values ``1 + Exp(1)``, rows of unit norm; the target is a
linear part on the 2,000 most frequent columns plus an interaction ``(x.u)(x.v)`` and
noise.  Written in chunks to ``--parts`` svmlight files (zero-based) in ``--dir``, plus a
test file of ``--test-rows`` rows; the script prints their size.  About 1.0 KB a row:
1,000,000 rows make a 1 GB directory.

Width.  The cg solver holds the statistics of the exact block ``E = [||x||, x]`` (``1 +
d`` columns) against the sketched tail (``m = 4096``): the cross block ``E^T T``
(``4 (d + 1) m`` bytes, single precision, at most 2 GiB: ``d + 1 <= 131,071``) and the
sparse ``E^T E``, whose non-zeros grow with the rows until ``d^2``: measured on these
rows folded to 2^15 columns, 15.6M non-zeros after 25,000 rows and 45.4M after 100,000
(``n^0.77``; about 270M, 3 GiB, extrapolated to 1,000,000 rows), of which the solver
keeps the upper triangle (about half), and adding a batch's products to it briefly needs
a second copy.  So 2^20 columns cannot be kept: the reader
folds the indices modulo ``--fold`` (the hashing trick, as sklearn's HashingVectorizer
would have done), by default 2^13, where ``E^T E`` is bounded by 67M non-zeros (0.8 GiB;
28M after 100,000 rows) and the cross block is 128 MiB, for a peak under 3 GB at any
number of rows.

Runs, each in a fresh process (the peak RSS is that process's own, from
``resource.getrusage``):

1. ``stream``: ``NTKRidge(NTKSketch(depth=2, n_components=4096)).fit_stream`` over
   :func:`fastntk.streaming.read_chunks` of the directory: one pass, time, rows/s and the
   time per 100,000 rows, the time of the solve after the pass, peak RSS, test R^2.
   ``--memory-cap-gb`` runs it in a memory cgroup of that limit (resident memory and
   page cache, as a container's limit; needs root and a cgroup file system), so that a
   training directory larger than the cap shows the fit out of core.
2. ``dask``: the same fit on a ``LocalCluster(n_workers=--workers, threads_per_worker=1)``
   with one partition per file, read on the workers; per-task durations from Dask's task
   stream (the measured per-partition cost), every worker's peak RSS, the client's, and
   the overhead against the single process.  Then a paper plan for 16 and 64 workers.
3. ``ridge`` (``--baseline``): scikit-learn's ``Ridge`` on the raw rows (all 2^20
   columns, not folded, loaded in memory), alpha chosen on the same kind of held-out
   fold as fastntk's (every fifth row) from ``compare.py``'s grid (17 half decades
   1e-4 .. 1e4; fastntk searches its own, wider default), refitted on all rows: the
   linear model a user would otherwise fit, its test R^2, time and peak RSS.

``--reuse`` keeps the data of an earlier run and ``--max-parts`` takes the first files
only, so one directory serves every size, e.g.::

    python asv_benchmarks/large_data.py --rows 4000000 --parts 40 --dir /scratch/ld \
        --memory-cap-gb 3 --skip-dask                     # 3.5 GiB of files, a 3 GiB cap
    python asv_benchmarks/large_data.py --dir /scratch/ld --reuse --max-parts 10
    python asv_benchmarks/large_data.py --dir /scratch/ld --reuse --max-parts 2 \
        --skip-dask --baseline                            # 200,000 rows against Ridge

On a shared or loaded machine, quote the ratios rather than the seconds.
"""
import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from compare import ALPHAS, HeldOutLinearRidge   # the comparison's grid and baseline

DEPTH = 2


def _peak_rss():
    """Peak resident memory of this process, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ----------------------------------------------------------------------------- data
def _zipf_rows(rng, n_rows, n_features, nnz, cdf):
    cols = np.searchsorted(cdf, rng.random((n_rows, nnz)))
    rows = np.repeat(np.arange(n_rows), nnz)
    values = 1.0 + rng.exponential(size=n_rows * nnz)
    X = sp.csr_matrix((values, (rows, cols.ravel())), shape=(n_rows, n_features))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.diags(1.0 / norms) @ X


def _target(rng, X, coef, u, v):
    return X @ coef + 5.0 * (X @ u) * (X @ v) + 0.05 * rng.standard_normal(X.shape[0])


def generate(args):
    """Write the training parts and the test file; return their paths and sizes."""
    from sklearn.datasets import dump_svmlight_file

    directory = Path(args.dir)
    train = directory / "train"
    train.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    d = args.n_features
    weights = 1.0 / np.arange(1, d + 1) ** 1.1
    cdf = np.cumsum(weights) / weights.sum()
    head = 2000
    coef = np.zeros(d)
    coef[:head] = rng.standard_normal(head)
    u, v = np.zeros(d), np.zeros(d)
    u[:head], v[:head] = rng.standard_normal(head), rng.standard_normal(head)
    rows_per_part = -(-args.rows // args.parts)
    chunk = 20_000
    start = time.perf_counter()
    parts = []
    for k in range(args.parts):
        path = train / f"part-{k:03d}.svm"
        n_part = min(rows_per_part, args.rows - k * rows_per_part)
        with open(path, "wb") as f:
            for first in range(0, n_part, chunk):
                X = _zipf_rows(rng, min(chunk, n_part - first), d, args.nnz, cdf)
                dump_svmlight_file(X, _target(rng, X, coef, u, v), f, zero_based=True)
        parts.append((str(path), n_part))
    test = directory / "test.svm"
    X = _zipf_rows(rng, args.test_rows, d, args.nnz, cdf)
    dump_svmlight_file(X, _target(rng, X, coef, u, v), str(test), zero_based=True)
    size = sum(os.path.getsize(p) for p, _ in parts)
    print(f"data: {args.rows} rows x {d} columns, {args.nnz} non-zeros a row (Zipf), in "
          f"{args.parts} svmlight files: {size / 2**30:.2f} GiB on disk "
          f"({size / args.rows:.0f} bytes a row); test file {args.test_rows} rows; "
          f"written in {time.perf_counter() - start:.0f} s", flush=True)
    return parts, str(test), size


# ----------------------------------------------------------------------------- runs
def _model(n_components):
    from fastntk import NTKRidge, NTKSketch

    return NTKRidge(NTKSketch(depth=DEPTH, n_components=n_components, random_state=0),
                    solver="cg", batch_size=2048)


def _test_r2(model, test, fold):
    from sklearn.metrics import r2_score

    from fastntk.streaming import read_chunks

    truth, predicted = [], []
    for X, y in read_chunks(test, fold_features=fold, zero_based=True):
        truth.append(y)
        predicted.append(model.predict(X))
    return float(r2_score(np.concatenate(truth), np.concatenate(predicted)))


def run_stream(args):
    """One pass over the files in this process (the ``stream`` child)."""
    from fastntk.streaming import read_chunks

    files = [p for p, _ in json.loads(args.parts_json)]
    timing = {}

    def chunks():
        for X, y in read_chunks(files, chunk_rows=args.chunk_rows, zero_based=True,
                                fold_features=args.fold):
            yield X, y
        timing["pass_end"] = time.perf_counter()          # the solve starts now

    start = time.perf_counter()
    model = _model(args.n_components).fit_stream(chunks())
    end = time.perf_counter()
    result = dict(rows=model.n_samples_seen_, seconds=end - start,
                  solve_seconds=end - timing["pass_end"], peak_rss=_peak_rss(),
                  alpha=model.alpha_, gamma=model.gamma_,
                  test_r2=_test_r2(model, args.test, args.fold))
    print("RESULT " + json.dumps(result), flush=True)


def _load_part(path, fold):
    from fastntk.streaming import read_chunks

    pieces = list(read_chunks(path, chunk_rows=1 << 30, zero_based=True,
                              fold_features=fold))
    return pieces[0]


def run_dask(args):
    """The same fit on a LocalCluster (the ``dask`` child)."""
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, get_task_stream

    parts = json.loads(args.parts_json)
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           memory_limit=f"{args.worker_memory_gb}GiB")
    client = Client(cluster)
    load = dask.delayed(_load_part, pure=True)
    Xs, ys = [], []
    meta = sp.csr_matrix((0, args.fold))
    for path, n_rows in parts:
        piece = load(path, args.fold)
        Xs.append(da.from_delayed(piece[0], shape=(n_rows, args.fold), dtype=float,
                                  meta=meta))
        ys.append(da.from_delayed(piece[1], shape=(n_rows,), dtype=float))
    X, y = da.concatenate(Xs), da.concatenate(ys)
    start = time.perf_counter()
    with get_task_stream() as stream:
        model = _model(args.n_components).fit(X, y)
    seconds = time.perf_counter() - start
    durations = {}
    for task in stream.data:
        key = str(task["key"])
        # Dask fuses the reading of a file with the slicing around it: name by function
        name = next((n for n in ("_add_partition", "_merge_pair", "load_part")
                     if n in key), None)
        for part in task["startstops"]:
            if part["action"] == "transfer":
                durations.setdefault("transfer", []).append(part["stop"] - part["start"])
            elif part["action"] == "compute" and name is not None:
                durations.setdefault(name, []).append(part["stop"] - part["start"])
    workers = client.run(_peak_rss)
    result = dict(rows=model.n_samples_seen_, seconds=seconds, alpha=model.alpha_,
                  gamma=model.gamma_, worker_peak_rss=sorted(workers.values()),
                  client_peak_rss=_peak_rss(),
                  tasks={k: [len(v), float(np.median(v)), float(np.sum(v))]
                         for k, v in durations.items()},
                  test_r2=_test_r2(model, args.test, args.fold))
    client.close()
    cluster.close()
    print("RESULT " + json.dumps(result), flush=True)


def run_ridge(args):
    """scikit-learn's Ridge on the raw rows in memory (the ``ridge`` child)."""
    from sklearn.metrics import r2_score

    from fastntk.streaming import read_chunks

    files = [p for p, _ in json.loads(args.parts_json)]
    start = time.perf_counter()
    pieces = list(read_chunks(files, chunk_rows=1 << 20, zero_based=True,
                              n_features=args.n_features))
    X = sp.vstack([X for X, _ in pieces], format="csr")
    y = np.concatenate([y for _, y in pieces])
    del pieces
    loaded = time.perf_counter()
    model = HeldOutLinearRidge("regression").fit(X, y)
    alpha = model.alpha_
    end = time.perf_counter()
    test_X, test_y = next(read_chunks(args.test, chunk_rows=1 << 20, zero_based=True,
                                      n_features=args.n_features))
    result = dict(rows=X.shape[0], seconds=end - loaded, load_seconds=loaded - start,
                  peak_rss=_peak_rss(), alpha=alpha,
                  test_r2=float(r2_score(test_y, model.predict(test_X))))
    print("RESULT " + json.dumps(result), flush=True)


def _memory_cgroup(cap_bytes):
    """Create a memory cgroup limited to ``cap_bytes``; return its ``cgroup.procs``."""
    name = f"fastntk-large-data-{os.getpid()}"
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists() and "memory" in v2.read_text().split():
        group, limit = Path("/sys/fs/cgroup") / name, "memory.max"
    else:
        group, limit = Path("/sys/fs/cgroup/memory") / name, "memory.limit_in_bytes"
    try:
        group.mkdir(exist_ok=True)
        (group / limit).write_text(str(cap_bytes))
    except OSError as exc:
        raise SystemExit(f"--memory-cap-gb needs a writable memory cgroup ({group}): "
                         f"{exc}") from None
    return group / "cgroup.procs"


def _join(procs):
    """Move this (child) process into the cgroup of ``procs``."""
    procs.write_text(str(os.getpid()))


def _child(mode, args, parts, test):
    command = [sys.executable, __file__, "--child", mode, "--parts-json", json.dumps(parts),
               "--test", test]
    for name in ("fold", "chunk_rows", "workers", "worker_memory_gb", "n_components",
                 "n_features"):
        value = getattr(args, name)
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    enter = None
    if args.memory_cap_gb and mode == "stream":
        enter = functools.partial(_join, _memory_cgroup(int(args.memory_cap_gb * 2**30)))
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         preexec_fn=enter).stdout
    return json.loads(out.split("RESULT ", 1)[1])


def _count_rows(path):
    """Rows of an svmlight file: its lines (the files this script writes)."""
    count = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            count += block.count(b"\n")
    return count


def _gb(n_bytes):
    return f"{n_bytes / 2**30:.2f} GiB"


def report_single(single):
    n = single["rows"]
    print(f"\nout of core, one process: {n} rows in {single['seconds']:.0f} s "
          f"({n / single['seconds']:,.0f} rows/s, {1e5 * single['seconds'] / n:.1f} s per "
          f"100,000 rows), of which the solve after the pass "
          f"{single['solve_seconds']:.0f} s; peak RSS {_gb(single['peak_rss'])}; alpha "
          f"{single['alpha']:.3g}, gamma {single['gamma']:g}; test R2 "
          f"{single['test_r2']:.4f}", flush=True)


def report_dask(args, single, dist):
    n = single["rows"]
    print(f"LocalCluster, {args.workers} workers x 1 thread: {dist['seconds']:.0f} s "
          f"({n / dist['seconds']:,.0f} rows/s, {dist['seconds'] / single['seconds']:.2f}x "
          f"the single process); worker peak RSS "
          f"{', '.join(_gb(r) for r in dist['worker_peak_rss'])}; client peak RSS "
          f"{_gb(dist['client_peak_rss'])}; same choice: alpha {dist['alpha']:.3g}, gamma "
          f"{dist['gamma']:g}; test R2 {dist['test_r2']:.4f}")
    tasks = dist["tasks"]
    print("tasks (count, median s, total s): " + "; ".join(
        f"{name} {c}, {med:.2f}, {tot:.1f}" for name, (c, med, tot) in sorted(tasks.items())))
    _plan(args, single, dist)


def _plan(args, single, dist):
    """Time on P workers: the partitions' work spread over P, a pairwise tree of
    ceil(log2 P) merges (each a transfer of one statistics object and an addition), and
    the solve on the client, all from the measured costs."""
    tasks = dist["tasks"]
    add = tasks.get("_add_partition", [0, 0.0, 0.0])
    load = tasks.get("load_part", [0, 0.0, 0.0])
    merge = tasks.get("_merge_pair", [0, 0.0, 0.0])
    per_row = (add[2] + load[2]) / single["rows"]
    d, m = args.fold + 1, args.n_components
    # cross block (single precision), T^T T, the held-out tail rows, and E^T E, which
    # the folded text fills: counted dense (8 d^2 bytes), as the solver then keeps it
    size = 4 * d * m + 8 * m * m + 8 * 10_000 * m + 8 * d * d
    solve = single["solve_seconds"]
    print(f"statistics object: about {_gb(size)} (cross block 4 (d+1) m = "
          f"{_gb(4 * d * m)}, T^T T, held-out tail rows, E^T E dense); measured "
          f"per-row cost of a partition (read + features + statistics) {per_row * 1e6:.0f} "
          f"us, merge {merge[1]:.2f} s, solve {solve:.0f} s")
    for rows in (1_000_000, 10_000_000, 100_000_000):
        for workers in (16, 64):
            depth = int(np.ceil(np.log2(workers)))
            transfer = size / 1.0e9                       # 1 GB/s between machines
            total = rows * per_row / workers + depth * (merge[1] + transfer) + solve
            print(f"  paper plan: {rows:>11,} rows on {workers:>2} workers: "
                  f"{rows * per_row / workers:8.0f} s of partitions + {depth} merge levels x "
                  f"({merge[1]:.1f} s + {transfer:.1f} s transfer at 1 GB/s) + solve "
                  f"{solve:.0f} s = {total:8.0f} s; worker memory one statistics object "
                  f"({_gb(size)}) + a partition")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=2**20)
    parser.add_argument("--nnz", type=int, default=50)
    parser.add_argument("--fold", type=int, default=2**13)
    parser.add_argument("--n-components", type=int, default=4096)
    parser.add_argument("--parts", type=int, default=8,
                        help="training files = Dask partitions (default 8)")
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory-gb", type=float, default=6.0)
    parser.add_argument("--memory-cap-gb", type=float, default=None)
    parser.add_argument("--dir", default="/tmp/fastntk-large-data")
    parser.add_argument("--reuse", action="store_true", help="keep existing data files")
    parser.add_argument("--max-parts", type=int, default=None,
                        help="with --reuse: the first files only")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="also scikit-learn Ridge on the raw rows, in memory")
    parser.add_argument("--child", choices=("stream", "dask", "ridge"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--parts-json", help=argparse.SUPPRESS)
    parser.add_argument("--test", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "stream":
        return run_stream(args)
    if args.child == "dask":
        return run_dask(args)
    if args.child == "ridge":
        return run_ridge(args)
    test = Path(args.dir) / "test.svm"
    train = sorted((Path(args.dir) / "train").glob("part-*.svm"))
    if args.reuse and train and test.exists():
        parts = [(str(p), _count_rows(p)) for p in train[:args.max_parts]]
        test = str(test)
        size = sum(os.path.getsize(p) for p, _ in parts)
        print(f"data: {sum(n for _, n in parts)} rows in {len(parts)} svmlight files, "
              f"{size / 2**30:.2f} GiB on disk", flush=True)
    else:
        parts, test, _ = generate(args)
    print(f"NTKSketch(depth={DEPTH}, n_components={args.n_components}), solver cg, indices "
          f"folded to {args.fold} columns (see the docstring)", flush=True)
    if args.memory_cap_gb:
        print(f"the fit runs in a memory cgroup capped at {args.memory_cap_gb:g} GiB",
              flush=True)
    single = _child("stream", args, parts, test)
    report_single(single)
    if args.baseline:
        ridge = _child("ridge", args, parts, test)
        print(f"scikit-learn Ridge (sparse_cg) on the raw {args.n_features} columns, in "
              f"memory: {ridge['seconds']:.0f} s for {len(ALPHAS)} held-out alphas and the "
              f"refit (loading {ridge['load_seconds']:.0f} s), peak RSS "
              f"{_gb(ridge['peak_rss'])}, alpha {ridge['alpha']:.3g}, test R2 "
              f"{ridge['test_r2']:.4f}", flush=True)
    if not args.skip_dask:
        report_dask(args, single, _child("dask", args, parts, test))


if __name__ == "__main__":
    main()
