"""Thread counts of the compiled kernels, shared by every estimator; fork safety.

Every estimator turns its ``n_jobs`` into a thread count with :func:`effective_n_threads`
and runs its kernels inside :func:`limit`; the kernels read :func:`current_threads`.  The
setting is thread-local and never touches process-wide state (Numba's own
``set_num_threads`` is applied per call and per thread, BLAS threads are never changed):
concurrent requests from several threads cannot change each other's thread counts.

Fork: GNU OpenMP (Numba's ``omp`` threading layer and the OpenMP loops of the Cython
extensions) does not survive ``fork``: a child that starts an OpenMP team after its
parent did is killed or hangs.  A process forked after fastntk started an OpenMP team
therefore runs every compiled loop on one thread (:func:`current_threads` and
:func:`effective_n_threads` return 1 there), which gives the same results; processes
forked before any such use (e.g. gunicorn workers forked from a master that only loaded
the model) keep their threads.
"""
import contextlib
import os
import threading

__all__ = ["effective_n_threads", "limit", "jobs", "current_threads", "numba_layer",
           "openmp_threads", "next_pow2"]

# Work (non-zeros, transform lengths, output values times degree) below which one more
# thread costs more than it saves: waking an OpenMP/Numba team costs tens of
# microseconds on a quiet machine and milliseconds on a busy one.  Measured on a loaded
# 2-core machine (NTKSketch, 4,096 features, CSR rows of 50 non-zeros, 2 threads against
# 1): 60 ms against 0.26 ms for 1 row, 48-68 ms against 4-6 ms for 32 rows, 68-72 ms
# against 15-16 ms for 128 rows, 143-156 ms against 56 ms for 512 rows.  Requests up to
# about 128 rows of 4,096 features therefore never wake a thread team.
_WORK_PER_THREAD = 2**22

_local = threading.local()
_N_CPUS = os.cpu_count() or 1
_state = {"openmp_started": False, "forked_after_openmp": False, "layer": None}


def _after_fork_in_child():
    if _state["openmp_started"]:
        _state["forked_after_openmp"] = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def effective_n_threads(n_jobs, work=None):
    """Threads for ``n_jobs`` and, optionally, an amount of ``work``.

    None and -1 mean every core, -2 all but one, and so on, like the OpenMP-based
    estimators of scikit-learn (e.g. HistGradientBoosting); given ``work``, small inputs
    run on fewer threads, as they would not amortise the start of a thread team.  Inside
    :func:`jobs`, its ``n_jobs`` replaces the estimator's.  Always 1 in a process forked
    after OpenMP was used (see the module docstring).
    """
    if _state["forked_after_openmp"]:
        return 1
    override = getattr(_local, "n_jobs", None)
    if override is not None:
        n_jobs = override
    n_cpus = _N_CPUS
    if n_jobs is None:
        n_threads = n_cpus
    elif n_jobs < 0:
        n_threads = max(1, n_cpus + 1 + n_jobs)
    else:
        n_threads = max(1, int(n_jobs))
    if work is not None:
        n_threads = min(n_threads, work // _WORK_PER_THREAD)
    return int(max(1, n_threads))


@contextlib.contextmanager
def limit(n_threads):
    """Run the parallel kernels called inside on ``n_threads`` threads (this thread only)."""
    previous = getattr(_local, "n_threads", None)
    _local.n_threads = max(1, int(n_threads))
    try:
        yield
    finally:
        _local.n_threads = previous


@contextlib.contextmanager
def jobs(n_jobs):
    """Let ``n_jobs`` replace the ``n_jobs`` of every estimator called inside (this thread
    only; None changes nothing): how a learner passes its own to its feature map."""
    previous = getattr(_local, "n_jobs", None)
    if n_jobs is not None:
        _local.n_jobs = n_jobs
    try:
        yield
    finally:
        _local.n_jobs = previous


def current_threads():
    """Threads for a parallel kernel called now from this thread: the innermost
    :func:`limit`, else every core; 1 in a process forked after OpenMP was used."""
    if _state["forked_after_openmp"]:
        return 1
    n_threads = getattr(_local, "n_threads", None)
    return _N_CPUS if n_threads is None else n_threads


def openmp_threads(n_threads):
    """``n_threads`` for an OpenMP loop of the Cython extensions, noting that a team of
    more than one thread is started (after which a forked child runs serially)."""
    n_threads = 1 if _state["forked_after_openmp"] else max(1, int(n_threads))
    if n_threads > 1:
        _state["openmp_started"] = True
    return n_threads


def numba_layer():
    """Name of Numba's threading layer ('omp', 'tbb' or 'workqueue'), starting it."""
    if _state["layer"] is None:
        import numba
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        _state["layer"] = numba.threading_layer()
    if _state["layer"] == "omp":
        _state["openmp_started"] = True
    return _state["layer"]


def next_pow2(n):
    """Smallest power of two >= n (1 for n <= 1): the padded length of a Hadamard transform."""
    return 1 << max(0, int(n) - 1).bit_length()
