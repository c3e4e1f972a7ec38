"""Training data read in chunks of rows, for fits and predictions larger than memory.

:func:`read_chunks` yields ``(X, y)`` chunks of at most ``chunk_rows`` rows from one file,
a list of files or a directory (its files in name order), holding one chunk at a time;
:meth:`fastntk.NTKRidge.fit_stream` fits from them in one pass::

    from fastntk import NTKRidge, NTKSketch
    from fastntk.streaming import read_chunks, scan

    info = scan("train/")                    # a first pass: width, index base, labels
    chunks = read_chunks("train/", n_features=info.n_features,
                         zero_based=info.zero_based, chunk_rows=100_000)
    model = NTKRidge(NTKSketch(depth=2, random_state=0)).fit_stream(chunks)

Formats, chosen by the file name as for the ``fastntk`` command: svmlight / libsvm
(``label index:value ...``; ``.gz`` and ``.bz2`` understood), ``.csv`` (label in the first
column, an optional header line) and ``.npy`` (label in the first column; read through a
memory map).  A ``.npz`` archive is compressed as a whole and cannot be read in chunks.

svmlight needs the number of features and the index base before the first chunk (a
chunk only shows the indices it uses): give ``n_features`` and ``zero_based``, or
``fold_features`` (indices are then folded modulo it, as a hashing vectorizer does), or
run :func:`scan` first, one pass over the files that finds both (a file that uses index
0 is zero-based) and the labels.  CSV and ``.npy`` files know their width.
"""
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["read_chunks", "scan", "ScanResult", "DEFAULT_CHUNK_ROWS"]

#: Rows per chunk by default (a svmlight chunk of 50 non-zeros a row: about 40 MB).
DEFAULT_CHUNK_ROWS = 65536
#: Largest feature index the svmlight reader holds (its indices are 32-bit).
SVMLIGHT_MAX_INDEX = 2**31 - 2
_SVMLIGHT_TOKEN_ERRORS = (ValueError, IndexError, OverflowError)
_BOM = b"\xef\xbb\xbf"


def file_kind(path):
    """"svmlight", "csv", "npy" or "npz", from the name (compression suffixes ignored)."""
    name = Path(path).name.lower()
    for suffix in (".gz", ".bz2"):
        name = name.removesuffix(suffix)
    for kind in ("csv", "npy", "npz"):
        if name.endswith("." + kind):
            return kind
    return "svmlight"


def open_file(path, mode="rb", **kwargs):
    """``path`` opened through its compression (``.gz``, ``.bz2``) if any."""
    import bz2
    import gzip

    path = Path(path)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    return opener(path, mode, **kwargs)


def expand_paths(paths):
    """The files of ``paths`` (a path, or a list of them; a directory gives its files)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise ValueError(f"{path}: the directory holds no data files")
            files.extend(inside)
        elif path.exists():
            files.append(path)
        else:
            raise ValueError(f"no such file: {path}")
    if not files:
        raise ValueError("no data files given")
    return files


def describe_svmlight_error(lines, path, first_number=1):
    """Name the first of ``lines`` (bytes or str) that is not ``label index:value ...``."""
    for number, line in enumerate(lines, start=first_number):
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        tokens = line.lstrip("\ufeff").split("#", 1)[0].split()
        if not tokens:
            continue
        try:
            [float(label) for label in tokens[0].split(",")]
            for token in tokens[1:]:
                index, value = token.split(":")
                if index != "qid" and not 0 <= int(index) <= SVMLIGHT_MAX_INDEX:
                    return (f"{path}, line {number}: feature index {index} is outside "
                            f"0 .. {SVMLIGHT_MAX_INDEX}")
                float(value)
        except _SVMLIGHT_TOKEN_ERRORS:
            shown = line.strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            return f"{path}, line {number}: malformed svmlight line: {shown!r}"
    return None


def split_label(path, table, n_features):
    """``(X, y)``: the label is the first column, unless the width shows there is none.

    ``n_features`` (known at predict time) tells: a table of that width has no label, one
    of ``n_features + 1`` columns has.
    """
    if n_features is not None and table.shape[1] == n_features:
        return table, None
    if n_features is not None and table.shape[1] != n_features + 1:
        raise ValueError(f"{path}: wrong width: {table.shape[1]} columns, the model expects "
                         f"{n_features} features (plus an optional label in the first column)")
    if table.shape[1] < 2:
        raise ValueError(f"{path}: needs a label column and at least one feature column")
    y = table[:, 0].toarray().ravel() if sp.issparse(table) else table[:, 0]
    return table[:, 1:], np.asarray(y, dtype=np.float64)


# ----------------------------------------------------------------------------- svmlight
def _svmlight_raw_chunks(path, chunk_rows):
    """``(X, y, first line number)`` of zero-based chunks, each as wide as it needs."""
    from sklearn.datasets import load_svmlight_file

    with open_file(path) as f:
        number = 1
        while True:
            lines = list(itertools.islice(f, chunk_rows))
            if not lines:
                return
            if number == 1 and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM):]
            try:
                X, y = load_svmlight_file(io.BytesIO(b"".join(lines)), zero_based=True,
                                          dtype=np.float64)
            except _SVMLIGHT_TOKEN_ERRORS as exc:
                raise ValueError(describe_svmlight_error(lines, path, number)
                                 or f"{path}: malformed svmlight file ({exc})") from None
            if X.shape[0]:
                yield X, y, number
            number += len(lines)


def _svmlight_chunks(path, chunk_rows, n_features, zero_based, fold_features):
    if fold_features is None and n_features is None:
        raise ValueError(f"{path}: svmlight read in chunks needs the number of features "
                         f"before the first chunk: give n_features (and zero_based), or "
                         f"fold_features, or run scan() first")
    if zero_based is None:
        raise ValueError(f"{path}: svmlight read in chunks needs the index base: give "
                         f"zero_based=True/False, or run scan() first")
    width = fold_features or n_features
    for X, y, number in _svmlight_raw_chunks(path, chunk_rows):
        indices = X.indices.astype(np.int64)
        if not zero_based:
            if indices.size and indices.min() == 0:
                raise ValueError(f"{path}, lines from {number}: use feature index 0, but "
                                 f"the file is read with one-based (libsvm) indices")
            indices -= 1
        if fold_features:
            indices %= fold_features
        elif indices.size and indices.max() >= width:
            raise ValueError(f"{path}, lines from {number}: feature index "
                             f"{indices.max() + (0 if zero_based else 1)} found, but "
                             f"there are {width} features")
        X = sp.csr_matrix((X.data, indices, X.indptr), shape=(X.shape[0], width))
        X.sum_duplicates()                               # folded indices may collide
        yield X, y


# ---------------------------------------------------------------------- CSV and .npy
def open_csv_rows(path):
    """``path`` opened as text (utf-8-sig: a byte-order mark is not part of the first
    field), and an iterator over its data lines: a first line whose first field is not
    a number is a header and is skipped.  Use as ``with`` on the first element."""
    f = open_file(path, "rt", encoding="utf-8-sig")
    first = f.readline()
    try:
        float(first.split(",")[0])
        return f, itertools.chain([first], f)
    except ValueError:
        return f, iter(f)                                # a header line


def _csv_tables(path, chunk_rows):
    f, lines = open_csv_rows(path)
    with f:
        while True:
            block = list(itertools.islice(lines, chunk_rows))
            if not block:
                return
            try:
                table = np.loadtxt(block, delimiter=",", ndmin=2, dtype=np.float64)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
            if table.shape[0]:
                yield table


def _npy_tables(path, chunk_rows):
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(table, np.ndarray) or table.ndim != 2:
        raise ValueError(f"{path}: a 2-D array is needed, got shape "
                         f"{getattr(table, 'shape', None)}")
    if np.iscomplexobj(table) or not (np.issubdtype(table.dtype, np.number)
                                      or table.dtype == bool):
        raise ValueError(f"{path}: the array must be real and numeric, got dtype "
                         f"{table.dtype}")
    for start in range(0, table.shape[0], chunk_rows):
        # a float64 copy of these rows only: the memory map holds nothing else
        yield np.array(table[start:start + chunk_rows], dtype=np.float64)


def _table_chunks(path, kind, chunk_rows, n_features):
    tables = _csv_tables(path, chunk_rows) if kind == "csv" else _npy_tables(path, chunk_rows)
    width = None
    for table in tables:
        if width is not None and table.shape[1] != width:
            raise ValueError(f"{path}: rows of {table.shape[1]} columns after rows of "
                             f"{width}")
        width = table.shape[1]
        yield split_label(path, table, n_features)


# ------------------------------------------------------------------------------- API
def _file_chunks(path, chunk_rows, n_features, zero_based, fold_features):
    kind = file_kind(path)
    if kind == "npz":
        raise ValueError(f"{path}: a .npz archive cannot be read in chunks; use .npy, "
                         f"CSV or svmlight files")
    if kind == "svmlight":
        return _svmlight_chunks(path, chunk_rows, n_features, zero_based, fold_features)
    return _table_chunks(path, kind, chunk_rows, n_features)


def read_chunks(paths, *, chunk_rows=DEFAULT_CHUNK_ROWS, n_features=None,
                zero_based=None, fold_features=None):
    """Yield ``(X, y)`` chunks of the rows of ``paths``, one chunk in memory at a time.

    Parameters
    ----------
    paths : str, Path or list of them
        Files, or directories (their files in name order), read one after the other.
    chunk_rows : int, default=DEFAULT_CHUNK_ROWS
        Most rows in a chunk (a file's last chunk has fewer; chunks never span files).
    n_features : int, default=None
        Width of X.  Required for svmlight (unless ``fold_features``); for CSV and
        ``.npy`` it says whether a label column is present (``n_features + 1`` columns)
        or not (``n_features``: ``y`` is then None); None: the first column is the label.
    zero_based : bool, default=None
        Index base of svmlight files (required for them).
    fold_features : int, default=None
        svmlight only: fold the (zero-based) indices modulo this width, summing values
        that land in one column (the hashing trick), e.g. to bring 2^20 indices to the
        width a solver can take.  X then has ``fold_features`` columns.

    Yields
    ------
    X : CSR matrix (svmlight) or ndarray (CSV, .npy), float64
    y : ndarray of shape (n_rows,), or None

    Raises
    ------
    ValueError
        A missing or unreadable file, a malformed line (named), NaN or infinity, a width
        that changes or does not match ``n_features``.
    """
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if fold_features is not None and (not isinstance(fold_features, (int, np.integer))
                                      or fold_features < 1):
        raise ValueError(f"fold_features must be a positive integer, got {fold_features!r}")
    for path in expand_paths(paths):
        for X, y in _file_chunks(path, chunk_rows, n_features, zero_based, fold_features):
            values = X.data if sp.issparse(X) else X
            if not np.all(np.isfinite(values)) or (y is not None
                                                   and not np.all(np.isfinite(y))):
                raise ValueError(f"{path}: contains NaN or infinity")
            yield X, y


@dataclass
class ScanResult:
    """What one pass over the files found.

    Attributes
    ----------
    n_rows : int
    n_features : int
        Width of X (svmlight: the largest index used, in the detected base; with
        ``fold_features``, that).
    zero_based : bool or None
        svmlight: whether the indices start at 0 (given, or found: a file that uses
        index 0 is zero-based); None for CSV and ``.npy``.
    labels : ndarray
        The distinct labels (the classes of a classification task).
    """

    n_rows: int
    n_features: int
    zero_based: object
    labels: np.ndarray


def scan(paths, *, chunk_rows=DEFAULT_CHUNK_ROWS, zero_based=None, fold_features=None):
    """One pass over ``paths`` finding their rows, width, svmlight index base and labels.

    Reads the files chunk by chunk, as :func:`read_chunks` does, keeping only these
    summaries (the distinct labels are kept: for regression targets, as many as rows).

    Parameters
    ----------
    paths : str, Path or list of them
    chunk_rows : int, default=DEFAULT_CHUNK_ROWS
    zero_based : bool, default=None
        svmlight index base; None: detected (zero-based if any file uses index 0).
    fold_features : int, default=None
        As in :func:`read_chunks`.

    Returns
    -------
    ScanResult
    """
    files = expand_paths(paths)
    n_rows, width, uses_zero, labels, kinds = 0, 0, False, [], set()
    for path in files:
        kind = file_kind(path)
        kinds.add(kind)
        if kind == "svmlight":
            chunks = ((X, y) for X, y, _ in _svmlight_raw_chunks(path, chunk_rows))
        else:
            chunks = _file_chunks(path, chunk_rows, None, None, None)
        for X, y in chunks:
            n_rows += X.shape[0]
            if kind == "svmlight":
                uses_zero = uses_zero or bool(X[:, :1].nnz)
                width = max(width, X.shape[1])
            elif width and X.shape[1] != width:
                raise ValueError(f"{path}: {X.shape[1]} features, other files have {width}")
            else:
                width = X.shape[1]
            labels.append(np.unique(y))
    if n_rows == 0:
        raise ValueError(f"{', '.join(map(str, files))}: no data rows")
    if len(kinds) > 1 and "svmlight" in kinds:
        raise ValueError("svmlight files cannot be mixed with CSV or .npy files")
    if "svmlight" in kinds:
        if zero_based is None:
            zero_based = uses_zero
        elif not zero_based and uses_zero:
            raise ValueError("a file uses feature index 0, but the files are read with "
                             "one-based (libsvm) indices")
        width = fold_features or (width if zero_based else max(width - 1, 0))
    else:
        zero_based = None
    return ScanResult(n_rows=n_rows, n_features=int(width), zero_based=zero_based,
                      labels=np.unique(np.concatenate(labels)))
