"""Arranging cmkctl scenarios: a copy of the real stack file, keys as the component creates them, fast runtimes."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.aws.kms_actions import RetryPolicy
from atlassian_cmk.aws.kms_reads import ClientFactory, read_key
from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.live_keys import LiveKey
from atlassian_cmk.naming import alias_name
from atlassian_cmk.stack_file import load_stack_config
from tests.support.faults import fast_client_factory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_STACK_FILE = PROJECT_ROOT / "Pulumi.prod.yaml"
CMKCTL = PROJECT_ROOT / ".venv" / "bin" / "cmkctl"
STACK = "prod"
REGIONS = ("us-east-1", "us-west-2")  # the realm of the real stack file (us)


def stack_dir(tmp_path: Path, replacements: dict[str, str] | None = None) -> Path:
    """A project folder holding a copy of the real Pulumi.prod.yaml, optionally edited."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    target = project / f"Pulumi.{STACK}.yaml"
    shutil.copyfile(REAL_STACK_FILE, target)
    if replacements:
        text = target.read_text(encoding="utf-8")
        for old, new in replacements.items():
            assert old in text, f"{old!r} not in the stack file"
            text = text.replace(old, new)
        target.write_text(text, encoding="utf-8")
    return project


@functools.cache
def emulator_clients(endpoint: str) -> ClientFactory:
    """Clients for the emulator shared by the whole session: a fresh boto3 session per client
    reloads the service models (~100 ms each), which would dominate the suite's time."""
    return fast_client_factory(endpoint)


def kms(endpoint: str, region: str) -> Any:
    """A KMS client on the emulator, for arranging and asserting."""
    return emulator_clients(endpoint)("kms", region)


def provision(project: Path, endpoint: str) -> list[ProvisionedKey]:
    """Keys exactly as the component would create them for the project's stack file."""
    return create_key_pair(load_stack_config(project, STACK), STACK, client_factory=emulator_clients(endpoint))


def arns_block(keys: list[ProvisionedKey]) -> str:
    """The ARNs as a stack-file map (region: arn), indented under a config key."""
    return "".join(f"    {key.region}: {key.arn}\n" for key in keys)


def two_generations(
    tmp_path: Path, endpoint: str, status: str, *, record_next: bool = True
) -> tuple[Path, list[ProvisionedKey], list[ProvisionedKey]]:
    """Current and next key pairs as the component creates them, the stack file recording them."""
    project = stack_dir(tmp_path, {"    status: none": f"    status: {status}\n    ticket: PS-1"})
    config = load_stack_config(project, STACK)
    factory = emulator_clients(endpoint)
    current = create_key_pair(config, STACK, client_factory=factory)
    following = create_key_pair(config, STACK, key_pair="next", client_factory=factory)
    path = project / f"Pulumi.{STACK}.yaml"
    text = path.read_text() + f"  atlassian-cmk:enrolledKeys:\n{arns_block(current)}"
    if record_next:
        text += f"  atlassian-cmk:nextKeys:\n{arns_block(following)}"
    path.write_text(text)
    load_stack_config(project, STACK)  # the arranged file is valid
    return project, current, following


def key_states(endpoint: str, keys: list[ProvisionedKey]) -> dict[str, str]:
    """Region -> KeyState of `keys` (one generation), read from the emulator by key ID."""
    found = {}
    for key in keys:
        reading = read_key(kms(endpoint, key.region), key.region, key.key_id)
        assert reading.key is not None
        found[key.region] = reading.key.key_state
    return found


def live(endpoint: str, region: str) -> LiveKey:
    """The key behind the stack's alias in `region`, read back from the emulator."""
    reading = read_key(kms(endpoint, region), region, alias_name(STACK))
    assert reading.key is not None, reading
    return reading.key


def fast_policy(attempts: int = 3) -> RetryPolicy:
    """cmkctl's retry bounds with no waiting: tests never sleep."""
    return RetryPolicy(attempts=attempts, backoff_s=0, verify_reads=3, verify_interval_s=0, sleep=lambda _: None)


def runtime(
    endpoint_for: Callable[[str], str] | str,
    *,
    now: Callable[[], datetime] | None = None,
    answer: str | None = None,
    attempts: int = 3,
    read_timeout: float = 5,
) -> Runtime:
    """A Runtime with fast clients routed per region, and an operator who types `answer`.

    `read_timeout` (seconds): tests that hold requests at a proxy until a whole round has arrived
    raise it, so a loaded machine delays the round instead of timing its first requests out."""

    def ask(prompt: str) -> str:
        if answer is None:
            raise EOFError
        return answer

    factory = fast_client_factory(endpoint_for, read_timeout=read_timeout)
    base = Runtime(client_factory=factory, policy=fast_policy(attempts), ask=ask)
    return Runtime(base.client_factory, base.policy, now or base.now, base.ask)


def unwrap(text: str, widths: tuple[int, ...] = (94, 96, 100)) -> str:
    """`text` with the lines `display.fit_lines` wrapped joined again, so a test can look for a
    sentence whatever column it was wrapped at: a line continues the one above when it is indented
    two more than the wrapped line's first line and its first word would not have fitted on the line
    above (`widths`: the widths cmkctl wraps at: the drill's quoted output, the impact warning, text)."""
    lines: list[str] = []
    above = ""  # the physical line above
    for line in text.split("\n"):
        if lines and line.strip() and above.strip():
            head = lines[-1]
            indent = len(head) - len(head.lstrip(" "))
            word = line.strip().split(" ", 1)[0]
            continued = line.startswith(" " * (indent + 2)) and not line.startswith(" " * (indent + 3))
            if continued and any(len(above) + 1 + len(word) > w for w in widths):
                lines[-1] = f"{head} {line.strip()}"
                above = line
                continue
        lines.append(line)
        above = line
    return "\n".join(lines)


@dataclass(frozen=True)
class Ran:
    """What a cmkctl run left: its exit code and its whole stdout and stderr (text)."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(
    argv: list[str], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Ran:
    """`cmkctl ARGV` run by `main` in this process with exactly the environment `env`, as the installed
    script would run it (`cli.main.entry_point` is `sys.exit(main())`) minus its start-up: no Runtime is
    injected, so cmkctl makes its boto3 session from `env` as a fresh process does (`cli/runtime.py`,
    `_lazy_factory`: one new `boto3.session.Session()` per run, which reads the variables and the
    config and credentials files then). For the cases where the environment, not the process, is under
    test; ~0.35 s of CPU less than a subprocess. The real entry point, stdin, signals and exit codes keep
    their subprocess tests (tests/test_cmkctl_pressure.py, tests/test_cmkctl_safety.py)."""
    for name in [name for name in os.environ if name not in env]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return Ran(int(code), out, err)
