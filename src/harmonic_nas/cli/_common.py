"""Shared CLI plumbing: consoles, rich progress bars, config loading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harmonic_nas.config import ExperimentConfig, load_config
from harmonic_nas.utils.progress import ProgressFn

console = Console()
err_console = Console(stderr=True)


@contextmanager
def rich_progress(transient: bool = False) -> Iterator[ProgressFn]:
    """A :class:`ProgressFn` that draws one rich bar per task name."""
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
    tasks: dict[str, TaskID] = {}

    def update(task: str, completed: int, total: int) -> None:
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total)
        bars.update(tasks[task], completed=completed, total=total)

    with bars:
        yield update


def load_cfg(path: Path) -> ExperimentConfig:
    """Load and validate an experiment file (errors are one-line ConfigErrors)."""
    return load_config(path)
