"""One seeded generator per run: helpers take generators, never reseed the global RNGs."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed derived from ``parts`` (e.g. run seed, stage name, trial number)."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def numpy_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from ``parts``."""
    return np.random.default_rng(derive_seed(*parts))


def torch_generator(*parts: object) -> torch.Generator:
    """A CPU torch generator seeded from ``parts``."""
    g = torch.Generator()
    g.manual_seed(derive_seed(*parts))
    return g
