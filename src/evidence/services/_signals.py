"""Stop requests (SIGTERM, SIGINT) for the command line, and sections they must not cut.

``stop_on_signals()`` makes SIGTERM and SIGINT raise ``Interrupted`` in the main
thread, so a collection unwinds through its ``finally`` blocks and records the
run as failed. ``Interrupted`` is a ``KeyboardInterrupt``, not an
``EvidenceError``, so no ``except Exception`` in a collector can swallow it and
carry on. ``signals_deferred()`` holds those signals while a block runs
(publishing an artifact: store, ledger, index), then lets them through.
A SIGKILL cannot be caught; the order of effects makes that safe too.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``str()`` names it. The command line exits 3."""


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def stop_on_signals() -> None:
    """Install the handlers (main thread only; elsewhere Python does not run them)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_interrupted)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold stop signals until the block is done; a held signal is raised after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
