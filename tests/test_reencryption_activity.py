"""Live evidence of re-encryption from CloudTrail (issue 15 item 3), through botocore's Stubber on the
real client (Atlassian's calls and AWS's refusals never come from the emulator): present, absent,
unreadable, throttled, bounded."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from atlassian_cmk.aws import cloudtrail
from atlassian_cmk.aws.cloudtrail import ACTIVITY_MAX_PAGES, RequestPacer, read_reencryption_activity
from atlassian_cmk.break_glass import RevokeRequest, guard_evidence_changes, revoke_refusal
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.evidence import key_policy_evidence_statements
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.reencryption_activity import (
    ACTIVITY_WINDOW,
    activity_reasons,
    atlassian_callers,
    enrolled_pair,
    match_events,
)
from tests.test_config import engine_config

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
ATLASSIAN = "279766244153"  # the account of the stack's sample Atlassian statement
ROLE = f"arn:aws:iam::{ATLASSIAN}:role/SAMPLE-AtlassianCmkAccess"
SESSION = f"arn:aws:sts::{ATLASSIAN}:assumed-role/SAMPLE-AtlassianCmkAccess/reencrypt"
OWN = "123456789012"
REGIONS = ("us-east-1", "us-west-2")


def arn(region: str, digit: str) -> str:
    return f"arn:aws:kms:{region}:{OWN}:key/{digit * 8}-1111-2222-3333-444444444444"


CURRENT = {r: arn(r, "a") for r in REGIONS}
NEXT = {r: arn(r, "b") for r in REGIONS}


def config(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "reencryption": {"status": "in-progress", "ticket": "PS-1"},
        "enrolledKeys": CURRENT,
        "nextKeys": NEXT,
    }
    values.update(overrides)
    return parse_stack_config(engine_config(**values))


def event(key_arn: str, name: str, when: datetime, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """One LookupEvents entry as CloudTrail returns it: the record itself is a JSON string."""
    identity = identity or {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:reencrypt",
        "arn": SESSION,
        "accountId": ATLASSIAN,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE, "accountId": ATLASSIAN}},
    }
    record = {
        "eventVersion": "1.11",
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": key_arn.split(":")[3],
        "requestParameters": {"keyId": key_arn, "encryptionContext": {"tag": "AcmeCMK"}},
        "responseElements": None,
        "readOnly": True,
        "resources": [{"accountId": OWN, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": OWN,
        "eventCategory": "Management",
    }
    return {
        "EventId": f"{name}-{when.timestamp()}",
        "EventName": name,
        "ReadOnly": "true",
        "EventTime": when,
        "EventSource": "kms.amazonaws.com",
        "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn}],
        "CloudTrailEvent": json.dumps(record),
    }


# ----------------------------------------------------------------------------- which events count


def test_two_generations_are_enrolled_while_next_keys_are_recorded_or_retired_keys_while_complete() -> None:
    assert enrolled_pair(config(reencryption={"status": "preparing", "ticket": "PS-1"}, nextKeys=None)) is None
    pair = enrolled_pair(config())
    assert pair is not None and (pair.old_role, pair.new_role) == ("current", "next")
    promoted = config(reencryption={"status": "complete", "ticket": "PS-1"}, nextKeys=None, retiredKeys=[NEXT])
    pair = enrolled_pair(promoted)
    assert pair is not None and (pair.old_role, pair.new.as_config()) == ("retired", CURRENT)
    retired = config(reencryption={"status": "none"}, nextKeys=None, retiredKeys=[NEXT])
    assert enrolled_pair(retired) is None  # retired keys are disabled: Atlassian holds one generation


@pytest.mark.parametrize(
    ("identity", "counts"),
    [
        (None, True),  # Atlassian's role session, as in Atlassian's own account
        ({"type": "AWSAccount", "principalId": "AROAEXAMPLE:reencrypt", "accountId": ATLASSIAN}, True),
        (
            {"type": "AssumedRole", "arn": f"arn:aws:sts::{ATLASSIAN}:assumed-role/Other/x", "accountId": ATLASSIAN},
            False,
        ),
        ({"type": "AssumedRole", "arn": f"arn:aws:sts::{OWN}:assumed-role/App/x", "accountId": OWN}, False),
        ({"type": "AWSAccount", "accountId": "999988887777"}, False),
    ],
)
def test_only_atlassians_principals_count(identity: dict[str, Any] | None, counts: bool) -> None:
    """In the key owner's copy a cross-account caller may show only its account (type AWSAccount)."""
    callers = atlassian_callers(config())
    found = match_events(
        [event(CURRENT["us-east-1"], "Decrypt", NOW, identity)], CURRENT["us-east-1"], "decrypt", callers
    )
    assert (found is not None) is counts


def test_the_newest_matching_use_of_that_key_is_taken() -> None:
    key = NEXT["us-east-1"]
    events = [
        event(key, "Decrypt", NOW - timedelta(minutes=1)),  # not an encrypt
        event(CURRENT["us-east-1"], "GenerateDataKey", NOW),  # another key
        event(key, "GenerateDataKey", NOW - timedelta(minutes=5)),
        event(key, "Encrypt", NOW - timedelta(hours=2)),
        {**event(key, "Encrypt", NOW), "CloudTrailEvent": "{not json"},
    ]
    found = match_events(events, key, "encrypt", atlassian_callers(config()))
    assert found == (NOW - timedelta(minutes=5), "GenerateDataKey", SESSION)


# ----------------------------------------------------------------------------- reading through the real client


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The module's pacer with a fake clock: records the waits it would make, never sleeps."""
    waits: list[float] = []
    monkeypatch.setattr(cloudtrail, "PACER", RequestPacer(clock=lambda: 0.0, sleep=waits.append))
    return waits


def stubbed(pages: dict[str, list[dict[str, Any]]]) -> tuple[Any, list[Stubber]]:
    """A client factory whose CloudTrail clients answer `pages` (region -> responses, in request order)."""
    clients: dict[str, Any] = {}
    stubs: list[Stubber] = []
    for region, responses in pages.items():
        client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        for response in responses:
            if "error" in response:
                stub.add_client_error("lookup_events", service_error_code=response["error"], service_message="no")
            else:
                stub.add_response("lookup_events", response, response.pop("expected", None))
        stub.activate()
        clients[region] = client
        stubs.append(stub)
    return (lambda service, region: clients[region]), stubs


def by_key(key_arn: str) -> dict[str, Any]:
    return {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
        "StartTime": NOW - ACTIVITY_WINDOW,
        "EndTime": NOW,
        "MaxResults": 50,
    }


def page(*events: dict[str, Any], expected: dict[str, Any] | None = None, more: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"Events": list(events)}
    if more:
        response["NextToken"] = "more"
    if expected is not None:
        response["expected"] = expected
    return response


@pytest.fixture
def stubs_done() -> Iterator[list[Stubber]]:
    made: list[Stubber] = []
    yield made
    for stub in made:
        stub.assert_no_pending_responses()


def test_present_in_every_region_is_re_encrypting_and_refuses(no_wait: list[float], stubs_done: list[Stubber]) -> None:
    pages = {
        region: [
            page(event(CURRENT[region], "Decrypt", NOW - timedelta(minutes=3)), expected=by_key(CURRENT[region])),
            page(event(NEXT[region], "GenerateDataKey", NOW - timedelta(minutes=2)), expected=by_key(NEXT[region])),
        ]
        for region in REGIONS
    }
    factory, stubs = stubbed(pages)
    stubs_done.extend(stubs)

    activity = read_reencryption_activity(
        config(reencryption={"status": "preparing", "ticket": "PS-1"}), factory, now=NOW
    )

    assert activity is not None
    assert [r.phase for r in activity.regions] == ["re-encrypting", "re-encrypting"]
    assert activity.regions[0].old.caller == SESSION
    reasons = activity_reasons(config(), activity)
    assert len(reasons) == 2
    assert reasons[0].startswith("us-east-1: CloudTrail shows Atlassian re-encrypting: Decrypt at 2026-11-29T17:57:00Z")
    assert no_wait == [0.5, 0.5]  # the second request in each region waits for its slot (2 per second)


def test_absent_with_the_whole_window_read_is_no_reason_to_refuse(
    no_wait: list[float], stubs_done: list[Stubber]
) -> None:
    someone_else = {"type": "AssumedRole", "arn": f"arn:aws:sts::{OWN}:assumed-role/App/x", "accountId": OWN}
    pages = {region: [page(event(CURRENT[region], "Decrypt", NOW, someone_else)), page()] for region in REGIONS}
    factory, stubs = stubbed(pages)
    stubs_done.extend(stubs)

    activity = read_reencryption_activity(config(), factory, now=NOW)

    assert activity is not None
    assert [r.phase for r in activity.regions] == ["no-use-seen", "no-use-seen"]
    assert activity_reasons(config(), activity) == ()


def test_only_the_new_generation_used_is_not_re_encryption(no_wait: list[float], stubs_done: list[Stubber]) -> None:
    pages = {region: [page(), page(event(NEXT[region], "Encrypt", NOW))] for region in REGIONS}
    factory, stubs = stubbed(pages)
    stubs_done.extend(stubs)
    activity = read_reencryption_activity(config(), factory, now=NOW)
    assert activity is not None and {r.phase for r in activity.regions} == {"new-only"}
    assert activity_reasons(config(), activity) == ()


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_unreadable_or_throttled_is_unknown_and_refuses(
    no_wait: list[float], stubs_done: list[Stubber], code: str
) -> None:
    pages = {"us-east-1": [{"error": code}, page()], "us-west-2": [page(), page()]}
    factory, stubs = stubbed(pages)
    stubs_done.extend(stubs)

    activity = read_reencryption_activity(config(), factory, now=NOW)

    assert activity is not None
    east, west = activity.regions
    assert (east.phase, west.phase) == ("unknown", "no-use-seen")
    assert east.old.error is not None and code in east.old.error
    (reason,) = activity_reasons(config(), activity)
    assert reason.startswith("us-east-1: whether Atlassian is re-encrypting cannot be told from CloudTrail")
    assert code in reason and "needs cloudtrail:LookupEvents" in reason


def test_a_bounded_scan_that_ends_before_the_window_does_is_unknown(
    no_wait: list[float], stubs_done: list[Stubber]
) -> None:
    """Pages of other callers' events up to the bound: absence is not shown, so it cannot be told."""
    noise = {"type": "AWSAccount", "accountId": "999988887777"}
    east = [page(event(CURRENT["us-east-1"], "Decrypt", NOW, noise), more=True) for _ in range(ACTIVITY_MAX_PAGES)]
    factory, stubs = stubbed({"us-east-1": [*east, page()], "us-west-2": [page(), page()]})
    stubs_done.extend(stubs)

    activity = read_reencryption_activity(config(), factory, now=NOW)

    assert activity is not None
    assert activity.regions[0].phase == "unknown"
    assert activity.regions[0].old.summary() == f"not in the {ACTIVITY_MAX_PAGES} newest events (scan bounded)"


def test_one_generation_enrolled_reads_nothing() -> None:
    def factory(service: str, region: str) -> Any:
        raise AssertionError("no CloudTrail read while one generation is enrolled")

    assert read_reencryption_activity(config(nextKeys=None, reencryption={"status": "none"}), factory, now=NOW) is None


def test_the_pacer_spaces_requests_per_region_only() -> None:
    waits: list[float] = []
    pacer = RequestPacer(clock=lambda: 10.0, sleep=waits.append)
    for region in ("us-east-1", "us-east-1", "us-east-1", "us-west-2"):
        pacer.wait(region)
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize(
    ("endpoint", "paced"),
    [
        (None, True),
        ("https://cloudtrail.us-east-1.amazonaws.com", True),
        ("https://vpce-0a1b-x.cloudtrail.us-east-1.vpce.amazonaws.com", True),
        ("http://10.0.0.5:4566", True),
        ("http://127.0.0.1:5000", False),
        ("http://localhost:5000", False),
        ("http://[::1]:5000", False),
        ("http://localhost.example.com:5000", True),
    ],
)
def test_the_pacer_spares_only_an_endpoint_on_this_machine(endpoint: str | None, paced: bool) -> None:
    """AWS's limit is AWS's: the emulator on the loopback interface is not paced; any other endpoint is."""
    waits: list[float] = []
    pacer = RequestPacer(clock=lambda: 10.0, sleep=waits.append)
    for _ in range(3):
        pacer.wait("us-east-1", endpoint)
    assert waits == ([0.5, 1.0] if paced else [])
    modelled: list[float] = []
    aws_like = RequestPacer(clock=lambda: 10.0, sleep=modelled.append, pace_loopback=True)
    for _ in range(3):
        aws_like.wait("us-east-1", endpoint)
    assert modelled == [0.5, 1.0]  # the benchmarks' pacer: the emulator costs what AWS would


# ----------------------------------------------------------------------------- the revoke guard


def deployed_with(activity: Any) -> DeployedState:
    readings = tuple(
        RegionReading(
            region,
            key=LiveKey(
                region,
                CURRENT[region].rsplit("/", 1)[1],
                CURRENT[region],
                "Enabled",
                False,
                {"atlassian-cmk:reencryption": "preparing"},
            ),
            enrolled_arn=CURRENT[region],
            alias_target=CURRENT[region],
        )
        for region in REGIONS
    )
    return DeployedState("prod", "alias/atlassian-cmk/prod", readings, True, activity)


def protected_policies(cfg: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Each key's live key policy (by key ARN) with the evidence protection (issue 12), as the program composes it."""
    document = {"Version": "2012-10-17", "Statement": key_policy_evidence_statements(cfg.apply_role_arn)}
    return {CURRENT[region]: json.dumps(document) for region in REGIONS}, {}


def test_revoke_refuses_while_the_evidence_is_unread_or_shows_re_encryption(
    no_wait: list[float], stubs_done: list[Stubber]
) -> None:
    preparing = config(reencryption={"status": "preparing", "ticket": "PS-1"})
    request = RevokeRequest.validated("Suspected breach", "SEC-1")
    policies = protected_policies(preparing)

    unread = revoke_refusal(preparing, deployed_with(None), request, key_policies=policies)
    assert unread is not None and unread.code == ExitCode.REFUSED
    assert "the CloudTrail evidence of re-encryption was not read" in unread.reasons[0]

    factory, stubs = stubbed(
        {r: [page(event(CURRENT[r], "Decrypt", NOW)), page(event(NEXT[r], "Encrypt", NOW))] for r in REGIONS}
    )
    stubs_done.extend(stubs)
    seen = read_reencryption_activity(preparing, factory, now=NOW)
    refusal = revoke_refusal(preparing, deployed_with(seen), request, key_policies=policies)
    assert refusal is not None and "CloudTrail shows Atlassian re-encrypting" in refusal.reasons[0]
    overridden = dataclasses.replace(request, override_justification="breach outweighs")
    assert (
        revoke_refusal(preparing, deployed_with(seen), overridden, key_policies=policies) is None
    )  # the recorded decision

    quiet = (
        dataclasses.replace(
            seen,
            regions=tuple(
                dataclasses.replace(r, old=dataclasses.replace(r.old, last_seen=None, exhausted=True))
                for r in seen.regions
            ),
        )
        if seen
        else None
    )
    assert revoke_refusal(preparing, deployed_with(quiet), request, key_policies=policies) is None


def test_a_change_of_the_evidence_between_check_and_use_is_named(
    no_wait: list[float], stubs_done: list[Stubber]
) -> None:
    """`cmkctl revoke` re-reads the guard's evidence after the confirmation: CloudTrail's phase is part of it."""
    factory, stubs = stubbed(
        {
            r: [page(), page(), page(event(CURRENT[r], "Decrypt", NOW)), page(event(NEXT[r], "Encrypt", NOW))]
            for r in REGIONS
        }
    )
    stubs_done.extend(stubs)
    quiet = read_reencryption_activity(config(), factory, now=NOW)
    busy = read_reencryption_activity(config(), factory, now=NOW)

    changes = guard_evidence_changes(deployed_with(quiet), deployed_with(busy))

    assert changes == tuple(
        f"{r}: CloudTrail's evidence of re-encryption was no-use-seen, is now re-encrypting" for r in REGIONS
    )
    assert guard_evidence_changes(deployed_with(busy), deployed_with(busy)) == ()


def test_no_atlassian_principal_to_look_for_is_unknown_not_absent() -> None:
    """Statements naming no principal by ARN (the schema refuses a unique ID; the reader still must not read
    "nobody seen" as "not re-encrypting"): nobody to find, so no answer."""
    statement = {
        "Sid": "AtlassianUse",
        "Effect": "Allow",
        "Principal": {"AWS": "AROAEXAMPLEEXAMPLE1234"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
    }

    def factory(service: str, region: str) -> Any:
        raise AssertionError("nothing to look for: no read")

    gone = dataclasses.replace(config(), atlassian_key_policy=(statement,))
    activity = read_reencryption_activity(gone, factory, now=NOW)

    assert activity is not None and {r.phase for r in activity.regions} == {"unknown"}
    assert all("names no Atlassian principal" in reason for reason in activity_reasons(gone, activity))
