"""Out-of-core fits: chunked readers, fit_stream, and merged solver statistics.

A fit from chunks must be the in-memory fit with the same streaming solver (to rounding),
statistics of row ranges merged in any grouping must equal one pass, and the readers must
hold one chunk at a time.
"""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from _same_model import assert_same_model, interaction_data
from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch
from fastntk._solvers import Design, RidgeSpec, get_streaming
from fastntk.ridge import _feature_blocks
from fastntk.streaming import read_chunks, scan

#: the tail of these small sparse designs is below its noise: keep it (see conftest)
pytestmark = pytest.mark.usefixtures("scored_tail")

CASES = [("dense", "primal"), ("dense", "cg"), ("sparse", "cg")]


def _data(kind, n=600, seed=0):
    return interaction_data(kind, n, 70, 0.08, seed)


def _model(estimator=NTKRidge, solver="auto", kind="dense", **kwargs):
    # every degree sketched: with "auto" the first piece's rows choose the degrees
    # (test_a_first_piece_holding_the_cosine_rows_chooses_the_degrees_of_fit); sparse
    # rows: degrees 0-1 exact, the map a fit from pieces draws (in memory, "auto" would
    # take the pairs of columns of these short rows)
    sketch = NTKSketch(depth=2, n_components=48, sketch_degrees="all", random_state=0,
                       exact_degrees=1 if kind == "sparse" else "auto")
    # fits from pieces score alpha by GCV (one pass); the in-memory primal fit is asked
    # for the same, instead of its default leave-one-out
    kwargs.setdefault("criterion", "gcv" if solver == "primal" else "auto")
    return estimator(sketch, solver=solver, gammas=(0.5, 1.0), batch_size=64, **kwargs)


def _pieces(X, y, cuts, w=None):
    for a, b in zip(cuts[:-1], cuts[1:]):
        yield (X[a:b], y[a:b]) if w is None else (X[a:b], y[a:b], w[a:b])


@pytest.mark.parametrize("kind, solver", CASES)
def test_fit_stream_equals_fit(kind, solver):
    X, y = _data(kind)
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    cuts = [0, 1, 70, 71, 333, 600]                  # not aligned with batch_size=64
    memory = _model(solver=solver, kind=kind).fit(X, y, sample_weight=w)
    stream = _model(solver=solver, kind=kind).fit_stream(_pieces(X, y, cuts, w))
    assert_same_model(memory, stream, X)
    assert stream.n_samples_seen_ == X.shape[0] and stream.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(stream.predict(X), memory.predict(X), atol=1e-5)
    assert not hasattr(stream, "_statistics")         # freed, as by fit


def test_auto_exact_degrees_of_a_fit_from_pieces_leave_out_the_pairs():
    """On short sparse rows, "auto" takes the exact pairs of columns in a one-shot fit and
    degrees 0-1 in a fit from pieces (whose statistics of the pairs grow with n): that fit
    is the in-memory fit with exact_degrees=1."""
    X, y = _data("sparse")
    auto = NTKSketch(depth=2, n_components=48, sketch_degrees="all", random_state=0)
    make = lambda sketch: NTKRidge(sketch, solver="cg", gammas=(0.5, 1.0),  # noqa: E731
                                   batch_size=64)
    assert make(auto).fit(X, y).feature_map_.exact_degrees_ == (0, 1, 2)
    memory = make(clone(auto).set_params(exact_degrees=1)).fit(X, y)
    stream = make(auto).fit_stream(_pieces(X, y, [0, 70, 333, 600]))
    pieces = make(auto).partial_fit(X[:300], y[:300]).partial_fit(X[300:], y[300:])
    for model in (stream, pieces):
        assert model.feature_map_.exact_degrees_ == (0, 1)
        assert model.feature_map_.get_params()["exact_degrees"] == 1
    assert auto.exact_degrees == "auto"                  # the template is left as it was
    assert_same_model(memory, stream, X)
    np.testing.assert_allclose(pieces.predict(X), memory.predict(X), atol=1e-5)


def test_a_first_piece_holding_the_cosine_rows_chooses_the_degrees_of_fit(monkeypatch):
    """sketch_degrees="auto" reads the cosines of the first rows: a stream whose first
    piece holds them fits the model fit gives."""
    import fastntk.ntk_sketch as ntk_sketch_module

    monkeypatch.setattr(ntk_sketch_module, "_COSINE_ROWS", 60)
    X, y = _data("dense")
    make = lambda: NTKRidge(NTKSketch(depth=2, n_components=48, random_state=0),  # noqa: E731
                            solver="cg", gammas=(0.5, 1.0), batch_size=64)
    memory = make().fit(X, y)
    stream = make().fit_stream(_pieces(X, y, [0, 70, 333, 600]))
    assert memory.feature_map_.degrees_ != tuple(np.flatnonzero(memory.feature_map_.coef_["ntk"]))
    assert stream.feature_map_.degrees_ == memory.feature_map_.degrees_
    np.testing.assert_allclose(stream.predict(X), memory.predict(X), atol=1e-5)


@pytest.mark.parametrize("kind, solver", CASES)
def test_classifier_fit_stream_equals_fit(kind, solver):
    X, y = _data(kind)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    memory = _model(NTKRidgeClassifier, solver=solver, kind=kind).fit(X, labels)
    stream = _model(NTKRidgeClassifier, solver=solver, kind=kind).fit_stream(
        _pieces(X, labels, [0, 250, 600]), classes=[0, 1, 2])
    assert_same_model(memory, stream)
    np.testing.assert_array_equal(stream.predict(X), memory.predict(X))


def test_auto_streaming_solver_and_dual_refused():
    X, y = _data("sparse")
    assert _model().fit_stream(_pieces(X, y, [0, 300, 600])).solver_ == "cg"
    Xd, yd = _data("dense")
    assert _model().fit_stream(_pieces(Xd, yd, [0, 600])).solver_ == "primal"
    model = _model(solver="dual")
    with pytest.raises(ValueError, match="needs all the rows in memory"):
        model.fit_stream(_pieces(Xd, yd, [0, 600]))
    assert not hasattr(model, "coef_")
    assert not hasattr(NTKRidge("exact"), "fit_stream")


def test_fit_stream_bad_chunks_leave_the_model_unchanged():
    X, y = _data("dense")
    model = _model().fit(X[:300], y[:300])
    coef = model.coef_.copy()
    bad = [(X[:200], y[:200]), (X[200:400, :3], y[200:400])]
    with pytest.raises(ValueError, match="features"):
        model.fit_stream(iter(bad))
    with pytest.raises(ValueError, match="targets"):
        model.fit_stream(iter([(X[:200], y[:200]), (X[200:], np.c_[y[200:], y[200:]])]))
    with pytest.raises(ValueError, match="tuple"):
        model.fit_stream(iter([X[:200]]))
    with pytest.raises(ValueError, match="no rows"):
        model.fit_stream(iter([]))
    clf = NTKRidgeClassifier(NTKSketch(n_components=32, random_state=0))
    with pytest.raises(ValueError, match="not in `classes`"):
        clf.fit_stream(iter([(X[:200], (y[:200] > 0).astype(int) + 1)]), classes=[0, 1])
    np.testing.assert_array_equal(model.coef_, coef)
    assert not hasattr(clf, "coef_")


@pytest.mark.parametrize("kind, solver", CASES)
def test_merged_statistics_equal_one_pass(kind, solver):
    """Statistics of row ranges (each at its global offset), merged in any grouping."""
    X, y = _data(kind)
    Y = y[:, None]
    w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    fm = NTKSketch(depth=2, n_components=32, random_state=0).fit(X[:1])
    exact, tail = _feature_blocks(fm, X[:1])
    widths = (0 if exact is None else exact.shape[1], tail.shape[1])
    spec = RidgeSpec(alphas=np.array([0.01, 0.1, 1.0]),
                     gammas=np.array([(0.5, 0.5), (1.0, 1.0), (1.0, 0.0)]),
                     fit_intercept=True, criterion="auto")
    split = (fm.n_linear_features_, widths[0])
    module = get_streaming(solver)

    def stats(a, b):
        design = Design(lambda rows: _feature_blocks(fm, rows), X[a:b], Y[a:b], w[a:b], 50,
                        *widths, sp.issparse(exact), row_offset=a)
        return module.accumulate(design, spec)

    whole = module.solve_statistics(stats(0, 600), spec, *split)
    parts = [stats(a, b) for a, b in [(0, 4), (4, 130), (130, 131), (131, 600)]]
    left = stats(0, 0).merge(parts[0]).merge(parts[1])
    right = stats(0, 0).merge(parts[2]).merge(parts[3])
    merged = module.solve_statistics(stats(0, 0).merge(left).merge(right), spec, *split)
    assert ((merged.alpha, merged.gamma, merged.tail_gamma)
            == (whole.alpha, whole.gamma, whole.tail_gamma))
    tol = 1e-8 if solver == "primal" else 1e-4           # cg: its iterations' tolerance
    np.testing.assert_allclose(merged.coef, whole.coef, atol=tol * np.abs(whole.coef).max())
    np.testing.assert_allclose(merged.scores, whole.scores, rtol=tol)
    if solver == "cg":
        assert merged.state.n_held == whole.state.n_held == 120


def test_in_memory_fits_never_import_dask():
    """Dask is optional: only a Dask collection brings its module in."""
    code = ("import sys, numpy as np; from fastntk import NTKRidge, NTKSketch; "
            "X = np.random.default_rng(0).random((60, 3)); "
            "NTKRidge(NTKSketch(n_components=16, random_state=0)).fit(X, X[:, 0]).predict(X); "
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]; "
            "assert not loaded, loaded")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    # not from the checkout, whose unbuilt source tree would shadow the installed package
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300,
                   cwd=os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------- readers
def _svmlight_file(tmp_path, X, y, zero_based, name="train.svm", compress=False):
    path = tmp_path / name
    dump_svmlight_file(X, y, str(path), zero_based=zero_based)
    if compress:
        data = path.read_bytes()
        path.unlink()
        path = tmp_path / (name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    return path


def _concat(chunks):
    Xs, ys = zip(*chunks)
    stack = sp.vstack if sp.issparse(Xs[0]) else np.vstack
    return stack(Xs), np.concatenate(ys)


@pytest.mark.parametrize("zero_based, compress", [(True, False), (False, True)])
def test_svmlight_chunks_equal_the_whole_file(tmp_path, zero_based, compress):
    X, y = _data("sparse", n=250)
    path = _svmlight_file(tmp_path, X, y, zero_based, compress=compress)
    info = scan(path, chunk_rows=40)
    assert (info.n_rows, info.n_features, info.zero_based) == (250, 70, zero_based)
    chunks = list(read_chunks(path, chunk_rows=40, n_features=70, zero_based=zero_based))
    assert [c[0].shape[0] for c in chunks] == [40] * 6 + [10]
    Xr, yr = _concat(chunks)
    Xf, yf = load_svmlight_file(str(path), n_features=70, zero_based=zero_based)
    assert (Xr != Xf).nnz == 0
    np.testing.assert_allclose(Xr.toarray(), X.toarray(), rtol=1e-15)
    np.testing.assert_array_equal(yr, yf)


def test_svmlight_folded_indices(tmp_path):
    X, y = _data("sparse", n=100)
    path = _svmlight_file(tmp_path, X, y, zero_based=True)
    Xf, _ = _concat(read_chunks(path, chunk_rows=30, zero_based=True, fold_features=16))
    folded = np.zeros((100, 16))                     # column c lands in c mod 16
    np.add.at(folded.T, np.arange(70) % 16, X.toarray().T)
    assert Xf.shape == (100, 16)
    np.testing.assert_allclose(Xf.toarray(), folded)


def test_table_chunks_csv_npy_and_directories(tmp_path):
    X, y = _data("dense", n=90)
    table = np.c_[y, X]
    np.save(tmp_path / "b.npy", table[50:])
    csv = tmp_path / "a.csv"
    np.savetxt(csv, table[:50], delimiter=",", header="y,a,b,c,d,e", comments="")
    chunks = list(read_chunks(tmp_path, chunk_rows=16))
    assert [c[0].shape[0] for c in chunks] == [16, 16, 16, 2, 16, 16, 8]
    Xr, yr = _concat(chunks)
    np.testing.assert_allclose(Xr, X)
    np.testing.assert_allclose(yr, y)
    info = scan([csv, tmp_path / "b.npy"])
    assert (info.n_rows, info.n_features, info.zero_based) == (90, 5, None)
    # at predict time the width tells whether a label column is present
    np.save(tmp_path / "unlabelled.npy", X)
    ((Xu, yu),) = read_chunks(tmp_path / "unlabelled.npy", n_features=5)
    assert yu is None and Xu.shape == (90, 5)


def test_reader_errors(tmp_path):
    X, y = _data("sparse", n=50)
    path = _svmlight_file(tmp_path, X, y, zero_based=True)
    with pytest.raises(ValueError, match="number of features"):
        next(read_chunks(path, zero_based=True))
    with pytest.raises(ValueError, match="index base"):
        next(read_chunks(path, n_features=70))
    with pytest.raises(ValueError, match="there are 20 features"):
        list(read_chunks(path, n_features=20, zero_based=True))
    with pytest.raises(ValueError, match="index 0"):
        list(read_chunks(path, n_features=70, zero_based=False))
    bad = tmp_path / "bad.svm"
    bad.write_text("1 1:2\n1 1:2\n0 3:x\n")
    with pytest.raises(ValueError, match="line 3: malformed"):
        list(read_chunks(bad, chunk_rows=2, n_features=5, zero_based=False))
    nan = tmp_path / "nan.csv"
    nan.write_text("1,2\n1,nan\n")
    with pytest.raises(ValueError, match="NaN"):
        list(read_chunks(nan))
    np.savez(tmp_path / "x.npz", X=np.ones((3, 2)))
    with pytest.raises(ValueError, match="cannot be read in chunks"):
        list(read_chunks(tmp_path / "x.npz"))
    with pytest.raises(ValueError, match="no such file"):
        list(read_chunks(tmp_path / "missing.svm"))


def test_fit_from_a_file_holds_one_chunk_at_a_time(tmp_path):
    """Out of core: the reader yields chunks lazily, never more than chunk_rows rows, and
    the fit from them is the in-memory fit."""
    X, y = _data("sparse", n=600)
    path = _svmlight_file(tmp_path, X, y, zero_based=True)
    seen = []

    def watched(chunks):
        for X_chunk, y_chunk in chunks:
            seen.append(X_chunk.shape[0])
            yield X_chunk, y_chunk

    chunks = watched(read_chunks(path, chunk_rows=128, n_features=70, zero_based=True))
    stream = _model(solver="cg", kind="sparse").fit_stream(chunks)
    Xf, yf = load_svmlight_file(str(path), n_features=70, zero_based=True)
    memory = _model(solver="cg", kind="sparse").fit(Xf, yf)
    assert_same_model(memory, stream)
    assert max(seen) == 128 and sum(seen) == 600 and len(seen) == 5


# -------------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from fastntk.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_fit_stream_equals_the_in_memory_fit(tmp_path, capsys):
    """A directory of svmlight files, streamed (with its first pass), gives the model the
    in-memory command fits on their concatenation; predict --stream writes the same."""
    X, y = _data("sparse", n=900)
    parts = tmp_path / "train"
    parts.mkdir()
    for k, (a, b) in enumerate([(0, 350), (350, 800)]):
        dump_svmlight_file(X[a:b], y[a:b], str(parts / f"part{k}.svm"), zero_based=False)
    dump_svmlight_file(X[:800], y[:800], str(tmp_path / "all.svm"), zero_based=False)
    dump_svmlight_file(X[800:], y[800:], str(tmp_path / "test.svm"), zero_based=False)
    # degrees 0-1 exact, which a streamed fit takes for "auto"
    common = ["--task", "regression", "--n-components", 64, "--one-based", "--quiet",
              "--exact-degrees", 1]
    code, out, err = _cli(["fit", parts, "--stream", "--chunk-rows", 128,
                           "--out", tmp_path / "s.model", *common], capsys)
    assert code == 0, err
    assert _cli(["fit", tmp_path / "all.svm", "--out", tmp_path / "m.model", *common],
                capsys)[0] == 0
    for model in ("s", "m"):
        code, out, err = _cli(["predict", tmp_path / f"{model}.model", tmp_path / "test.svm",
                               "--stream", "--chunk-rows", 30, "--out",
                               tmp_path / f"{model}.txt", "--quiet"], capsys)
        assert code == 0, err
    streamed, memory = (np.loadtxt(tmp_path / f"{m}.txt") for m in ("s", "m"))
    assert streamed.shape == (100,)
    np.testing.assert_allclose(streamed, memory, atol=1e-5)
    code, out, _ = _cli(["fit", parts, "--stream", "--out", tmp_path / "v.model",
                         "--task", "regression", "--n-components", 64], capsys)
    assert code == 0 and "first pass" in out and "rows/s" in out and "one pass" in out


def test_cli_stream_errors(tmp_path, capsys):
    X, y = _data("sparse", n=50)
    data, out = tmp_path / "a.svm", tmp_path / "m"
    dump_svmlight_file(X, y, str(data), zero_based=True)
    regression = ["--task", "regression", "--out", out]
    for argv, fragment in [
        ([*regression, "--stream", "--model", "exact"], "needs a feature map"),
        ([*regression, "--fold-features", 8], "go with --stream"),
        (["--task", "classification", "--stream", "--classes", 1, "--out", out],
         "single class"),
        ([*regression, "--stream", "--n-features", 10, "--zero-based"], "10 features"),
    ]:
        code, _, err = _cli(["fit", data, *argv], capsys)
        assert code == 1 and fragment in err and "Traceback" not in err, err
        assert not out.exists()


def test_cross_block_accumulated_by_column_blocks(monkeypatch):
    """The cg statistics' sparse E^T T product is taken a few tail columns at a time
    (bounded temporaries); the result must not depend on the block width."""
    from fastntk._solvers import cg

    X, y = _data("sparse")
    whole = _model(solver="cg").fit(X, y)
    monkeypatch.setattr(cg, "_CROSS_BLOCK_BYTES", 8 * 71 * 5)   # 5 of 48 columns a block
    blocked = _model(solver="cg").fit(X, y)
    assert (blocked.alpha_, blocked.gamma_) == (whole.alpha_, whole.gamma_)
    np.testing.assert_allclose(blocked.coef_, whole.coef_, rtol=1e-10, atol=1e-12)
