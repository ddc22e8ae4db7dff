"""Loaders of real datasets from a user path; importing this package registers them."""

from __future__ import annotations

from harmonic_nas.data.loaders import avmnist, memes, mmimdb, npz, soundmnist

__all__ = ["avmnist", "memes", "mmimdb", "npz", "soundmnist"]
