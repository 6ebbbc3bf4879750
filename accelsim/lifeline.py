"""Worker processes never outlive the run that started them.

A pool worker blocked on its task queue does not notice that its parent was killed (kill -9,
the OOM killer, a closed terminal), and neither does multiprocessing's resource tracker that
the workers keep alive. :func:`die_with_parent`, called first thing in every worker, asks
Linux to kill the worker with its parent (``PR_SET_PDEATHSIG``) and, where that is not
available, watches the parent from a daemon thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def die_with_parent() -> None:
    """Make the calling process end when its parent does."""
    parent = os.getppid()
    if sys.platform.startswith("linux") and _set_parent_death_signal(signal.SIGKILL):
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
        return
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _set_parent_death_signal(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)
