"""Progress reporting from library code without printing: a callback the CLI renders.

:class:`ThrottledProgress` turns the callbacks into plain text lines (for a log file, CI, a batch
scheduler): at most one line per task every ``interval`` seconds, plus one when a task ends.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

DEFAULT_INTERVAL_S = 5.0


class ProgressFn(Protocol):
    """``progress(task, completed, total)``: ``task`` names a bar, ``completed`` of ``total`` done."""

    def __call__(self, task: str, completed: int, total: int) -> None: ...


def no_progress(task: str, completed: int, total: int) -> None:
    """The default callback: report nothing."""


def format_duration(seconds: float) -> str:
    """``0:00:07`` style (hours:minutes:seconds), as the rich bars show it."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class _TaskState:
    started: float
    last_line: float
    last_completed: int
    ended: bool = False


class ThrottledProgress:
    """A :class:`ProgressFn` writing timestamped lines through ``emit`` at a bounded rate.

    A line names the task, ``completed/total``, the percentage, the elapsed time and the
    estimated time left (the information of a rich bar). The first report of a task and its
    end (``completed >= total``) always print; other reports print only when ``interval``
    seconds have passed since the task's last line. A task that starts over (``completed``
    goes down, e.g. the next candidate's epochs) is timed afresh.
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], _dt.datetime] = _dt.datetime.now,
    ) -> None:
        self._emit = emit
        self._interval = interval
        self._clock = clock
        self._now = now
        self._tasks: dict[str, _TaskState] = {}
        self._lock = threading.Lock()

    def line(self, task: str, completed: int, total: int, elapsed: float) -> str:
        """The text of one progress line (without the timestamp)."""
        name = task.strip()
        if total > 0:
            pct = 100.0 * min(completed, total) / total
            text = f"{name}: {completed}/{total} ({pct:.0f}%), elapsed {format_duration(elapsed)}"
            if completed >= total:
                return text + ", done"
            if completed > 0:
                left = elapsed * (total - completed) / completed
                text += f", about {format_duration(left)} left"
            return text
        return f"{name}: {completed} done, elapsed {format_duration(elapsed)}"

    def __call__(self, task: str, completed: int, total: int) -> None:
        t = self._clock()
        with self._lock:
            state = self._tasks.get(task)
            force = state is None
            if state is None:
                state = _TaskState(started=t, last_line=float("-inf"), last_completed=completed)
                self._tasks[task] = state
            elif completed < state.last_completed:  # started over: time it afresh
                state.started, state.ended = t, False
            done = total > 0 and completed >= total
            if done and state.ended:
                return
            due = t - state.last_line >= self._interval
            state.last_completed = completed
            if not (force or done or due):
                return
            state.last_line = t
            state.ended = done
            stamp = self._now().strftime("%Y-%m-%d %H:%M:%S")
            text = self.line(task, completed, total, t - state.started)
        self._emit(f"{stamp} {text}")
