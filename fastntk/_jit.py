"""The one decorator of every Numba kernel of fastntk: where compiled code is cached, and
how parallel kernels run.

Caching.  ``numba.njit(cache=True)`` looks for a writable directory when a module is
imported (next to the package, then in the user's home) and raises "no locator
available" when there is none: a read-only install without a writable ``HOME``, as
containers run, could not even import fastntk.  :func:`jit` never lets Numba fail at
import; it caches compiled kernels in :func:`cache_dir`:

1. ``FASTNTK_CACHE_DIR`` if set (an empty value, or ``none``, disables the cache);
2. else ``NUMBA_CACHE_DIR`` if set;
3. else ``$XDG_CACHE_HOME/fastntk`` (by default ``~/.cache/fastntk``) if it exists or can
   be created;
4. else nowhere: kernels are compiled in every process, nothing is written.

Nothing is written next to the package unless one of these variables points there.  A
cache directory that exists but is read-only is still read (a server reads the cache
that ``fastntk warmup`` filled at image build time); kernels it lacks are compiled in
memory and not saved.  Cache entries are specific to the CPU model and to the install
path of fastntk, as Numba's own are.

Parallel kernels.  ``jit(parallel=True)`` compiles the function twice, once with
``prange`` as a parallel loop and once as a plain loop, and returns a
:class:`ParallelKernel` that picks one per call (see :mod:`fastntk._threading`): the
serial twin when one thread is wanted (a one-row request wakes no thread team), in a
process forked after OpenMP was used (GNU OpenMP does not survive ``fork``), and under
Numba's ``workqueue`` layer while another thread runs a parallel kernel (that layer
aborts the process on concurrent launches).  Every kernel computes each output row
independently of how rows are split over threads, so the two twins give the same bits.
"""
import os
import threading

import numba

from . import _threading

__all__ = ["jit", "cache_dir", "ParallelKernel", "KERNELS"]

#: Every ParallelKernel and every cached Numba dispatcher made by :func:`jit`, for
#: ``fastntk warmup`` and its report.
KERNELS = []

_UNSET = object()
_cache_dir = _UNSET


def _usable_dir(path):
    """``path`` if it is (or can be made) a readable directory, else None."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        pass
    if os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK):
        return path
    return None


def cache_dir():
    """Directory of fastntk's compiled-kernel cache, or None (no cache); see the module
    docstring for the rule.  Decided once per process, at the first kernel defined."""
    global _cache_dir
    if _cache_dir is _UNSET:
        explicit = os.environ.get("FASTNTK_CACHE_DIR")
        if explicit is not None:
            blank = explicit.strip() == "" or explicit.strip().lower() == "none"
            _cache_dir = None if blank else _usable_dir(os.path.abspath(explicit))
        elif numba.config.CACHE_DIR:
            _cache_dir = _usable_dir(os.path.abspath(numba.config.CACHE_DIR))
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
                os.path.expanduser("~"), ".cache")
            _cache_dir = _usable_dir(os.path.join(base, "fastntk"))
    return _cache_dir


def _make_cache(py_func, variant):
    """A Numba function cache in :func:`cache_dir` for one compiled ``variant`` of
    ``py_func`` ("" or "serial"), or None when there is no cache directory or Numba's
    caching internals are not what this module expects."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        from numba.core import caching
    except ImportError:
        return None

    class Locator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        # a directory that is only readable still serves its entries: writability is
        # needed (and checked by Numba) only to save a new one
        def __init__(self, func, py_file):
            self._py_file = py_file
            self._lineno = func.__code__.co_firstlineno
            self._cache_path = os.path.join(directory,
                                            self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        def get_disambiguator(self):
            # the serial twin has the same source, signature and bytecode as the parallel
            # kernel: its entries need a file name of their own
            return f"{self._lineno}{variant}"

        @classmethod
        def from_function(cls, func, py_file):
            return cls(func, py_file) if os.path.exists(py_file) else None

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [Locator]

    class Cache(caching.FunctionCache):
        _impl_class = Impl

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except (OSError, EOFError):  # unreadable or truncated entry: compile instead
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except OSError:  # read-only cache directory: keep the kernel in memory only
                pass

    try:
        return Cache(py_func)
    except Exception:  # e.g. a NUMBA_CACHE_LOCATOR_CLASSES override that finds nothing
        return None


def _compile(py_func, options, variant):
    dispatcher = numba.njit(**options)(py_func)
    cache = _make_cache(py_func, variant)
    if cache is not None:
        dispatcher._cache = cache  # what Dispatcher.enable_caching() sets
    return dispatcher


class ParallelKernel:
    """A ``parallel=True`` Numba kernel and its serial twin; called like the function.

    The number of threads is :func:`fastntk._threading.current_threads` (set by
    :func:`fastntk._threading.limit`); the kernel must be called from Python, not from
    other compiled code.
    """

    def __init__(self, py_func, options):
        self.py_func = py_func
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__doc__ = py_func.__doc__
        self.__module__ = py_func.__module__
        self.parallel = _compile(py_func, dict(options, parallel=True), "")
        self.serial = _compile(py_func, dict(options, parallel=False), "serial")

    def __call__(self, *args):
        n_threads = _threading.current_threads()
        if n_threads > 1:
            layer = _threading.numba_layer()
            if layer != "workqueue":
                return self._run_parallel(n_threads, args)
            if _WORKQUEUE_LOCK.acquire(blocking=False):
                try:
                    return self._run_parallel(n_threads, args)
                finally:
                    _WORKQUEUE_LOCK.release()
        return self.serial(*args)

    def _run_parallel(self, n_threads, args):
        previous = numba.get_num_threads()  # thread-local in Numba
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return self.parallel(*args)
        finally:
            numba.set_num_threads(previous)

    def __repr__(self):
        return f"<fastntk parallel kernel {self.__module__}.{self.__qualname__}>"


# Numba's workqueue layer runs one parallel kernel at a time in the whole process.
_WORKQUEUE_LOCK = threading.Lock()


def jit(func=None, *, parallel=False, **options):
    """``numba.njit`` with fastntk's cache (never failing at import) and, with
    ``parallel=True``, a :class:`ParallelKernel`.

    Parameters
    ----------
    func : callable, optional
        Used as ``@jit`` or ``@jit(parallel=True, inline="always", ...)``.
    parallel : bool, default=False
    **options
        Other options of ``numba.njit`` (not ``cache``, which this decides).
    """
    if "cache" in options:
        raise TypeError("jit decides caching itself (see fastntk._jit); drop cache=")

    def decorate(py_func):
        if parallel:
            kernel = ParallelKernel(py_func, options)
        else:
            kernel = _compile(py_func, options, "")
        KERNELS.append(kernel)
        return kernel

    return decorate if func is None else decorate(func)
