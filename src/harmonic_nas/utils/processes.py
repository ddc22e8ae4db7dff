"""Worker processes: one policy for every process pool of harmonic-nas (the search's local
workers, the parallel pretraining).

* They die with their parent (:func:`die_with_parent`), so a killed ``run`` or ``search`` leaves
  no orphan training or writing after it.
* They do not re-run the caller's script. Pretraining and ``search.workers`` start workers with
  the ``spawn`` method: each one re-imports the caller's main script. A script that calls
  ``harmonic_nas.run(cfg)`` at its top level, without ``if __name__ == "__main__":``, would start
  the run again inside every worker. The library's entry points
  (:func:`harmonic_nas.utils.threads.thread_policy`) call :func:`exit_if_importing_main` first,
  so such a worker exits at once and silently, and the parent raises
  :func:`worker_start_error`: one line that names the fix.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

from harmonic_nas.errors import ConfigError

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


#: exit code of a worker that stopped because the caller's script is not guarded
UNGUARDED_EXIT = 3

GUARD_FIX = (
    'a script that calls harmonic_nas must make the call under `if __name__ == "__main__":` '
    "(worker processes re-import the script; see the README's Python API)"
)


def importing_main() -> bool:
    """Whether this process is a spawned worker still importing the parent's main script."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def exit_if_importing_main() -> None:
    """Stop a worker process that is re-running the caller's unguarded script (silently: the
    parent reports it)."""
    if importing_main():
        raise SystemExit(UNGUARDED_EXIT)


def worker_start_error(what: str) -> ConfigError:
    """The one-line error of a process pool whose workers died (``BrokenProcessPool``)."""
    return ConfigError(
        f"{what}: a worker process stopped before finishing; {GUARD_FIX}; if the script is "
        "guarded, the machine may be out of memory: set pretrain.workers: 1 / search.workers: 1"
    )
