"""Model files: round trips, refusal of anything that could run code, atomic saves, the
compatibility of files written by earlier versions, and the CLI's one-line errors."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.kernel_approximation import RBFSampler
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import fastntk
import fastntk._persistence as persistence
from fastntk import (CNTKSketch, NTKRandomFeatures, NTKRidge, NTKRidgeClassifier,
                     NTKSketch, load_model, save_model)
from fastntk.cli import main
from fastntk.sketches import SRHT, CountSketch, PolySketch, TensorSketch

DATA = os.path.join(os.path.dirname(__file__), "data")
ALPHAS = (0.1, 1.0, 10.0)

rng = np.random.default_rng(0)
X_SPARSE = sp.random(50, 400, density=0.03, format="csr", random_state=0)
X_DENSE = rng.standard_normal((50, 6))
IMAGES = rng.standard_normal((20, 4 * 4 * 2))
Y = rng.standard_normal(50)


def _models():
    return [
        (NTKRidge(NTKSketch(n_components=32, degree=3, random_state=0), alphas=ALPHAS),
         X_SPARSE),
        (NTKRidge(NTKSketch(n_components=32, degree=3, random_state=0), alphas=ALPHAS),
         X_DENSE),
        (NTKRidge(NTKSketch(n_components=16, depth=2, method="layerwise", random_state=0),
                  alphas=ALPHAS), X_DENSE),
        (NTKRidge(NTKSketch(n_components=40, degree=2, tail="nystroem", random_state=0),
                  alphas=ALPHAS), X_DENSE),
        (NTKRidge(NTKRandomFeatures(n_components=32, input_sketch=100,
                                    random_state=np.random.RandomState(3)),
                  alphas=ALPHAS), X_SPARSE),
        (NTKRidgeClassifier(NTKRandomFeatures(n_components=32, leverage=True,
                                              random_state=0), alphas=ALPHAS), X_DENSE),
        (NTKRidge(CNTKSketch(n_components=16, depth=2, image_shape=(4, 4, 2),
                             random_state=0), alphas=ALPHAS), IMAGES),
        (NTKRidge("exact", alphas=ALPHAS), X_SPARSE),
        (NTKRidge(make_pipeline(StandardScaler(), RBFSampler(n_components=20,
                                                              random_state=0)),
                  alphas=ALPHAS), X_DENSE),
    ]


@pytest.mark.parametrize("index", range(len(_models())))
def test_every_model_round_trips(tmp_path, index):
    model, X = _models()[index]
    y = Y[:X.shape[0]]
    model.fit(X, y > 0 if isinstance(model, NTKRidgeClassifier) else y)
    path = tmp_path / "model.fastntk"
    save_model(model, path, {"task": "x", "shape": (1, 2), "values": np.arange(3)})
    loaded, meta = load_model(path)
    assert meta["task"] == "x" and meta["shape"] == (1, 2)
    np.testing.assert_array_equal(meta["values"], np.arange(3))
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with zipfile.ZipFile(path) as archive:  # arrays and JSON, no pickle anywhere
        assert all(n == "model.json" or n.endswith(".npy") for n in archive.namelist())


@pytest.mark.parametrize("estimator", [
    NTKSketch(n_components=16, random_state=0), CountSketch(8, random_state=0),
    SRHT(8, random_state=0), PolySketch(2, 8, random_state=0),
    TensorSketch(2, 8, random_state=0)])
def test_transformers_round_trip(tmp_path, estimator):
    estimator.fit(X_SPARSE)
    save_model(estimator, tmp_path / "m")
    loaded, meta = load_model(tmp_path / "m")
    assert meta == {}
    before, after = estimator.transform(X_SPARSE), loaded.transform(X_SPARSE)
    if sp.issparse(before):
        before, after = before.toarray(), after.toarray()
    np.testing.assert_array_equal(after, before)


def test_partial_fit_continues_after_a_round_trip(tmp_path):
    model = NTKRidge(NTKSketch(n_components=16, random_state=0), alphas=ALPHAS)
    model.partial_fit(X_DENSE[:30], Y[:30])
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    model.partial_fit(X_DENSE[30:], Y[30:])
    loaded.partial_fit(X_DENSE[30:], Y[30:])
    np.testing.assert_array_equal(loaded.predict(X_DENSE), model.predict(X_DENSE))


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7])
def test_the_fixture_of_every_format_loads_and_predicts_the_same(version):
    """Files saved in format 2 (fastntk 0.1.0.dev0), 3 (exact pairs of columns, the
    tail weight on the exact degrees >= 2), 4 (the upper triangle of the sparse
    E^T S E of solver='cg'), 5 (a weight of the tail apart from the exact degrees'), 6
    (pairs of columns held by one row dropped) and 7 (NTKSketch's Nyström tail): every
    later version must read them
    (tests/data/make_model_fixture.py regenerates those of the current format)."""
    expected = np.load(os.path.join(DATA, f"model-format-{version}-expected.npz"))
    X_sparse = sp.load_npz(os.path.join(DATA, f"model-format-{version}-X_sparse.npz"))
    for name, X in (("ridge_sketch_csr", X_sparse), ("classifier_rf", expected["X_dense"])):
        model, meta = load_model(os.path.join(DATA, f"model-format-{version}-{name}.fastntk"))
        assert meta["name"] == name
        if name == "ridge_sketch_csr" and version < 4:    # sketched every degree then
            sketch = model.feature_map_
            assert sketch.sketch_degrees == "all"
            widths = sketch.widths_["ntk"]
            assert tuple(sketch.degrees_) == tuple(
                j for j in np.flatnonzero(sketch.coef_["ntk"])
                if j in sketch.exact_degrees_ or widths[j] > 0)
        if name == "ridge_sketch_csr":                   # every pair seen kept before 6
            assert model.feature_map_.min_pair_df == (1 if version < 6 else 2)
            assert model.feature_map_.tail_ == "sketch"
        if version < 5:                                  # one weight for both then
            assert model.tail_gamma_ == model.gamma_
            assert model.gamma_candidates_.shape == (model.cv_values_.shape[0], 2)
        np.testing.assert_allclose(model.predict(X), expected[f"{name}_predictions"],
                                   rtol=1e-10, atol=1e-12)


def _drop_attributes(node, names):
    """The JSON tree of a model file without the attributes ``names`` in any object."""
    if isinstance(node, dict):
        if "object" in node and isinstance(node.get("state"), dict):
            state = node["state"]
            state["dict"] = [kv for kv in state["dict"] if kv[0] not in names]
        return {k: _drop_attributes(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_drop_attributes(v, names) for v in node]
    return node


def test_a_format_2_cg_state_is_converted_and_continues(tmp_path):
    """Format 2 stored no diagonal of E^T E (``sq_e``) and no ``n_linear_features_``:
    loading converts them, and partial_fit continues as from the model itself."""
    X = sp.random(80, 40, density=0.1, format="csr", random_state=0)
    y = np.asarray(X.sum(axis=1)).ravel()
    model = NTKRidge(NTKSketch(n_components=16, random_state=0), solver="cg",
                     alphas=(0.1, 1.0)).partial_fit(X[:60], y[:60])
    path = tmp_path / "m.fastntk"
    save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "model.json"}
        tree = json.loads(archive.read("model.json"))
    tree = _drop_attributes(tree, {"sq_e", "n_linear_features_"})
    tree["format_version"] = 2
    old = tmp_path / "old.fastntk"
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr("model.json", json.dumps(tree))
        for name, data in members.items():
            archive.writestr(name, data)
    loaded, _ = load_model(old)
    assert loaded.feature_map_.n_linear_features_ == model.feature_map_.n_linear_features_
    np.testing.assert_array_equal(loaded._statistics.sq_e, model._statistics.sq_e)
    model.partial_fit(X[60:], y[60:])
    loaded.partial_fit(X[60:], y[60:])
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-12, atol=1e-12)


def test_a_format_3_cg_state_with_the_whole_exact_gram_is_converted_and_continues(tmp_path):
    """Format 3 stored the whole sparse E^T S E, format 4 its upper triangle: loading a
    format-3 file converts it, and partial_fit continues as from the model itself."""
    X = sp.random(80, 400, density=0.02, format="csr", random_state=0)
    y = np.asarray(X.sum(axis=1)).ravel()
    model = NTKRidge(NTKSketch(n_components=16, random_state=0), solver="cg",
                     alphas=(0.1, 1.0)).partial_fit(X[:60], y[:60])
    stats = model._statistics
    upper = stats.ete
    assert sp.issparse(upper) and sp.tril(upper, k=-1).nnz == 0
    stats.ete = (upper + sp.triu(upper, k=1).T).tocsr()        # what format 3 held
    path = tmp_path / "old.fastntk"
    save_model(model, path)
    stats.ete = upper
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "model.json"}
        tree = json.loads(archive.read("model.json"))
    tree["format_version"] = 3
    _archive(path, tree, members.items())
    loaded, _ = load_model(path)
    assert (loaded._statistics.ete != upper).nnz == 0
    model.partial_fit(X[60:], y[60:])
    loaded.partial_fit(X[60:], y[60:])
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["polyfit", "layerwise"])
def test_a_format_6_dense_sketch_predicts_as_before(tmp_path, method):
    """Format 6 had no ``tail_`` (every tail was sketched): a dense model of it, the
    layerwise one included, loads and predicts as the model itself."""
    model = NTKRidge(NTKSketch(n_components=16, method=method, random_state=0),
                     alphas=ALPHAS).fit(X_DENSE, Y)
    path = tmp_path / "m.fastntk"
    save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "model.json"}
        tree = json.loads(archive.read("model.json"))
    tree = _drop_attributes(tree, {"tail_"})
    tree["format_version"] = 6
    _archive(path, tree, members.items())
    loaded, _ = load_model(path)
    assert loaded.feature_map_.tail_ == "sketch"
    np.testing.assert_array_equal(loaded.predict(X_DENSE), model.predict(X_DENSE))


# ------------------------------------------------------------------ nothing runs code
class _RunsCode:
    """Unpickling it creates the file named by ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _archive(path, tree, members=()):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", json.dumps(tree))
        for name, data in members:
            archive.writestr(name, data)


def _header(model):
    return {"format": "fastntk-model", "format_version": 2, "fastntk_version": "0",
            "metadata": {"dict": []}, "encoding": "json", "model": model}


def test_crafted_files_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_RunsCode(marker))
    cases = {}
    # a pickle, like the files of fastntk 0.1.0.dev0
    cases["pickle"] = (payload, "can run code")
    # a class outside the allow-list, named by module path
    cases["class"] = (_header({"object": "os.system", "state": {"dict": []}}),
                      "not one of the classes")
    cases["builtins"] = (_header({"object": "builtins.eval", "state": {"dict": []}}),
                         "not one of the classes")
    # an array member holding a pickle (an object array)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([_RunsCode(marker)], dtype=object),
                              allow_pickle=True)
    cases["object array"] = (_header({"array": 0}), "array member",
                             [("arrays/0.npy", buffer.getvalue())])
    # a model stored as a pickle, without trusted=True
    pickled = _header(None)
    pickled["encoding"] = "pickle"
    cases["pickled model"] = (pickled, "trusted=True", [("model.pkl", payload)])
    for name, (content, message, *members) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            _archive(path, content, *members)
        with pytest.raises(ValueError, match=message):
            load_model(path)
        assert not marker.exists(), name


def test_a_pickle_needs_both_flags(tmp_path):
    model = NTKRidge(FunctionTransformer(np.tanh), alphas=ALPHAS).fit(X_DENSE, Y)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    save_model(model, tmp_path / "m", allow_pickle=True)
    with pytest.raises(ValueError, match="trusted=True"):
        load_model(tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(loaded.predict(X_DENSE), model.predict(X_DENSE))


# -------------------------------------------------------------------- atomic saves
def test_an_interrupted_save_leaves_the_old_model_intact(tmp_path, monkeypatch):
    old = NTKRidge(NTKSketch(n_components=16, random_state=0), alphas=ALPHAS).fit(X_DENSE, Y)
    new = NTKRidge(NTKSketch(n_components=16, random_state=1), alphas=ALPHAS).fit(X_DENSE, Y)
    path = tmp_path / "model.fastntk"
    save_model(old, path)
    content = path.read_bytes()
    write_array = np.lib.format.write_array
    calls = []

    def interrupted(fp, array, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C half-way through the arrays
            fp.write(b"partial")
            raise KeyboardInterrupt
        return write_array(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(new, path)
    monkeypatch.undo()
    assert path.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["model.fastntk"]  # no temporary file left
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X_DENSE), old.predict(X_DENSE))
    save_model(new, path)
    np.testing.assert_array_equal(load_model(path)[0].predict(X_DENSE),
                                  new.predict(X_DENSE))


def test_a_newer_format_is_refused_with_both_versions(tmp_path, monkeypatch):
    save_model(NTKSketch(n_components=8).fit(X_DENSE), tmp_path / "m")
    saved = persistence.FORMAT_VERSION
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 1)
    with pytest.raises(persistence.ModelVersionError,
                       match=rf"saved by fastntk \S+ in model format {saved}; this fastntk \S+ "
                             r"reads formats up to 1: upgrade fastntk"):
        load_model(tmp_path / "m")


# --------------------------------------------------------------- CLI: one-line errors
def _cli_error(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastntk: error:"), err
    return lines[0]


def test_cli_refuses_bad_model_files_in_one_line(tmp_path, capsys):
    train = tmp_path / "train.npy"
    np.save(train, np.column_stack([Y, X_DENSE]))
    good = tmp_path / "good.fastntk"
    assert main(["fit", str(train), "--task", "regression", "--n-components", "16",
                 "--out", str(good), "--quiet"]) == 0
    content = good.read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(content[:len(content) // 2])
    assert "truncated or corrupt" in _cli_error(["predict", truncated, train], capsys)

    with zipfile.ZipFile(good) as archive:
        tree = json.loads(archive.read("model.json"))
        members = [(n, archive.read(n)) for n in archive.namelist() if n != "model.json"]
    for key, message in (("format_version", "no format_version"),
                         ("fastntk_version", "no fastntk_version"),
                         ("metadata", "no metadata")):
        broken = dict(tree)
        del broken[key]
        path = tmp_path / f"no-{key}"
        _archive(path, broken, members)
        assert message in _cli_error(["predict", path, train], capsys)

    no_cli_metadata = tmp_path / "no-cli-metadata"
    save_model(NTKRidge(RBFSampler(n_components=8), alphas=ALPHAS).fit(X_DENSE, Y),
               no_cli_metadata)
    assert "without the metadata of fastntk fit" in _cli_error(
        ["predict", no_cli_metadata, train], capsys)

    transformer = tmp_path / "transformer"  # a valid header, then no estimator
    save_model(NTKSketch(n_components=8).fit(X_DENSE), transformer,
               {"task": "regression", "n_features": 6})
    assert "not a fitted model" in _cli_error(["predict", transformer, train], capsys)
    nothing = tmp_path / "nothing"
    save_model(None, nothing, {"task": "regression", "n_features": 6})
    assert "holds a NoneType" in _cli_error(["predict", nothing, train], capsys)
    assert good.read_bytes() == content


def test_public_names():
    assert fastntk.save_model is save_model and fastntk.load_model is load_model
    assert "NTKRidge" in persistence.CLASSES


def test_a_parameter_added_later_takes_its_default(tmp_path):
    model = NTKRidge(RBFSampler(n_components=8, random_state=0), alphas=ALPHAS).fit(X_DENSE, Y)
    del model.n_jobs  # as saved by a release without it
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.get_params()["n_jobs"] is None
    np.testing.assert_array_equal(loaded.predict(X_DENSE), model.predict(X_DENSE))


def test_a_format_1_pickle_loads_only_when_trusted(tmp_path):
    model = NTKRidge(RBFSampler(n_components=8, random_state=0), alphas=ALPHAS).fit(X_DENSE, Y)
    path = tmp_path / "old.pkl"
    with open(path, "wb") as f:  # what fastntk 0.1.0.dev0 wrote
        pickle.dump({"format": "fastntk-model/1", "fastntk_version": fastntk.__version__,
                     "metadata": {"task": "regression"}}, f)
        pickle.dump(model, f)
    with pytest.raises(ValueError, match="format 1.*trusted=True"):
        load_model(path)
    loaded, meta = load_model(path, trusted=True)
    assert meta == {"task": "regression"}
    np.testing.assert_array_equal(loaded.predict(X_DENSE), model.predict(X_DENSE))


def test_cli_fit_checks_the_directory_of_an_atomic_save(tmp_path, capsys, monkeypatch):
    train, out = tmp_path / "train.npy", tmp_path / "model.fastntk"
    np.save(train, np.column_stack([Y, X_DENSE]))
    out.write_bytes(b"an old model")
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        os.fspath(path) != str(tmp_path) and access(path, mode)))
    assert "permission denied" in _cli_error(["fit", train, "--task", "regression",
                                              "--out", out], capsys)
    assert out.read_bytes() == b"an old model"
