"""Saving and loading fitted fastntk models, stamped with the fastntk version.

A saved model is a file of two consecutive pickles: a small header ``{"format": ...,
"fastntk_version": ..., "metadata": {...}}``, then the estimator.  Loading checks the header's
stamp before unpickling the estimator, and the estimators themselves refuse to unpickle under another version
(:meth:`fastntk.ridge.NTKRidge.__setstate__`), because fitted random feature maps and
compiled kernels are not guaranteed to reproduce the same features across versions.

Like every pickle, a model file can run code when loaded: load only files you trust.
"""
import pickle

from ._version import __version__

__all__ = ["ModelVersionError", "save_model", "load_model"]

_FORMAT = "fastntk-model/1"


class ModelVersionError(ValueError):
    """A model saved by one fastntk version is loaded by another."""

    def __init__(self, saved, running):
        self.saved = saved
        self.running = running
        super().__init__(f"model was saved by fastntk {saved or '(unknown version)'} but this "
                         f"is fastntk {running}; refit it, or load it with fastntk=={saved}")

    def __reduce__(self):
        return type(self), (self.saved, self.running)


def save_model(model, path, metadata=None):
    """Write a fitted estimator and optional metadata (a dict) to ``path``."""
    header = {"format": _FORMAT, "fastntk_version": __version__, "metadata": metadata or {}}
    with open(path, "wb") as f:
        pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_model(path):
    """Read a model written by :func:`save_model`.

    Returns
    -------
    model : estimator
    metadata : dict

    Raises
    ------
    ModelVersionError
        The file was written by another fastntk version.
    ValueError
        The file is not a fastntk model.
    """
    with open(path, "rb") as f:
        try:
            header = pickle.load(f)
        except Exception:  # any garbage can make the unpickler fail in its own way
            header = None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a fastntk model file")
        if header["fastntk_version"] != __version__:
            raise ModelVersionError(header["fastntk_version"], __version__)
        model = pickle.load(f)
    return model, header["metadata"]
