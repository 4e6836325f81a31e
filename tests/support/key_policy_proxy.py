"""A fault proxy that refuses what AWS would: each state change and tag write judged by the key policy.

moto enforces no key policy and no IAM (README, "What is verified how"), so the write-once record and the
evidence Denies (`atlassian_cmk.evidence`) never refuse anything in a race on the emulator, and a race
test could pass on moto with writes AWS refuses. `enforce_key_policy` makes a fault proxy answer each
TagResource, UntagResource, DisableKey and EnableKey as KMS would for the break-glass role: the stack's
composed key policy and the role's identity policy evaluated on the request (`iam_policy.
effective_kms_decision`, the evaluator the policy-agreement tests use) with the key's tags as they are
when the request arrives, and an AccessDeniedException when denied, before the emulator sees it.

Where it stops: AWS says a tag change "might take up to five minutes" to affect authorization (AWS KMS
Developer Guide, "Use tags to control access to KMS keys"); here every tag is in effect at once, the
case where the write-once Deny refuses the most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.iam_policy import Decision, Request, Statement, effective_kms_decision, parse_policy
from atlassian_cmk.iam_roles import role_policy, role_scope
from atlassian_cmk.stack_file import load_stack_config
from rehearsal.program_run import ACCOUNT_ID
from tests.support.cmkctl import STACK, kms
from tests.support.faults import Call, FaultProxy, FaultRule

BREAK_GLASS: Final = f"arn:aws:iam::{ACCOUNT_ID}:role/cmk-break-glass"
JUDGED: Final = frozenset({"TagResource", "UntagResource", "DisableKey", "EnableKey"})


def request_context(operation: str, body: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """The condition keys KMS evaluates for a request: the key's tags, and a tag request's tags and keys."""
    context: dict[str, Any] = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    if operation == "TagResource":
        request_tags = {t["TagKey"]: t["TagValue"] for t in body["Tags"]}
        context.update({f"aws:RequestTag/{k}": v for k, v in request_tags.items()})
        context["aws:TagKeys"] = list(request_tags)
    if operation == "UntagResource":
        context["aws:TagKeys"] = list(body["TagKeys"])
    return context


@dataclass(frozen=True)
class BreakGlassPolicies:
    """The project's composed key policy and the generated break-glass role, parsed once."""

    key_policy: list[Statement]
    identity: list[Statement]

    def decide(self, operation: str, key_arn: str, body: dict[str, Any], tags: dict[str, str]) -> Decision:
        """KMS's answer to the break-glass role's `operation` with `body` on the key carrying `tags`."""
        context = request_context(operation, body, tags)
        return effective_kms_decision(
            self.key_policy, self.identity, Request(BREAK_GLASS, f"kms:{operation}", key_arn, context)
        )


def break_glass_policies(project: Path) -> BreakGlassPolicies:
    """The policies KMS evaluates for the break-glass role on the project's stack (moto's account)."""
    config = load_stack_config(project, STACK)
    return BreakGlassPolicies(
        parse_policy(json.loads(composed_key_policy(config, account_id=ACCOUNT_ID, partition="aws"))),
        parse_policy(role_policy("break-glass", role_scope(config, STACK, ACCOUNT_ID))),
    )


def enforce_key_policy(proxy: FaultProxy, endpoint: str, project: Path) -> list[tuple[str, str, str]]:
    """Make `proxy` refuse the break-glass role's KMS writes the project's key policy denies.

    Returns the list the refusals are appended to: (region, operation, the denying statements)."""
    policies = break_glass_policies(project)
    denied: list[tuple[str, str, str]] = []

    def observe(call: Call, raw: bytes) -> None:
        if call.service != "kms" or call.operation not in JUDGED:
            return
        body = json.loads(raw or b"{}")
        client = kms(endpoint, call.region)  # straight to the emulator: the key as KMS would judge it
        arn = client.describe_key(KeyId=body["KeyId"])["KeyMetadata"]["Arn"]
        tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=arn)["Tags"]}
        decision = policies.decide(call.operation, arn, body, tags)
        if decision.allowed:
            return
        denied.append((call.region, call.operation, ", ".join(decision.statements)))
        rule = FaultRule(call.region, 1, frozenset({call.operation}), 400, "AccessDeniedException", "explicit deny")
        with proxy.lock:
            proxy.rules.insert(0, rule)  # this very request: the proxy consults its rules after `observe`

    proxy.observe = observe
    return denied
