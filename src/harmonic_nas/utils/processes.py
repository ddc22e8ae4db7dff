"""Worker processes die with their parent: one policy for every process pool of harmonic-nas
(the search's local workers, the parallel pretraining), so that a killed ``run`` or ``search``
leaves no orphan training or writing after it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

#: how often (s) a worker checks that its parent is still alive (the portable fallback)
PARENT_CHECK_S = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when its parent ``parent_pid`` does.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere, a
    daemon thread also checks every :data:`PARENT_CHECK_S` seconds that the parent is still ours
    (the portable fallback, and the cover for a parent that died before the prctl call). Call it
    first in a worker (a pool's ``initializer``)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc / no prctl: the heartbeat below suffices
            logger.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on the parent heartbeat")
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="harmonic-nas-parent-watch", daemon=True).start()
