"""`cmkctl drill`: rehearse a revocation end to end on throwaway keys, with the product's own code paths.

Teams that may one day revoke production keys should have done it before. The drill creates a key
pair shaped exactly like the component's (same key policy builder, tags, alias scheme) under a
generated `drill-<time>` stack that no real stack can be named, writes that stack's
`Pulumi.<stack>.yaml` into a scratch folder, and then runs the real `cmkctl status`, `revoke` and
`restore` against it, timing each step. It never deletes a key: it leaves the drill keys disabled
and tagged `atlassian-cmk:drill=true`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from ruamel.yaml import YAML

from atlassian_cmk.aws.kms_reads import ClientFactory, shared_client_factory
from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.config import Reencryption, StackConfig, parse_stack_config
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_DRILL, TAG_REENCRYPTION
from atlassian_cmk.realms import REALMS

DRILL_PREFIX = "drill-"

DRILL_PERMISSIONS = (
    "sts:GetCallerIdentity",
    "kms:CreateKey",
    "kms:CreateAlias",
    "kms:EnableKeyRotation",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",
    "kms:DisableKey",
    "kms:EnableKey",
    "cloudtrail:LookupEvents",
)
"""The drill creates keys, so it needs more than the break-glass role: run it with a sandbox role."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class DrillRefused(Exception):
    """The drill would run against a real account without the flag and the confirmation."""


@dataclass
class Step:
    """One step of the drill: what was run, what it should end with, what it ended with, how long."""

    name: str
    expected: ExitCode
    outcome: int | None = None
    seconds: float = 0.0
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


@dataclass
class DrillResult:
    stack: str
    regions: tuple[str, ...]
    keys: list[ProvisionedKey] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def targets_emulator() -> bool:
    """Whether AWS_ENDPOINT_URL points at this machine (moto in `make demo` and the tests)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    return bool(endpoint) and urlparse(endpoint).hostname in LOOPBACK_HOSTS


def drill_stack_text(config: StackConfig) -> str:
    """The drill stack's `Pulumi.<stack>.yaml`, as a person would write it."""
    values: dict[str, Any] = {}
    if config.realm in REALMS:
        values["atlassian-cmk:realm"] = config.realm
    else:
        values["atlassian-cmk:regions"] = list(config.regions)
    values["atlassian-cmk:enabled"] = config.enabled
    values["atlassian-cmk:reencryption"] = {"status": config.reencryption.status}
    values["atlassian-cmk:multiRegion"] = config.multi_region
    values["atlassian-cmk:atlassianKeyPolicy"] = [dict(s) for s in config.atlassian_key_policy]
    values["atlassian-cmk:contextTag"] = config.context_tag
    buffer = io.StringIO()
    buffer.write("# Throwaway stack written by `cmkctl drill`; never a real stack.\n")
    YAML().dump({"config": values}, buffer)
    return buffer.getvalue()


def run_drill(
    *,
    realm: str = "us",
    out: TextIO | None = None,
    client_factory: ClientFactory | None = None,
    real_account: bool = False,
    ask: Callable[[str], str] = input,
    cli: Callable[..., int] | None = None,
) -> DrillResult:
    """Walk the lifecycle on fresh drill keys; raises DrillRefused before creating anything unsafe."""
    from atlassian_cmk.cli.main import Runtime, main  # the real commands, imported late: main imports us

    out = out or sys.stdout
    emulator = targets_emulator()
    if not emulator and not real_account:
        raise DrillRefused(
            "AWS_ENDPOINT_URL does not point at a local emulator: this drill would create, disable and leave KMS "
            "keys in a real AWS account; rerun with --real-account to do that on purpose"
        )
    factory = client_factory or shared_client_factory()
    run_cli = cli or main
    identity = factory("sts", REALMS[realm].regions[0]).get_caller_identity()
    account, partition = identity["Account"], identity["Arn"].split(":")[1]
    if not emulator:
        typed = ask(f"The drill creates 1-2 KMS keys in account {account} and leaves them disabled. Type {account}: ")
        if typed.strip() != account:
            raise DrillRefused(f"confirmation not given (typed {typed.strip()!r}, expected {account!r})")

    stack = DRILL_PREFIX + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    # The drill's stand-in for Atlassian's statement grants its own account root: a principal that
    # exists, so real KMS accepts the policy, and that gives no third party any access.
    stand_in = [
        {
            "Sid": "DrillStandInForAtlassian",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
        }
    ]
    config = parse_stack_config(
        {
            "atlassian-cmk:realm": realm,
            "atlassian-cmk:enabled": "true",
            "atlassian-cmk:contextTag": "CmkDrill",
            "atlassian-cmk:atlassianKeyPolicy": json.dumps(stand_in),
        }
    )
    result = DrillResult(stack=stack, regions=config.regions)
    project = Path(tempfile.mkdtemp(prefix="cmk-drill-"))
    stack_file = project / f"Pulumi.{stack}.yaml"
    runtime = Runtime(client_factory=factory, ask=ask)

    def write_config(current: StackConfig) -> None:
        stack_file.write_text(drill_stack_text(current), encoding="utf-8")

    def mark_reencryption(status: str) -> None:
        """What applying `reencryption.status` does: the config says it, the live keys' tags say it."""
        write_config(replace(config, reencryption=Reencryption(status=status)))  # type: ignore[arg-type]
        for key in result.keys:
            factory("kms", key.region).tag_resource(
                KeyId=key.key_id, Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": status}]
            )

    def step(name: str, expected: ExitCode, *args: str, show: bool = False) -> Step:
        print(f"  ... {name}", file=out, flush=True)
        captured = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            outcome = run_cli(["--stack", stack, "--project-dir", str(project), *args], runtime=runtime)
        record = Step(name, expected, outcome, time.perf_counter() - started, captured.getvalue())
        result.steps.append(record)
        mark = "ok  " if record.ok else "FAIL"
        print(f"  {mark} {name}: exit {outcome} (expected {int(expected)}) in {record.seconds:.2f} s", file=out)
        if show or not record.ok:
            print("\n".join(f"       | {line}" for line in record.output.splitlines()), file=out)
        return record

    try:
        print(f"Drill stack {stack}: realm {realm} ({', '.join(config.regions)})", file=out)
        result.keys = create_key_pair(
            config, stack, extra_tags={TAG_DRILL: "true"}, client_factory=factory, drill_stand_in=True
        )
        write_config(config)
        step("status: healthy", ExitCode.AS_DECLARED, "status")
        mark_reencryption("in-progress")
        step(
            "revoke during re-encryption: refused by the guard",
            ExitCode.REFUSED,
            "revoke",
            "--reason",
            "drill",
            "--ticket",
            "DRILL-1",
            "--yes",
        )
        mark_reencryption("complete")
        step(
            "revoke: every region disabled and verified",
            ExitCode.AS_DECLARED,
            "revoke",
            "--reason",
            "Revocation drill",
            "--ticket",
            "DRILL-1",
            "--yes",
            "--write-config",
        )
        step("status: revoked, deadlines shown", ExitCode.AS_DECLARED, "status", show=True)
        step(
            "restore: every region enabled and verified",
            ExitCode.AS_DECLARED,
            "restore",
            "--ticket",
            "DRILL-1",
            "--yes",
            "--write-config",
        )
        step("status: healthy again", ExitCode.AS_DECLARED, "status")
        # Leave nothing usable behind: the drill keys end disabled (never deleted).
        step(
            "leave the drill keys disabled",
            ExitCode.AS_DECLARED,
            "revoke",
            "--reason",
            "Drill finished",
            "--ticket",
            "DRILL-1",
            "--yes",
            "--write-config",
        )
    finally:
        shutil.rmtree(project, ignore_errors=True)
    print_timeline(result, out)
    return result


def print_timeline(result: DrillResult, out: TextIO) -> None:
    print("\nTimeline", file=out)
    for step in result.steps:
        print(f"  {step.seconds:7.2f} s  {'ok  ' if step.ok else 'FAIL'} {step.name}", file=out)
    if result.passed:
        revoke = result.step("revoke: every region disabled and verified").seconds
        restore = result.step("restore: every region enabled and verified").seconds
        print(
            f"\nVerdict: PASS. The guard refused revocation during re-encryption; revoke took {revoke:.2f} s and "
            f"restore {restore:.2f} s from command to verified state in {len(result.regions)} region(s).",
            file=out,
        )
    else:
        failed = [s.name for s in result.steps if not s.ok]
        print(f"\nVerdict: FAIL at: {'; '.join(failed)}.", file=out)
    if result.keys:
        print(
            f"Drill keys left disabled, tagged {TAG_DRILL}=true: "
            + ", ".join(key.arn for key in result.keys)
            + ". To remove them, schedule their deletion by hand (see README).",
            file=out,
        )
