"""The Dask backend: fits on dask arrays equal the in-memory fits, on a LocalCluster.

Every partition's statistics are computed by a worker process and tree-reduced; the model
must be the in-memory one with the same solver (to rounding) whatever the partitioning,
predictions of a dask array must be lazy and equal, and a worker lost mid-fit must get
its tasks recomputed, never a partial model.
"""
import os

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.kernel_approximation import RBFSampler

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from _same_model import assert_same_model, interaction_data  # noqa: E402
from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch  # noqa: E402

#: the tail of these small sparse designs is below its noise: keep it (see conftest)
pytestmark = pytest.mark.usefixtures("scored_tail")

CASES = [("dense", "primal"), ("dense", "cg"), ("sparse", "cg")]


def _data(kind, n=700, seed=0):
    return interaction_data(kind, n, 60, 0.1, seed)


def _dask(X, rows):
    return da.from_array(X, chunks=(rows, -1), asarray=False)


def _model(estimator=NTKRidge, solver="auto", feature_map=None, kind="dense"):
    # every degree sketched: with "auto" the first partition's rows choose the degrees;
    # sparse rows: degrees 0-1 exact, the map a fit from pieces draws (in memory, "auto"
    # would take the pairs of columns of these short rows)
    feature_map = feature_map or NTKSketch(
        depth=2, n_components=48, sketch_degrees="all", random_state=0,
        exact_degrees=1 if kind == "sparse" else "auto")
    # fits from pieces score alpha by GCV (one pass); the in-memory primal fit is asked
    # for the same, instead of its default leave-one-out
    criterion = "gcv" if solver == "primal" else "auto"
    return estimator(feature_map, solver=solver, gammas=(0.5, 1.0), batch_size=64,
                     criterion=criterion)


def test_default_scheduler_without_a_client():
    """No client: Dask's own scheduler runs the same map-reduce."""
    X, y = _data("sparse")
    with dask.config.set(scheduler="threads"):
        model = _model(solver="cg", kind="sparse").fit(_dask(X, 150),
                                                       da.from_array(y, chunks=150))
    assert_same_model(_model(solver="cg", kind="sparse").fit(X, y), model)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.mark.parametrize("kind, solver", CASES)
def test_regressor_equals_the_in_memory_fit(client, kind, solver):
    X, y = _data(kind)
    w = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    memory = _model(solver=solver, kind=kind).fit(X, y, sample_weight=w)
    model = _model(solver=solver, kind=kind).fit(_dask(X, 160), da.from_array(y, chunks=100),
                                      sample_weight=da.from_array(w, chunks=300))
    assert_same_model(memory, model)
    assert model.n_samples_seen_ == X.shape[0] and model.n_features_in_ == X.shape[1]
    predicted = model.predict(_dask(X, 250))
    assert isinstance(predicted, da.Array) and predicted.shape == (X.shape[0],)
    np.testing.assert_allclose(predicted.compute(), memory.predict(X), atol=1e-5)


@pytest.mark.parametrize("kind, solver", CASES)
def test_classifier_equals_the_in_memory_fit(client, kind, solver):
    X, y = _data(kind)
    labels = np.array(["a", "b", "c"])[np.digitize(y, np.quantile(y, [0.33, 0.66]))]
    memory = _model(NTKRidgeClassifier, solver=solver, kind=kind).fit(X, labels)
    model = _model(NTKRidgeClassifier, solver=solver, kind=kind).fit(
        _dask(X, 200), da.from_array(labels, chunks=200))
    assert_same_model(memory, model)
    np.testing.assert_array_equal(model.classes_, memory.classes_)
    np.testing.assert_array_equal(model.predict(_dask(X, 300)).compute(), memory.predict(X))
    scores = model.decision_function(_dask(X, 300))
    assert scores.shape == (X.shape[0], 3)
    np.testing.assert_allclose(scores.compute(), memory.decision_function(X), atol=1e-5)


def test_every_partitioning_gives_the_same_model(client):
    """Uneven chunks, an empty chunk, column chunks (rechunked) and many small chunks."""
    X, y = _data("sparse", n=900)
    yd = da.from_array(y, chunks=450)
    reference = _model(solver="cg", kind="sparse").fit(X, y)
    uneven = da.concatenate([_dask(X[:1], 1), _dask(X[1:1], 1), _dask(X[1:404], 403),
                             _dask(X[404:], 100)])
    for Xd in (uneven, da.from_array(X, chunks=(77, 20), asarray=False), _dask(X, 41)):
        assert_same_model(reference, _model(solver="cg", kind="sparse").fit(Xd, yd))
    Xdense, ydense = _data("dense", n=900)
    assert_same_model(_model(solver="primal").fit(Xdense, ydense),
                       _model(solver="primal").fit(da.from_array(Xdense, chunks=(100, 2)),
                                                   ydense))


class _DiesOnce(TransformerMixin, BaseEstimator):
    """RBF features; the first transform run on a Dask worker kills that worker's process
    (the flag file, created atomically, makes it happen exactly once)."""

    def __init__(self, flag=None):
        self.flag = flag

    def fit(self, X, y=None):
        self.rbf_ = RBFSampler(n_components=40, random_state=0).fit(X)
        return self

    def transform(self, X):
        try:
            distributed.get_worker()
        except ValueError:                       # on the client: no worker to kill
            return self.rbf_.transform(X)
        try:
            os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.rbf_.transform(X)
        os._exit(1)


def test_a_worker_killed_mid_fit_gets_its_tasks_recomputed(client, tmp_path):
    X, y = _data("dense")
    flag = str(tmp_path / "killed")
    reference = _model(solver="primal", feature_map=_DiesOnce(flag)).fit(X, y)
    assert not os.path.exists(flag)
    model = _model(solver="primal", feature_map=_DiesOnce(flag))
    model.fit(_dask(X, 100), da.from_array(y, chunks=100))
    assert os.path.exists(flag)                  # a worker did die during the fit
    assert_same_model(reference, model)
    client.wait_for_workers(2, timeout=60)


def test_a_failing_partition_raises_and_leaves_the_model_unchanged(client):
    X, y = _data("dense")
    model = _model(solver="primal").fit(X, y)
    coef = model.coef_.copy()
    bad = X.copy()
    bad[650, 2] = np.nan                         # in the last partition only
    with pytest.raises(ValueError, match="NaN"):
        model.fit(_dask(bad, 100), da.from_array(y, chunks=100))
    np.testing.assert_array_equal(model.coef_, coef)


def test_bag_of_texts_through_a_hashing_vectorizer(client):
    import dask.bag as db
    from sklearn.feature_extraction.text import HashingVectorizer

    from fastntk import bag_to_dask_array

    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "film", "plot", "great", "dull", "actor", "score"])
    texts = [" ".join(rng.choice(words, 6)) for _ in range(400)]
    labels = np.array([t.count("good") + t.count("great") - t.count("bad") for t in texts])
    records = db.from_sequence(list(zip(texts, labels)), npartitions=5)
    hashing = HashingVectorizer(n_features=2**8, alternate_sign=False)
    X = bag_to_dask_array(records.pluck(0), hashing.transform)
    y = bag_to_dask_array(records.pluck(1), np.asarray)
    assert X.shape == (400, 256) and sp.issparse(X._meta) and X.numblocks == (5, 1)
    model = _model(solver="cg", kind="sparse").fit(X, y)
    assert_same_model(_model(solver="cg", kind="sparse").fit(hashing.transform(texts), labels),
                      model,
                      hashing.transform(texts))


def test_auto_exact_degrees_of_a_dask_fit_leave_out_the_pairs(client):
    """A Dask fit is a fit from pieces: on short sparse rows "auto" takes degrees 0-1,
    where the in-memory fit takes the exact pairs of columns too."""
    X, y = _data("sparse")
    auto = NTKSketch(depth=2, n_components=48, sketch_degrees="all", random_state=0)
    model = _model(solver="cg", feature_map=auto).fit(_dask(X, 160), da.from_array(y, 160))
    assert model.feature_map_.exact_degrees_ == (0, 1)
    assert _model(solver="cg", feature_map=auto).fit(X, y).feature_map_.exact_degrees_ == (
        0, 1, 2)
    assert_same_model(_model(solver="cg", kind="sparse").fit(X, y), model)


def test_dask_transform_is_lazy_and_equal(client):
    from fastntk import dask_transform

    X, _ = _data("sparse")
    sketch = NTKSketch(n_components=32, random_state=0).fit(X)
    features = dask_transform(sketch, _dask(X, 300))
    assert isinstance(features, da.Array) and features.shape == (700, sketch.transform(
        X[:1]).shape[1])
    computed = features.compute()
    assert sp.issparse(computed)
    np.testing.assert_allclose(computed.toarray(), sketch.transform(X).toarray(), atol=1e-12)


def test_bad_dask_input(client):
    X, y = _data("dense")
    Xd, yd = _dask(X, 100), da.from_array(y, chunks=100)
    model = _model(solver="dual")
    with pytest.raises(ValueError, match="needs all the rows in memory"):
        model.fit(Xd, yd)
    with pytest.raises(ValueError, match="needs all the rows"):
        NTKRidge("exact").fit(Xd, yd)
    with pytest.raises(ValueError, match="unknown size"):
        _model().fit(Xd[Xd[:, 0] > 0], yd)
    with pytest.raises(ValueError, match="must have 700 rows"):
        _model().fit(Xd, yd[:50])
    with pytest.raises(ValueError, match="sample_weight must have 700 rows"):
        _model().fit(Xd, yd, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="must be a dask.array"):
        _model().fit(X, yd)
    with pytest.raises(ValueError, match="2-D"):
        _model().fit(da.from_array(y, chunks=100), yd)
    assert not hasattr(model, "coef_")
