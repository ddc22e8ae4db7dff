"""The one thread policy of harmonic-nas: torch runs on ``$HARMONIC_NAS_THREADS`` intra-op threads
(default 1), in the CLI, the Python API and the benchmarks alike.

The networks searched here are small: at batch sizes of tens, intra-op threads cost more in
synchronisation than they gain, and on a shared machine they spin (two threads on a busy 2-core box
were several times slower than one). Scale out with worker processes instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harmonic_nas.utils.env import threads_from_env


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
