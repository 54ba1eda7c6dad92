"""Feedback while a command works: a spinner on stderr saying what it does (a bar once the total is known),
with the time elapsed, erased when the work ends.

Drawn only for a person at a terminal: when stdout or stderr is not a terminal (a pipe, a file, a test) or
the command prints --json, nothing is drawn, so scripts see exactly the output they always saw.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class _WhenCounted(ProgressColumn):
    """A column drawn only once the task has a total (a bar, `12/40`); blank while it is unknown."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self._column = column

    def render(self, task: Task) -> RenderableType:
        return Text("") if task.total is None else self._column.render(task)


class Activity:
    """The line shown while working: `update` says what happens now, and `completed` of `total` draws a bar."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def update(self, description: str | None = None, *, completed: int | None = None, total: int | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, description=description, completed=completed, total=total)

    def counting(self, description: str) -> Callable[[int, int], None]:
        """A `progress(done, total)` callback that shows `description` with a bar."""
        return lambda done, total: self.update(description, completed=done, total=total)


def drawn(*, json_output: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    """Whether to draw: a person is watching (stdout and stderr are terminals) and the output is not JSON."""
    streams = (stdout or sys.stdout, stderr or sys.stderr)
    return not json_output and all(stream.isatty() for stream in streams)


@contextmanager
def working(
    description: str, *, json_output: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> Iterator[Activity]:
    """Show `description` with a spinner on stderr while the block runs, then erase it (also on Ctrl-C)."""
    console = Console(file=stderr or sys.stderr)
    if not drawn(json_output=json_output, stdout=stdout, stderr=stderr) or console.is_dumb_terminal:
        yield Activity()
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        _WhenCounted(BarColumn(bar_width=30)),
        _WhenCounted(MofNCompleteColumn()),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield Activity(progress, progress.add_task(description, total=None))
