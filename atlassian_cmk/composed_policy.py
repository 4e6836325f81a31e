"""The key policy a stack's keys get, composed from the configuration and checked before use.

The program, `cmkctl drill` and the test provisioning all call `composed_key_policy`, so the
policy the pack judges is the policy the program would create.
"""

from __future__ import annotations

from atlassian_cmk.config import NAMESPACE, StackConfig, role_account, shorten
from atlassian_cmk.evidence import key_policy_evidence_statements
from atlassian_cmk.key_policy import build_key_policy, key_policy_findings, serialize_key_policy


class KeyPolicyRefused(ValueError):
    """The composed policy breaks an invariant; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def composed_key_policy(config: StackConfig, *, account_id: str, partition: str, drill_stand_in: bool = False) -> str:
    """The key policy JSON for every key of the stack (account root, key administrators, the
    evidence slot, Atlassian's statements verbatim). Raises KeyPolicyRefused when it breaks an
    invariant of `key_policy_findings` (e.g. a key administrator of another account), or when
    `atlassian-cmk:applyRoleArn` names a role of another account (the evidence exemption would
    go to a stranger).

    `drill_stand_in`: `cmkctl drill` only, whose throwaway keys grant a stand-in for Atlassian in
    the own account (granting Atlassian's real account would give a third party access); every
    other invariant still holds."""
    if config.apply_role_arn is not None and role_account(config.apply_role_arn) != account_id:
        raise KeyPolicyRefused(
            [
                f"{NAMESPACE}:applyRoleArn: {shorten(config.apply_role_arn)!r} is not allowed; the CI apply role "
                f"must be in the keys' own account {account_id}"
            ]
        )
    policy = serialize_key_policy(
        build_key_policy(
            partition=partition,
            account_id=account_id,
            atlassian_statements=config.atlassian_key_policy,
            key_administrators=config.key_administrators,
            evidence_statements=key_policy_evidence_statements(config.apply_role_arn),
            atlassian_revision=config.atlassian_key_policy_revision,
        )
    )
    findings = key_policy_findings(
        policy,
        atlassian_statements=config.atlassian_key_policy,
        context_tag=config.context_tag,
        account_id=account_id,
    )
    problems = [
        f.message for f in findings if f.blocking and not (drill_stand_in and f.rule == "atlassian-own-account")
    ]
    if problems:
        raise KeyPolicyRefused(problems)
    return policy
