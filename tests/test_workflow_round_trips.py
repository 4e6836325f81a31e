"""Revoke's critical path (issue 14 item 8): DisableKey in every region within two round trips of the
start, the whole run in at most five, proven by holding each round until all of it has arrived."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from tests.support.cmkctl import REGIONS, live, provision, runtime, stack_dir, two_generations
from tests.support.counting_proxy import counting_proxy
from tests.test_break_glass_generations import quiet_cloudtrail

ROUND_TIMEOUT = 60  # seconds a held request may wait for the rest of its round on a loaded machine


def _enrolled(tmp_path: Path, endpoint: str) -> Path:
    project = stack_dir(tmp_path)
    keys = provision(project, endpoint)
    path = project / "Pulumi.prod.yaml"
    path.write_text(
        path.read_text() + "  atlassian-cmk:enrolledKeys:\n" + "".join(f"    {k.region}: {k.arn}\n" for k in keys)
    )
    return project


def test_revoke_disables_every_region_in_the_second_round_trip_and_finishes_in_six(
    tmp_path: Path, moto_endpoint: str
) -> None:
    project = _enrolled(tmp_path, moto_endpoint)
    per_region_reads = 4  # DescribeKey (by key ID), ListResourceTags, GetKeyPolicy, DescribeKey (the alias), at once
    sizes = [
        1 + per_region_reads * len(REGIONS),
        2 * len(REGIONS),
        2 * len(REGIONS),
        len(REGIONS),
        2 * len(REGIONS),
        2 * len(REGIONS),
    ]

    with counting_proxy(moto_endpoint) as proxy:
        proxy.expect_rounds(sizes)
        code = main(
            ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"],
            runtime=runtime(proxy.url, read_timeout=ROUND_TIMEOUT),
        )

    assert not proxy.deadlocked, proxy.rounds  # no request waited on an answer of its own round
    assert code == ExitCode.AS_DECLARED
    assert {region: live(moto_endpoint, region).key_state for region in REGIONS} == dict.fromkeys(REGIONS, "Disabled")
    rounds = [Counter(operation for _, operation in bucket) for bucket in proxy.rounds]
    # 1: the guard's evidence (tags, key policies), the alias and the caller identity, in one concurrent round.
    assert rounds[0] == Counter({"GetCallerIdentity": 1, "DescribeKey": 4, "ListResourceTags": 2, "GetKeyPolicy": 2})
    # 2: DisableKey, every region, and beside it the revoke's lease (TagResource): revocation never
    # waits for the lease, a restore started later reads it and refuses (docs/cmkctl.md, "The lease").
    assert sorted(proxy.rounds[1]) == sorted(
        [(region, "DisableKey") for region in REGIONS] + [(region, "TagResource") for region in REGIONS]
    )
    # 3: the key read again before its record (issue 12: another revoke may have recorded since round 1; its
    # open record is kept, never overwritten: kms_actions._reread_before_record). After DisableKey, so
    # revocation itself is not delayed; 4: the record, which also releases the lease (one TagResource);
    # 5: its read-back; 6: the settling read.
    assert rounds[2] == rounds[4] == rounds[5] == Counter({"DescribeKey": 2, "ListResourceTags": 2})
    assert rounds[3] == Counter({"TagResource": 2})
    assert proxy.rounds[6] == []  # nothing after the sixth round


@pytest.mark.parametrize("answer", ["prod"])
def test_after_confirmation_the_evidence_is_read_again_in_one_round_then_disable(
    tmp_path: Path, moto_endpoint: str, answer: str
) -> None:
    project = _enrolled(tmp_path, moto_endpoint)
    reads = 1 + 4 * len(REGIONS)
    sizes = [reads, reads, 2 * len(REGIONS)]

    with counting_proxy(moto_endpoint) as proxy:
        proxy.expect_rounds(sizes)
        code = main(
            ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1"],
            runtime=runtime(proxy.url, answer=answer, read_timeout=ROUND_TIMEOUT),
        )

    assert not proxy.deadlocked, proxy.rounds
    assert code == ExitCode.AS_DECLARED
    assert sorted(op for op in proxy.rounds[2] if op[1] == "DisableKey") == [(r, "DisableKey") for r in REGIONS]


def test_with_two_generations_every_key_policy_is_read_in_the_first_round(tmp_path: Path, moto_endpoint: str) -> None:
    # Issue 12 finding 5: the guard trusts the tags of all four keys, so all four key policies are judged;
    # they go out by key ID beside the keys' reads, not in a round of their own.
    project, _, _ = two_generations(tmp_path, moto_endpoint, "preparing")
    per_region_reads = 8  # per generation DescribeKey (by ID), ListResourceTags, DescribeKey (alias); 2 GetKeyPolicy

    with counting_proxy(moto_endpoint) as proxy:
        proxy.expect_rounds([1 + per_region_reads * len(REGIONS), 3 * len(REGIONS)])
        base = runtime(proxy.url, read_timeout=ROUND_TIMEOUT)
        quiet = quiet_cloudtrail(moto_endpoint)  # CloudTrail is not KMS: stubbed, outside the proxy's rounds

        def factory(service: str, region: str) -> Any:
            return (
                quiet.client_factory(service, region)
                if service == "cloudtrail"
                else base.client_factory(service, region)
            )

        code = main(
            ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"],
            runtime=Runtime(factory, base.policy, base.now, base.ask),
        )

    assert not proxy.deadlocked, proxy.rounds
    assert code == ExitCode.AS_DECLARED
    assert Counter(operation for _, operation in proxy.rounds[0]) == Counter(
        {"GetCallerIdentity": 1, "DescribeKey": 8, "ListResourceTags": 4, "GetKeyPolicy": 4}
    )
    # 2: DisableKey on all four keys, the lease beside it (one TagResource per region).
    assert Counter(operation for _, operation in proxy.rounds[1]) == Counter({"DisableKey": 4, "TagResource": 2})
    assert sorted(op for op in proxy.rounds[1] if op[1] == "DisableKey") == sorted(
        (region, "DisableKey") for region in REGIONS for _ in range(2)
    )
