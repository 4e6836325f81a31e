"""The break-glass workflow and the evidence policy cannot drift apart.

moto enforces no key policy and no IAM, so a record write the real key policy refuses would pass
every other test. Here every KMS request `cmkctl revoke` and `cmkctl restore` actually send
(recorded by the fault proxy, with the key's tags as they were when the request arrived) is
evaluated with the core evaluator, `iam_policy.effective_kms_decision`, against the composed key
policy (`composed_policy.composed_key_policy`, with 12a's evidence Deny statements) and the
generated break-glass role (`iam_roles.role_policy`), as AWS decides a same-account request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE, TAG_LEASE, TAG_RESTORED_AT, TAG_REVOCATION_ID
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir
from tests.support.faults import Call, FaultProxy, fault_proxy
from tests.support.key_policy_proxy import break_glass_policies


@dataclass(frozen=True)
class Sent:
    """One KMS request as cmkctl sent it, and the key's tags when it arrived."""

    call: Call
    body: dict[str, Any]
    key_arn: str
    tags: dict[str, str]


def _recorder(endpoint: str, proxy: FaultProxy, sent: list[Sent]) -> None:
    lock = threading.Lock()

    def observe(call: Call, raw: bytes) -> None:
        if call.service != "kms":
            return
        body = json.loads(raw or b"{}")
        key_arn, tags = "*", {}
        if "KeyId" in body:
            client = kms(endpoint, call.region)  # straight to the emulator: what the key policy would see
            try:
                key_arn = client.describe_key(KeyId=body["KeyId"])["KeyMetadata"]["Arn"]
            except client.exceptions.NotFoundException:
                return  # no key (the next generation's alias before it exists): no key policy to judge
            tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=key_arn)["Tags"]}
        with lock:
            sent.append(Sent(call, body, key_arn, tags))

    proxy.observe = observe


def _revoke(project: Path, rt: Runtime, ticket: str, *extra: str) -> int:
    args = ["revoke", "--project-dir", str(project), "--reason", f"incident {ticket}", "--ticket", ticket, "--yes"]
    return main([*args, *extra], runtime=rt)


def _restore(project: Path, rt: Runtime, ticket: str) -> int:
    return main(["restore", "--project-dir", str(project), "--ticket", ticket, "--yes"], runtime=rt)


@pytest.mark.parametrize("override", [None, "Key material leaked - CISO approved revocation mid re-encryption"])
def test_every_kms_request_of_revoke_and_restore_is_allowed_for_the_break_glass_role(
    tmp_path: Path, moto_endpoint: str, override: str | None
) -> None:
    project = stack_dir(tmp_path, {"status: none": "status: in-progress"} if override else None)
    provision(project, moto_endpoint)
    extra = ("--override-reencryption-guard", override) if override else ()
    sent: list[Sent] = []

    with fault_proxy(moto_endpoint) as proxy:
        _recorder(moto_endpoint, proxy, sent)
        rt = runtime(proxy.url)
        # A revoke whose record is refused in one region, then the rerun that copies the realm's record.
        proxy.fail("us-west-2", 1000, {"TagResource"}, status=400, error_type="AccessDeniedException", message="no")
        assert _revoke(project, rt, "SEC-1", *extra) == ExitCode.RECORD_NOT_WRITTEN
        proxy.clear_faults()
        assert _revoke(project, rt, "SEC-1", *extra) == ExitCode.AS_DECLARED
        assert _revoke(project, rt, "SEC-1", *extra) == ExitCode.AS_DECLARED  # nothing left to do
        # A restore whose record is refused in one region (its lease write and release are not: a restore that
        # cannot take the lease enables nothing), then its rerun.
        proxy.fail(
            "us-east-1", 1, {"TagResource"}, status=400, error_type="AccessDeniedException", message="no", after=1
        )
        assert _restore(project, rt, "SEC-R") == ExitCode.RECORD_NOT_WRITTEN
        proxy.clear_faults()
        assert _restore(project, rt, "SEC-R") == ExitCode.AS_DECLARED
        # The next incident replaces the closed record; one key was already disabled outside cmkctl.
        east = live(moto_endpoint, "us-east-1")
        kms(moto_endpoint, "us-east-1").disable_key(KeyId=east.key_id)
        assert _revoke(project, rt, "SEC-2", *extra) == ExitCode.AS_DECLARED
        assert _restore(project, rt, "SEC-R2") == ExitCode.AS_DECLARED

    policies = break_glass_policies(project)
    refused = []
    for request in sent:
        decision = policies.decide(request.call.operation, request.key_arn, request.body, request.tags)
        if not decision.allowed:
            refused.append((request.call, request.body, request.tags, decision))
    assert refused == []

    operations = [request.call.operation for request in sent]
    assert "UntagResource" not in operations
    assert {"DisableKey", "EnableKey", "TagResource"} <= set(operations)
    tag_writes = [
        {t["TagKey"]: t["TagValue"] for t in r.body["Tags"]} for r in sent if r.call.operation == "TagResource"
    ]
    # The scenarios exercised the writes the key policy constrains: a replacement that blanks restored-at
    # together with a new revocation id, and restore records.
    assert any(w.get(TAG_RESTORED_AT) == "" and w.get(TAG_REVOCATION_ID) for w in tag_writes)
    assert any(w.get(TAG_RESTORED_AT) for w in tag_writes)
    assert any(w.get(TAG_LEASE) for w in tag_writes) and any(w == {TAG_LEASE: ""} for w in tag_writes)  # the lease
    # revoke's lease released in its record's own TagResource (one request with the record tags): allowed too.
    assert any(w.get(TAG_LEASE) == "" and w.get(TAG_REVOCATION_ID) for w in tag_writes)
    for region in REGIONS:
        tags = live(moto_endpoint, region).tags
        assert tags[TAG_RESTORED_AT] and tags[TAG_REVOCATION_ID]
        assert tags.get(TAG_GUARD_OVERRIDE, "") == (override or "")


def test_the_evaluator_does_refuse_what_the_workflow_must_never_send(tmp_path: Path, moto_endpoint: str) -> None:
    """The agreement test above can fail: the same evaluation refuses an untag and a rewrite of an open record."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    policies = break_glass_policies(project)
    key = live(moto_endpoint, "us-east-1")
    open_record = {**key.tags, TAG_REVOCATION_ID: "rev-20261129T100000Z-abcdef"}
    untag = Sent(Call("us-east-1", "kms", "UntagResource"), {"TagKeys": [TAG_RESTORED_AT]}, key.arn, open_record)
    rewrite = Sent(
        Call("us-east-1", "kms", "TagResource"),
        {"Tags": [{"TagKey": TAG_REVOCATION_ID, "TagValue": "rev-20261129T110000Z-123456"}]},
        key.arn,
        open_record,
    )
    for request in (untag, rewrite):
        decision = policies.decide(request.call.operation, key.arn, request.body, request.tags)
        assert not decision.allowed, request
