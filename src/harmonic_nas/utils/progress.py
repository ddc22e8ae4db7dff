"""Progress reporting from library code without printing: a callback the CLI renders."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    """``progress(task, completed, total)``: ``task`` names a bar, ``completed`` of ``total`` done."""

    def __call__(self, task: str, completed: int, total: int) -> None: ...


def no_progress(task: str, completed: int, total: int) -> None:
    """The default callback: report nothing."""
