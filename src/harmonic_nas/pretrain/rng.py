"""RNG helpers of the training loops: child seeds and a forked, seeded global torch RNG."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)


def next_seed(g: torch.Generator) -> int:
    """A fresh 62-bit seed drawn from ``g`` (advances ``g``)."""
    return int(torch.randint(0, 2**62, (1,), generator=g).item())


@contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global torch RNG (dropout masks) inside a fork: the caller's RNG is untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(torch.Generator().manual_seed(seed).get_state())
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        yield
