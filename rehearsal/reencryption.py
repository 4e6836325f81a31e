"""A whole re-encryption rehearsed on the emulator, one reviewed pull request at a time.

Each step is a pull request to `Pulumi.<stack>.yaml` judged as CI judges it (`rehearsal.pull_request`:
`cmkctl impact`, the real program under Pulumi's mocks, the real policy pack over its gRPC protocol
reading the deployed keys in the emulator), then, when the guardrails allow it, applied
(`rehearsal.apply`: the emulator brought to what the program registered, as `pulumi up` would). The
operator's own commands are the real `cmkctl enroll` and `cmkctl enroll --next`.

The walk (README "Re-encrypting, step by step"): deploy and enroll; prepare (the next generation
created; the impact says to hand its ARNs to Atlassian); `cmkctl enroll --next`; Atlassian's
re-encryption ticket (manual, only said); in-progress; dropping the recorded nextKeys (refused); a
revocation while in-progress (refused); complete and promote in one change (refused); complete;
promote (no key created or replaced, the stack's alias moves to the promoted keys); retire (the impact
says backups under the retired keys stop working; the retired keys are disabled, never deleted);
`cmkctl status` then finds every region as declared.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from atlassian_cmk import config_edit
from atlassian_cmk.aws.kms_reads import ClientFactory
from atlassian_cmk.cli.main import main as cmkctl
from atlassian_cmk.cli.runtime import Runtime
from atlassian_cmk.display import TEXT_WIDTH, fit_lines
from atlassian_cmk.generations import key_resource_name
from atlassian_cmk.naming import alias_name
from atlassian_cmk.stack_file import engine_config
from rehearsal.apply import ApplyReport, DeployedStack, apply_program
from rehearsal.emulator import emulator_env
from rehearsal.program_run import run_program
from rehearsal.pull_request import Rehearsal, load_policy_config, rehearse_pull_request

ROOT = Path(__file__).resolve().parents[1]
TICKET = "PS-5678"
"""The re-encryption ticket the stack file names (Atlassian's support ticket, opened by the organization admin)."""

_REENCRYPTION_BLOCK = re.compile(r"^  atlassian-cmk:reencryption:\n(?:    .*\n)+", re.MULTILINE)
_NEXT_KEYS_BLOCK = re.compile(r"^  atlassian-cmk:nextKeys:\n(?:    .*\n)+", re.MULTILINE)


def with_status(text: str, status: str) -> str:
    """The stack file with `reencryption` at `status` (with the ticket, except for `none`)."""
    ticket = f"    ticket: {TICKET}\n" if status != "none" else ""
    edited, count = _REENCRYPTION_BLOCK.subn(f"  atlassian-cmk:reencryption:\n    status: {status}\n{ticket}", text)
    if count != 1:
        raise ValueError("the stack file has no atlassian-cmk:reencryption block to edit")
    return edited


def promoted(text: str, current: Mapping[str, str], following: Mapping[str, str]) -> str:
    """The promotion change: enrolledKeys takes the nextKeys ARNs, the old ones become the last retiredKeys
    entry (README step 5; the only shape `impact.is_promotion` recognizes), status unchanged."""
    retired = "".join(
        f"    {'-' if index == 0 else ' '} {region}: {arn}\n" for index, (region, arn) in enumerate(current.items())
    )
    edited, count = _NEXT_KEYS_BLOCK.subn(f"  atlassian-cmk:retiredKeys:\n{retired}", text)
    if count != 1:
        raise ValueError("the stack file has no atlassian-cmk:nextKeys block to promote")
    return config_edit.with_enrolled_keys(edited, following)


@dataclass(frozen=True)
class Step:
    """One step of the walk: what was expected (a pull request allowed or blocked, an operator's command,
    an apply) and whether it happened so, with the lines shown to the reader."""

    title: str
    ok: bool
    lines: tuple[str, ...] = ()
    pull_request: Rehearsal | None = None
    applied: ApplyReport | None = None


@dataclass
class ReencryptionRehearsal:
    """Every step of the walk, in order; `passed` when each ended as expected."""

    steps: list[Step] = field(default_factory=list)
    deployed: DeployedStack = field(default_factory=DeployedStack)
    said: list[str] = field(default_factory=list)
    """The walk's output lines as shown (`say`), each within TEXT_WIDTH columns."""

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def step(self, title: str) -> Step:
        return next(s for s in self.steps if s.title == title)

    def generation_arns(self, number: int) -> dict[str, str]:
        """Region -> ARN of generation `number`'s deployed keys (1: the first key pair, 2: the next one)."""
        return {
            key.region: key.arn
            for name, key in self.deployed.keys.items()
            if name == key_resource_name(number, key.region)
        }


def _reencryption_lines(result: Rehearsal) -> list[str]:
    """What `cmkctl impact` says of the re-encryption transition (summary, then details)."""
    lines: list[str] = []
    for change in result.review.changes:
        if change.kind in ("reencryption", "next-keys"):
            lines.append(f"impact: {change.summary}")
            if change.details:
                lines.append(f"        {change.details}")
    return lines


VERDICT_CHARS = 300
"""A refusal's cause is cut to this many characters in the walk's output (the test and CI see it whole)."""


def _verdict_lines(result: Rehearsal) -> list[str]:
    """The verdict in two lines: allowed, or blocked by which policies on which keys, and the first cause."""
    if result.preview_failed or result.impact_failed:
        return result.summary().splitlines()
    if not result.blocked:
        return [f"ALLOWED: 0 mandatory violations ({len(result.advisory)} advisory)"]
    resources = sorted({v.urn.rsplit("::", 1)[-1] for v in result.mandatory if v.urn})
    first = result.mandatory[0]
    cause = " ".join(first.message.splitlines()[1:]) or first.message
    if len(cause) > VERDICT_CHARS:
        cause = cause[: VERDICT_CHARS - 1] + "…"
    return [
        f"BLOCKED by {', '.join(result.blocking_policies())} on {', '.join(resources) or 'the stack'}",
        f"  first cause: {cause}",
    ]


class _Walk:
    def __init__(
        self, project: Path, stack: str, endpoint: str, client_factory: ClientFactory, say: Callable[[str], None]
    ) -> None:
        self.project = project
        self.stack = stack
        self.path = project / f"Pulumi.{stack}.yaml"
        self.env = emulator_env(endpoint)
        self.factory = client_factory
        self.say = say
        self.policy_config = load_policy_config((ROOT / "policies" / "policy-config.json").read_text())
        self.result = ReencryptionRehearsal()
        self.applied = self.path.read_text()
        """The stack file as last applied (the main branch)."""

    @property
    def deployed(self) -> DeployedStack:
        return self.result.deployed

    def record(self, step: Step) -> Step:
        self.result.steps.append(step)
        # The walk's text within TEXT_WIDTH columns, as cmkctl's (docs/cmkctl.md "Output rules"): long
        # impact details, applied-resource lists and ARNs wrap at spaces, continuations indented.
        shown = [f"--- {step.title}: {'as expected' if step.ok else 'NOT AS EXPECTED'}"]
        shown += [f"  {part}" for line in step.lines for part in line.split("\n")]
        self.say("")
        self.result.said.append("")
        for line in fit_lines(shown, TEXT_WIDTH):
            self.say(line)
            self.result.said.append(line)
        return step

    def apply(self, text: str) -> ApplyReport:
        """`pulumi up` of the merged change: the program (not a preview) applied to the emulator."""
        raw = engine_config(text, None, stack=self.stack, source=self.path.name).values
        report = apply_program(run_program(raw, stack=self.stack, preview=False), self.deployed, self.factory)
        self.applied = text
        self.path.write_text(text)
        return report

    def pull_request(
        self, title: str, head: str, *, blocked_by: tuple[str, ...] = (), says: tuple[str, ...] = ()
    ) -> Step:
        """Judge `head` against the applied file; apply it when allowed and expected to be.

        `blocked_by`: the mandatory policies expected to refuse it, sorted (empty: expected allowed); `says`:
        texts the reviewer's summary must hold.
        """
        result = rehearse_pull_request(
            self.applied,
            head,
            env=self.env,
            stack=self.stack,
            policy_config=self.policy_config,
            deployed_keys=self.deployed.arns(),
        )
        # The impact wraps its text to the reader's columns: a phrase may span a line break.
        impact = " ".join(result.review.to_markdown().split())
        missing = [text for text in says if " ".join(text.split()) not in impact]
        if blocked_by:
            # Exactly these policies: a refusal by another one (a guard misreading the transition) is a finding.
            ok = result.blocked and tuple(result.blocking_policies()) == blocked_by and not result.preview_failed
        else:
            ok = not result.blocked
        ok = ok and not missing
        lines = [*_reencryption_lines(result), *_verdict_lines(result)]
        lines += [f"MISSING from the impact: {text}" for text in missing]
        applied = None
        if ok and not blocked_by:
            applied = self.apply(head)
            lines.append(_applied_line(applied))
        return self.record(Step(title, ok, tuple(lines), result, applied))

    def command(self, title: str, *argv: str) -> Step:
        """A cmkctl command as the operator runs it in the project folder; expected to exit 0."""
        code = cmkctl([*argv, "--stack", self.stack, "--project-dir", str(self.project)], runtime=self.runtime())
        return self.record(Step(title, code == 0, (f"cmkctl {' '.join(argv)}: exit {code}",)))

    def runtime(self) -> Runtime:
        return Runtime(client_factory=self.factory)

    def key_states(self, number: int) -> dict[str, str]:
        """Region -> KeyState of generation `number`'s keys, read from the emulator."""
        states: dict[str, str] = {}
        for name, key in self.deployed.keys.items():
            if name == key_resource_name(number, key.region):
                states[key.region] = self.factory("kms", key.region).describe_key(KeyId=key.key_id)["KeyMetadata"][
                    "KeyState"
                ]
        return states


def _applied_line(report: ApplyReport) -> str:
    parts = [f"{label} {', '.join(names)}" for label, names in (
        ("created", report.created),
        ("updated", report.updated),
        ("deleted alias", report.deleted_aliases),
    ) if names]
    return "applied (pulumi up): " + ("; ".join(parts) if parts else "no change")


def rehearse_reencryption(
    project: Path,
    *,
    endpoint: str,
    client_factory: ClientFactory,
    stack: str = "prod",
    say: Callable[[str], None] = print,
) -> ReencryptionRehearsal:
    """Walk a whole re-encryption for the stack file in `project` (the shipped one, status none, not
    enrolled, no key deployed yet) against the emulator at `endpoint`; see the module text.

    The stack file in `project` is rewritten as each change merges; keys are created and changed in
    the emulator, never deleted. Stops at the first step that does not end as expected.
    """
    walk = _Walk(project, stack, endpoint, client_factory, say)
    with contextlib.suppress(_Stop):
        _walk(walk)
    return walk.result


class _Stop(Exception):
    pass


def _walk(walk: _Walk) -> None:
    def expect(step: Step) -> Step:
        if not step.ok:
            raise _Stop
        return step

    first = walk.apply(walk.applied)
    walk.record(Step("The first pulumi up: the current generation", bool(first.created), (_applied_line(first),)))
    expect(walk.command("Enroll the current generation", "enroll", "--write-config"))
    enrolled = walk.path.read_text()
    expect(walk.pull_request("Pull request: enrollment", enrolled))
    current = walk.result.generation_arns(1)

    expect(
        walk.pull_request(
            "Pull request: prepare (status preparing)",
            with_status(walk.applied, "preparing"),
            says=("PREPARING RE-ENCRYPTION", "cmkctl enroll --next"),
        )
    )
    following = walk.result.generation_arns(2)
    expect(
        walk.record(
            Step(
                "The next generation exists (pulumi stack output nextKeyArns)",
                len(following) == len(current) and not set(following.values()) & set(current.values()),
                tuple(f"{region}: {arn}" for region, arn in following.items()),
            )
        )
    )
    expect(walk.command("Record the next generation", "enroll", "--next", "--write-config"))
    recorded = walk.path.read_text()
    expect(
        walk.pull_request(
            "Pull request: record nextKeys",
            recorded,
            says=("hand these ARNs to Atlassian", *following.values()),
        )
    )
    walk.record(
        Step(
            "Manual, Atlassian's side: the re-encryption ticket",
            True,
            (
                f"the organization admin requests re-encryption ({TICKET}) with the nextKeys ARNs; it applies to every "
                "CMK-enabled app and involves downtime",
            ),
        )
    )
    expect(
        walk.pull_request(
            "Pull request: in progress",
            with_status(walk.applied, "in-progress"),
            says=("both key generations must stay enabled",),
        )
    )
    expect(
        walk.pull_request(
            "Pull request: drop nextKeys while in progress",
            _NEXT_KEYS_BLOCK.sub("", walk.applied),
            blocked_by=("enrolled-keys-kept",),
            says=("NEXT KEYS REMOVED",),
        )
    )
    expect(
        walk.pull_request(
            "Pull request: revoke while re-encryption is in progress",
            config_edit.with_revocation(walk.applied, "Suspected breach of encrypted data", "SEC-1234"),
            blocked_by=("no-revocation-during-reencryption",),
        )
    )
    expect(
        walk.pull_request(
            "Pull request: complete and promote in one change",
            promoted(with_status(walk.applied, "complete"), current, following),
            blocked_by=("no-revocation-during-reencryption",),
        )
    )
    expect(
        walk.pull_request(
            "Pull request: complete (Atlassian confirmed)",
            with_status(walk.applied, "complete"),
            says=("promotion is the next, separate change",),
        )
    )
    promotion = expect(
        walk.pull_request(
            "Pull request: promote the next generation",
            promoted(walk.applied, current, following),
            says=("PROMOTION",),
        )
    )
    alias = alias_name(walk.stack)
    targets = {
        region: walk.factory("kms", region).describe_key(KeyId=alias)["KeyMetadata"]["Arn"] for region in following
    }
    kept = promotion.applied is not None and not promotion.applied.created
    expect(
        walk.record(
            Step(
                f"Promotion replaced no key; {alias} names the promoted keys",
                kept and targets == following,
                tuple(f"{region}: {alias} -> {arn}" for region, arn in targets.items()),
            )
        )
    )
    expect(
        walk.pull_request(
            "Pull request: retire the old generation (status none)",
            with_status(walk.applied, "none"),
            says=("RETIREMENT", "Backups protected by them no longer work"),
        )
    )
    old, new = walk.key_states(1), walk.key_states(2)
    expect(
        walk.record(
            Step(
                "Retired keys disabled (never deleted), the promoted keys enabled",
                set(old.values()) == {"Disabled"} and set(new.values()) == {"Enabled"},
                tuple(f"{region}: generation 1 {old[region]}, generation 2 {new[region]}" for region in old),
            )
        )
    )
    walk.command("cmkctl status after the walk: every region as declared (exit 0)", "status")

