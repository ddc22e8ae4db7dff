"""User-facing errors: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class HarmonicError(Exception):
    """A problem with the user's input or environment, with the fix in the message.

    The message must be one line that names the problem and how to fix it. The CLI prints
    ``error: <message>`` and exits with code 2, without a traceback.
    """

    exit_code = 2


class ConfigError(HarmonicError):
    """The experiment file is invalid (unknown key, wrong type, bad value)."""


class DataError(HarmonicError):
    """A dataset is missing, malformed or inconsistent with the config."""


class GenomeError(HarmonicError):
    """A genome does not fit its preset (unknown value, wrong length)."""


class CheckpointError(HarmonicError):
    """A checkpoint is corrupt or belongs to another preset/modality."""


class LUTError(HarmonicError):
    """A lookup table is corrupt, of a wrong schema, or lacks a key."""


class StageMissingError(HarmonicError):
    """A pipeline stage's artifact is missing; the message says which command makes it."""
