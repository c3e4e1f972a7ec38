"""fastntk: scalable Neural Tangent Kernel learning on CPUs.

Random features and sketches whose inner products approximate the NTK of fully-connected
and convolutional ReLU networks (Zandieh et al., NeurIPS 2021; Han et al., 2021), plus the
exact kernels they approximate.
"""
from . import arccos
from ._version import __version__

__all__ = ["__version__", "arccos"]
