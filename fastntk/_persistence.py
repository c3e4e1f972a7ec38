"""Saving and loading fitted fastntk models in a format that loading cannot turn into code.

A model file is a zip archive (uncompressed) of

* ``model.json``: the format name and version, the fastntk version that wrote it, the
  user's metadata, and the fitted estimator as a tree of JSON values in which every
  object names its class and every array refers to a member;
* ``arrays/<n>.npy``: the arrays, read with ``allow_pickle=False``.

Loading parses JSON and reads plain arrays; objects are rebuilt only as instances of the
classes of :data:`CLASSES` (fastntk's estimators, the fitted helper objects they hold, and
a few scikit-learn transformers), by setting their attributes: no constructor, no
``__setstate__``, no import of a name taken from the file.  Anything else in a file is
refused before any object is built.

Models holding objects outside this list (a custom transformer, a function) are saved
only with ``save_model(..., allow_pickle=True)``, as a pickle inside the archive, and
loaded only with ``load_model(..., trusted=True)``: unpickling runs code, so do that only
with files you trust.

Compatibility rule: a file records ``format_version`` (:data:`FORMAT_VERSION`, the
layout of the file and of the estimators' saved state).  fastntk reads every file whose
format version is at most its own; a release that changes what an estimator stores, or
how its features are computed from what it stores, raises the format version and reads
the older versions it can convert, refusing the others with a message that names both
versions.  A file written by a newer format version is refused the same way.  Within a
format version, a constructor parameter added by a later release takes its default
value when an older file is loaded.

Saving is atomic: the archive is written to a temporary file in the target directory,
flushed to disk, and renamed over the target, so an interrupted save (Ctrl-C, a full disk,
an error while encoding) leaves any previous file at that path intact.
"""
import io
import json
import math
import os
import pickle
import tempfile
import zipfile

import numpy as np
import scipy.sparse as sp

from ._version import __version__

__all__ = ["ModelFormatError", "ModelVersionError", "CLASSES", "FORMAT_VERSION",
           "save_model", "load_model"]

FORMAT = "fastntk-model"
#: Layout version of the files this fastntk writes (see the compatibility rule).
FORMAT_VERSION = 7
_JSON = "model.json"

# name in the file -> (module, attribute); the only classes a file can instantiate
_CLASS_PATHS = {
    "NTKSketch": ("fastntk.ntk_sketch", "NTKSketch"),
    "NTKSketch._PolynomialSketch": ("fastntk.ntk_sketch", "_PolynomialSketch"),
    "NTKSketch._TensorReduction": ("fastntk.ntk_sketch", "_TensorReduction"),
    "MonomialFeatures": ("fastntk._exact_features", "MonomialFeatures"),
    "SparsePairFeatures": ("fastntk._exact_features", "SparsePairFeatures"),
    "NTKRandomFeatures": ("fastntk.random_features", "NTKRandomFeatures"),
    "NTKNystroem": ("fastntk.nystroem", "NTKNystroem"),
    "RemainderNystroem": ("fastntk.nystroem", "RemainderNystroem"),
    "CNTKSketch": ("fastntk.cntk_sketch", "CNTKSketch"),
    "CountSketch": ("fastntk.sketches", "CountSketch"),
    "SRHT": ("fastntk.sketches", "SRHT"),
    "TensorSRHT": ("fastntk.sketches", "TensorSRHT"),
    "TensorSketch": ("fastntk.sketches", "TensorSketch"),
    "PolySketch": ("fastntk.sketches", "PolySketch"),
    "NTKRidge": ("fastntk.ridge", "NTKRidge"),
    "NTKRidgeClassifier": ("fastntk.ridge", "NTKRidgeClassifier"),
    "cg.BlockStatistics": ("fastntk._solvers.cg", "BlockStatistics"),
    "primal.PrimalStatistics": ("fastntk._solvers.primal", "PrimalStatistics"),
    "sklearn.RBFSampler": ("sklearn.kernel_approximation", "RBFSampler"),
    "sklearn.Nystroem": ("sklearn.kernel_approximation", "Nystroem"),
    "sklearn.SkewedChi2Sampler": ("sklearn.kernel_approximation", "SkewedChi2Sampler"),
    "sklearn.StandardScaler": ("sklearn.preprocessing", "StandardScaler"),
    "sklearn.MaxAbsScaler": ("sklearn.preprocessing", "MaxAbsScaler"),
    "sklearn.Normalizer": ("sklearn.preprocessing", "Normalizer"),
    "sklearn.Pipeline": ("sklearn.pipeline", "Pipeline"),
}
#: The class names a model file may instantiate (fastntk's own and chosen sklearn ones).
CLASSES = tuple(_CLASS_PATHS)

_SPARSE = ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class ModelFormatError(ValueError):
    """A file is not a fastntk model file, or holds something this format refuses."""


class ModelVersionError(ValueError):
    """A model file was written in a format version this fastntk cannot read."""

    def __init__(self, saved, running, detail=""):
        self.saved = saved
        self.running = running
        super().__init__(detail or f"model was saved by fastntk "
                         f"{saved or '(unknown version)'} but this is fastntk {running}; "
                         f"refit it, or load it with fastntk=={saved}")

    def __reduce__(self):
        return type(self), (self.saved, self.running, str(self))


def _class_of(name):
    import importlib

    module, attribute = _CLASS_PATHS[name]
    return getattr(importlib.import_module(module), attribute)


def _name_of(cls):
    for name, (module, attribute) in _CLASS_PATHS.items():
        # sklearn defines its classes in private modules: compare the objects
        if cls.__name__ == attribute and cls.__module__.startswith(module.split(".")[0]):
            if _class_of(name) is cls:
                return name
    return None


# ----------------------------------------------------------------------------- encode
class _Encoder:
    def __init__(self):
        self.arrays = []

    def array(self, value):
        self.arrays.append(np.asarray(value))
        return len(self.arrays) - 1

    def __call__(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, np.generic):
            return {"scalar": value.dtype.str, "value": self(value.item())}
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return {"objects": [self(v) for v in value.ravel()], "shape": value.shape}
            return {"array": self.array(value)}
        if isinstance(value, np.dtype):
            return {"dtype": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"dtype_type": np.dtype(value).str}
        if isinstance(value, (list, tuple)):
            return {"list" if isinstance(value, list) else "tuple": [self(v) for v in value]}
        if isinstance(value, dict):
            return {"dict": [[self(k), self(v)] for k, v in value.items()]}
        if sp.issparse(value) and type(value).__name__ in _SPARSE:
            coo = value.format == "coo"
            parts = ((value.data, *value.coords) if coo else
                     (value.data, value.indices, value.indptr))
            return {"sparse": type(value).__name__, "shape": list(value.shape),
                    "parts": [self.array(p) for p in parts]}
        if isinstance(value, np.random.RandomState):
            return {"random_state": self(value.get_state(legacy=False))}
        if isinstance(value, np.random.Generator):
            state = value.bit_generator.state
            return {"generator": state["bit_generator"], "state": self(state)}
        name = _name_of(type(value))
        if name is not None:
            return {"object": name, "state": self(dict(vars(value)))}
        raise TypeError(f"{type(value).__module__}.{type(value).__qualname__}")


def _encode(model, metadata, payload=None):
    """(``model.json`` bytes, arrays); ``payload`` is a pickle stored instead of the model."""
    encoder = _Encoder()
    tree = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "fastntk_version": __version__, "metadata": encoder(dict(metadata or {})),
            "encoding": "json" if payload is None else "pickle",
            "model": encoder(model) if payload is None else None}
    return json.dumps(tree, allow_nan=False).encode(), encoder.arrays


# ----------------------------------------------------------------------------- decode
def _sketch_from_2(state):
    """Format 2 had no ``n_linear_features_``: its tail weight scaled the tail only."""
    if "n_exact_features_" in state:
        state.setdefault("n_linear_features_", state["n_exact_features_"])
    return state


def _cg_statistics_from_2(state):
    """Format 2 read the diagonal of ``E^T S E`` from the matrix itself."""
    ete = state["ete"]
    diagonal = np.diag(ete) if isinstance(ete, np.ndarray) else ete.diagonal()
    state.setdefault("sq_e", np.array(diagonal, dtype=np.float64))
    return state


def _sketch_from_3(state):
    """Format 3 sketched every degree of the polynomial (``sketch_degrees="all"``)."""
    state.setdefault("sketch_degrees", "all")
    if "widths_" in state and "ntk" in state["widths_"] and "degrees_" not in state:
        from .ntk_sketch import represented_degrees

        state["degrees_"] = represented_degrees(state["coef_"]["ntk"],
                                                state["exact_degrees_"],
                                                state["widths_"]["ntk"])
    return state


def _cg_statistics_from_3(state):
    """Format 3 stored the whole sparse ``E^T S E``; format 4 its upper triangle (and a
    dense one in Fortran order, as the symmetric product reads it)."""
    ete = state["ete"]
    if sp.issparse(ete):
        state["ete"] = sp.triu(ete, format="csr")
    elif ete is not None:
        state["ete"] = np.asfortranarray(ete)
    state["_ete_pending"] = [sp.triu(block, format="csr") if sp.issparse(block) else block
                             for block in state["_ete_pending"]]
    return state


def _ridge_from_4(state):
    """Format 4 had one weight, ``gamma_``, for the exact degrees >= 2 and the tail alike;
    format 5 gives the tail its own (``tail_gamma_``) and records the weightings scored.
    A loaded model predicts as before; a partial_fit continuing it scores the weightings
    of its ``tail_gammas`` (the default, "auto", when the file has none)."""
    if "gamma_" in state:
        state.setdefault("tail_gamma_", state["gamma_"])
        n_rows = np.shape(state.get("cv_values_", np.ones((1, 1))))[0]
        gammas = np.unique(np.asarray(state.get("gammas", (1.0,)), dtype=np.float64))
        if len(gammas) != n_rows:                       # scored (1,) alone
            gammas = np.ones(n_rows)
        state.setdefault("gamma_candidates_", np.column_stack([gammas, gammas]))
    return state


def _sketch_from_5(state):
    """Format 5 gave every pair of columns seen by ``fit`` a column of the exact degree 2
    (``min_pair_df=1``); format 6 drops, by default, those held by one row."""
    state.setdefault("min_pair_df", 1)
    return state


def _sketch_from_6(state):
    """Format 6 sketched the tail of every fitted NTKSketch (either method); format 7
    may complete the exact degrees of dense rows with Nyström features of the rest of
    the NTK (``tail_``)."""
    if "n_features_in_" in state:
        state.setdefault("tail_", "sketch")
    return state


#: file format -> class name -> conversion of a decoded state to the next format
_UPGRADES = {2: {"NTKSketch": _sketch_from_2, "cg.BlockStatistics": _cg_statistics_from_2},
             3: {"NTKSketch": _sketch_from_3, "cg.BlockStatistics": _cg_statistics_from_3},
             4: {"NTKRidge": _ridge_from_4, "NTKRidgeClassifier": _ridge_from_4},
             5: {"NTKSketch": _sketch_from_5},
             6: {"NTKSketch": _sketch_from_6}}


class _Decoder:
    def __init__(self, archive, path, version=FORMAT_VERSION):
        self.archive = archive
        self.path = path
        self.version = version
        self.names = set(archive.namelist())

    def fail(self, what):
        raise ModelFormatError(f"{self.path} is not a valid fastntk model file: {what}")

    def array(self, index):
        name = f"arrays/{index}.npy"
        if not isinstance(index, int) or name not in self.names:
            self.fail(f"missing array member {name}")
        with self.archive.open(name) as member:
            try:
                return np.lib.format.read_array(io.BytesIO(member.read()),
                                                allow_pickle=False)
            except ValueError as exc:  # object arrays (pickles) among them
                self.fail(f"array member {name}: {exc}")

    def __call__(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or len(node) == 0:
            self.fail(f"unexpected value {str(node)[:60]!r}")
        kind = next(iter(node))
        try:
            return self._decode(kind, node)
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            self.fail(f"malformed {kind!r} entry ({type(exc).__name__}: {exc})")

    def _decode(self, kind, node):
        if kind == "float":
            if node["float"] not in ("nan", "inf", "-inf"):
                self.fail(f"bad float {node['float']!r}")
            return float(node["float"])
        if kind == "scalar":
            return np.dtype(node["scalar"]).type(self(node["value"]))
        if kind == "array":
            return self.array(node["array"])
        if kind == "objects":
            values = [self(v) for v in node["objects"]]
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out.reshape(node["shape"])
        if kind in ("dtype", "dtype_type"):
            dtype = np.dtype(node[kind])
            if dtype.hasobject:
                self.fail("object dtype")
            return dtype if kind == "dtype" else dtype.type
        if kind == "list":
            return [self(v) for v in node["list"]]
        if kind == "tuple":
            return tuple(self(v) for v in node["tuple"])
        if kind == "dict":
            return {self._key(k): self(v) for k, v in node["dict"]}
        if kind == "sparse":
            if node["sparse"] not in _SPARSE:
                self.fail(f"sparse type {node['sparse']!r}")
            cls = getattr(sp, node["sparse"])
            parts = [self.array(i) for i in node["parts"]]
            shape = tuple(int(s) for s in node["shape"])
            if node["sparse"].startswith("coo"):
                return cls((parts[0], (parts[1], parts[2])), shape=shape)
            from ._validation import check_sparse_structure
            value = cls(tuple(parts), shape=shape)
            check_sparse_structure(value, "a sparse array of the model file")
            return value
        if kind == "random_state":
            state = self(node["random_state"])
            rng = np.random.RandomState()
            rng.set_state(state)
            return rng
        if kind == "generator":
            if node["generator"] not in _BIT_GENERATORS:
                self.fail(f"bit generator {node['generator']!r}")
            bit_generator = getattr(np.random, node["generator"])()
            bit_generator.state = self(node["state"])
            return np.random.Generator(bit_generator)
        if kind == "object":
            name = node["object"]
            if name not in _CLASS_PATHS:
                self.fail(f"class {str(name)[:80]!r} is not one of the classes a model "
                          f"file may hold")
            state = self(node["state"])
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                self.fail(f"attributes of {name} are not a dict")
            for version in range(self.version, FORMAT_VERSION):
                state = _UPGRADES[version].get(name, lambda s: s)(state)
            cls = _class_of(name)
            obj = cls.__new__(cls)
            obj.__dict__.update(_with_new_parameters(cls, state))
            return obj
        self.fail(f"unknown entry {kind!r}")

    def _key(self, node):
        key = self(node)
        return tuple(key) if isinstance(key, list) else key


def _with_new_parameters(cls, state):
    """``state`` with the defaults of constructor parameters it lacks: an estimator saved
    before a release added a parameter loads with that parameter's default."""
    names = getattr(cls, "_get_param_names", None)
    if names is None:
        return state
    import inspect

    signature = inspect.signature(cls.__init__)
    missing = {name: signature.parameters[name].default for name in names()
               if name not in state and name in signature.parameters
               and signature.parameters[name].default is not inspect.Parameter.empty}
    return {**missing, **state}


# ------------------------------------------------------------------------ public API
def save_model(model, path, metadata=None, *, allow_pickle=False):
    """Write a fitted estimator and optional metadata to ``path``, atomically.

    Parameters
    ----------
    model : estimator
        A fastntk estimator (or a supported scikit-learn transformer), fitted or not.
    path : str or path-like
    metadata : dict, optional
        JSON-like values (str, numbers, bool, None, lists, tuples, dicts, arrays) stored
        beside the model and returned by :func:`load_model`.
    allow_pickle : bool, default=False
        Store a model holding objects this format does not know (e.g. a custom
        transformer) as a pickle inside the archive.  Such a file loads only with
        ``load_model(path, trusted=True)``.

    Raises
    ------
    ValueError
        The model holds an object outside :data:`CLASSES` (and ``allow_pickle`` is
        False); nothing is written.
    """
    payload = None
    try:
        header, arrays = _encode(model, metadata)
    except TypeError as exc:
        if not allow_pickle:
            raise ValueError(f"cannot save this model safely: it holds a {exc}, which is "
                             f"not one of the classes a fastntk model file may hold; pass "
                             f"allow_pickle=True to store it as a pickle (loadable only "
                             f"with load_model(..., trusted=True))") from None
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        header, arrays = _encode(None, metadata, payload)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(_JSON, header)
                for k, array in enumerate(arrays):
                    with archive.open(f"arrays/{k}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
                if payload is not None:
                    archive.writestr("model.pkl", payload)
            raw.flush()
            os.chmod(tmp, _new_file_mode(path))  # mkstemp made it private (0600)
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _new_file_mode(path):
    """Permissions ``open(path, "w")`` would give: those of the file replaced, else
    0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    try:
        with open("/proc/self/status") as status:  # reads the umask without setting it
            umask = next(int(line.split()[1], 8) for line in status
                         if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe)
        os.umask(umask)
    return 0o666 & ~umask


def load_model(path, *, trusted=False):
    """Read a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or path-like
    trusted : bool, default=False
        Allow files that store the model as a pickle (``save_model(...,
        allow_pickle=True)``, and the pickle files of fastntk 0.1.0.dev0 and earlier).
        Unpickling runs code: only for files from a source you trust.

    Returns
    -------
    model : estimator
    metadata : dict

    Raises
    ------
    ModelFormatError (a ValueError)
        The file is not a fastntk model file, is truncated or corrupt, lacks its version
        stamp, or holds something this format refuses (e.g. a class outside
        :data:`CLASSES`, or a pickle without ``trusted=True``).
    ModelVersionError (a ValueError)
        The file's format version is newer than this fastntk reads.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:1] == b"\x80":
        return _load_legacy_pickle(path, trusted)
    if magic != b"PK\x03\x04":
        raise ModelFormatError(f"{path} is not a fastntk model file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFormatError(f"{path} is not a valid fastntk model file: truncated or "
                               f"corrupt ({exc})") from None
    with archive:
        try:
            bad = archive.testzip()
            tree = json.loads(archive.read(_JSON))
        except KeyError:
            raise ModelFormatError(f"{path} is not a valid fastntk model file: it has no "
                                   f"{_JSON}") from None
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise ModelFormatError(f"{path} is not a valid fastntk model file: truncated "
                                   f"or corrupt ({exc})") from None
        if bad is not None:
            raise ModelFormatError(f"{path} is not a valid fastntk model file: member {bad} "
                                   f"is corrupt")
        _check_header(tree, path)
        decoder = _Decoder(archive, path, tree["format_version"])
        metadata = decoder(tree["metadata"])
        if not isinstance(metadata, dict):
            decoder.fail("its metadata is not a dict")
        if tree.get("encoding") == "pickle":
            if not trusted:
                raise ModelFormatError(
                    f"{path} stores its model as a pickle (saved with allow_pickle=True), "
                    f"which can run code when loaded; load it with trusted=True only if "
                    f"you trust its source")
            model = pickle.loads(archive.read("model.pkl"))
        else:
            model = decoder(tree["model"])
    return model, metadata


def _check_header(tree, path):
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a fastntk model file (no {FORMAT!r} stamp)")
    missing = [k for k in ("format_version", "fastntk_version", "metadata", "model")
               if k not in tree]
    if missing:
        raise ModelFormatError(f"{path} is not a valid fastntk model file: no "
                               f"{', '.join(missing)} in its header")
    version = tree["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{path} is not a valid fastntk model file: format version "
                               f"{version!r}")
    if version > FORMAT_VERSION:
        raise ModelVersionError(
            tree["fastntk_version"], __version__,
            f"{path} was saved by fastntk {tree['fastntk_version']} in model format "
            f"{version}; this fastntk {__version__} reads formats up to {FORMAT_VERSION}: "
            f"upgrade fastntk to load it")
    if version < 2:
        # format 1 was the pickle of fastntk 0.1.0.dev0, never a zip archive
        raise ModelFormatError(f"{path} is not a valid fastntk model file: format "
                               f"version {version} in a zip archive")


def _load_legacy_pickle(path, trusted):
    """The two-pickle files of fastntk 0.1.0.dev0 (format 1)."""
    if not trusted:
        raise ModelFormatError(
            f"{path} is a pickle model file (format 1, fastntk 0.1.0.dev0 and earlier), "
            f"which can run code when loaded; load it with trusted=True only if you trust "
            f"its source, then save it again")
    with open(path, "rb") as f:
        try:
            header = pickle.load(f)
            model = pickle.load(f)
        except Exception as exc:  # any garbage can make the unpickler fail its own way
            raise ModelFormatError(f"{path} is not a valid fastntk model file: "
                                   f"{type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != "fastntk-model/1":
        raise ModelFormatError(f"{path} is not a fastntk model file")
    return model, header.get("metadata", {})
