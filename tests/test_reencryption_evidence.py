"""Issue 12 item 2, "unknown is no": only the exact live values `none` and `complete` rule
re-encryption out, in the core rule and in `cmkctl revoke` (the pack: tests/test_policy_live_state.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.evidence import reencryption_evidence
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_REENCRYPTION
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir

NOT_KNOWN = [
    "In-Progress",
    "Preparing",
    "in-progress ",
    "IN_PROGRESS",
    "running",
    "",
    " none",
    "Complete",
    "in-progress",
]


@pytest.mark.parametrize("value", ["none", "preparing", "complete"])
def test_only_the_exact_known_values_rule_reencryption_out(value: str) -> None:
    assert reencryption_evidence(value).may_run is False


@pytest.mark.parametrize("value", NOT_KNOWN)
def test_any_other_value_may_be_reencryption_and_is_shown(value: str) -> None:
    evidence = reencryption_evidence(value)
    assert evidence.may_run is True
    assert evidence.reason is not None
    if value != "in-progress":
        assert repr(value) in evidence.reason


def test_a_missing_tag_may_be_reencryption() -> None:
    evidence = reencryption_evidence(None)
    assert evidence.may_run is True and f"no {TAG_REENCRYPTION} tag" in str(evidence.reason)


def _set_live_tag(endpoint: str, value: str | None) -> None:
    for region in REGIONS:
        client, key_id = kms(endpoint, region), live(endpoint, region).key_id
        if value is None:
            client.untag_resource(KeyId=key_id, TagKeys=[TAG_REENCRYPTION])
        else:
            client.tag_resource(KeyId=key_id, Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": value}])


@pytest.mark.parametrize("value", ["In-Progress", "in-progress ", "IN_PROGRESS", "running", None])
def test_cmkctl_revoke_refuses_when_the_live_tag_is_not_a_known_value(
    value: str | None, tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    _set_live_tag(moto_endpoint, value)

    code = main(
        ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"],
        runtime=runtime(moto_endpoint),
    )

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert {region: live(moto_endpoint, region).key_state for region in REGIONS} == {
        "us-east-1": "Enabled",
        "us-west-2": "Enabled",
    }
    shown = f"no {TAG_REENCRYPTION} tag" if value is None else repr(value)
    assert shown in err
    for region in REGIONS:
        assert live(moto_endpoint, region).tags.get(TAG_REENCRYPTION) == value
