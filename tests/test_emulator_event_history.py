"""The emulator's CloudTrail event history (rehearsal/event_history.py), through the real boto3 client.

Every KMS call moto answers is a management event in its region; LookupEvents answers as the CloudTrail
API Reference and botocore's model describe it: one lookup attribute at most, an inclusive time window,
1-50 results a page, newest first, a NextToken bound to its parameters, the last 90 days. And end to end:
`cmkctl status` after a revoke reads the emulated events, with no Stubber.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from atlassian_cmk.aws.cloudtrail import MAX_PAGES
from atlassian_cmk.cli.main import main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_REVOKED_AT
from atlassian_cmk.timeline import iso
from rehearsal.emulator import event_history
from tests.support.aws import aws_env, reset_moto
from tests.support.cloudtrail_events import kms_events
from tests.support.cmkctl import REGIONS, kms, live, provision, run_in_process, runtime, stack_dir, unwrap
from tests.support.counting_proxy import closed_port_url
from tests.test_revocation_clock_cloudtrail import _disagreements, _reopen_with, _status


def _by(cloudtrail: Any, key: str, value: str, **more: Any) -> list[dict[str, Any]]:
    page = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **more)
    return list(page["Events"])


@pytest.fixture
def kms_and_trail(aws: Any) -> tuple[Any, Any]:
    return aws("kms", "us-east-1"), aws("cloudtrail", "us-east-1")


def test_each_kms_call_is_an_event_with_the_fields_lookupevents_returns(kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    created = kms.create_key()["KeyMetadata"]
    arn = created["Arn"]
    kms.disable_key(KeyId=created["KeyId"])  # moto's DisableKey takes no ARN
    kms.encrypt(KeyId=arn, Plaintext=b"secret")

    events = cloudtrail.lookup_events()["Events"]

    assert [e["EventName"] for e in events] == ["Encrypt", "DisableKey", "CreateKey"]  # newest first
    assert [e["ReadOnly"] for e in events] == ["true", "false", "false"]
    disable = events[1]
    assert disable["EventSource"] == "kms.amazonaws.com"
    assert disable["AccessKeyId"] == "testing" and disable["Username"] == "moto"
    assert disable["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": arn}]
    assert abs(disable["EventTime"] - datetime.now(UTC)) < timedelta(minutes=1)
    detail = json.loads(disable["CloudTrailEvent"])
    assert detail["eventID"] == disable["EventId"] and detail["eventName"] == "DisableKey"
    assert detail["eventSource"] == "kms.amazonaws.com" and detail["awsRegion"] == "us-east-1"
    assert detail["readOnly"] is False and detail["eventType"] == "AwsApiCall"
    assert detail["recipientAccountId"] == "123456789012" == detail["userIdentity"]["accountId"]
    assert detail["userIdentity"]["arn"] == "arn:aws:sts::123456789012:user/moto"
    assert detail["requestParameters"] == {"keyId": created["KeyId"]}
    assert detail["resources"] == [{"accountId": "123456789012", "type": "AWS::KMS::Key", "ARN": arn}]
    assert detail["eventTime"] == iso(disable["EventTime"]) and detail["requestID"]
    encrypt = json.loads(events[0]["CloudTrailEvent"])
    assert "plaintext" not in encrypt["requestParameters"]  # KMS never logs the plaintext
    assert encrypt["responseElements"] is None


def test_a_failed_call_is_recorded_with_its_error_code(kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.disable_key(KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")

    (event,) = _by(cloudtrail, "EventName", "DisableKey")

    detail = json.loads(event["CloudTrailEvent"])
    assert detail["errorCode"] == "NotFoundException" and "1234abcd" in detail["errorMessage"]
    assert event["Resources"] == [] and detail["responseElements"] is None


def test_each_lookup_attribute_filters(kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    first = kms.create_key()["KeyMetadata"]["Arn"]
    second = kms.create_key()["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=first.rsplit("/", 1)[1])
    kms.describe_key(KeyId=second)
    everything = cloudtrail.lookup_events()["Events"]

    assert [e["EventName"] for e in _by(cloudtrail, "ResourceName", first)] == ["DisableKey", "CreateKey"]
    assert [e["EventName"] for e in _by(cloudtrail, "EventName", "CreateKey")] == ["CreateKey", "CreateKey"]
    assert [e["EventName"] for e in _by(cloudtrail, "ReadOnly", "true")] == ["DescribeKey"]
    assert len(_by(cloudtrail, "ReadOnly", "false")) == 3
    assert _by(cloudtrail, "EventId", everything[2]["EventId"]) == [everything[2]]
    for key, value in [
        ("ResourceType", "AWS::KMS::Key"), ("EventSource", "kms.amazonaws.com"), ("Username", "moto"),
        ("AccessKeyId", "testing"),
    ]:  # fmt: skip
        assert _by(cloudtrail, key, value) == everything, key
    assert _by(cloudtrail, "Username", "alice") == [] and _by(cloudtrail, "EventSource", "s3.amazonaws.com") == []


def test_history_is_per_region(aws: Any) -> None:
    aws("kms", "us-west-2").create_key()

    assert [e["EventName"] for e in aws("cloudtrail", "us-west-2").lookup_events()["Events"]] == ["CreateKey"]
    assert aws("cloudtrail", "us-east-1").lookup_events()["Events"] == []


def test_pages_are_newest_first_and_bound_to_their_parameters(kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    for _ in range(4):
        kms.describe_key(KeyId=arn)
    everything = cloudtrail.lookup_events()["Events"]
    assert "NextToken" not in cloudtrail.lookup_events()

    pages, token, request = [], None, {"MaxResults": 2}
    while True:
        page = cloudtrail.lookup_events(**request, **({"NextToken": token} if token else {}))
        pages.append(page["Events"])
        token = page.get("NextToken")
        if not token:
            break

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e["EventId"] for p in pages for e in p] == [e["EventId"] for e in everything]
    assert everything[-1]["EventName"] == "CreateKey"
    times = [e["EventTime"] for e in everything]
    assert times == sorted(times, reverse=True)
    first = cloudtrail.lookup_events(MaxResults=2)
    with pytest.raises(cloudtrail.exceptions.InvalidNextTokenException):  # other parameters, same token
        _by(cloudtrail, "EventName", "DescribeKey", NextToken=first["NextToken"])
    with pytest.raises(cloudtrail.exceptions.InvalidNextTokenException):
        cloudtrail.lookup_events(NextToken="not-a-token")


def test_the_time_window_is_inclusive_and_the_history_keeps_90_days(
    moto_endpoint: str, kms_and_trail: tuple[Any, Any]
) -> None:
    kms, cloudtrail = kms_and_trail
    kms.create_key()
    (event,) = cloudtrail.lookup_events()["Events"]
    at = event["EventTime"]

    assert cloudtrail.lookup_events(StartTime=at, EndTime=at)["Events"] == [event]
    assert cloudtrail.lookup_events(StartTime=at + timedelta(seconds=1))["Events"] == []
    assert cloudtrail.lookup_events(EndTime=at - timedelta(seconds=1))["Events"] == []
    history = event_history(moto_endpoint)
    real_clock = history.clock
    try:
        history.clock = lambda: real_clock() + timedelta(days=89)
        assert cloudtrail.lookup_events()["Events"] == [event]
        history.clock = lambda: real_clock() + timedelta(days=90, minutes=1)
        assert cloudtrail.lookup_events()["Events"] == []
    finally:
        history.clock = real_clock


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": v} for v in ("A", "B")]},
            "InvalidLookupAttributesException",
        ),
        ({"LookupAttributes": [{"AttributeKey": "KeyId", "AttributeValue": "x"}]}, "InvalidLookupAttributesException"),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"StartTime": datetime(2030, 1, 2, tzinfo=UTC), "EndTime": datetime(2030, 1, 1)}, "InvalidTimeRangeException"),
        ({"EventCategory": "management"}, "InvalidEventCategoryException"),
    ],
)  # fmt: skip
def test_requests_aws_refuses_are_refused_with_its_error(aws: Any, request_: dict[str, Any], code: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        aws("cloudtrail", "us-east-1").lookup_events(**request_)

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_moto_reset_clears_the_history(moto_endpoint: str, kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    kms.create_key()
    assert cloudtrail.lookup_events()["Events"]

    reset_moto(moto_endpoint)

    assert cloudtrail.lookup_events()["Events"] == []


def test_events_wait_for_the_configured_delivery_delay(moto_endpoint: str, kms_and_trail: tuple[Any, Any]) -> None:
    kms, cloudtrail = kms_and_trail
    history = event_history(moto_endpoint)
    history.delivery_delay = timedelta(minutes=5)
    try:
        kms.create_key()
        assert cloudtrail.lookup_events()["Events"] == []
        real_clock = history.clock
        history.clock = lambda: real_clock() + timedelta(minutes=5, seconds=1)
        assert [e["EventName"] for e in cloudtrail.lookup_events()["Events"]] == ["CreateKey"]
    finally:
        history.delivery_delay, history.clock = timedelta(0), real_clock


# ----------------------------------------------------------------------------- end to end, through cmkctl


def _revoke(project: Path, endpoint: str) -> None:
    args = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1"]
    assert main([*args, "--yes", "--write-config"], runtime=runtime(endpoint)) == ExitCode.AS_DECLARED


def test_status_after_revoke_is_confirmed_by_the_emulated_cloudtrail(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    _revoke(project, moto_endpoint)

    code, document, text = _status(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.AS_DECLARED
    clock = document["clock"]
    assert (clock["source"], clock["verification"]) == ("revoked-at tag", "confirmed")
    assert clock["cloudtrail_disabled_at"] in {
        iso(e["EventTime"]) for e in kms_events(moto_endpoint, "us-east-1", "DisableKey")
    }
    assert "(from revoked-at tag, confirmed by CloudTrail)" in text
    assert "unverified" not in text and "HTTP 500" not in text


def test_status_right_after_revoke_says_not_in_cloudtrail_yet(
    tmp_path: Path, cloudtrail_not_delivered: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, cloudtrail_not_delivered)
    _revoke(project, cloudtrail_not_delivered)

    code, document, _ = _status(project, runtime(cloudtrail_not_delivered), capsys)

    assert code == ExitCode.AS_DECLARED
    assert (document["clock"]["verification"], document["clock"]["verification_reason"]) == (
        "unverified",
        "not-in-cloudtrail-yet",
    )


def test_a_backdated_record_disagrees_with_the_emulated_cloudtrail(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    _revoke(project, moto_endpoint)
    tagged = datetime.fromisoformat(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT].replace("Z", "+00:00"))
    _reopen_with(moto_endpoint, tagged - timedelta(days=9))  # the break-glass role's TagResource calls

    code, document, text = _status(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.DRIFT
    assert [f["region"] for f in _disagreements(document)] == list(REGIONS)
    clock = document["clock"]
    assert (clock["source"], clock["verification"], clock["verification_reason"]) == (
        "cloudtrail",
        "disagrees",
        "backdated",
    )
    disabled = {iso(e["EventTime"]) for r in REGIONS for e in kms_events(moto_endpoint, r, "DisableKey")}
    assert clock["revoked_at"] in disabled and clock["tag_revoked_at"] == iso(tagged - timedelta(days=9))
    assert "REVOKED-AT DISAGREES WITH CLOUDTRAIL: us-east-1" in text
    tags = kms_events(moto_endpoint, "us-east-1", "TagResource")
    assert len(tags) >= 2  # who wrote the tag is in CloudTrail's TagResource events, as docs/cmkctl.md says


# ----------------------------------------------------------------------------- the clock through blips and floods


@contextmanager
def _history_at(endpoint: str, moment: datetime) -> Iterator[None]:
    """The emulator's event history records (and delivers up to) `moment`: events of the past, no sleeping."""
    history = event_history(endpoint)
    real_clock = history.clock
    history.clock = lambda: moment
    try:
        yield
    finally:
        history.clock = real_clock


def _revoked_days_ago(tmp_path: Path, endpoint: str, base: datetime, days: int) -> Path:
    project = stack_dir(tmp_path)
    provision(project, endpoint)
    with _history_at(endpoint, base - timedelta(days=days)):
        args = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1"]
        rt = runtime(endpoint, now=lambda: base - timedelta(days=days))
        assert main([*args, "--yes", "--write-config"], runtime=rt) == ExitCode.AS_DECLARED
    return project


def _status_failing_on_deadline(
    project: Path, endpoint: str, now: datetime, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    rt = runtime(endpoint, now=lambda: now)
    args = ["status", "--project-dir", str(project), "--fail-on", "deadline"]
    with _history_at(endpoint, now):
        code = main([*args, "--json"], runtime=rt)
        document = json.loads(unwrap(capsys.readouterr().out))
        assert main(args, runtime=rt) == code
    return code, document, unwrap(capsys.readouterr().out)


@pytest.mark.parametrize("apart", [timedelta(seconds=1, milliseconds=100), timedelta(0)], ids=["1.1s", "same-second"])
def test_an_enablekey_blip_before_a_new_record_does_not_reset_the_clock(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], apart: timedelta
) -> None:
    base = datetime.now(UTC).replace(microsecond=0)
    project = _revoked_days_ago(tmp_path, moto_endpoint, base, 8)
    enabled_at = base - timedelta(seconds=3)
    for region in REGIONS:  # break-glass: EnableKey, then DisableKey 1.1 s later (or in the same second)
        key_id = live(moto_endpoint, region).key_id
        with _history_at(moto_endpoint, enabled_at):
            kms(moto_endpoint, region).enable_key(KeyId=key_id)
        with _history_at(moto_endpoint, enabled_at + apart):
            kms(moto_endpoint, region).disable_key(KeyId=key_id)
    with _history_at(moto_endpoint, base - timedelta(seconds=1)):
        _reopen_with(moto_endpoint, base)  # a new record: revoked-at now, 8 days late

    code, document, text = _status_failing_on_deadline(project, moto_endpoint, base + timedelta(minutes=1), capsys)

    assert code == ExitCode.DEADLINE  # the window closes within 48 h, and says so above the drift
    clock = document["clock"]
    assert (clock["source"], clock["revoked_at"]) == ("cloudtrail", iso(base - timedelta(days=8)))
    assert clock["days_left_to_reinstate"] == 2.0  # not the tag's 10.0
    assert (clock["verification"], clock["verification_reason"]) == ("disagrees", "forward-dated")
    seconds = int(apart.total_seconds())
    assert f"the key was enabled only {seconds} s at {iso(enabled_at)} in between" in clock["enabled_gaps_note"]
    kinds = {f["subkind"] for f in document["findings"]}
    assert {"revoked-at-disagrees", "window-closing"} <= kinds
    assert f"clock from {iso(base - timedelta(days=8))}: the key was enabled only {seconds} s" in text
    assert "no CloudTrail DisableKey" not in text


def test_an_honest_restore_then_a_quick_re_revoke_keeps_the_first_revocations_clock(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = datetime.now(UTC).replace(microsecond=0)
    project = _revoked_days_ago(tmp_path, moto_endpoint, base, 8)
    restored_at, revoked_again = base - timedelta(minutes=20), base - timedelta(minutes=10)
    with _history_at(moto_endpoint, restored_at):
        rt = runtime(moto_endpoint, now=lambda: restored_at)
        restore = ["restore", "--project-dir", str(project), "--ticket", "SEC-1", "--yes", "--write-config"]
        assert main(restore, runtime=rt) == ExitCode.AS_DECLARED
    with _history_at(moto_endpoint, revoked_again):
        rt = runtime(moto_endpoint, now=lambda: revoked_again)
        args = ["revoke", "--project-dir", str(project), "--reason", "Again", "--ticket", "SEC-2", "--yes"]
        assert main([*args, "--write-config"], runtime=rt) == ExitCode.AS_DECLARED

    code, document, text = _status_failing_on_deadline(project, moto_endpoint, base + timedelta(minutes=1), capsys)

    assert code == ExitCode.DEADLINE
    clock = document["clock"]
    assert clock["revoked_at"] == iso(base - timedelta(days=8)) and clock["days_left_to_reinstate"] == 2.0
    assert f"the key was enabled only 600 s at {iso(restored_at)} in between" in clock["enabled_gaps_note"]
    assert "forward-dated" in text and "window closes" in text


def test_a_forward_dated_tag_with_cloudtrail_unreachable_is_a_finding_exit_3(
    tmp_path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    project = _revoked_days_ago(tmp_path, moto_endpoint, base, 8)
    with _history_at(moto_endpoint, base):
        _reopen_with(moto_endpoint, base)
    env = {**aws_env(moto_endpoint), "AWS_ENDPOINT_URL_CLOUDTRAIL": closed_port_url()}
    argv = ["status", "--project-dir", str(project), "--fail-on", "deadline", "--json"]

    done = run_in_process(
        argv, {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **env}, monkeypatch, capsys
    )

    assert done.returncode == ExitCode.UNREACHABLE, done.stderr
    document = json.loads(unwrap(done.stdout))
    (finding,) = [f for f in document["findings"] if f["subkind"] == "clock-unverified"]
    assert finding["message"].startswith("DEADLINE UNVERIFIED: CloudTrail could not confirm the revocation time")
    assert document["clock"]["verification_reason"] == "lookup-failed"


def test_a_scan_exhausted_by_the_keys_own_disablekeys_is_worded_so_and_exits_3(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = datetime.now(UTC).replace(microsecond=0)
    project = _revoked_days_ago(tmp_path, moto_endpoint, base, 8)
    with _history_at(moto_endpoint, base - timedelta(hours=1)):
        _reopen_with(moto_endpoint, base - timedelta(hours=1))  # forward-dated by 8 days
    with _history_at(moto_endpoint, base - timedelta(minutes=30)):
        for region in REGIONS:  # break-glass's redundant DisableKeys: 160 on each key
            client, key_id = kms(moto_endpoint, region), live(moto_endpoint, region).key_id
            for _ in range(160):
                client.disable_key(KeyId=key_id)

    code, document, text = _status_failing_on_deadline(project, moto_endpoint, base, capsys)

    assert code == ExitCode.UNREACHABLE
    clock = document["clock"]
    assert (clock["verification"], clock["verification_reason"]) == ("unverified", "scan-exhausted")
    read = 50 * MAX_PAGES
    assert f"read {read} DisableKey/EnableKey events ({read} of them this key's)" in clock["unproven_note"]
    assert "other keys' events" not in text
    assert "DEADLINE UNVERIFIED" in text
