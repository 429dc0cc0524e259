"""A progress line for the commands' long runs, drawn from a :class:`Progress`
(a batch's :class:`~mailops.sending.progress.BatchProgress`, a purge's).

On a terminal the line is redrawn in place (``\\r``); anywhere else (a log
file, a service manager's journal, a test's ``StringIO``) a new line is
written only every ``STEP_PERCENT`` percent or ``LINE_INTERVAL`` seconds, so
logs stay readable. The final state is always written once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class Progress(Protocol):
    """What a meter draws: a batch's progress (``BatchProgress``) or a purge's."""

    @property
    def finished(self) -> bool: ...

    @property
    def percent(self) -> int: ...

    def line(self, width: int = 20) -> str: ...


# Off a terminal: a line per this many percent ...
STEP_PERCENT = 10
# ... or after this many seconds without one.
LINE_INTERVAL = 5.0
# On a terminal: redraw at most this often.
REDRAW_INTERVAL = 0.1


class ProgressMeter:
    """Writes :meth:`Progress.line` to ``write``, paced for a terminal or a log."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.tty = tty
        self._clock = clock
        self._last_line = ""
        self._last_time: float | None = None
        self._last_step = -1

    def show(self, progress: Progress) -> None:
        """Draw ``progress`` if enough has changed since the last line."""
        line = progress.line()
        if line == self._last_line:
            return
        now = self._clock()
        since = None if self._last_time is None else now - self._last_time
        if self.tty:
            if since is not None and since < REDRAW_INTERVAL and not progress.finished:
                return
            # Pad with spaces so a shorter line fully covers the previous one.
            self._write("\r" + line.ljust(len(self._last_line)))
        else:
            step = progress.percent // STEP_PERCENT
            due = since is None or since >= LINE_INTERVAL
            if step <= self._last_step and not due and not progress.finished:
                return
            self._last_step = step
            self._write(line + "\n")
        self._last_line, self._last_time = line, now

    def finish(self, progress: Progress | None) -> None:
        """Draw the final state (whatever the pace) and end the terminal line."""
        if progress is not None and progress.line() != self._last_line:
            line = progress.line()
            if self.tty:
                self._write("\r" + line.ljust(len(self._last_line)))
            else:
                self._write(line + "\n")
            self._last_line = line
        if self.tty and self._last_line:
            self._write("\n")


def meter_for(command: Any) -> ProgressMeter:
    """A meter on a management command's ``stderr``, plain text, flushed per write."""
    stderr = command.stderr

    def write(text: str) -> None:
        # No ERROR colouring (stderr's default style): this is not an error.
        stderr.write(text, style_func=_plain, ending="")
        stderr.flush()

    return ProgressMeter(write, tty=stderr.isatty())


def _plain(text: str) -> str:
    return text
