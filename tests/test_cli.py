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
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                   # argparse's usage errors
        code = exc.code
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
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 1)  # an older fastntk reading it
    _assert_one_line_error(*_run(["predict", model, train], capsys)[::2],
                           "upgrade fastntk to load it")


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "fastntk", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("fastntk ")


# ------------------------------------------------------------------ every bad case
def _write_bad_inputs(tmp_path):
    """Files of every malformed kind the CLI must report in one line: name -> path."""
    X, y = _regression_data(n=30, d=4)
    files = {}
    files["empty.svm"] = tmp_path / "empty.svm"
    files["empty.svm"].write_text("")
    files["comments.svm"] = tmp_path / "comments.svm"
    files["comments.svm"].write_text("# nothing but a comment\n\n")
    files["huge-index.svm"] = tmp_path / "huge-index.svm"
    files["huge-index.svm"].write_text("1 2147483648:1.0\n0 1:2.0\n")
    files["1d.npz"] = tmp_path / "1d.npz"
    np.savez(files["1d.npz"], X=np.arange(5.0), y=np.arange(5.0))
    files["complex.npy"] = tmp_path / "complex.npy"
    np.save(files["complex.npy"], np.column_stack([y, X]) * (1 + 1j))
    files["complex.npz"] = tmp_path / "complex.npz"
    np.savez(files["complex.npz"], X=X * 1j, y=y)
    for name, corrupt in [("bad-index.npz", lambda M: M.indices.__setitem__(2, 99)),
                          ("bad-indptr.npz", lambda M: M.indptr.__setitem__(2, 0))]:
        matrix = sp.csr_matrix(np.column_stack([y, X]))
        corrupt(matrix)
        files[name] = tmp_path / name
        sp.save_npz(files[name], matrix, compressed=False)
    files["empty.csv"] = tmp_path / "empty.csv"
    files["empty.csv"].write_text("")
    files["nan.csv"] = tmp_path / "nan.csv"
    table = np.column_stack([y, X])
    table[3, 2] = np.nan
    np.savetxt(files["nan.csv"], table, delimiter=",")
    files["good.npy"] = tmp_path / "good.npy"
    np.save(files["good.npy"], np.column_stack([y, X]))
    return files


BAD_CASES = {
    "empty svmlight, classification": (["fit", "empty.svm", "--task", "classification"],
                                       "no data rows"),
    "comment-only svmlight": (["fit", "comments.svm", "--task", "classification"],
                              "no data rows"),
    "svmlight index >= 2^31": (["fit", "huge-index.svm", "--task", "regression"],
                               "feature index 2147483648"),
    "huge --n-components": (["fit", "good.npy", "--task", "regression", "--n-components",
                             str(10**12)], "of memory"),
    "1-D X in .npz": (["fit", "1d.npz", "--task", "regression"], "2-D"),
    "complex .npy": (["fit", "complex.npy", "--task", "regression"], "complex"),
    "complex .npz": (["fit", "complex.npz", "--task", "regression"], "complex"),
    "index out of range in .npz": (["fit", "bad-index.npz", "--task", "regression"],
                                   "malformed sparse matrix"),
    "decreasing indptr in .npz": (["fit", "bad-indptr.npz", "--task", "regression"],
                                  "malformed sparse matrix"),
    "empty csv (numpy warns)": (["fit", "empty.csv", "--task", "regression"], "no data rows"),
    "NaN in csv": (["fit", "nan.csv", "--task", "regression"], "NaN"),
    "a directory as data": (["fit", ".", "--task", "regression"], "is a directory"),
    "a missing file": (["fit", "missing.svm", "--task", "regression"], "no such file"),
    "--out is a directory": (["fit", "good.npy", "--task", "regression", "--out", "."],
                             "is a directory"),
    "--out in a missing directory": (["fit", "good.npy", "--task", "regression", "--out",
                                      "nowhere/m.pkl"], "does not exist"),
    "bad --test": (["fit", "good.npy", "--task", "regression", "--test", "nan.csv"], "NaN"),
    "a usage error": (["fit", "good.npy", "--task", "regression", "--depth", "0"],
                      "positive integer"),
    "a directory as model": (["predict", ".", "good.npy"], "is a directory"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_every_bad_input_is_one_line(tmp_path, capsys, monkeypatch, case):
    _write_bad_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv, fragment = BAD_CASES[case]
    if argv[0] == "fit" and "--out" not in argv:
        argv = argv + ["--out", "m.pkl"]
    if case in ("--out is a directory", "--out in a missing directory", "bad --test"):
        # these are found before any work is done, and nothing is written
        import fastntk.cli as cli

        monkeypatch.setattr(cli, "build_model", lambda *a: pytest.fail("fitted anyway"))
    code, out, err = _run(argv, capsys)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    assert lines[0].startswith("fastntk") and "error:" in lines[0] and fragment in lines[0]
    assert "Traceback" not in err and not (tmp_path / "m.pkl").exists()


def test_warnings_before_an_error_are_not_printed(tmp_path):
    # a real process: pytest would otherwise capture the warnings itself
    empty = tmp_path / "empty.csv"
    empty.write_text("")                                   # numpy warns: no data
    done = subprocess.run([sys.executable, "-W", "always", "-m", "fastntk", "fit", str(empty),
                           "--task", "regression", "--out", str(tmp_path / "m.pkl")],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"fastntk: error: {empty}: no data rows"]


def test_warnings_of_a_successful_command_are_still_shown(monkeypatch):
    import fastntk.cli as cli

    def warns(args):
        import warnings
        warnings.warn("something to know", UserWarning)
        return 0

    monkeypatch.setattr(cli, "cmd_demo", warns)
    with pytest.warns(UserWarning, match="something to know"):
        assert cli.main(["demo"]) == 0


def test_utf8_bom_is_accepted(tmp_path, capsys):
    X, y = _regression_data(n=30, d=4)
    plain, bom = tmp_path / "plain.svm", tmp_path / "bom.svm"
    dump_svmlight_file(X, y, str(plain), zero_based=False)
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    csv, bom_csv = tmp_path / "plain.csv", tmp_path / "bom.csv"
    np.savetxt(csv, np.column_stack([y, X]), delimiter=",")
    bom_csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    predictions = []
    for path in (plain, bom, csv, bom_csv):     # svmlight and CSV round differently
        model = tmp_path / f"{path.stem}-{path.suffix[1:]}.pkl"
        assert _run(["fit", path, "--model", "exact", "--task", "regression", "--out", model,
                     "--quiet"], capsys)[0] == 0
        code, out, _ = _run(["predict", model, path, "--quiet"], capsys)
        assert code == 0
        predictions.append(np.array(out.split(), dtype=float))
    np.testing.assert_array_equal(predictions[1], predictions[0])
    np.testing.assert_array_equal(predictions[3], predictions[2])


def test_zero_based_flag_is_stored_and_used_by_predict(tmp_path, capsys):
    X, y = _regression_data(n=40, d=5)
    X[:, 0] = 0.0                  # a zero-based file whose column 0 is empty
    train, test, model = tmp_path / "train.svm", tmp_path / "test.svm", tmp_path / "m.pkl"
    dump_svmlight_file(X[:30], y[:30], str(train), zero_based=True)
    dump_svmlight_file(X[30:], y[30:], str(test), zero_based=True)
    code, out, _ = _run(["fit", train, "--model", "exact", "--task", "regression", "--out",
                         model], capsys)
    assert code == 0 and "read as one-based" in out          # detection says so
    code, out, _ = _run(["fit", train, "--zero-based", "--model", "exact", "--task",
                         "regression", "--out", model], capsys)
    assert code == 0 and "x 5 features" in out
    estimator, meta = persistence.load_model(model)
    assert meta["zero_based"] is True
    code, out, _ = _run(["predict", model, test, "--quiet"], capsys)
    assert code == 0
    np.testing.assert_allclose(np.array(out.split(), dtype=float),
                               estimator.predict(X[30:]), rtol=1e-9)
