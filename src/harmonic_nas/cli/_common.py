"""Shared CLI plumbing: consoles, progress (rich bars or plain lines), JSON output, config loading.

Nothing heavy is imported here (no torch, optuna or the config models): ``harmonic-nas --help``
and ``--version`` must answer at once.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.text import Text, TextType

from harmonic_nas.utils.progress import DEFAULT_INTERVAL_S, ProgressFn, ThrottledProgress

if TYPE_CHECKING:
    from rich.style import Style

    from harmonic_nas.config import ExperimentConfig

# Width of the output when it is not a terminal (a file, a pipe, CI): wide enough that no table
# wraps or truncates its cells (rich would otherwise assume 80 columns).
PLAIN_WIDTH = 4096


@dataclass
class Output:
    """Global output settings, set by the root options ``-v/--verbose`` and ``-q/--quiet``."""

    verbose: int = 0
    quiet: bool = False
    progress_interval: float = DEFAULT_INTERVAL_S


output = Output()


#: Environment variable naming the search problem factory ``"package.module:function"`` (tests,
#: plugins); read here only, the library takes the factory as an argument.
PROBLEM_ENV = "HARMONIC_NAS_SEARCH_PROBLEM"


def search_problem() -> str | None:
    """The problem factory ``$HARMONIC_NAS_SEARCH_PROBLEM`` names (None: the real problem)."""
    import os

    return os.environ.get(PROBLEM_ENV, "").strip() or None


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


class CliConsole(Console):
    """A rich console that, when not writing to a terminal, is as wide as its longest line and
    draws stage rules as one plain timestamped line."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self.is_terminal or self._width is not None:
            return dims
        return ConsoleDimensions(PLAIN_WIDTH, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size

    def rule(
        self,
        title: TextType = "",
        *,
        characters: str = "─",
        style: str | Style = "rule.line",
        align: Any = "center",
    ) -> None:
        if self.is_terminal:
            shown = Text.from_markup(title) if isinstance(title, str) else title
            super().rule(shown, characters=characters, style=style, align=align)
            return
        text = Text.from_markup(title).plain if isinstance(title, str) else title.plain
        self.print(f"{timestamp()} == {text} ==", markup=False, highlight=False, soft_wrap=True)


# Markup is off by default: what the CLI prints holds paths, messages and values with square
# brackets (``[low, high]``, ``runs/[a]``) that Rich would otherwise eat as tags. The few styled
# lines say ``markup=True`` and escape what they interpolate (``rich.markup.escape``).
console = CliConsole(markup=False)
err_console = CliConsole(stderr=True, markup=False)


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout (no colours when not a terminal; non-JSON -> str)."""
    console.print_json(json.dumps(obj, default=str), highlight=console.is_terminal)


@contextmanager
def rich_progress(transient: bool = False) -> Iterator[ProgressFn]:
    """A :class:`ProgressFn` for the CLI: one rich bar per task name when stdout is a terminal;
    otherwise plain timestamped lines on stderr (at most one per task every few seconds, plus
    its end), so that stdout keeps only results (tables, JSON); nothing with ``--quiet``."""
    if output.quiet:
        yield _silent
        return
    if not console.is_terminal:

        def emit(line: str) -> None:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)

        yield ThrottledProgress(emit, interval=output.progress_interval)
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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


def _silent(task: str, completed: int, total: int) -> None:
    """``--quiet``: no progress at all."""


OVERRIDE_HELP = (
    "override a config key (repeatable): dotted KEY=VALUE, the value parsed as YAML, e.g. "
    "-o search.population=8 -o fusion.lambda_lat=0.3; validated like the file"
)


def override_option() -> Any:
    """The ``-o/--override KEY=VALUE`` option of the commands that take an experiment file."""
    return typer.Option(None, "--override", "-o", metavar="KEY=VALUE", help=OVERRIDE_HELP)


def load_cfg(path: Path, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """Load and validate an experiment file plus its ``-o key=value`` overrides (every problem
    in one ConfigError; one line for a single one)."""
    from harmonic_nas.config import load_config

    return load_config(path, sets=tuple(overrides or ()))


def preflight(
    cfg: ExperimentConfig,
    source: Path | str,
    *,
    stages: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
) -> None:
    """The checks that need no training (:func:`harmonic_nas.preflight.check_experiment`),
    before any stage runs: one error listing every problem."""
    from harmonic_nas.preflight import STAGES, check_experiment

    check_experiment(cfg, source=str(source), stages=stages or STAGES, modalities=modalities)


def objectives_line(candidates_path: Path) -> str:
    """What the search optimised, and whether energy is modelled (from ``candidates.json``)."""
    from harmonic_nas.utils.io import read_json

    data = read_json(candidates_path, schema_version=1, what="candidate list")
    names = {"val_metric": "val metric", "latency_ms": "latency", "energy_mj": "energy"}
    objectives = ", ".join(names.get(o, o) for o in data.get("objectives") or [])
    energy = data.get("energy") or {}
    if energy.get("modelled"):
        return (
            f"objectives: {objectives}; energy is modelled ({energy.get('source')}), "
            "not an objective of its own"
        )
    return f"objectives: {objectives}; energy measured ({energy.get('source', 'unknown')})"


def best_line(summary: Any) -> str:
    """``best val X (test Y)`` of a finished search summary (chosen on val, test beside it)."""
    if summary.best_val_metric is None:
        return "best val -"
    text = f"best val {summary.best_val_metric:.4f}"
    if summary.best_test_metric is not None:
        text += f" (test {summary.best_test_metric:.4f})"
    return text
