"""Thread counts for the compiled kernels, shared by every estimator."""
import contextlib
import os

import numba

# Work (non-zeros or transform lengths) below which one more thread costs more than it
# saves: waking an OpenMP/Numba team costs tens of microseconds, and much more on a
# loaded machine.
_WORK_PER_THREAD = 2**16


def effective_n_threads(n_jobs, work=None):
    """Threads for ``n_jobs`` and, optionally, an amount of ``work``.

    None and -1 mean every core, -2 all but one, and so on, like the OpenMP-based
    estimators of scikit-learn (e.g. HistGradientBoosting); given ``work``, small inputs
    run on fewer threads, as they would not amortise the start of a thread team.
    """
    n_cpus = os.cpu_count() or 1
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
def numba_threads(n_threads):
    """Run Numba parallel kernels on ``n_threads`` threads (a thread-local setting)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def next_pow2(n):
    """Smallest power of two >= n (1 for n <= 1): the padded length of a Hadamard transform."""
    return 1 << max(0, int(n) - 1).bit_length()
