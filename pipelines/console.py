"""What a local pipeline run shows: one line as each task starts and ends, each task's log in a file.

kfp.local's SubprocessRunner reads each task's stdout and stderr from a pipe and `print`s every
line to `sys.stdout`, and logs "Executing task 'x'" / "Task 'x' finished with status S" through a
root-logger handler that it creates on `sys.stdout` around each task; cache hits and retries it
logs through the root logger's own handlers. `task_console` swaps `sys.stdout` and the root
handlers for a `TaskConsole`, which recognises those lines, writes every line to the running
task's log file (`<log_dir>/<task>.log`, the rest to `pipeline.log`) and prints the one-liners.
"""

import contextlib
import io
import logging
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
CACHE_HIT = re.compile(r"Task '?([^' ]+)'? cache hit")
# A tqdm bar ("desc:  40%|####      | 4/10 [...]"): on a pipe each redraw arrives as a line of its own.
PROGRESS = re.compile(r"^\s*(.*?):?\s*\d{1,3}%\|")
TAIL_LINES = 30


class _LogToConsole(logging.Handler):
    """Root-logger records into the console; with `echo` False they are only filed, not printed."""

    def __init__(self, console: "TaskConsole", echo: bool) -> None:
        super().__init__()
        self.console, self.echo = console, echo
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.console.log_line(self.format(record), self.echo)


class TaskConsole(io.TextIOBase):
    """A stdout that files each line under the running task and prints one line per task event."""

    def __init__(self, log_dir: Path, terminal: TextIO, verbose: bool = False) -> None:
        super().__init__()
        self.log_dir, self.terminal, self.verbose = log_dir, terminal, verbose
        log_dir.mkdir(parents=True, exist_ok=True)
        self.pipeline_log = (log_dir / "pipeline.log").open("a", encoding="utf-8")
        self.task: tuple[str, Path, TextIO, float] | None = None
        self.cached: list[str] = []
        self._pending = ""
        # The latest redraw of a progress bar, written once the bar is done: (bar, file, line).
        self._bar: tuple[str, TextIO, str] | None = None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        self._flush_bar()
        self.pipeline_log.close()
        super().close()

    def log_line(self, line: str, echo: bool) -> None:
        """File one line (and print it when `echo`), as if the running task had written it."""
        self._line(line, echo)

    def _say(self, text: str) -> None:
        self.terminal.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.terminal.flush()

    def _flush_bar(self) -> None:
        if self._bar is not None:
            _, out, line = self._bar
            self._bar = None
            out.write(line + "\n")

    def _file(self, out: TextIO, plain: str) -> None:
        """Write a line to `out`, keeping only the last redraw of each progress bar."""
        bar = PROGRESS.match(plain)
        if self._bar is not None and (bar is None or bar.group(1) != self._bar[0]):
            self._flush_bar()
        if bar is None:
            out.write(plain + "\n")
        else:
            self._bar = (bar.group(1), out, plain)

    def _line(self, line: str, echo: bool | None = None) -> None:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        plain = ANSI.sub("", line)
        if match := STARTED.search(plain):
            self._start(match.group(1))
        if match := CACHE_HIT.search(plain):
            self.cached.append(match.group(1))
            self._say(f"{match.group(1):<14} cached")
        self._file(self.task[2] if self.task else self.pipeline_log, plain)
        if (self.verbose if echo is None else echo) and not PROGRESS.match(plain):
            self.terminal.write(line + "\n")
        if (match := FINISHED.search(plain)) and self.task:
            self._finish(match.group(2))

    def _start(self, name: str) -> None:
        path = self.log_dir / f"{name}.log"
        count = 1
        while path.exists():
            count += 1
            path = self.log_dir / f"{name}-{count}.log"
        self.task = (name, path, path.open("w", encoding="utf-8"), time.perf_counter())
        self._say(f"{name:<14} started")

    def _finish(self, status: str) -> None:
        name, path, out, start = self.task
        self._flush_bar()
        out.close()
        self.task = None
        self._say(f"{name:<14} {status:<8} {time.perf_counter() - start:7.1f} s")
        if status != "SUCCESS" and not self.verbose:
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-TAIL_LINES:]
            self.terminal.write("".join(f"    {line}\n" for line in tail))
            self.terminal.write(f"    full log: {path}\n")


@contextlib.contextmanager
def task_console(log_dir: Path, verbose: bool = False) -> Iterator[TaskConsole]:
    """Route kfp.local's output through a `TaskConsole` while the block runs.

    Without `verbose` the root logger writes to the console too (so to `pipeline.log`); with it, every
    line still reaches the terminal, as kfp.local prints it.
    """
    console = TaskConsole(Path(log_dir), sys.stdout, verbose)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # With `verbose` the root logger's own handlers still print every record.
    root.handlers = (
        [*handlers, _LogToConsole(console, echo=False)] if verbose else [_LogToConsole(console, False)]
    )
    # kfp.local logs cache hits at INFO.
    root.setLevel(min(level or logging.WARNING, logging.INFO))
    try:
        with contextlib.redirect_stdout(console):
            yield console
    finally:
        root.handlers, root.level = handlers, level
        console.close()
