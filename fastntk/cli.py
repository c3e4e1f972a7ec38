"""The ``fastntk`` command line: ``demo``, ``warmup``, ``fit`` and ``predict``.

Data formats (chosen by the file name; anything not listed is read as svmlight)
-----------------------------------------------------------------------------
svmlight / libsvm
    ``label index:value ...``, the label in the file.  Indices may be one-based (libsvm's
    convention) or zero-based (scikit-learn's ``dump_svmlight_file``): ``--zero-based`` or
    ``--one-based`` says which; without either, a training file that uses index 0 is
    zero-based and any other one-based (a zero-based file whose first column happens to be
    empty is then misread: pass ``--zero-based``).  The base is stored in the model, and
    ``predict`` reads new files with it.  ``.gz`` / ``.bz2`` compression is understood.
.csv
    Comma-separated numbers, one row per sample, the label in the FIRST column (the libsvm
    convention); a header line is skipped when its first field is not a number.

Text files may start with a UTF-8 byte-order mark.
.npy
    A 2-D array, the label in the first column.
.npz
    A ``scipy.sparse.save_npz`` matrix with the label in the first column, or an ``np.savez``
    archive holding ``X`` (and ``y`` for labels).

For ``predict``, a CSV/NPY/NPZ file may carry the label column or not: its width tells
(``n_features`` + 1 or ``n_features`` columns).  When labels are present the test metric is
printed.

Out of core (``--stream``): ``fit`` and ``predict`` read svmlight, CSV or ``.npy`` files (a
file, or a directory of them) in chunks of ``--chunk-rows`` rows and hold one chunk at a
time; ``fit`` makes one pass for the solver's statistics (solver "primal" or "cg"), after a
first pass that finds the svmlight width, index base and classes unless ``--n-features``
(or ``--fold-features``), ``--zero-based`` / ``--one-based`` and ``--classes`` give them;
``predict`` writes each chunk's predictions as they come.
"""
import argparse
import io
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .streaming import describe_svmlight_error
from .streaming import file_kind as _kind
from .streaming import open_csv_rows
from .streaming import open_file as _open
from .streaming import split_label as _split_label

_MODELS = ("ntk-sketch", "ntk-rf", "cntk-sketch", "exact")
_SVMLIGHT_TOKEN_ERRORS = (ValueError, IndexError, OverflowError)
_BOM = b"\xef\xbb\xbf"


class CommandError(Exception):
    """A problem with the user's input, reported in one line without a traceback."""


# --------------------------------------------------------------------------------------
# Reading data
# --------------------------------------------------------------------------------------
def _check_input_file(path, what="data file"):
    if path.is_dir():
        raise CommandError(f"{path} is a directory, not a {what}")
    if not path.exists():
        raise CommandError(f"no such file: {path}")


def read_data(path, n_features=None, zero_based=None):
    """Read ``(X, y, zero_based)`` from ``path``; ``y`` is None when the file has no labels.

    ``n_features`` (known at predict time) fixes the width: svmlight rows are padded to it,
    and a CSV/NPY/NPZ file of width ``n_features + 1`` is read as label + features.
    ``zero_based`` (svmlight only) is None to detect it.
    """
    path = Path(path)
    _check_input_file(path)
    kind = _kind(path)
    if kind == "svmlight":
        X, y, zero_based = _read_svmlight(path, n_features, zero_based)
    else:
        if kind == "csv":
            table, y = _read_csv(path), None
        elif kind == "npy":
            table, y = _read_npy(path), None
        else:
            table, y = _read_npz(path)
        if table.shape[0] == 0:
            raise CommandError(f"{path}: no data rows")
        if y is None:
            X, y = _split_label(path, table, n_features)
        else:
            X = _check_width(path, table, n_features)
        zero_based = None
    # found here rather than by the estimator: a test file is checked before the fit
    values = X.data if sp.issparse(X) else X
    if not np.all(np.isfinite(values)) or (y is not None and not np.all(np.isfinite(y))):
        raise CommandError(f"{path}: contains NaN or infinity")
    return X, y, zero_based


def _svmlight_source(path):
    """What ``load_svmlight_file`` reads: the path, or the contents after a UTF-8 BOM."""
    with _open(path) as f:
        if f.read(len(_BOM)) != _BOM:
            return str(path)
        return io.BytesIO(f.read())


def _read_svmlight(path, n_features, zero_based):
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(_svmlight_source(path), zero_based=True, dtype=np.float64)
    except _SVMLIGHT_TOKEN_ERRORS as exc:
        raise CommandError(_describe_svmlight_error(path, exc)) from None
    if X.shape[0] == 0:
        raise CommandError(f"{path}: no data rows (empty, or only comments)")
    if zero_based is None:
        zero_based = X.shape[1] > 0 and X[:, 0].nnz > 0
    if not zero_based:
        if X.shape[1] > 0 and X[:, 0].nnz > 0:
            raise CommandError(f"{path}: uses feature index 0, but is read with one-based "
                               f"(libsvm) indices (--one-based, or the training file's base)")
        X = X[:, 1:] if X.shape[1] > 0 else X
    if n_features is not None:
        if X.shape[1] > n_features:
            raise CommandError(f"{path}: wrong width: feature index {X.shape[1]} found, the "
                               f"model expects {n_features} features")
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    return X, y, bool(zero_based)


def _describe_svmlight_error(path, exc):
    """Name the first line that does not parse as ``label index:value ...``."""
    with _open(path) as f:
        return describe_svmlight_error(f, path) or f"{path}: malformed svmlight file ({exc})"


def _read_csv(path):
    f, lines = open_csv_rows(path)
    with f:
        try:
            table = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None
    return table


def _real_array(path, array, name, ndim):
    """``array`` as float64 if it is a real numeric array of ``ndim`` dimensions."""
    if array.ndim != ndim:
        raise CommandError(f"{path}: {name} must be a {ndim}-D array, got shape {array.shape}")
    if np.iscomplexobj(array):
        raise CommandError(f"{path}: {name} is complex ({array.dtype}); fastntk needs real "
                           f"numbers")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise CommandError(f"{path}: {name} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _read_npy(path):
    try:
        table = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CommandError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(table, np.ndarray):
        raise CommandError(f"{path}: not a .npy array file")
    return _real_array(path, table, "the array", 2)


def _read_sparse_npz(path):
    from ._validation import check_sparse_structure

    try:
        matrix = sp.load_npz(path)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise CommandError(f"{path}: not a readable scipy.sparse .npz file ({exc})") from None
    # the matrix is sliced before any estimator sees it: check its indices first
    check_sparse_structure(matrix, str(path))
    if np.iscomplexobj(matrix.data):
        raise CommandError(f"{path}: the matrix is complex ({matrix.dtype}); fastntk needs "
                           f"real numbers")
    return matrix.tocsr().astype(np.float64)


def _read_npz(path):
    """A save_npz matrix (label first column) or an np.savez archive with X [and y]."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CommandError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CommandError(f"{path}: not a .npz archive")
    with archive:
        if "indptr" in archive.files or "row" in archive.files:
            return _read_sparse_npz(path), None
        if "X" not in archive.files:
            raise CommandError(f"{path}: expected a scipy.sparse.save_npz matrix or arrays "
                               f"named X (and y), found {archive.files}")
        try:
            X = _real_array(path, archive["X"], "X", 2)
            y = _real_array(path, archive["y"], "y", 1) if "y" in archive.files else None
        except (ValueError, OSError) as exc:               # a damaged member
            raise CommandError(f"{path}: not a readable .npz file ({exc})") from None
    if y is not None and y.shape[0] != X.shape[0]:
        raise CommandError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    return X, y


def _check_width(path, X, n_features):
    if n_features is not None and X.shape[1] != n_features:
        raise CommandError(f"{path}: wrong width: {X.shape[1]} features, the model expects "
                           f"{n_features}")
    return X


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
def _import_feature_map(class_name, model):
    import fastntk

    try:
        return getattr(fastntk, class_name)
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"--model {model} needs fastntk.{class_name}, which is not "
                           f"available in this installation ({exc})") from None


def _parse_image_shape(text, n_features):
    if text is None:
        side = int(round(np.sqrt(n_features)))
        if side * side != n_features:
            raise CommandError(f"cannot infer the image shape of {n_features} features; "
                               f"pass --image-shape H,W,C")
        return side, side, 1
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"--image-shape must look like 28,28,1, got {text!r}") from None
    if len(shape) != 3 or int(np.prod(shape)) != n_features:
        raise CommandError(f"--image-shape {text} does not match {n_features} features")
    return shape


def _exact_degrees(text):
    """``--exact-degrees``: "auto" or a non-negative integer."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer >= 0, got {text!r}")
    return value


def build_model(args, n_features):
    """The estimator that ``fastntk fit`` trains, from the parsed arguments."""
    from .ridge import NTKRidge, NTKRidgeClassifier

    estimator = NTKRidgeClassifier if args.task == "classification" else NTKRidge
    common = dict(batch_size=args.batch_size, verbose=not args.quiet)
    if args.alphas:
        common["alphas"] = tuple(args.alphas)
    if args.model == "exact":
        if args.image_shape is not None:
            shape = _parse_image_shape(args.image_shape, n_features)
            return estimator("exact-cntk", kernel_params={"depth": args.depth,
                                                          "image_shape": shape}, **common)
        return estimator("exact", kernel_params={"depth": args.depth}, **common)
    params = dict(depth=args.depth, n_components=args.n_components,
                  random_state=args.random_state)
    if args.model == "ntk-rf":
        feature_map = _import_feature_map("NTKRandomFeatures", args.model)(**params)
    elif args.model == "ntk-sketch":
        if args.degree is not None:
            params["degree"] = args.degree
        params["exact_degrees"] = args.exact_degrees
        feature_map = _import_feature_map("NTKSketch", args.model)(**params)
    else:
        if args.degree is not None:
            params["degree"] = args.degree
        params["image_shape"] = _parse_image_shape(args.image_shape, n_features)
        feature_map = _import_feature_map("CNTKSketch", args.model)(**params)
    return estimator(feature_map, **common)


def _metric(task, y_true, y_pred):
    if task == "classification":
        return "accuracy", float(np.mean(y_true == y_pred))
    from sklearn.metrics import r2_score

    rmse = float(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    return "RMSE", rmse, "R2", float(r2_score(y_true, y_pred)) if len(y_true) > 1 else np.nan


def _format_metric(values):
    pairs = zip(values[::2], values[1::2])
    return ", ".join(f"{name} {value:.4f}" for name, value in pairs)


# --------------------------------------------------------------------------------------
# Sub-commands
# --------------------------------------------------------------------------------------
def _info(args, message):
    if not args.quiet:
        print(message, flush=True)


def _check_writable(path, option, replaced=False):
    """Fail now, not after a long fit, if ``path`` cannot be written (``replaced``: by an
    atomic save, which writes a temporary file in its directory and renames it)."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{option} {path} is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise CommandError(f"{option} {path}: directory {parent} does not exist")
    writable = (os.access(path, os.W_OK) if path.exists() and not replaced
                else os.access(parent, os.W_OK | os.X_OK))
    if not writable:
        raise CommandError(f"{option} {path}: permission denied")


def _check_fit_memory(args, n_rows):
    """Refuse a fit whose ridge solve cannot fit in memory, before any work.

    The solve holds a k x k Gram matrix, its eigenvectors and a centred copy (k = rows
    for exact kernels and the dual solve, n_components for the primal one), and the
    dual solve the n x n_components features.
    """
    from ._validation import check_memory

    if args.model == "exact":
        k, features, what = n_rows, 0, f"--model exact on {n_rows} rows"
    else:
        m = args.n_components
        k, features = min(n_rows, m), (n_rows * m if n_rows <= m else 0)
        what = f"--n-components {m} on {n_rows} rows"
    check_memory(8 * (3 * k * k + features), what)


def _labelled(path, data):
    if data[1] is None:
        raise CommandError(f"{path}: no labels found")
    return data


def cmd_fit(args):
    from ._persistence import save_model

    if args.stream:
        return cmd_fit_stream(args)
    if args.n_features or args.fold_features or args.classes:
        raise CommandError("--n-features, --fold-features and --classes go with --stream")
    _check_writable(args.out, "--out", replaced=True)
    X, y, zero_based = _labelled(args.train, read_data(args.train, zero_based=args.zero_based))
    if args.task == "classification":
        classes = np.unique(y)
        if classes.size < 2:
            raise CommandError(f"{args.train}: the labels hold a single class ({classes[0]:g}); "
                               f"classification needs at least two")
    test = None
    if args.test is not None:                   # a bad test file is found before the fit
        test = _labelled(args.test, read_data(args.test, n_features=X.shape[1],
                                              zero_based=zero_based))
    _check_fit_memory(args, X.shape[0])
    model = build_model(args, X.shape[1])
    start = time.perf_counter()
    model.fit(X, y)
    elapsed = time.perf_counter() - start
    metadata = {"task": args.task, "model": args.model, "n_features": X.shape[1],
                "zero_based": zero_based, "train_file": os.fspath(args.train)}
    save_model(model, args.out, metadata)
    base = ""
    if zero_based is not None and args.zero_based is None:
        base = (f"; svmlight indices read as {'zero' if zero_based else 'one'}-based "
                f"(--zero-based / --one-based to say otherwise)")
    _info(args, f"fitted {args.model} ({args.task}) on {X.shape[0]} rows x {X.shape[1]} "
                f"features in {elapsed:.2f} s; alpha {model.alpha_:.3g}; saved to "
                f"{args.out}{base}")
    if test is not None:
        X_test, y_test, _ = test
        values = _metric(args.task, y_test, model.predict(X_test))
        _info(args, f"test ({X_test.shape[0]} rows): {_format_metric(values)}")
    return 0


def _load_cli_model(path):
    """The model and metadata of a file written by ``fastntk fit``, or a CommandError."""
    from ._persistence import load_model

    model, meta = load_model(path)
    if not (hasattr(model, "predict") and hasattr(model, "set_params")):
        raise CommandError(f"{path} holds a {type(model).__name__}, not a fitted model "
                           f"(a model file written by fastntk fit)")
    missing = [k for k in ("task", "n_features") if k not in meta]
    if missing or meta["task"] not in ("regression", "classification"):
        raise CommandError(f"{path} is a model file without the metadata of fastntk fit "
                           f"({', '.join(missing) or 'task'} missing or invalid)")
    return model, meta


def cmd_predict(args):
    if args.stream:
        return cmd_predict_stream(args)
    _check_input_file(Path(args.model), "model file")
    if args.out is not None:
        _check_writable(args.out, "--out")
    model, meta = _load_cli_model(args.model)
    X, y, _ = read_data(args.data, n_features=meta["n_features"],
                        zero_based=meta.get("zero_based"))
    model.set_params(verbose=not args.quiet)
    predictions = model.predict(X)
    if args.out is None:
        np.savetxt(sys.stdout, predictions, fmt="%.10g")
    elif str(args.out).endswith(".npy"):
        np.save(args.out, predictions)
    else:
        np.savetxt(args.out, predictions, fmt="%.10g")
    if y is not None and not args.quiet:
        values = _metric(meta["task"], y, predictions)
        print(f"{args.data} ({X.shape[0]} rows): {_format_metric(values)}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------
# Out of core: --stream
# --------------------------------------------------------------------------------------
def _peak_memory():
    """Peak resident memory of this process so far, as text ('' where unknown)."""
    try:
        import resource
    except ImportError:                                 # not on Windows
        return ""
    from ._validation import format_bytes

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f", peak memory {format_bytes(peak * (1 if sys.platform == 'darwin' else 1024))}"


def _stream_progress(args, total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, disable=args.quiet,
                delay=1.0, leave=False)


def _counted(chunks, bar):
    """The chunks, advancing the progress bar by each one's rows."""
    for X, y in chunks:
        yield X, y
        bar.update(X.shape[0])


def cmd_fit_stream(args):
    """``fastntk fit --stream``: one pass over files of any size, one chunk in memory.

    svmlight needs the width, the index base and (for classification) the classes before
    the pass; without ``--n-features`` (or ``--fold-features``), ``--zero-based`` /
    ``--one-based`` and ``--classes``, a first pass over the files finds them.
    """
    from ._persistence import save_model
    from .streaming import expand_paths, file_kind, read_chunks, scan

    _check_writable(args.out, "--out", replaced=True)
    if args.model == "exact":
        raise CommandError("--stream needs a feature map: --model exact holds every row "
                           "(an n x n kernel)")
    if args.test is not None:
        _check_input_file(args.test)
    files = expand_paths(args.train)
    svmlight = any(file_kind(path) == "svmlight" for path in files)
    classification = args.task == "classification"
    n_features, zero_based, classes, n_rows = (args.fold_features or args.n_features,
                                               args.zero_based, args.classes, None)
    if ((svmlight and (n_features is None or zero_based is None))
            or (classification and classes is None)):
        _info(args, f"first pass over {len(files)} file(s): width, index base, labels "
                    f"(--n-features, --zero-based/--one-based and --classes skip it)")
        info = scan(files, chunk_rows=args.chunk_rows, zero_based=zero_based,
                    fold_features=args.fold_features)
        n_features = n_features or info.n_features
        zero_based, n_rows = info.zero_based, info.n_rows
        classes = info.labels if classes is None else classes
    if classification and np.unique(classes).size < 2:
        raise CommandError(f"{args.train}: the labels hold a single class; classification "
                           f"needs at least two")
    if not svmlight:
        n_features = zero_based = None                  # CSV / .npy know their width
    model = build_model(args, n_features or _table_width(files[0]))
    model.set_params(verbose=False)                     # the progress bar is ours
    chunks = read_chunks(files, chunk_rows=args.chunk_rows, n_features=n_features,
                         zero_based=zero_based, fold_features=args.fold_features)
    start = time.perf_counter()
    with _stream_progress(args, n_rows, "fit (one pass)") as bar:
        if classification:
            model.fit_stream(_counted(chunks, bar), classes=classes)
        else:
            model.fit_stream(_counted(chunks, bar))
    elapsed = time.perf_counter() - start
    metadata = {"task": args.task, "model": args.model, "n_features": model.n_features_in_,
                "zero_based": zero_based, "fold_features": args.fold_features,
                "train_file": os.fspath(args.train)}
    save_model(model, args.out, metadata)
    rows = model.n_samples_seen_
    _info(args, f"fitted {args.model} ({args.task}) on {rows} rows x "
                f"{model.n_features_in_} features in one pass, {elapsed:.2f} s "
                f"({rows / max(elapsed, 1e-9):,.0f} rows/s{_peak_memory()}); solver "
                f"{model.solver_}, alpha {model.alpha_:.3g}; saved to {args.out}")
    if args.test is not None:
        y_true, y_pred = _stream_predictions(args, model, metadata, args.test, None)
        if y_true is None:
            raise CommandError(f"{args.test}: no labels found")
        _info(args, f"test ({y_true.shape[0]} rows): "
                    f"{_format_metric(_metric(args.task, y_true, y_pred))}")
    return 0


def _table_width(path):
    """Feature width of a CSV / .npy file (its first row, less the label)."""
    from .streaming import read_chunks

    X, _ = next(read_chunks(path, chunk_rows=1))
    return X.shape[1]


def _stream_predictions(args, model, meta, data, out):
    """Predict ``data`` chunk by chunk, writing each chunk's predictions to ``out`` (an
    open text file, or None); returns the labels (or None) and all predictions."""
    from .streaming import read_chunks

    chunks = read_chunks(data, chunk_rows=args.chunk_rows, n_features=meta["n_features"],
                         zero_based=meta.get("zero_based"),
                         fold_features=meta.get("fold_features"))
    labels, predictions = [], []
    with _stream_progress(args, None, "predict") as bar:
        for X, y in _counted(chunks, bar):
            predicted = model.predict(X)
            if out is not None:
                np.savetxt(out, predicted, fmt="%.10g")
                out.flush()
            predictions.append(predicted)
            labels.append(y)
    if any(y is None for y in labels):
        return None, np.concatenate(predictions)
    return np.concatenate(labels), np.concatenate(predictions)


def cmd_predict_stream(args):
    """``fastntk predict --stream``: predictions written chunk by chunk as they come (a
    ``.npy`` output is written at the end, its header needing the row count)."""
    _check_input_file(Path(args.model), "model file")
    if args.out is not None:
        _check_writable(args.out, "--out")
    model, meta = _load_cli_model(args.model)
    model.set_params(verbose=False)
    to_npy = args.out is not None and str(args.out).endswith(".npy")
    if args.out is None:
        y, predictions = _stream_predictions(args, model, meta, args.data, sys.stdout)
    elif to_npy:
        y, predictions = _stream_predictions(args, model, meta, args.data, None)
        np.save(args.out, predictions)
    else:
        with open(args.out, "w") as out:
            y, predictions = _stream_predictions(args, model, meta, args.data, out)
    if y is not None and not args.quiet:
        values = _metric(meta["task"], y, predictions)
        print(f"{args.data} ({y.shape[0]} rows): {_format_metric(values)}", file=sys.stderr)
    return 0


def _add_stream_options(fit, predict):
    from .streaming import DEFAULT_CHUNK_ROWS

    for sub in (fit, predict):
        sub.add_argument("--stream", action="store_true",
                         help="out of core: read the data in chunks of rows (a file or a "
                              "directory of files, svmlight, .csv or .npy), one chunk in "
                              "memory at a time")
        sub.add_argument("--chunk-rows", type=_positive_int, default=DEFAULT_CHUNK_ROWS,
                         help=f"rows per chunk with --stream (default {DEFAULT_CHUNK_ROWS})")
    fit.add_argument("--n-features", type=_positive_int, default=None,
                     help="with --stream: the svmlight width (else found by a first pass)")
    fit.add_argument("--fold-features", type=_positive_int, default=None, metavar="D",
                     help="with --stream: fold svmlight indices modulo D (the hashing "
                          "trick: the cg solver's statistics grow with the width, e.g. 8192 "
                          "for text; the model then predicts with --stream)")
    fit.add_argument("--classes", type=float, nargs="+", default=None,
                     help="with --stream and classification: the labels (else found by a "
                          "first pass)")


def cmd_warmup(args):
    if args.cache_dir is not None:
        os.environ["FASTNTK_CACHE_DIR"] = os.path.abspath(args.cache_dir)
        if "fastntk._jit" in sys.modules:  # kernels defined already, with their cache
            from ._jit import cache_dir
            if cache_dir() != os.environ["FASTNTK_CACHE_DIR"]:
                raise CommandError("--cache-dir must be set before fastntk's kernels are "
                                   "imported: run the warm-up in a fresh process")
    from ._jit import cache_dir

    directory = cache_dir()
    if directory is None or not os.access(directory, os.W_OK):
        raise CommandError(f"no writable cache directory ({directory or 'none usable'}): "
                           f"give --cache-dir DIR or set FASTNTK_CACHE_DIR")
    from ._warmup import warmup

    _info(args, warmup())
    return 0


def cmd_demo(args):
    run_demo(n_components=args.n_components, depth=args.depth)
    return 0


# --------------------------------------------------------------------------------------
# The demo: feature maps + streaming ridge against exact NTK kernel ridge
# --------------------------------------------------------------------------------------
def _shift_images(images, dx):
    """Copies of (n, H, W) images moved ``dx`` pixels sideways, zero-filled."""
    shifted = np.zeros_like(images)
    if dx > 0:
        shifted[:, :, dx:] = images[:, :, :-dx]
    else:
        shifted[:, :, :dx] = images[:, :, -dx:]
    return shifted


def _demo_digits():
    """scikit-learn's digits, 75/25 split; each training image plus a copy shifted 1 pixel."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25,
                                                        stratify=y, random_state=0)
    images = X_train.reshape(-1, 8, 8)
    left = np.arange(images.shape[0]) % 2 == 0       # alternate the direction of the shift
    shifted = np.where(left[:, None, None], _shift_images(images, -1),
                       _shift_images(images, 1))
    X_train = np.vstack([X_train, shifted.reshape(-1, 64)])
    y_train = np.concatenate([y_train, y_train])
    description = (f"digits (8x8 images, 10 classes): {X_train.shape[0]} training rows "
                   f"({X_train.shape[0] // 2} + copies shifted 1 pixel sideways), "
                   f"{X_test.shape[0]} test rows")
    return description, "classification", (X_train, y_train, X_test, y_test)


def _demo_diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    description = (f"diabetes (10 features, regression): {X_train.shape[0]} training rows, "
                   f"{X_test.shape[0]} test rows")
    return description, "regression", (X_train, y_train, X_test, y_test)


def _demo_feature_maps(n_components, depth, images):
    """(name, transformer) for every NTK feature map."""
    import fastntk

    wanted = [("NTKSketch", {}), ("NTKRandomFeatures", {})]
    if images:
        wanted.append(("CNTKSketch", {"image_shape": (8, 8, 1)}))
    # every map is shipped: a missing one (e.g. a source tree without its compiled
    # extensions) is an error that says how to build, never a row silently left out
    return [(name, getattr(fastntk, name)(depth=depth, n_components=n_components,
                                          random_state=0, **extra))
            for name, extra in wanted]


def _run_one(estimator, data, task):
    """Fit + predict once (after a tiny warm-up, so one-off JIT compilation is not timed)."""
    X_train, y_train, X_test, y_test = data
    warm = np.arange(min(30, X_train.shape[0]))
    estimator.fit(X_train[warm], y_train[warm]).predict(X_test[:2])
    start, start_cpu = time.perf_counter(), time.process_time()
    estimator.fit(X_train, y_train)
    predictions = estimator.predict(X_test)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if task == "classification":
        return float(np.mean(predictions == y_test)), elapsed, cpu
    from sklearn.metrics import r2_score

    return float(r2_score(y_test, predictions)), elapsed, cpu


def run_demo(n_components=1024, depth=2, out=None):
    """Print the demo table: NTK feature maps + NTKRidge against exact NTK kernel ridge."""
    from .ridge import NTKRidge, NTKRidgeClassifier

    out = out or sys.stdout
    print(f"fastntk {__version__} demo: ridge on NTK features vs exact NTK kernel ridge, "
          f"depth {depth}; alpha among 25 by leave-one-out", file=out)
    print("time = fit + predict, wall clock (cpu: summed over threads), one-off JIT "
          "compilation excluded", file=out)
    for load in (_demo_digits, _demo_diabetes):
        description, task, data = load()
        estimator = NTKRidgeClassifier if task == "classification" else NTKRidge
        metric = "accuracy" if task == "classification" else "R2"
        runs = [("exact NTK", "exact", estimator("exact", kernel_params={"depth": depth}))]
        runs += [(name, str(n_components), estimator(feature_map))
                 for name, feature_map in _demo_feature_maps(n_components, depth,
                                                             task == "classification")]
        print(f"\n{description}", file=out)
        print(f"{'method':<20}{'features':>9}{metric:>10}{'time (s)':>10}{'cpu (s)':>9}"
              f"{'speedup':>9}", file=out, flush=True)
        exact_time = None
        for name, width, model in runs:
            score, elapsed, cpu = _run_one(model, data, task)
            exact_time = exact_time or elapsed
            print(f"{name:<20}{width:>9}{score:>10.4f}{elapsed:>10.2f}{cpu:>9.2f}"
                  f"{exact_time / elapsed:>8.1f}x", file=out, flush=True)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error reported in one line like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def make_parser():
    """The argparse parser of the ``fastntk`` command."""
    parser = _Parser(
        prog="fastntk", description="Neural Tangent Kernel regression and classification "
        "with sketches and random features, on CPUs.")
    parser.add_argument("--version", action="version", version=f"fastntk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="compare the NTK feature maps with exact NTK kernel "
                          "ridge on data bundled with scikit-learn (no download)")
    demo.add_argument("--n-components", type=_positive_int, default=1024)
    demo.add_argument("--depth", type=_positive_int, default=2)
    demo.set_defaults(handler=cmd_demo)

    warm = sub.add_parser("warmup", help="compile every kernel into the cache, so that no "
                          "request pays for compilation (run once, e.g. at image build)")
    warm.add_argument("--cache-dir", default=None,
                      help="where to cache compiled kernels (default: FASTNTK_CACHE_DIR, "
                           "else NUMBA_CACHE_DIR, else ~/.cache/fastntk); a server finds "
                           "them with the same FASTNTK_CACHE_DIR, read-only is fine")
    warm.add_argument("--quiet", action="store_true")
    warm.set_defaults(handler=cmd_warmup)

    fit = sub.add_parser("fit", help="train a model and save it",
                         description=__doc__.split("\n\n", 1)[1],
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("train", type=Path, help="training data (svmlight, .csv, .npy or .npz)")
    fit.add_argument("--test", type=Path, help="test data: print the test metric")
    fit.add_argument("--model", choices=_MODELS, default="ntk-sketch")
    fit.add_argument("--task", choices=("regression", "classification"), required=True)
    fit.add_argument("--depth", type=_positive_int, default=1, help="hidden layers (default 1)")
    fit.add_argument("--n-components", type=_positive_int, default=4096,
                     help="feature dimension (default 4096)")
    fit.add_argument("--degree", type=_positive_int, default=None,
                     help="polynomial degree of the sketches (default: the feature map's)")
    fit.add_argument("--exact-degrees", type=_exact_degrees, default="auto",
                     help="ntk-sketch: degrees computed exactly, 'auto' or 0..k (default "
                          "auto: for sparse rows their norm and the row itself, and for "
                          "short rows (on average <= 32 non-zeros, <= 100,000 rows; not "
                          "with --stream) their pairs of columns; 1: no pairs, 2: pairs)")
    fit.add_argument("--image-shape", default=None, metavar="H,W,C",
                     help="image shape for cntk-sketch / exact CNTK (default: square, 1 channel)")
    fit.add_argument("--alphas", type=float, nargs="+", default=None,
                     help="ridge parameters to choose from, by leave-one-out or GCV "
                          "(default 1e-6 .. 1e6)")
    fit.add_argument("--batch-size", type=_positive_int, default=4096)
    fit.add_argument("--random-state", type=int, default=0)
    base = fit.add_mutually_exclusive_group()
    base.add_argument("--zero-based", dest="zero_based", action="store_const", const=True,
                      default=None, help="svmlight indices start at 0 (default: detected: "
                      "zero-based if the training file uses index 0)")
    base.add_argument("--one-based", dest="zero_based", action="store_const", const=False,
                      help="svmlight indices start at 1 (libsvm)")
    fit.add_argument("--out", type=Path, required=True, help="where to save the model")
    fit.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    fit.set_defaults(handler=cmd_fit)

    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model", type=Path)
    predict.add_argument("data", type=Path)
    predict.add_argument("--out", type=Path, default=None,
                         help="output file (one prediction a line; .npy for NumPy); "
                              "default standard output")
    predict.add_argument("--quiet", action="store_true")
    predict.set_defaults(handler=cmd_predict)
    _add_stream_options(fit, predict)
    return parser


def main(argv=None):
    """Run the ``fastntk`` command; returns the exit status (0 on success).

    An error is reported in one line on standard error, without a traceback.  Warnings
    raised on the way are held back: shown after a command that succeeds, dropped when
    it fails (the error line says what went wrong).
    """
    args = make_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        try:
            status = args.handler(args)
        except (CommandError, ValueError, OSError, ImportError, MemoryError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if isinstance(exc, MemoryError):
                message = f"out of memory{': ' + message if message else ''}"
            print(f"fastntk: error: {message or type(exc).__name__}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("fastntk: interrupted", file=sys.stderr)
            return 130
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return status
