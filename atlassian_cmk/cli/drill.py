"""`cmkctl drill`: rehearse a revocation end to end on throwaway keys, with the product's own code paths.

Teams that may one day revoke production keys should have done it before. The drill creates a key
pair shaped exactly like the component's (same key policy builder, tags, alias scheme) under a
generated `drill-<time>` stack that no real stack can be named, writes that stack's
`Pulumi.<stack>.yaml` into a scratch folder, and then runs the real `cmkctl status`, `revoke` and
`restore` against it, timing each step. It never deletes a key: it leaves the drill keys disabled
and tagged `atlassian-cmk:drill=true`. Interrupted or failed half way, it disables the keys it
created and tags them `atlassian-cmk:drill-cleanup` (never deletes them).

The commands it runs are injected (`cli`, `runtime`): this module does not import `cli.main`.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from ruamel.yaml import YAML

from atlassian_cmk.aws.identity import read_identity, resolved_endpoints
from atlassian_cmk.aws.kms_reads import ClientFactory
from atlassian_cmk.aws.provision import (
    ProvisionedKey,
    apply_generations,
    create_key_pair,
    find_stack_keys,
    retire_keys,
)
from atlassian_cmk.cli.drill_reencryption import STEP_PROMOTED, ReencryptionDrill, walk_reencryption
from atlassian_cmk.cli.output import TEXT_WIDTH, fit, text_width
from atlassian_cmk.cli.runtime import Runtime, ask_on_stderr
from atlassian_cmk.config import Reencryption, StackConfig, parse_stack_config
from atlassian_cmk.documents import ChangeDocument, RegionResult, RunContext
from atlassian_cmk.drill_rules import DRILL_PREFIX, cleanup_tags, drill_stack_name, emulator_problem
from atlassian_cmk.endpoints import where_label
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.generations import NEXT, generations
from atlassian_cmk.naming import TAG_DRILL, TAG_REENCRYPTION, alias_name
from atlassian_cmk.realms import REALMS
from atlassian_cmk.stack_file import load_stack_config

__all__ = [
    "DRILL_PERMISSIONS",
    "DRILL_PREFIX",
    "DRILL_SERVICES",
    "REENCRYPTION_DRILL_PERMISSIONS",
    "DrillRefused",
    "DrillUnreachable",
    "run_drill",
]

DRILL_SERVICES: Final = ("sts", "kms", "cloudtrail")
"""Every AWS service the drill's clients call: the emulator check resolves each one's endpoint."""

DRILL_PERMISSIONS = (
    "sts:GetCallerIdentity",
    "kms:CreateKey",
    "kms:CreateAlias",
    "kms:EnableKeyRotation",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:ListKeys",
    "kms:GetKeyPolicy",
    "kms:DisableKey",
    "kms:EnableKey",
    "cloudtrail:LookupEvents",
)
"""The drill creates keys, so it needs more than the break-glass role: run it with a sandbox role."""

REENCRYPTION_DRILL_PERMISSIONS = (*DRILL_PERMISSIONS, "kms:UpdateAlias", "kms:DeleteAlias")
"""`drill --reencryption` also moves the drill stack's alias at promotion and deletes its `/next` alias."""

QUOTE = "    | "
"""How the drill quotes a step's own output under the step's line."""
QUOTED_WIDTH = TEXT_WIDTH - len(QUOTE)
"""The width a step's command writes in, so that quoted it still fits TEXT_WIDTH (the status table does)."""


class DrillRefused(Exception):
    """The drill would run against a real account without the flag and the confirmation."""


class DrillUnreachable(Exception):
    """AWS (or the emulator) did not answer who we are: nothing was created. Exit 3."""


class DrillInterrupted(KeyboardInterrupt):
    """Ctrl-C during the drill, after its keys were disabled and tagged; the message says so in one line."""


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
    context: RunContext | None = None
    roles: dict[str, str] = field(default_factory=dict)
    """Key ARN -> its generation's role at the end (re-encryption drill: generation 1 retired); else current."""

    def document(self, code: ExitCode, now: datetime) -> ChangeDocument:
        """The drill's JSON document: the change document's shape, plus the drill stack and its steps."""
        regions = [
            RegionResult(
                key.region, key.arn, None, "Disabled", "created", generation=self.roles.get(key.arn, "current")
            )
            for key in self.keys
        ]
        steps = [
            {
                "name": s.name,
                "expected": int(s.expected),
                "exit_code": s.outcome,
                "seconds": round(s.seconds, 3),
                "ok": s.ok,
            }
            for s in self.steps
        ]
        return ChangeDocument("drill", self.context, code, now, regions, extra={"stack": self.stack, "steps": steps})

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


DRILL_APPLY_ROLE_NAME: Final = "cmk-drill-apply"
"""The apply role the drill stack names (`atlassian-cmk:applyRoleArn`, in the drill's account)."""


def drill_stack_text(config: StackConfig) -> str:
    """The drill stack's `Pulumi.<stack>.yaml`, as a person would write it."""
    values: dict[str, Any] = {}
    if config.realm in REALMS:
        values["atlassian-cmk:realm"] = config.realm
    else:
        values["atlassian-cmk:regions"] = list(config.regions)
    values["atlassian-cmk:enabled"] = config.enabled
    reencryption: dict[str, str] = {"status": config.reencryption.status}
    if config.reencryption.ticket is not None:
        reencryption["ticket"] = config.reencryption.ticket
    values["atlassian-cmk:reencryption"] = reencryption
    values["atlassian-cmk:multiRegion"] = config.multi_region
    values["atlassian-cmk:atlassianKeyPolicy"] = [dict(s) for s in config.atlassian_key_policy]
    values["atlassian-cmk:contextTag"] = config.context_tag
    if config.enrolled_keys is not None:
        values["atlassian-cmk:enrolledKeys"] = config.enrolled_keys.as_config()
    if config.next_keys is not None:
        values["atlassian-cmk:nextKeys"] = config.next_keys.as_config()
    if config.retired_keys:
        values["atlassian-cmk:retiredKeys"] = [generation.as_config() for generation in config.retired_keys]
    if config.apply_role_arn is not None:
        values["atlassian-cmk:applyRoleArn"] = config.apply_role_arn
    buffer = io.StringIO()
    buffer.write("# Throwaway stack written by `cmkctl drill`; never a real stack.\n")
    YAML().dump({"config": values}, buffer)
    return buffer.getvalue()


def run_drill(
    *,
    cli: Callable[..., int],
    realm: str = "us",
    out: TextIO | None = None,
    client_factory: ClientFactory | None = None,
    runtime: Runtime | None = None,
    real_account: bool = False,
    ask: Callable[[str], str] = ask_on_stderr,
    endpoints: Mapping[tuple[str, str], str] | None = None,
    on_context: Callable[[RunContext], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    reencryption: bool = False,
) -> DrillResult:
    """Walk the lifecycle on fresh drill keys with `cli` (cmkctl's `main`); with `reencryption`, a whole
    re-encryption instead (`cli.drill_reencryption`: a second key generation, promoted, the first retired).

    Raises DrillRefused before any request when an endpoint of sts, kms or cloudtrail leaves this
    machine without `real_account`, DrillUnreachable (exit 3) when STS does not answer, and
    DrillInterrupted after disabling and tagging its keys on Ctrl-C.
    """
    out = out or sys.stdout
    rt = runtime or Runtime()
    factory = client_factory or rt.client_factory
    rt = replace(rt, client_factory=factory, ask=ask)
    regions = REALMS[realm].regions
    resolved = endpoints if endpoints is not None else resolved_endpoints(factory, DRILL_SERVICES, regions)
    problem = emulator_problem(resolved)
    if problem is not None and not real_account:
        raise DrillRefused(
            f"{problem}: this drill would create, disable and leave KMS keys in a real AWS account; rerun with "
            "--real-account to do that on purpose"
        )
    identity = read_identity(factory, regions[0])
    if identity.account is None or identity.arn is None:
        raise DrillUnreachable(f"cannot reach AWS ({identity.error})")
    account, partition = identity.account, identity.arn.split(":")[1]
    context = RunContext(account, identity.arn, regions, where_label(resolved.values()))
    if on_context is not None:
        on_context(context)
    if problem is not None:
        typed = ask(
            f"{context.line()}\nThe drill creates {len(regions) * (2 if reencryption else 1)} KMS key(s) in account "
            f"{account} and leaves them disabled. "
            f"Type {account}: "
        )
        if typed.strip() != account:
            raise DrillRefused(f"confirmation not given (typed {typed.strip()[:40] or 'nothing'}, expected {account})")

    stack = drill_stack_name(now())
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
            # Required of every stack (`config.apply_role_missing`: status would say APPLY ROLE MISSING, exit 4).
            # A role name of the drill's own account, exempt only on these throwaway keys (drill-tagged,
            # left disabled); the drill writes its tags as the operator, as it did before.
            "atlassian-cmk:applyRoleArn": f"arn:aws:iam::{account}:role/{DRILL_APPLY_ROLE_NAME}",
        }
    )
    result = DrillResult(stack=stack, regions=config.regions, context=context)
    project = Path(tempfile.mkdtemp(prefix="cmk-drill-"))
    stack_file = project / f"Pulumi.{stack}.yaml"

    enrolled: list[StackConfig] = [config]  # the config as `cmkctl enroll --write-config` left it

    def write_config(current: StackConfig) -> None:
        stack_file.write_text(drill_stack_text(current), encoding="utf-8")

    def mark_reencryption(status: str) -> None:
        """What applying `reencryption.status` does: the config says it, the live keys' tags say it."""
        write_config(replace(enrolled[-1], reencryption=Reencryption(status=status)))  # type: ignore[arg-type]
        for key in result.keys:
            factory("kms", key.region).tag_resource(
                KeyId=key.key_id, Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": status}]
            )

    def step(name: str, expected: ExitCode, *args: str, show: bool = False) -> Step:
        """Run one cmkctl command against the drill stack, print one line, record it."""
        print(f"  ... {name}", file=out, flush=True)
        captured = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), text_width(QUOTED_WIDTH):
            outcome = cli(["--stack", stack, "--project-dir", str(project), *args], runtime=rt)
        if outcome == ExitCode.INTERRUPTED:  # the command caught Ctrl-C itself: the drill stops too
            raise KeyboardInterrupt
        record = Step(name, expected, outcome, time.perf_counter() - started, captured.getvalue())
        result.steps.append(record)
        mark = "ok  " if record.ok else "FAIL"
        print(f"  {mark} {name}: exit {outcome} (expected {int(expected)}) in {record.seconds:.2f} s", file=out)
        if show or not record.ok:
            # The command's own output (written QUOTED_WIDTH wide), quoted: within TEXT_WIDTH columns.
            print("\n".join(f"{QUOTE}{line}".rstrip() for line in record.output.splitlines()), file=out)
        return record

    def check(name: str, ok: bool, detail: str) -> Step:
        """A step the drill verifies itself by reading the keys (exit 0 when as expected, else 1)."""
        record = Step(name, ExitCode.AS_DECLARED, 0 if ok else int(ExitCode.DRIFT), 0.0, detail)
        result.steps.append(record)
        print("\n".join(fit([f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}"])), file=out, flush=True)
        return record

    created: list[ProvisionedKey] = []
    expected_keys = [0]  # keys asked for so far: the clean-up searches by tag while some were not answered

    def clean_up(why: str) -> tuple[list[ProvisionedKey], list[str]]:
        """Disable and tag every key of this drill: those CreateKey answered for, and those whose answer
        was lost (found by the drill's unique stack tag). Ctrl-C is ignored meanwhile: a second Ctrl-C
        must not leave a key enabled half way through the clean-up."""
        with _sigint_ignored():
            keys = list(created)
            if len(created) < expected_keys[0]:  # a CreateKey may have been in flight
                found, problems = find_stack_keys(stack, config.regions, client_factory=factory)
                keys += [key for key in found if key.arn not in {k.arn for k in created}]
            else:
                problems = []
            return keys, problems + retire_keys(keys, cleanup_tags(now(), why), client_factory=factory)

    try:
        walk = "re-encryption drill" if reencryption else "drill"
        print(f"{walk.capitalize()} stack {stack}: realm {realm} ({', '.join(config.regions)})", file=out)
        expected_keys[0] += len(config.regions)
        result.keys = create_key_pair(
            config,
            stack,
            extra_tags={TAG_DRILL: "true"},
            client_factory=factory,
            created_keys=created,
            drill_stand_in=True,
        )
        if reencryption:
            operations = _reencryption_operations(
                stack, project, result, created, expected_keys, factory, step, check, write_config
            )
            if problem is None:  # every endpoint is the emulator (rehearsal/emulator.py keeps CloudTrail's history)
                note = (
                    "(on the emulator CloudTrail holds only this machine's calls: Atlassian's principals are in "
                    "another account and never call it, so the re-encryption evidence is absent, no use seen, "
                    "as on AWS for drill keys Atlassian never uses)"
                )
                print("\n".join(fit(["    " + note])), file=out)
            walk_reencryption(operations, config)
        else:
            reload = lambda: enrolled.append(load_stack_config(project, stack))  # noqa: E731
            _walk(step, mark_reencryption, write_config, config, reload)
    except KeyboardInterrupt:
        keys, problems = clean_up("interrupted")
        raise DrillInterrupted(_cleanup_line(keys, problems, "drill interrupted")) from None
    except Exception:
        clean_up("failed")
        raise
    finally:
        shutil.rmtree(project, ignore_errors=True)
    print_timeline(result, out)
    if not result.passed:
        retire_keys(result.keys, cleanup_tags(now(), "failed"), client_factory=factory)
    return result


def _reencryption_operations(
    stack: str,
    project: Path,
    result: DrillResult,
    created: list[ProvisionedKey],
    expected_keys: list[int],
    factory: ClientFactory,
    step: Callable[..., Step],
    check: Callable[[str, bool, str], Step],
    write_config: Callable[[StackConfig], None],
) -> ReencryptionDrill:
    """The re-encryption walk's operations on this drill's stack, keys and scratch project."""
    generation_keys: dict[int, list[ProvisionedKey]] = {1: list(result.keys)}
    drill_tags = {TAG_DRILL: "true"}

    def create_next(config: StackConfig) -> None:
        expected_keys[0] += len(config.regions)
        keys = create_key_pair(
            config,
            stack,
            key_pair=NEXT,
            extra_tags=drill_tags,
            client_factory=factory,
            created_keys=created,
            drill_stand_in=True,
        )
        generation_keys[len(generation_keys) + 1] = keys
        result.keys.extend(keys)

    def apply(config: StackConfig) -> None:
        apply_generations(config, stack, generation_keys, extra_tags=drill_tags, client_factory=factory)
        for generation in generations(config):
            result.roles.update({key.arn: generation.role for key in generation_keys[generation.number]})

    def key_states() -> dict[int, dict[str, str]]:
        return {
            number: {
                key.region: factory("kms", key.region).describe_key(KeyId=key.key_id)["KeyMetadata"]["KeyState"]
                for key in keys
            }
            for number, keys in generation_keys.items()
        }

    def alias_targets() -> dict[str, str]:
        return {
            region: factory("kms", region).describe_key(KeyId=alias_name(stack))["KeyMetadata"]["Arn"]
            for region in result.regions
        }

    def key_count() -> int:
        """The drill stack's keys that exist now, found by its unique stack tag (none may ever go)."""
        found, problems = find_stack_keys(stack, result.regions, client_factory=factory)
        return -1 if problems else len(found)

    return ReencryptionDrill(
        step=step,
        check=check,
        write_config=write_config,
        reload_config=lambda: load_stack_config(project, stack),
        apply=apply,
        create_next=create_next,
        key_states=key_states,
        alias_targets=alias_targets,
        arns=lambda: {n: {k.region: k.arn for k in keys} for n, keys in generation_keys.items()},
        key_count=key_count,
    )


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for the block (main thread only: Python allows signal.signal nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _cleanup_line(keys: list[ProvisionedKey], problems: list[str], what: str) -> str:
    if problems:
        return (
            f"{what}; could not disable or search: {'; '.join(problems)}; disable the keys tagged "
            f"atlassian-cmk:drill=true by hand"
        )
    if not keys:
        return f"{what}; no key of this drill exists; nothing to clean up"
    return f"{what}; its {len(keys)} key(s) are disabled and tagged atlassian-cmk:drill-cleanup (never deleted)"


def _walk(
    step: Callable[..., Step],
    mark_reencryption: Callable[[str], None],
    write_config: Callable[[StackConfig], None],
    config: StackConfig,
    reload_config: Callable[[], None],
) -> None:
    """The drill's steps, in order; `reload_config` rereads the stack file `enroll --write-config` wrote."""
    write_config(config)
    step("enroll: the keys' ARNs recorded as enrolledKeys", ExitCode.AS_DECLARED, "enroll", "--write-config")
    reload_config()
    step("status: healthy, enrolled keys read by ARN", ExitCode.AS_DECLARED, "status")
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


def print_timeline(result: DrillResult, out: TextIO) -> None:
    print("\nTimeline", file=out)
    for step in result.steps:
        print(f"  {step.seconds:7.2f} s  {'ok  ' if step.ok else 'FAIL'} {step.name}", file=out)
    if result.passed and any(s.name == STEP_PROMOTED for s in result.steps):
        verdict = (
            "\nVerdict: PASS. A whole re-encryption on the drill's keys: generation 2 created and recorded, a revoke "
            "refused while in progress with nothing disabled, generation 2 promoted (no key created or deleted), "
            f"generation 1 retired (disabled, never deleted), in {len(result.regions)} region(s)."
        )
        print("\n".join(fit(verdict.split("\n"))), file=out)
    elif result.passed:
        revoke = result.step("revoke: every region disabled and verified").seconds
        restore = result.step("restore: every region enabled and verified").seconds
        verdict = (
            f"\nVerdict: PASS. The guard refused revocation during re-encryption; revoke took {revoke:.2f} s and "
            f"restore {restore:.2f} s from command to verified state in {len(result.regions)} region(s)."
        )
        print("\n".join(fit(verdict.split("\n"))), file=out)
    else:
        failed = [s.name for s in result.steps if not s.ok]
        print(f"\nVerdict: FAIL at: {'; '.join(failed)}.", file=out)
    if result.keys:
        left = (
            f"Drill keys left disabled, tagged {TAG_DRILL}=true: "
            + ", ".join(key.arn for key in result.keys)
            + ". To remove them, schedule their deletion by hand (see README)."
        )
        print("\n".join(fit([left])), file=out)
