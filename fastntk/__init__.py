"""fastntk: scalable Neural Tangent Kernel learning on CPUs.

Random features and sketches whose inner products approximate the NTK of fully-connected
and convolutional ReLU networks (Zandieh et al., NeurIPS 2021; Han et al., 2021), plus the
exact kernels they approximate.

Submodules are imported lazily (PEP 562), so ``import fastntk`` is cheap and a server
pays the Numba/Cython import cost only for what it uses.
"""
import importlib

from ._version import __version__

# public name -> submodule that defines it
_LAZY = {
    "ntk_kernel": "kernels",
    "cntk_kernel": "kernels",
    "CountSketch": "sketches",
    "SRHT": "sketches",
    "TensorSRHT": "sketches",
    "TensorSketch": "sketches",
    "PolySketch": "sketches",
    "NTKRandomFeatures": "random_features",
    "NTKNystroem": "nystroem",
    "sample_leverage_weights": "leverage",
    "NTKSketch": "ntk_sketch",
    "CNTKSketch": "cntk_sketch",
    "NTKRidge": "ridge",
    "NTKRidgeClassifier": "ridge",
    "save_model": "_persistence",
    "load_model": "_persistence",
}
# public names that need an optional dependency (Dask): not in __all__, so that
# ``from fastntk import *`` works without it
_OPTIONAL = {
    "bag_to_dask_array": "_dask",
    "dask_transform": "_dask",
}
_SUBMODULES = ("arccos", "datasets", "kernels", "sketches", "leverage", "random_features",
               "nystroem", "ntk_sketch", "cntk_sketch", "polyfit", "ridge", "streaming")

__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name):
    if name in _LAZY or name in _OPTIONAL:
        module = importlib.import_module(f".{_LAZY.get(name) or _OPTIONAL[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fastntk' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
