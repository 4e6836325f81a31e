"""What a revoke or restore run returns, and what it needs from its caller (pure).

`WorkflowReport` is the whole result: the exit code, one `RegionResult` per key (region and
generation) for the JSON document (`documents.ChangeDocument`), the messages, and the text output
in order (`Output`: a line for stdout or stderr, or the change table `cli/render.py` draws). The
workflow also hands each output item to `Session.emit` the moment it exists, so a person sees a
refusal or the table as it happens, not after the last request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from atlassian_cmk.aws.kms_actions import RetryPolicy
from atlassian_cmk.aws.kms_reads import ClientFactory
from atlassian_cmk.aws.lease import LeaseHold
from atlassian_cmk.documents import ChangeDocument, RegionResult, RunContext
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.workflows.changes import ChangeReport

Command = Literal["revoke", "restore"]


@dataclass(frozen=True)
class Line:
    """One line (or block) of text output; `stream` "err" for refusals and reasons."""

    text: str
    stream: Literal["out", "err"] = "out"


Output = Line | ChangeReport
"""An item of text output: a line, or a change report the caller draws as a table."""


def _ignore(*_: object) -> None:
    return None


@contextlib.contextmanager
def _no_wait(_what: str) -> Iterator[None]:
    yield


@contextlib.contextmanager
def _no_lease(_stack: str, _keys: DeployedState, _caller: str) -> Iterator[LeaseHold | None]:
    yield None


@dataclass(frozen=True)
class Session:
    """What a workflow talks to, injected by the caller (cmkctl, the drill, tests).

    `confirm(what, context)`: asked once, after the guard and before the first change; True goes
    ahead. None: never ask (`--yes`). `waiting(what)`: wraps each wait on AWS (cmkctl prints a
    progress line when it passes a second). `emit`: each output item as it is produced.
    `on_context`: who/where, as soon as it is known (said first). `on_phase(phase, states)`: what the
    run is doing and each key's last known state (label -> KeyState), for the Ctrl-C line.
    `exclusive(stack, keys, caller)`: restore's, held from before EnableKey until after the
    verification: cmkctl takes the break-glass lease on `keys` there (`atlassian_cmk.lease`), yields
    the hold (None: no lease, e.g. the drill) and raises, changing nothing, when another operation
    holds it. Revoke never waits on it: it writes
    its own lease beside DisableKey (`aws.lease.RevokeLease`) and hands it to `on_lease(hold)` so
    an error or Ctrl-C can release it.
    """

    client_factory: ClientFactory
    policy: RetryPolicy
    now: Callable[[], datetime]
    confirm: Callable[[str, RunContext], bool] | None = None
    waiting: Callable[[str], AbstractContextManager[None]] = _no_wait
    emit: Callable[[Output], None] = _ignore
    on_context: Callable[[RunContext], None] = _ignore
    on_phase: Callable[[str, Mapping[str, str] | None], None] = _ignore
    exclusive: Callable[[str, DeployedState, str], AbstractContextManager[LeaseHold | None]] = _no_lease
    on_lease: Callable[[LeaseHold], None] = _ignore


class ConfigChangeError(ValueError):
    """The stack-file change the run would print or write is not valid: nothing was read or changed."""


@dataclass(frozen=True)
class WorkflowReport:
    """The result of one revoke or restore run.

    `regions`: one row per key acted on or read (region and generation), with its state before and
    after; `messages`: the sentences of the text output (the JSON `messages`); `output`: the whole
    text output in order; `change`: the per-key change report when anything was attempted.
    """

    command: Command
    context: RunContext | None
    exit_code: ExitCode
    at: datetime
    regions: tuple[RegionResult, ...]
    messages: tuple[str, ...]
    output: tuple[Output, ...]
    change: ChangeReport | None = None
    config_written: bool = False

    def document(self) -> ChangeDocument:
        """The versioned JSON document (docs/cmkctl.md) of this run."""
        return ChangeDocument(self.command, self.context, self.exit_code, self.at, self.regions, self.messages)


@dataclass
class Transcript:
    """Collects a run's output and messages in order, and hands each item on as it is produced."""

    emit: Callable[[Output], None]
    output: list[Output] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def add(self, item: Output) -> None:
        self.output.append(item)
        self.emit(item)

    def say(self, text: str, *, message: bool = True, prefix: str = "") -> None:
        """A sentence of the output; `message`: also one of the JSON document's messages."""
        if message:
            self.messages.append(text)
        self.add(Line(f"{prefix}{text}"))

    def add_line(self, text: str) -> None:
        """Text for stdout that is not one of the messages (a diff, a note)."""
        self.add(Line(text))

    def refused(self, headline: str, reasons: Sequence[str]) -> None:
        """A headline and one line per reason, on stderr."""
        self.add(Line("\n".join([headline, *(f"  - {reason}" for reason in reasons)]), "err"))

    def report(
        self,
        command: Command,
        context: RunContext | None,
        code: ExitCode,
        at: datetime,
        regions: Sequence[RegionResult],
        messages: Sequence[str] | None = None,
        change: ChangeReport | None = None,
        config_written: bool = False,
    ) -> WorkflowReport:
        return WorkflowReport(
            command,
            context,
            code,
            at,
            tuple(regions),
            tuple(self.messages if messages is None else messages),
            tuple(self.output),
            change,
            config_written,
        )
