"""What a cmkctl run talks to: AWS clients, retry bounds, the clock, the operator, the progress delay."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Loaded while cmkctl starts, under entry.py's Ctrl-C handler, although kms_reads itself imports boto3 only
# when it makes a client (the policy pack needs it only for live reads): nearly every command reads AWS.
import boto3  # noqa: F401

from atlassian_cmk.aws.kms_actions import RetryPolicy
from atlassian_cmk.aws.kms_reads import ClientFactory, shared_client_factory


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _lazy_factory() -> ClientFactory:
    """The shared factory, created on first use: a bad AWS_PROFILE then fails inside the run (exit 3, one
    line), not while the Runtime is built."""
    made: list[ClientFactory] = []

    def factory(service: str, region: str) -> object:
        if not made:
            made.append(shared_client_factory())
        return made[0](service, region)

    return factory


def ask_on_stderr(prompt: str) -> str:
    """The operator's answer to `prompt`: the prompt goes to stderr, the answer is one line of stdin.

    Not `input()`, which writes its prompt to stdout: stdout carries the JSON document with
    `--format json`, and a prompt there would corrupt it for the reader. EOFError at end of input.
    """
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


@dataclass(frozen=True)
class Runtime:
    """What a run talks to. Tests inject their own clients, clock, operator and progress delay."""

    client_factory: ClientFactory = field(default_factory=_lazy_factory)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], datetime] = _utc_now
    ask: Callable[[str], str] = ask_on_stderr
    progress_after_s: float = 1.0
    """A wait on AWS longer than this prints a progress line on stderr."""
