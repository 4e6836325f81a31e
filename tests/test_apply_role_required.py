"""A stack without `atlassian-cmk:applyRoleArn` does not pass review silently (issue 12, attack finding 3).

Without it the key policy the program builds exempts nobody from its evidence Deny statements, so on
AWS the apply role's tag writes of a revocation or a re-encryption step are denied. One core rule
(`config.apply_role_missing`) is said by the program, the pack, `cmkctl impact` and `cmkctl status`;
break-glass only notes it. moto enforces no key policy, so the denials are evaluated with the repo's
evaluator (`iam_policy.effective_kms_decision`: key policy AND the apply role's IAM policy).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.config import (
    APPLY_ROLE_BREAK_GLASS_NOTE,
    APPLY_ROLE_REQUIRED,
    apply_role_missing,
    parse_stack_config,
)
from atlassian_cmk.evidence import SID_EVIDENCE_TAGS, SID_RECORD_NEEDS_ID
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.iam_policy import Decision, Request, effective_kms_decision, parse_policy
from atlassian_cmk.iam_roles import role_policy, role_scope
from atlassian_cmk.naming import TAG_ENABLED, TAG_REENCRYPTION, TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.policy_pack_client import analyze_program_run, by_policy, describe
from rehearsal.program_run import ACCOUNT_ID, ProgramRun, RegisteredResource, run_program
from rehearsal.pull_request import rehearse_pull_request
from tests.support.cmkctl import REAL_STACK_FILE, REGIONS, live, provision, runtime, stack_dir, unwrap
from tests.support.pack_pool import PackPool
from tests.test_config import SAMPLE_APPLY_ROLE, engine_config
from tests.test_policy_pack import OFFLINE, REVOKED

POLICY = "apply-role-configured"
SHIPPED = REAL_STACK_FILE.read_text()
APPLY_LINE = f"  atlassian-cmk:applyRoleArn: {SAMPLE_APPLY_ROLE}\n"
WITHOUT_ROLE = {APPLY_LINE: ""}


def without_role(text: str = SHIPPED) -> str:
    assert APPLY_LINE in text
    return text.replace(APPLY_LINE, "")


def revocation(text: str) -> str:
    old = "  atlassian-cmk:enabled: true\n"
    assert old in text
    return text.replace(
        old, "  atlassian-cmk:enabled: false\n  atlassian-cmk:revocation:\n    reason: Breach\n    ticket: SEC-9\n"
    )


# ----------------------------------------------------------------------------- the core rule and the sample


def test_the_shipped_stack_sets_the_sample_apply_role_and_says_to_replace_it() -> None:
    config = parse_stack_config(raw_config_from_text(SHIPPED))
    assert config.apply_role_arn == SAMPLE_APPLY_ROLE
    assert apply_role_missing(config) is None
    before = SHIPPED[: SHIPPED.index(APPLY_LINE)].rsplit("\n\n", 1)[-1]
    assert "REPLACE" in before and "SAMPLE" in before


def test_a_stack_without_the_apply_role_still_parses_but_the_rule_says_one_line_naming_the_key() -> None:
    config = parse_stack_config(engine_config(applyRoleArn=None))  # break-glass must still load it
    line = apply_role_missing(config)
    assert line == APPLY_ROLE_REQUIRED
    assert line.startswith("atlassian-cmk:applyRoleArn: missing; allowed: the CI apply role's ARN in the keys' own")
    assert "\n" not in line and "no reviewed revocation, restoration or reencryption.status change" in line


# ----------------------------------------------------------------------------- the program


def test_the_program_stops_with_one_line_and_registers_nothing() -> None:
    run = run_program(engine_config(applyRoleArn=None))
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    assert message == f"invalid stack configuration in Pulumi.prod.yaml: {APPLY_ROLE_REQUIRED}"
    assert run.kms_keys == []


def test_the_program_runs_with_the_sample_apply_role() -> None:
    run = run_program(engine_config())
    assert run.error is None, run.error
    assert len(run.kms_keys) == len(REGIONS)


# ----------------------------------------------------------------------------- the pack over gRPC


def test_the_pack_refuses_every_key_of_a_stack_without_the_apply_role(pack_pool: PackPool) -> None:
    # The keys a program registers, judged under a configuration without the role (a program that did not
    # refuse, e.g. an older one): the pack's own refusal, on every key, with the program's words.
    run = run_program(engine_config())
    client = pack_pool.get(engine_config(applyRoleArn=None))
    client.configure(OFFLINE)
    found = by_policy(analyze_program_run(client, run), POLICY)
    keys = {k.urn for k in run.kms_keys}
    assert {v.urn for v in found} == keys, describe(found)
    assert all(v.level == "mandatory" and v.message.splitlines()[-1] == APPLY_ROLE_REQUIRED for v in found)


def test_the_pack_says_nothing_of_the_apply_role_when_it_is_set(pack_pool: PackPool) -> None:
    raw = engine_config()
    client = pack_pool.get(raw)
    client.configure(OFFLINE)
    assert by_policy(analyze_program_run(client, run_program(raw)), POLICY) == []


def test_a_revocation_pull_request_without_the_apply_role_is_blocked_with_the_one_line() -> None:
    result = rehearse_pull_request(SHIPPED, revocation(without_role()), env={})
    assert result.blocked and result.preview_failed and result.impact_failed
    assert str(result.run.error if result.run else "").endswith(APPLY_ROLE_REQUIRED)
    assert result.review.refused == [APPLY_ROLE_REQUIRED]


# ----------------------------------------------------------------------------- cmkctl impact


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose main branch is the shipped stack file."""
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "ci@example.com"],
        ["config", "user.name", "ci"],
    ):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    (tmp_path / "Pulumi.prod.yaml").write_text(SHIPPED)
    for args in (["add", "Pulumi.prod.yaml"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    return tmp_path


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (revocation(SHIPPED), ExitCode.AS_DECLARED),
        (revocation(without_role()), ExitCode.REFUSED),
        (without_role(SHIPPED.replace("status: none", "status: preparing")), ExitCode.REFUSED),
        (without_role(), ExitCode.REFUSED),
    ],
    ids=["revocation-with-role", "revocation-without-role", "preparing-without-role", "role-removed"],
)
def test_impact_fails_the_check_for_a_stack_without_the_apply_role(
    repo: Path, head: str, code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "Pulumi.prod.yaml").write_text(head)
    assert main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"]) == code
    document = json.loads(capsys.readouterr().out)
    missing = [c for c in document["changes"] if c["kind"] == "apply-role-missing"]
    if code == ExitCode.REFUSED:
        assert [c["summary"] for c in missing] == [APPLY_ROLE_REQUIRED]
        assert document["refused"] == [APPLY_ROLE_REQUIRED]
    else:
        assert missing == [] and document["refused"] == []


# ----------------------------------------------------------------------------- cmkctl status and revoke


def test_status_reports_apply_role_missing_with_exit_4_and_everything_else(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path, WITHOUT_ROLE)
    keys = provision(project, moto_endpoint)

    code = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.REFUSED
    assert out.count(f"APPLY ROLE MISSING: {APPLY_ROLE_REQUIRED}") == 1
    assert all(key.arn in out for key in keys)  # the keys and their state are still reported
    assert "EVIDENCE UNPROTECTED" not in out  # the live policy is the one composed without the role

    capsys.readouterr()
    main(["status", "--project-dir", str(project), "--json"], runtime=runtime(moto_endpoint))
    document = json.loads(unwrap(capsys.readouterr().out))
    finding = next(f for f in document["findings"] if f["subkind"] == "apply-role-missing")
    assert finding["kind"] == "refused" and finding["region"] is None


def test_status_of_the_shipped_stack_is_as_declared(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    assert "APPLY ROLE MISSING" not in capsys.readouterr().out


def test_revoke_without_the_apply_role_disables_every_key_and_says_the_note_once(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path, WITHOUT_ROLE)
    provision(project, moto_endpoint)

    code = main(
        ["revoke", "--project-dir", str(project), "--reason", "Breach", "--ticket", "SEC-9", "--yes"],
        runtime=runtime(moto_endpoint),
    )

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert {region: live(moto_endpoint, region).key_state for region in REGIONS} == dict.fromkeys(REGIONS, "Disabled")
    assert out.count(APPLY_ROLE_BREAK_GLASS_NOTE) == 1
    assert "\n" not in APPLY_ROLE_BREAK_GLASS_NOTE


def test_revoke_with_the_apply_role_says_no_note(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    args = ["revoke", "--project-dir", str(project), "--reason", "Breach", "--ticket", "SEC-9", "--yes"]
    assert main(args, runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    assert "applyRoleArn" not in capsys.readouterr().out


# ----------------------------------------------------------------------------- the key policy on AWS


def current_key(run: ProgramRun, region: str = "us-east-1") -> RegisteredResource:
    assert run.error is None, run.error
    return next(
        k
        for k in run.kms_keys
        if k.inputs["region"] == region and k.inputs["tags"]["atlassian-cmk:key-pair"] == "current"
    )


def apply_tag_write(before: dict[str, Any], after: dict[str, Any], apply_role: str | None) -> Decision:
    """The apply role's TagResource of what changes between two program runs' key (the `pulumi up` of that
    pull request), on the deployed key as `before` left it, judged against the key policy the program builds
    (`composed_key_policy`, which the program calls; None: the stack without applyRoleArn, whose program now
    stops, so the policy is the one such a stack deployed) and the apply role's IAM policy."""
    deployed, changed = (
        current_key(run_program(engine_config(**before))),
        current_key(run_program(engine_config(**after))),
    )
    written = {k: v for k, v in changed.inputs["tags"].items() if deployed.inputs["tags"].get(k) != v}
    config = parse_stack_config(engine_config(**after, applyRoleArn=apply_role))
    policy = composed_key_policy(config, account_id=ACCOUNT_ID, partition="aws")
    if apply_role is not None:
        assert policy == changed.inputs["policy"]  # the very document the program registers
    identity = parse_policy(
        role_policy("apply", role_scope(parse_stack_config(engine_config(**after)), "prod", ACCOUNT_ID))
    )
    context: dict[str, Any] = {f"aws:ResourceTag/{k}": v for k, v in deployed.inputs["tags"].items()}
    context |= {f"aws:RequestTag/{k}": v for k, v in written.items()}
    context["aws:TagKeys"] = list(written)
    request = Request(SAMPLE_APPLY_ROLE, "kms:TagResource", changed.outputs["arn"], context)
    return effective_kms_decision(parse_policy(json.loads(policy)), identity, request)


PULL_REQUESTS: dict[str, tuple[dict[str, Any], dict[str, Any], set[str], str]] = {
    "revocation": ({}, REVOKED, {TAG_ENABLED, TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET}, SID_RECORD_NEEDS_ID),
    "reencryption none -> preparing": (
        {},
        {"reencryption": {"status": "preparing"}},
        {TAG_REENCRYPTION},
        SID_EVIDENCE_TAGS,
    ),
}
"""Pull request -> (base config, head config, the tags its apply writes, the statement that denies them without
the role): the finding's two cases."""


@pytest.mark.parametrize("name", PULL_REQUESTS)
def test_the_apply_roles_tag_writes_are_allowed_with_the_sample_role_and_denied_without(name: str) -> None:
    before, after, tags, sid = PULL_REQUESTS[name]
    deployed, changed = (
        current_key(run_program(engine_config(**before))),
        current_key(run_program(engine_config(**after))),
    )
    assert {k for k, v in changed.inputs["tags"].items() if deployed.inputs["tags"].get(k) != v} == tags

    allowed = apply_tag_write(before, after, SAMPLE_APPLY_ROLE)
    denied = apply_tag_write(before, after, None)

    assert allowed.allowed, allowed
    assert not denied.allowed and denied.reason == "explicit-deny", denied
    assert sid in denied.statements, denied
