"""How cmkctl writes: redacted, quiet on a closed pipe, progress lines on long waits, colour only on a TTY.

Every byte cmkctl writes goes through `SafeStream`: URLs lose their credentials (the drift job copies
the output into a job summary), and a reader that goes away (`cmkctl revoke ... | head -1`) does not
stop the command half way: the rest of the output is dropped and the command's own exit code stands.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TextIO

from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.theme import Theme

from atlassian_cmk.display import TEXT_WIDTH as DISPLAY_WIDTH
from atlassian_cmk.display import fit_lines
from atlassian_cmk.endpoints import redact_text

TEXT_WIDTH = DISPLAY_WIDTH
"""cmkctl's text output fits this many columns (a terminal, a ticket, a CI log): `emit` wraps longer
lines. One-line errors on stderr are not wrapped (a script reads them as one line)."""


_WIDTH: ContextVar[int] = ContextVar("cmkctl_text_width", default=TEXT_WIDTH)


def fit(lines: Sequence[str], width: int | None = None) -> list[str]:
    """`lines`, each at most `width` columns (default: the current text width, `text_width`)."""
    return fit_lines(lines, width or _WIDTH.get())


@contextlib.contextmanager
def text_width(width: int) -> Iterator[None]:
    """Text output within `width` columns meanwhile (the drill quotes a command's output indented)."""
    token = _WIDTH.set(width)
    try:
        yield
    finally:
        _WIDTH.reset(token)


class SafeStream:
    """A text stream wrapper: redacts credentials; after EPIPE, drops output instead of raising."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.broken = False

    def _closed_pipe(self) -> None:
        self.broken = True
        # Point the descriptor at /dev/null so the interpreter's final flush cannot fail either
        # (the recipe in the Python docs, "Note on SIGPIPE", library/signal.html).
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.inner.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.inner.write(redact_text(text))
            except BrokenPipeError:
                self._closed_pipe()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self._closed_pipe()

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def safe_streams() -> Iterator[None]:
    """Wrap sys.stdout and sys.stderr for one run; put the originals back afterwards."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = out, err


@contextlib.contextmanager
def waiting(what: str, after_s: float, every_s: float = 10.0) -> Iterator[None]:
    """Print `cmkctl: still waiting for WHAT (N s)` on stderr once a wait passes `after_s`, then every `every_s`.

    Waits are bounded by botocore's timeouts and retries; the line says the run is not hung.
    """
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        delay = after_s
        while not done.wait(delay):
            print(f"cmkctl: still waiting for {what} ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
            delay = every_s

    thread = threading.Thread(target=report, name="cmkctl-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class _Findings(RegexHighlighter):
    base_style = "cmk."
    highlights = [  # noqa: RUF012 - rich's documented way to declare highlighters
        r"(?P<bad>\b(?:CRITICAL|UNREACHABLE|SPLIT|DEADLINE|REFUSED|FAIL|PendingDeletion|unreadable|missing)\b)",
        r"(?P<warn>\b(?:DRIFT|Disabled|GUARD OVERRIDDEN|OUTSIDE)\b)",
        r"(?P<good>\b(?:Enabled|PASS|INSIDE)\b)",
    ]


_THEME = Theme({"cmk.bad": "bold red", "cmk.warn": "yellow", "cmk.good": "green"})


def wants_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def emit(text: str, *, file: Any = None) -> None:
    """Print text wrapped to TEXT_WIDTH columns (`fit`); on a colour terminal, its keywords (CRITICAL,
    DRIFT, Enabled...) coloured by rich."""
    stream = file or sys.stdout
    text = "\n".join(fit(text.split("\n")))
    if not wants_colour(stream):
        print(text, file=stream)
        return
    console = Console(file=stream, highlighter=_Findings(), theme=_THEME, soft_wrap=True)
    console.print(text, markup=False, highlight=True)
