"""What cmkctl sends to AWS, recorded at the HTTP level; and the installed console script itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from atlassian_cmk.aws.kms_actions import FORBIDDEN_OPERATIONS, RESTORE_PERMISSIONS, REVOKE_PERMISSIONS
from atlassian_cmk.cli.main import main
from atlassian_cmk.enrollment import PERMISSIONS as ENROLL_PERMISSIONS
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.status import PERMISSIONS as STATUS_PERMISSIONS
from tests.support.aws import aws_env
from tests.support.cmkctl import CMKCTL, REGIONS, kms, live, provision, runtime, stack_dir
from tests.support.faults import FaultProxy, fault_proxy


def operations_of(permissions: tuple[str, ...]) -> set[str]:
    return {permission.split(":", 1)[1] for permission in permissions}


def run(proxy: FaultProxy, argv: list[str]) -> tuple[int, set[str]]:
    """Run one command through the recording proxy; return its exit code and the operations it sent."""
    with proxy.lock:
        proxy.calls.clear()
    code = main(argv, runtime=runtime(proxy.url))
    return code, proxy.operations()


def test_every_command_sends_only_the_operations_it_declares(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    at = ["--project-dir", str(project)]
    revoke = ["revoke", *at, "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"]
    restore = ["restore", *at, "--ticket", "SEC-1", "--yes"]
    seen: dict[str, set[str]] = {"enroll": set(), "status": set(), "revoke": set(), "restore": set()}

    with fault_proxy(moto_endpoint) as proxy:
        code, ops = run(proxy, ["enroll", *at, "--write-config"])  # from here on, the enrolled keys by ID
        assert code == ExitCode.AS_DECLARED
        seen["enroll"] |= ops
        # A key disabled in the console (no revoked-at tag): status falls back to CloudTrail.
        kms(moto_endpoint, "us-west-2").disable_key(KeyId=keys[1].key_id)
        code, ops = run(proxy, ["status", *at])
        assert code == ExitCode.SPLIT
        seen["status"] |= ops
        kms(moto_endpoint, "us-west-2").enable_key(KeyId=keys[1].key_id)

        proxy.fail("us-west-2", times=1000, operations={"DisableKey"})
        code, ops = run(proxy, revoke)
        assert code == ExitCode.SPLIT
        seen["revoke"] |= ops
        proxy.clear_faults()
        for expected in (ExitCode.AS_DECLARED, ExitCode.AS_DECLARED):  # converge, then idempotent
            code, ops = run(proxy, revoke)
            assert code == expected
            seen["revoke"] |= ops
        code, ops = run(proxy, ["status", *at, "--json"])
        assert code == ExitCode.DRIFT
        seen["status"] |= ops
        for _ in range(2):
            code, ops = run(proxy, restore)
            assert code == ExitCode.AS_DECLARED
            seen["restore"] |= ops

    assert "LookupEvents" in seen["status"]
    assert {"DisableKey", "TagResource", "GetCallerIdentity"} <= seen["revoke"]
    assert {"EnableKey", "TagResource"} <= seen["restore"]
    assert seen["enroll"] == operations_of(ENROLL_PERMISSIONS)
    assert seen["status"] <= operations_of(STATUS_PERMISSIONS)
    assert seen["revoke"] <= operations_of(REVOKE_PERMISSIONS)
    assert seen["restore"] <= operations_of(RESTORE_PERMISSIONS)
    everything = set().union(*seen.values())
    assert everything.isdisjoint(FORBIDDEN_OPERATIONS | {"ScheduleKeyDeletion", "PutKeyPolicy", "CancelKeyDeletion"})


def test_adding_a_region_costs_requests_in_that_region_only(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    with fault_proxy(moto_endpoint) as proxy:
        main(["status", "--project-dir", str(project)], runtime=runtime(proxy.url))

    # Three requests per region (DescribeKey, ListResourceTags, GetKeyPolicy), each region on its own, plus
    # who is asking (sts:GetCallerIdentity, once, in the realm's first region).
    assert proxy.per_region() == {"us-east-1": 4, "us-west-2": 3}
    assert [c.operation for c in proxy.calls].count("GetCallerIdentity") == 1


def test_the_installed_cmkctl_revokes_and_reports_with_exit_codes(tmp_path: Path, moto_endpoint: str) -> None:
    assert CMKCTL.exists(), "run `.venv/bin/pip install --no-deps -e .` (make does it)"
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    env = aws_env(moto_endpoint)

    def cmkctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CMKCTL), *args], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=project
        )

    revoked = cmkctl("revoke", "--reason", "Suspected breach", "--ticket", "SEC-77", "--yes", "--write-config")
    assert revoked.returncode == 0, revoked.stderr
    assert {region: live(moto_endpoint, region).key_state for region in REGIONS} == {
        "us-east-1": "Disabled",
        "us-west-2": "Disabled",
    }

    status = cmkctl("status", "--json")
    document = json.loads(status.stdout)
    assert status.returncode == 0, status.stdout  # the stack file was written: stack and world agree
    assert document["declared"]["revocation"] == {"reason": "Suspected breach", "ticket": "SEC-77"}

    bad = cmkctl("revoke", "--reason", "x", "--ticket", "SEC 77", "--yes")
    assert bad.returncode == 64 and bad.stderr.strip().startswith("cmkctl: --ticket: 'SEC 77' is not allowed")

    helped = cmkctl("--help")
    assert helped.returncode == 0
    for code in ("0", "1", "2", "3", "4", "5", "6", "64", "130"):
        assert f"\n  {code:>3}  " in helped.stdout
