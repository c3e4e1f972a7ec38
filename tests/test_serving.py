"""Serving: read-only installs, the kernel cache, fork after use, concurrent threads.

Most cases run in subprocesses: the numba threading layer, the cache directory and the
writability of the package are per-process facts.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import fastntk
from fastntk import NTKRidge, NTKSketch

PACKAGE = os.path.dirname(fastntk.__file__)
ROOT = os.path.dirname(PACKAGE)


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMBA_", "FASTNTK_", "XDG_CACHE"))}
    env.update(PYTHONPATH=ROOT, **extra)
    return env


# Subprocesses run in this directory, never in the checkout: there, ``python -c`` would
# import the unbuilt source tree (the current directory comes first on sys.path) instead
# of the installed package.
HERE = os.path.dirname(os.path.abspath(__file__))


def _run(script, env, timeout=300, cwd=HERE):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                            capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# Installs an audit hook that makes every write below the given directories fail as on a
# read-only file system (chmod alone does not stop root, who runs CI), and records it.
_READ_ONLY_HOOK = """
import os, sys
_FORBIDDEN = [os.path.realpath(p) for p in {forbidden!r}]
ATTEMPTS = []
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        path = args[0]
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir",
                   "os.chmod", "shutil.copyfile"):
        writing, path = True, args[0]
    else:
        return
    if writing and not isinstance(path, int):
        real = os.path.realpath(os.fsdecode(path))
        if any(real == p or real.startswith(p + os.sep) for p in _FORBIDDEN):
            ATTEMPTS.append((event, real))
            raise PermissionError(13, "Read-only file system (test)", real)
sys.addaudithook(_hook)
"""


def test_import_and_predict_on_a_read_only_install(tmp_path):
    """The package directory unwritable, HOME missing and not creatable, no cache
    variable: import, load and predict work (the same predictions), and nothing is
    written next to the package."""
    install = tmp_path / "site"
    shutil.copytree(PACKAGE, install / "fastntk",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(install):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    os.chmod(install, 0o555)
    before = sorted(p for p in (install / "fastntk").rglob("*"))
    X = sp.random(40, 300, density=0.05, format="csr", random_state=0)
    model = NTKRidge(NTKSketch(n_components=32, degree=2, random_state=0),
                     alphas=(0.1, 1.0)).fit(X, np.asarray(X.sum(axis=1)).ravel())
    fastntk.save_model(model, tmp_path / "model.fastntk")
    sp.save_npz(tmp_path / "X.npz", X)
    np.save(tmp_path / "expected.npy", model.predict(X))
    home = "/dev/null/home"  # under a file: not creatable, even by root
    env = _env(HOME=home)
    env["PYTHONPATH"] = str(install)
    script = _READ_ONLY_HOOK.format(forbidden=[str(install), home]) + """
import numpy as np, scipy.sparse as sp
import fastntk
assert os.path.realpath(fastntk.__file__).startswith({install!r}), fastntk.__file__
from fastntk._jit import cache_dir
assert cache_dir() is None, cache_dir()
model, meta = fastntk.load_model("model.fastntk")
X = sp.load_npz("X.npz")
assert np.array_equal(model.predict(X), np.load("expected.npy"))
# creating the per-user cache under HOME may be tried (and fail); the package, never
assert not [a for a in ATTEMPTS if a[1].startswith({install!r})], ATTEMPTS
print("ok")
""".format(install=os.path.realpath(install))
    try:
        assert _run(script, env, cwd=str(tmp_path)).strip().endswith("ok")
        assert sorted(p for p in (install / "fastntk").rglob("*")) == before
    finally:
        for root, dirs, _ in os.walk(install):
            os.chmod(root, 0o755)


_CACHED_MODULE = '''
import numpy as np
from numba import prange
from fastntk._jit import jit

@jit(parallel=True)
def double(x):
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        out[i] = 2 * x[i]
    return out
'''


def test_a_read_only_cache_is_read(tmp_path):
    """The warm-up fills a cache; a server that may not write there still loads from it
    (both twins of a parallel kernel), and compiles what is missing in memory."""
    (tmp_path / "cachedmod.py").write_text(_CACHED_MODULE)
    cache = tmp_path / "cache"
    env = _env(FASTNTK_CACHE_DIR=str(cache), HOME="/dev/null/home")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), ROOT])
    use = """
import numpy as np
from fastntk._threading import limit
from cachedmod import double
x = np.arange(4.0)
with limit(1):
    assert double(x).tolist() == [0, 2, 4, 6]
with limit(2):
    assert double(x).tolist() == [0, 2, 4, 6]
    assert double(x.astype(np.float32)).dtype == np.float32
print(sum(double.serial.stats.cache_hits.values()),
      sum(double.parallel.stats.cache_hits.values()))
"""
    fill = use.replace("    assert double(x.astype(np.float32)).dtype == np.float32\n", "")
    _run(fill, env)
    assert len(list(cache.rglob("*.nbi"))) == 2  # an index file per twin
    script = _READ_ONLY_HOOK.format(forbidden=[str(cache)]) + use
    hits = _run(script, env).split()
    # float64 from the cache for each twin; float32 compiled (and not saved)
    assert [int(h) for h in hits] == [1, 1]


def test_the_cache_can_be_disabled(tmp_path):
    env = _env(FASTNTK_CACHE_DIR="", HOME=str(tmp_path))
    out = _run("from fastntk._jit import cache_dir; print(cache_dir())", env)
    assert out.strip() == "None"
    env = _env(HOME=str(tmp_path))
    out = _run("from fastntk._jit import cache_dir; print(cache_dir())", env)
    assert out.strip() == str(tmp_path / ".cache" / "fastntk")


# Fits every estimator on small data, on two threads whatever the size, so that the
# OpenMP loops and the Numba parallel kernels really start thread teams.
_MODELS = """
import numpy as np, scipy.sparse as sp
import fastntk._threading
fastntk._threading._WORK_PER_THREAD = 1  # n_jobs=2 means two threads, even for one row
from fastntk import (CNTKSketch, NTKRandomFeatures, NTKRidge, NTKRidgeClassifier,
                     NTKSketch, ntk_kernel)
rng = np.random.default_rng(0)
Xs = sp.random(300, 2000, density=0.02, format="csr", random_state=0)
Xd = rng.standard_normal((300, 20))
images = rng.standard_normal((300, 6 * 6 * 2))
y = np.asarray(Xs.sum(axis=1)).ravel() + rng.standard_normal(300)
models = {
    "sketch_csr": (NTKSketch(n_components=256, degree=4, random_state=0, n_jobs=2)
                   .fit(Xs), Xs),
    "sketch_dense": (NTKSketch(n_components=256, degree=4, random_state=0, n_jobs=2)
                     .fit(Xd), Xd),
    "layerwise": (NTKSketch(n_components=128, depth=2, method="layerwise",
                            random_state=0, n_jobs=2).fit(Xd), Xd),
    "rf_csr": (NTKRandomFeatures(n_components=256, input_sketch=512, random_state=0,
                                 n_jobs=2).fit(Xs), Xs),
    "rf_dense": (NTKRandomFeatures(n_components=128, depth=2, leverage=True,
                                   random_state=0, n_jobs=2).fit(Xd), Xd),
    "cntk": (CNTKSketch(n_components=64, depth=2, image_shape=(6, 6, 2),
                        random_state=0, n_jobs=2).fit(images), images),
    "ridge": (NTKRidge(NTKSketch(n_components=128, degree=3, random_state=0, n_jobs=2))
              .fit(Xs, y), Xs),
    "classifier": (NTKRidgeClassifier(NTKRandomFeatures(n_components=64, random_state=0))
                   .fit(Xd, Xd[:, 0] > 0), Xd),
}

def run(name, rows=slice(None)):
    model, X = models[name]
    if name == "kernel":
        return ntk_kernel(X[rows], X)
    out = model.predict(X[rows]) if hasattr(model, "predict") else model.transform(X[rows])
    return out.toarray() if sp.issparse(out) else out

models["kernel"] = (None, Xd)
reference = {name: run(name) for name in models}
"""


def _layers():
    layers = ["default", "omp", "workqueue"]
    try:
        import tbb  # noqa: F401
        layers.append("tbb")
    except ImportError:
        pass
    return layers


@pytest.mark.parametrize("layer", _layers())
def test_fork_and_threads_under_every_threading_layer(layer):
    """After the parent used every estimator (with thread teams), children of a fork
    Pool predict exactly what the parent did; 8 threads x 200 calls give the same bits
    as a single call and never abort (the workqueue layer aborts on concurrent
    parallel launches)."""
    env = _env() if layer == "default" else _env(NUMBA_THREADING_LAYER=layer)
    script = _MODELS + """
import multiprocessing, threading
from fastntk import _threading
import os
if (os.cpu_count() or 1) > 1:
    assert _threading._state["openmp_started"]

def child(name):
    return name, run(name)

with multiprocessing.get_context("fork").Pool(2) as pool:
    for name, value in pool.imap_unordered(child, list(models), chunksize=1):
        assert np.array_equal(value, reference[name]), name

def calls(k):
    names = list(models)
    for i in range(200):
        start = (7 * i + k) % 200
        yield names[(i + k) % len(names)], slice(start, start + (1 if i % 3 == 0 else 64))

# the kernel's BLAS product gives bits that depend on the shape of the call
kernel_reference = {(r.start, r.stop): run(name, r) for k in range(8)
                    for name, r in calls(k) if name == "kernel"}
errors = []
def worker(k):
    try:
        for i, (name, rows) in enumerate(calls(k)):
            expected = (kernel_reference[rows.start, rows.stop] if name == "kernel"
                        else reference[name][rows])
            if not np.array_equal(run(name, rows), expected):
                errors.append((k, i, name))
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors[:5]
import numba
print(numba.threading_layer())
"""
    out = _run(script, env, timeout=600)
    if layer != "default":
        assert out.split()[-1] == layer


def test_warmup_without_a_cache_directory_is_a_one_line_error(tmp_path):
    env = _env(FASTNTK_CACHE_DIR="", HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "fastntk", "warmup"], env=env,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "fastntk: error: no writable cache directory (none usable): give --cache-dir DIR "
        "or set FASTNTK_CACHE_DIR"]


def test_one_row_requests_match_batches_and_skip_the_repeated_checks(monkeypatch):
    """A request is validated once (by the learner), and a row's features do not depend
    on the rows sent with it (its prediction only through the last bits of the final
    BLAS product)."""
    import fastntk.random_features as rf_module
    import fastntk._validation as validation

    rng = np.random.default_rng(0)
    X = sp.random(300, 3000, density=0.01, format="csr", random_state=0)
    y = rng.standard_normal(300)
    models = [NTKRidge(NTKSketch(n_components=64, random_state=0), alphas=(1.0,)),
              NTKRidge(fastntk.NTKRandomFeatures(n_components=64, depth=2, input_sketch=500,
                                                 random_state=0), alphas=(1.0,))]
    for model in models:
        model.fit(X, y)
        whole, features = model.predict(X), model.feature_map_.transform(X)
        features = features.toarray() if sp.issparse(features) else features
        for rows in (slice(0, 1), slice(7, 8), slice(5, 40), slice(250, 300)):
            np.testing.assert_allclose(model.predict(X[rows]), whole[rows], rtol=1e-12)
            part = model.feature_map_.transform(X[rows])
            assert np.array_equal(part.toarray() if sp.issparse(part) else part,
                                  features[rows])
        dense = model.predict(X[:20].toarray())
        np.testing.assert_allclose(dense, whole[:20], rtol=1e-10, atol=1e-12)
    calls = []
    monkeypatch.setattr(validation, "_sklearn_validate_data",
                        lambda *a, **k: calls.append(1) or a[1])
    for model in models:
        model.predict(X[:1])
    assert calls == []  # a canonical CSR row of the fitted width takes the fast path
    monkeypatch.undo()
    # the one-row CSR request of NTKRandomFeatures at depth 1 is not padded
    products = []
    original = rf_module._row_products
    monkeypatch.setattr(rf_module, "_row_products",
                        lambda A, W: products.append(A.shape) or original(A, W))
    shallow = fastntk.NTKRandomFeatures(n_components=64, input_sketch=500,
                                        random_state=0).fit(X)
    shallow.transform(X[:1])
    assert products == [(1, 500)]


def test_the_fast_path_keeps_sklearn_messages():
    model = NTKSketch(n_components=16, random_state=0).fit(np.ones((3, 4)))
    bad = np.ones((2, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.transform(bad)
    with pytest.raises(ValueError, match="X has 5 features, but NTKSketch is expecting 4"):
        model.transform(np.ones((2, 5)))


def test_ridge_n_jobs_replaces_the_feature_maps_and_changes_no_global_state():
    import numba

    X = sp.random(200, 500, density=0.05, format="csr", random_state=0)
    y = np.asarray(X.sum(axis=1)).ravel()
    model = NTKRidge(NTKSketch(n_components=64, random_state=0, n_jobs=2), alphas=(1.0,),
                     n_jobs=1).fit(X, y)
    before = numba.get_num_threads()
    reference = model.predict(X)
    seen = []
    original = fastntk._threading.effective_n_threads

    def spy(n_jobs, work=None):
        seen.append(original(n_jobs, work))
        return seen[-1]

    import fastntk.ntk_sketch as ntk_sketch_module
    ntk_sketch_module._effective_n_threads = spy
    try:
        assert np.array_equal(model.set_params(n_jobs=1).predict(X), reference)
    finally:
        ntk_sketch_module._effective_n_threads = original
    assert seen and set(seen) == {1}
    assert numba.get_num_threads() == before


def test_a_source_tree_without_a_build_says_how_to_build(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "fastntk",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    env = _env(FASTNTK_CACHE_DIR="")
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", "from fastntk import NTKSketch"],
                            env=env, capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 1
    assert "ImportError: fastntk's compiled extensions are missing" in result.stderr
    assert "pip install ." in result.stderr
    result = subprocess.run([sys.executable, "-m", "fastntk", "demo"], env=env,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install ." in lines[0], result.stderr
