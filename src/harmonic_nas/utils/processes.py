"""Worker processes and the caller's script.

Pretraining and ``search.workers`` start worker processes with the ``spawn`` method: each one
re-imports the caller's main script. A script that calls ``harmonic_nas.run(cfg)`` at its top
level, without ``if __name__ == "__main__":``, would start the run again inside every worker. The
library's entry points (:func:`harmonic_nas.utils.threads.thread_policy`) call
:func:`exit_if_importing_main` first, so such a worker exits at once and silently, and the parent
raises :func:`worker_start_error`: one line that names the fix.
"""

from __future__ import annotations

import multiprocessing

from harmonic_nas.errors import ConfigError

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
