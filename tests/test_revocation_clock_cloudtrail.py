"""The revocation clock cross-checked against CloudTrail (issue 12, the backdating residual).

Keys live in moto over HTTP; CloudTrail is the real botocore client under `botocore.stub.Stubber`, answering
as CloudTrail does (newest first, `NextToken` while more pages remain), for times, pages and refusals the
emulator's own event history cannot produce (events at T0 in 2031, exhausted scans, throttling); the same
cases from the emulator's real (emulated) events: tests/test_emulator_event_history.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from atlassian_cmk.aws.cloudtrail import MAX_PAGES
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.clock_check import check_revoked_at, disabled_since, verified_clock
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.live_keys import CloudTrailEvidence, LiveKey
from atlassian_cmk.naming import (
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
from atlassian_cmk.records import replacement
from atlassian_cmk.timeline import iso
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import fast_client_factory

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
"""When `cmkctl revoke` ran (its clock); CloudTrail's DisableKey follows it by a couple of seconds."""
DISABLED = T0 + timedelta(seconds=2)
FORGER = "arn:aws:sts::123456789012:assumed-role/atlassian-cmk-break-glass/mallory"


def _events(key_arn: str, times: list[datetime], next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Events": [
            {
                "EventId": f"e{i}",
                "EventTime": t,
                "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn}],
            }
            for i, t in enumerate(times)
        ]
    }
    if next_token:
        page["NextToken"] = next_token
    return page


class Trail:
    """One stubbed CloudTrail client per region; `answer` queues a region's pages in lookup order."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubs: dict[str, Stubber] = {}
        for region in REGIONS:
            client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
            self.clients[region] = client
            self.stubs[region] = Stubber(client)
            self.stubs[region].activate()

    def disabled(self, region: str, key_arn: str, *times: datetime) -> None:
        """No EnableKey; DisableKey at `times` (newest first)."""
        self.stubs[region].add_response("lookup_events", {"Events": []})
        self.stubs[region].add_response("lookup_events", _events(key_arn, sorted(times, reverse=True)))

    def page(self, region: str, response: dict[str, Any]) -> None:
        self.stubs[region].add_response("lookup_events", response)

    def refuse(self, region: str, code: str, message: str) -> None:
        self.stubs[region].add_client_error("lookup_events", service_error_code=code, service_message=message)

    def runtime(self, endpoint: str, now: datetime) -> Runtime:
        kms_clients = fast_client_factory(endpoint)
        return Runtime(
            client_factory=lambda service, region: (
                self.clients[region] if service == "cloudtrail" else kms_clients(service, region)
            ),
            now=lambda: now,
        )

    def all_answered(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def _revoked(tmp_path: Path, endpoint: str) -> Path:
    """Keys provisioned, then `cmkctl revoke --write-config` at T0: the stack file declares the revocation."""
    project = stack_dir(tmp_path)
    provision(project, endpoint)
    args = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1"]
    assert main([*args, "--yes", "--write-config"], runtime=runtime(endpoint, now=lambda: T0)) == ExitCode.AS_DECLARED
    return project


def _reopen_with(endpoint: str, revoked_at: datetime) -> None:
    """As the break-glass role may (the key policy cannot see the key state nor compare a time): close the
    record with `restored-at` while the key stays disabled, then open a new record (a new revocation id)
    with any `revoked-at`, in one TagResource that blanks the restore fields (`records.replacement`)."""
    for region in REGIONS:
        key = live(endpoint, region)
        client = kms(endpoint, region)
        closing = {TAG_RESTORED_AT: iso(T0), TAG_RESTORED_BY: "arn:aws:sts::123456789012:x", TAG_RESTORE_TICKET: "X"}
        client.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in closing.items()])
        closed = live(endpoint, region)
        assert closed.key_state == "Disabled"
        record = {
            TAG_REVOCATION_ID: "rev-forged",
            TAG_REVOKED_AT: iso(revoked_at),
            TAG_REVOKED_BY: FORGER,
            TAG_REVOCATION_TICKET: "SEC-1",
        }
        tags = replacement(closed.tags, record)
        client.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])


def _status(project: Path, rt: Runtime, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = main(["status", "--project-dir", str(project), "--json"], runtime=rt)
    document = json.loads(unwrap(capsys.readouterr().out))
    text_code = main(["status", "--project-dir", str(project)], runtime=rt)
    assert text_code == code
    return code, document, unwrap(capsys.readouterr().out)


def _disagreements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["subkind"] == "revoked-at-disagrees"]


def _trail_both(trail: Trail, endpoint: str, *times: datetime, runs: int = 2) -> None:
    for _ in range(runs):  # the JSON run and the text run each look up every disabled key
        for region in REGIONS:
            trail.disabled(region, live(endpoint, region).arn, *times)


def test_backdated_record_is_named_and_the_clock_runs_from_cloudtrail(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    _reopen_with(moto_endpoint, T0 - timedelta(days=9))
    trail = Trail()
    _trail_both(trail, moto_endpoint, DISABLED)
    now = T0 + timedelta(days=1)

    code, document, text = _status(project, trail.runtime(moto_endpoint, now), capsys)

    trail.all_answered()
    assert code == ExitCode.DRIFT
    found = _disagreements(document)
    assert [f["region"] for f in found] == list(REGIONS)
    assert all(f["kind"] == "drift" for f in found)
    east = found[0]["message"]
    arn = live(moto_endpoint, "us-east-1").arn
    assert east.startswith(f"REVOKED-AT DISAGREES WITH CLOUDTRAIL: us-east-1: key {arn}: ")
    assert (
        f"{TAG_REVOKED_AT} {iso(T0 - timedelta(days=9))} is 9.0 days before CloudTrail's DisableKey "
        f"{iso(DISABLED)} (backdated: the key was not disabled then)"
    ) in east
    assert f"record rev-forged by {FORGER} under SEC-1" in east
    # Both deadlines, so the earlier one never hides: CloudTrail's is used, written by AWS.
    assert f"reinstate until {iso(DISABLED + timedelta(days=10))}, not the tag's {iso(T0 + timedelta(days=1))}" in east
    clock = document["clock"]
    assert clock["source"] == "cloudtrail"
    assert clock["revoked_at"] == iso(DISABLED)
    assert clock["days_left_to_reinstate"] == 9.0  # not the tag's 0.0
    assert (clock["verification"], clock["verification_reason"]) == ("disagrees", "backdated")
    assert clock["tag_revoked_at"] == iso(T0 - timedelta(days=9))
    assert clock["cloudtrail_disabled_at"] == iso(DISABLED)
    assert all(r["clock"]["source"] == "cloudtrail" for r in document["regions"])
    assert "REVOKED-AT DISAGREES WITH CLOUDTRAIL: us-west-2" in text
    assert (
        "Revocation clock: revoked at 2031-03-01T12:00:02Z (from cloudtrail, the revoked-at tag disagrees: "
        "us-east-1, us-west-2: backdated, earlier than every region's DisableKey)"
    ) in text


def test_forward_dated_record_is_named_and_the_earlier_deadline_wins(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    _reopen_with(moto_endpoint, T0 + timedelta(days=3))  # 3 more days of window than there are
    trail = Trail()
    _trail_both(trail, moto_endpoint, DISABLED)
    now = T0 + timedelta(days=5)

    code, document, text = _status(project, trail.runtime(moto_endpoint, now), capsys)

    assert code == ExitCode.DRIFT
    found = _disagreements(document)
    assert [f["region"] for f in found] == list(REGIONS)
    message = found[0]["message"]
    assert f"is 3.0 days after CloudTrail's DisableKey {iso(DISABLED)} (forward-dated: it shows more days" in message
    assert (
        f"the clock runs from CloudTrail's time, the earlier deadline: reinstate until "
        f"{iso(DISABLED + timedelta(days=10))}, not the tag's {iso(T0 + timedelta(days=13))}"
    ) in message
    clock = document["clock"]
    assert (clock["source"], clock["revoked_at"]) == ("cloudtrail", iso(DISABLED))
    assert clock["days_left_to_reinstate"] == 5.0  # the tag would say 8.0
    assert (clock["verification"], clock["verification_reason"]) == ("disagrees", "forward-dated")
    assert "REVOKED-AT DISAGREES WITH CLOUDTRAIL: us-east-1" in text


@pytest.mark.parametrize(
    "disabled_at",
    [T0 + timedelta(minutes=14), T0 - timedelta(minutes=4)],
    ids=["disable-sent-late-within-record-latency", "tag-later-within-clock-skew"],
)
def test_tag_agreeing_with_cloudtrail_within_the_bounds_is_confirmed_with_no_finding(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], disabled_at: datetime
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    trail = Trail()
    _trail_both(trail, moto_endpoint, disabled_at)

    code, document, text = _status(project, trail.runtime(moto_endpoint, T0 + timedelta(days=2)), capsys)

    assert code == ExitCode.AS_DECLARED
    assert _disagreements(document) == []
    clock = document["clock"]
    assert (clock["source"], clock["revoked_at"]) == ("revoked-at tag", iso(T0))
    assert (clock["verification"], clock["verification_reason"], clock["verification_note"]) == (
        "confirmed",
        "agrees",
        None,
    )
    assert "(from revoked-at tag, confirmed by CloudTrail)" in text


def test_right_after_a_revoke_the_disable_not_yet_in_cloudtrail_is_unverified_not_drift(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    trail = Trail()
    _trail_both(trail, moto_endpoint)  # no DisableKey delivered yet

    code, document, text = _status(project, trail.runtime(moto_endpoint, T0 + timedelta(minutes=3)), capsys)

    assert code == ExitCode.AS_DECLARED
    clock = document["clock"]
    assert (clock["source"], clock["revoked_at"]) == ("revoked-at tag", iso(T0))
    assert (clock["verification"], clock["verification_reason"]) == ("unverified", "not-in-cloudtrail-yet")
    assert "the tag is 3 minutes old" in clock["verification_note"]
    assert "within 15 minutes: expected soon" in clock["verification_note"]
    assert "unverified: us-east-1, us-west-2: no DisableKey after the last EnableKey in CloudTrail yet" in text


def test_a_tag_older_than_cloudtrails_90_days_is_unverified(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    trail = Trail()
    _trail_both(trail, moto_endpoint)  # the DisableKey has left the event history

    code, document, _ = _status(project, trail.runtime(moto_endpoint, T0 + timedelta(days=95)), capsys)

    assert code == ExitCode.AS_DECLARED  # the data-at-risk deadline pages only with --fail-on deadline
    clock = document["clock"]
    assert clock["revoked_at"] == iso(T0)
    assert (clock["verification"], clock["verification_reason"]) == ("unverified", "beyond-event-history")
    assert "older than CloudTrail's 90-day event history" in clock["verification_note"]


def test_a_scan_filled_with_other_keys_events_is_unverified_never_confirmed(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    other = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    trail = Trail()
    for _ in range(2):
        for region in REGIONS:
            trail.page(region, {"Events": []})  # no EnableKey
            for page in range(MAX_PAGES):  # DisableKey pages full of another key's events
                trail.page(region, _events(other, [T0 + timedelta(hours=5 - page)] * 50, next_token=f"t{page}"))

    code, document, _ = _status(project, trail.runtime(moto_endpoint, T0 + timedelta(days=1)), capsys)

    trail.all_answered()  # exactly MAX_PAGES pages read, then it stopped
    assert code == ExitCode.AS_DECLARED
    clock = document["clock"]
    assert clock["revoked_at"] == iso(T0)
    assert (clock["verification"], clock["verification_reason"]) == ("unverified", "scan-exhausted")


@pytest.mark.parametrize(
    ("error", "message"),
    [("AccessDeniedException", "not authorized to perform: cloudtrail:LookupEvents"), ("ThrottlingException", "Rate")],
)
def test_a_refused_or_throttled_lookup_is_unverified_with_the_reason(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], error: str, message: str
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    trail = Trail()
    for _ in range(2):
        for region in REGIONS:
            trail.refuse(region, error, message)

    code, document, text = _status(project, trail.runtime(moto_endpoint, T0 + timedelta(days=1)), capsys)

    assert code == ExitCode.AS_DECLARED
    clock = document["clock"]
    assert clock["revoked_at"] == iso(T0)
    assert (clock["verification"], clock["verification_reason"]) == ("unverified", "lookup-failed")
    # The same cause in both regions, said once naming both.
    assert clock["verification_note"] == f"us-east-1, us-west-2: CloudTrail lookup failed: {error}: {message}"
    assert all(r["clock_note"] == f"CloudTrail lookup failed: {error}: {message}" for r in document["regions"])
    assert "revoked-at unknown" not in text  # the time is known (the tag's); only its check failed


def test_restore_judges_the_window_on_cloudtrails_time_when_the_tag_is_backdated(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    _reopen_with(moto_endpoint, T0 - timedelta(days=12))  # the tag alone says: outside the 10-day window
    trail = Trail()
    _trail_both(trail, moto_endpoint, DISABLED, runs=1)
    capsys.readouterr()

    code = main(
        ["restore", "--project-dir", str(project), "--ticket", "SEC-2", "--yes"],
        runtime=trail.runtime(moto_endpoint, T0 + timedelta(days=1)),
    )

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert (
        "INSIDE the 10-day reinstatement window: revoked at 2031-03-01T12:00:02Z (from cloudtrail, the revoked-at "
        "tag disagrees: us-east-1, us-west-2: backdated, earlier than every region's DisableKey)"
    ) in out
    assert {live(moto_endpoint, r).key_state for r in REGIONS} == {"Enabled"}


# ----------------------------------------------------------------------------- the rules, on their own


def _key(region: str, revoked_at: datetime | None) -> LiveKey:
    tags = {TAG_REVOCATION_ID: "rev-1"} | ({TAG_REVOKED_AT: iso(revoked_at)} if revoked_at else {})
    return LiveKey(region, f"k-{region}", f"arn:aws:kms:{region}:123456789012:key/k-{region}", "Disabled", False, tags)


def test_a_rerun_copying_the_first_regions_earlier_time_is_confirmed_not_backdated() -> None:
    # us-east-1 disabled at T0 by the first run; us-west-2 only by the rerun an hour later, which copied T0.
    keys = [_key("us-east-1", T0), _key("us-west-2", T0)]
    evidence = {
        "us-east-1": CloudTrailEvidence(disabled_at=DISABLED),
        "us-west-2": CloudTrailEvidence(disabled_at=T0 + timedelta(hours=1)),
    }

    checks = check_revoked_at(keys, evidence, now=T0 + timedelta(days=1))

    assert {r: c.verification for r, c in checks.items()} == {"us-east-1": "confirmed", "us-west-2": "confirmed"}
    clock = verified_clock(keys, evidence, now=T0 + timedelta(days=1))
    assert clock is not None and (clock.revoked_at, clock.verification) == (T0, "confirmed")


def test_a_tag_earlier_than_its_own_disable_with_another_region_unread_is_unverified() -> None:
    keys = [_key("us-east-1", T0), _key("us-west-2", T0)]
    evidence = {
        "us-east-1": CloudTrailEvidence(error="CloudTrail lookup failed: AccessDeniedException: no"),
        "us-west-2": CloudTrailEvidence(disabled_at=T0 + timedelta(hours=1)),
    }

    checks = check_revoked_at(keys, evidence, now=T0 + timedelta(days=1))

    assert (checks["us-west-2"].verification, checks["us-west-2"].reason) == (
        "unverified",
        "other-region-unconfirmed",
    )
    assert checks["us-east-1"].reason == "lookup-failed"


def test_an_untagged_region_disabled_earlier_than_the_tagged_one_sets_the_clock() -> None:
    # us-east-1 disabled in the console a day before `cmkctl revoke` disabled and tagged us-west-2.
    keys = [_key("us-east-1", None), _key("us-west-2", T0)]
    evidence = {
        "us-east-1": CloudTrailEvidence(disabled_at=T0 - timedelta(days=1)),
        "us-west-2": CloudTrailEvidence(disabled_at=DISABLED),
    }

    clock = verified_clock(keys, evidence, now=T0 + timedelta(days=1))

    assert clock is not None
    assert (clock.revoked_at, clock.source) == (T0 - timedelta(days=1), "cloudtrail")


def test_a_future_tag_with_a_cloudtrail_time_runs_from_cloudtrail() -> None:
    keys = [_key("us-east-1", T0 + timedelta(days=30))]
    evidence = {"us-east-1": CloudTrailEvidence(disabled_at=DISABLED)}

    clock = verified_clock(keys, evidence, now=T0 + timedelta(days=1))

    assert clock is not None
    assert (clock.revoked_at, clock.source, clock.verification) == (DISABLED, "cloudtrail", "disagrees")


# ----------------------------------------------------------------------------- where the disabled period starts

NOW = T0 + timedelta(days=8, minutes=1)
"""Eight days after the revocation: under 48 hours of reinstatement window left."""


def _walk(*events: tuple[datetime, str], complete: bool = True) -> tuple[datetime | None, list[tuple[str, int | None]]]:
    answer = disabled_since([(t, name) for t, name in events], complete=complete, now=NOW)  # type: ignore[misc]
    assert answer.complete == complete or answer.complete
    return answer.start, [(iso(g.enabled_at), g.seconds) for g in answer.gaps]


def test_an_enablekey_blip_seconds_long_does_not_restart_the_clock() -> None:
    blip = NOW - timedelta(seconds=2)
    start, gaps = _walk(
        (T0, "DisableKey"), (blip, "EnableKey"), (blip + timedelta(seconds=1, milliseconds=100), "DisableKey")
    )
    assert start == T0  # the 8-day-old DisableKey, not the one 1 s after the EnableKey
    assert gaps == [(iso(blip), 1)]


@pytest.mark.parametrize("order", ["enable-listed-first", "disable-listed-first"])
def test_enable_and_disable_in_one_second_are_ordered_for_the_earlier_start(order: str) -> None:
    second = NOW - timedelta(seconds=30)
    pair = [(second, "EnableKey"), (second, "DisableKey")]
    start, gaps = _walk((T0, "DisableKey"), *(pair if order == "enable-listed-first" else pair[::-1]))
    assert start == T0 and gaps == [(iso(second), 0)]
    # With no earlier revocation the DisableKey of that second still starts the period: never "no DisableKey".
    start, gaps = _walk(*pair)
    assert start == second and gaps == []


def test_an_enabled_period_of_an_hour_or_more_is_a_restore_and_restarts_the_clock() -> None:
    enabled = NOW - timedelta(days=2)
    start, gaps = _walk((T0, "DisableKey"), (enabled, "EnableKey"), (enabled + timedelta(hours=1), "DisableKey"))
    assert start == enabled + timedelta(hours=1) and gaps == []
    short = enabled + timedelta(minutes=59, seconds=59)
    start, gaps = _walk((T0, "DisableKey"), (enabled, "EnableKey"), (short, "DisableKey"))
    assert start == T0 and gaps == [(iso(enabled), 3599)]


def test_blips_chain_and_redundant_calls_change_nothing() -> None:
    first, second = NOW - timedelta(days=1), NOW - timedelta(minutes=10)
    start, gaps = _walk(
        (T0, "DisableKey"),
        (T0 + timedelta(minutes=1), "DisableKey"),  # redundant: the key was already disabled
        (first, "EnableKey"),
        (first + timedelta(seconds=5), "EnableKey"),  # redundant: already enabled
        (first + timedelta(seconds=20), "DisableKey"),
        (second, "EnableKey"),
        (second + timedelta(seconds=3), "DisableKey"),
    )
    assert start == T0 and gaps == [(iso(second), 3), (iso(first), 20)]


def test_a_recent_enable_whose_disable_is_not_delivered_yet_joins_the_period_before() -> None:
    start, gaps = _walk((T0, "DisableKey"), (NOW - timedelta(minutes=10), "EnableKey"))
    assert start == T0 and gaps == [(iso(NOW - timedelta(minutes=10)), None)]
    start, gaps = _walk((T0, "DisableKey"), (NOW - timedelta(hours=2), "EnableKey"))
    assert start is None and gaps == []  # enabled 2 h ago: maybe restored; the new DisableKey is not in yet


def test_an_incomplete_history_gives_only_an_upper_bound() -> None:
    recent = NOW - timedelta(seconds=5)
    answer = disabled_since(
        [(recent - timedelta(seconds=1), "EnableKey"), (recent, "DisableKey")], complete=False, now=NOW
    )
    assert (answer.start, answer.complete) == (recent, False)  # a DisableKey before the EnableKey may be unread


def _stack_forward_dated(tmp_path: Path, endpoint: str) -> Path:
    project = _revoked(tmp_path, endpoint)
    _reopen_with(endpoint, T0 + timedelta(days=8))  # 8 days later than the revocation
    return project


def test_a_lookup_throttled_mid_scan_keeps_the_disablekey_it_found_as_the_bound(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _stack_forward_dated(tmp_path, moto_endpoint)
    trail = Trail()
    for _ in range(2):
        for region in REGIONS:
            arn = live(moto_endpoint, region).arn
            trail.page(region, {"Events": []})  # no EnableKey
            trail.page(region, _events(arn, [DISABLED], next_token="more"))  # the first DisableKey page
            trail.refuse(region, "ThrottlingException", "Rate exceeded")  # the next page is refused

    code, document, text = _status(project, trail.runtime(moto_endpoint, NOW), capsys)

    trail.all_answered()
    assert code == ExitCode.DRIFT  # forward-dated: the DisableKey found proves the key disabled since then
    clock = document["clock"]
    assert (clock["source"], clock["revoked_at"], clock["days_left_to_reinstate"]) == ("cloudtrail", iso(DISABLED), 2.0)
    assert "ThrottlingException" in clock["unproven_note"]
    kinds = {f["subkind"] for f in document["findings"]}
    assert {"revoked-at-disagrees", "window-closing", "clock-unverified"} <= kinds
    assert "DEADLINE UNVERIFIED: CloudTrail could not confirm the revocation time" in text


def test_a_clock_unverified_because_cloudtrail_is_unread_exits_3_under_fail_on_deadline(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _stack_forward_dated(tmp_path, moto_endpoint)
    trail = Trail()
    for region in REGIONS:
        trail.refuse(region, "AccessDeniedException", "not authorized to perform: cloudtrail:LookupEvents")
    capsys.readouterr()

    args = ["status", "--project-dir", str(project), "--json"]
    code = main([*args, "--fail-on", "deadline"], runtime=trail.runtime(moto_endpoint, NOW))

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.UNREACHABLE  # evidence unknown, as unreadable re-encryption evidence
    (finding,) = [f for f in document["findings"] if f["subkind"] == "clock-unverified"]
    assert finding["kind"] == "deadline"
    assert (
        "an earlier DisableKey may be hidden, so the reinstatement window may close sooner than shown"
        in (finding["message"])
    )
    assert document["clock"]["days_left_to_reinstate"] == 10.0  # the tag's: all that can be read


def test_not_in_cloudtrail_yet_is_no_finding_even_under_fail_on_deadline(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _revoked(tmp_path, moto_endpoint)
    trail = Trail()
    for region in REGIONS:
        trail.disabled(region, live(moto_endpoint, region).arn)  # nothing delivered yet

    args = ["status", "--project-dir", str(project), "--json", "--fail-on", "deadline"]
    code = main(args, runtime=trail.runtime(moto_endpoint, T0 + timedelta(minutes=3)))

    assert code == ExitCode.AS_DECLARED
    assert "clock-unverified" not in capsys.readouterr().out
