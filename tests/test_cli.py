"""End-to-end tests of the ``fastntk`` command line on small files."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

import fastntk._persistence as persistence
from fastntk.cli import main


def _regression_data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[np.abs(X) < 0.7] = 0.0
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    return X, y


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(code, err, fragment):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastntk: error:") and fragment in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("zero_based", [False, True])
def test_svmlight_fit_predict_round_trip(tmp_path, capsys, zero_based):
    X, y = _regression_data()
    train, test, model = tmp_path / "train.svm", tmp_path / "test.svm", tmp_path / "m.pkl"
    dump_svmlight_file(X[:45], y[:45], str(train), zero_based=zero_based)
    dump_svmlight_file(X[45:], y[45:], str(test), zero_based=zero_based)
    code, out, _ = _run(["fit", train, "--test", test, "--model", "exact", "--depth", "2",
                         "--task", "regression", "--out", model], capsys)
    assert code == 0
    assert "45 rows x 8 features" in out and "test (15 rows): RMSE" in out
    predictions = tmp_path / "pred.txt"
    code, _, err = _run(["predict", model, test, "--out", predictions], capsys)
    assert code == 0 and "RMSE" in err
    estimator, meta = persistence.load_model(model)
    assert meta["zero_based"] is zero_based
    np.testing.assert_allclose(np.loadtxt(predictions), estimator.predict(X[45:]), rtol=1e-9)


def test_npz_classification_with_random_features(tmp_path, capsys):
    X, y = _regression_data(n=80)
    labels = (y > np.median(y)).astype(float) + 1.0         # classes 1 and 2
    train, test, model = tmp_path / "train.npz", tmp_path / "test.npz", tmp_path / "m.pkl"
    sp.save_npz(train, sp.csr_matrix(np.column_stack([labels[:60], X[:60]])))
    sp.save_npz(test, sp.csr_matrix(X[60:]))                 # no label column
    code, out, _ = _run(["fit", train, "--model", "ntk-rf", "--n-components", "64",
                         "--task", "classification", "--out", model, "--quiet"], capsys)
    assert code == 0 and out == ""
    code, out, _ = _run(["predict", model, test, "--quiet"], capsys)
    assert code == 0
    predicted = np.array(out.split(), dtype=float)
    estimator, _ = persistence.load_model(model)
    np.testing.assert_array_equal(predicted, estimator.predict(sp.csr_matrix(X[60:])))
    assert set(predicted) <= {1.0, 2.0}


def test_csv_with_header_and_npy_give_the_same_model(tmp_path, capsys):
    X, y = _regression_data(n=40, d=5)
    table = np.column_stack([y, X])
    csv, npy = tmp_path / "train.csv", tmp_path / "train.npy"
    np.savetxt(csv, table, delimiter=",", header="y,a,b,c,d,e", comments="")
    np.save(npy, table)
    outputs = []
    for path in (csv, npy):
        model = tmp_path / f"{path.suffix[1:]}.pkl"
        assert _run(["fit", path, "--model", "exact", "--task", "regression",
                     "--out", model, "--quiet"], capsys)[0] == 0
        code, out, _ = _run(["predict", model, npy, "--quiet"], capsys)   # label column ignored
        assert code == 0
        outputs.append(np.array(out.split(), dtype=float))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-9)


def test_errors_are_one_line(tmp_path, capsys):
    X, y = _regression_data(n=30, d=4)
    train, model = tmp_path / "train.svm", tmp_path / "m.pkl"
    dump_svmlight_file(X, y, str(train), zero_based=False)
    _assert_one_line_error(*_run(["fit", tmp_path / "missing.svm", "--task", "regression",
                                  "--out", model], capsys)[::2], "no such file")

    bad = tmp_path / "bad.svm"
    lines = train.read_text().splitlines()
    lines[2] = "1.5 3:abc 4:1.0"
    bad.write_text("\n".join(lines) + "\n")
    _assert_one_line_error(*_run(["fit", bad, "--task", "regression", "--out", model],
                                 capsys)[::2], "line 3")

    single = tmp_path / "single.svm"
    dump_svmlight_file(X, np.ones(30), str(single), zero_based=False)
    _assert_one_line_error(*_run(["fit", single, "--model", "exact", "--task",
                                  "classification", "--out", model], capsys)[::2],
                           "single class")

    assert _run(["fit", train, "--model", "exact", "--task", "regression", "--out", model,
                 "--quiet"], capsys)[0] == 0
    wide = tmp_path / "wide.npy"
    np.save(wide, np.hstack([X, X]))
    _assert_one_line_error(*_run(["predict", model, wide], capsys)[::2], "wrong width")
    wide_svm = tmp_path / "wide.svm"
    dump_svmlight_file(np.hstack([X, X]), y, str(wide_svm), zero_based=False)
    _assert_one_line_error(*_run(["predict", model, wide_svm], capsys)[::2], "wrong width")
    _assert_one_line_error(*_run(["predict", train, train], capsys)[::2],
                           "not a fastntk model")


def test_version_mismatch_is_one_line(tmp_path, capsys, monkeypatch):
    X, y = _regression_data(n=30, d=4)
    train, model = tmp_path / "train.npy", tmp_path / "m.pkl"
    np.save(train, np.column_stack([y, X]))
    assert _run(["fit", train, "--model", "exact", "--task", "regression", "--out", model,
                 "--quiet"], capsys)[0] == 0
    monkeypatch.setattr(persistence, "__version__", "99.0")
    _assert_one_line_error(*_run(["predict", model, train], capsys)[::2],
                           "saved by fastntk")


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "fastntk", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("fastntk ")
