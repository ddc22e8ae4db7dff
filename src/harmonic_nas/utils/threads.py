"""The one thread policy of harmonic-nas: torch runs on ``$HARMONIC_NAS_THREADS`` intra-op threads
(default 1), in the CLI, the Python API and the benchmarks alike.

The networks searched here are small: at batch sizes of tens, intra-op threads cost more in
synchronisation than they gain, and on a shared machine they spin (two threads on a busy 2-core box
were several times slower than one). Scale out with worker processes instead.

Where it applies: every library function that trains, searches or evaluates models is decorated
with :func:`thread_policy` (the pipeline's ``run`` / ``run_fusion``, each stage's entry point, the
inner tier), so a caller cannot forget it: the CLI, a notebook calling ``harmonic_nas.run`` and a
benchmark all pass through the same functions. The caller's own thread count is restored after.
The CLI, whose process is its own, also sets the count once when torch is imported (it validates
``$HARMONIC_NAS_THREADS`` at start-up and covers the few commands that reach none of these
functions, e.g. ``predict`` of a TorchScript model); the count itself is :func:`policy_threads`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from harmonic_nas.utils.env import threads_from_env
from harmonic_nas.utils.processes import exit_if_importing_main

P = ParamSpec("P")
R = TypeVar("R")

#: attribute set on every function decorated with :func:`thread_policy`
POLICY_ATTR = "__harmonic_nas_thread_policy__"


def policy_threads() -> int:
    """The intra-op thread count of the policy (``$HARMONIC_NAS_THREADS``, default 1)."""
    return threads_from_env()


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (default: the policy), then restore."""
    import torch

    count = policy_threads() if n is None else n
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def thread_policy(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate an entry point that trains, searches or evaluates models: it runs under the
    policy's thread count (:func:`torch_threads`) whoever calls it, then the caller's count is
    restored. A block inside it may still pin another count (``pretrain.threads``,
    ``device.threads``) with :func:`torch_threads`.

    In a worker process that is still re-importing the caller's unguarded script, the call stops
    the worker instead (:func:`harmonic_nas.utils.processes.exit_if_importing_main`)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        exit_if_importing_main()
        with torch_threads():
            return fn(*args, **kwargs)

    setattr(wrapper, POLICY_ATTR, True)
    return wrapper


def under_policy(fn: object) -> bool:
    """Whether ``fn`` applies the thread policy itself (:func:`thread_policy`)."""
    return bool(getattr(fn, POLICY_ATTR, False))
