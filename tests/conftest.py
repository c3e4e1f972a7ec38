"""Fixtures shared by the test modules."""
import pytest

from fastntk import ridge


@pytest.fixture
def scored_tail(monkeypatch):
    """Learners fit and score the sketched tail whatever its measured signal.

    The small sparse designs of the solver tests have a tail far below its sketch noise,
    which ``tail_gammas="auto"`` leaves out; tests of how the solvers treat a tail keep it.
    """
    monkeypatch.setattr(ridge, "_TAIL_SIGNAL_MIN", 0.0)
