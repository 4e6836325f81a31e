"""The pack's use of CloudTrail's evidence (policies/guardrails/reencryption.py), in process: the evidence
read is swapped for Stubber-fed reads of the real client; the rules are the core's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from atlassian_cmk.aws.cloudtrail import read_reencryption_activity
from atlassian_cmk.live_keys import DeployedState
from policies.guardrails import context, framework
from policies.guardrails import reencryption as pack_rule
from tests.test_reencryption_activity import CURRENT, NEXT, NOW, REGIONS, config, deployed_with, event, page, stubbed

REVOKED = {"enabled": "false", "revocation": {"reason": "Suspected breach", "ticket": "SEC-1"}}
PREPARING = {"reencryption": {"status": "preparing", "ticket": "PS-1"}}


class _State:
    """The deployed keys as the pack's cache would answer: enabled keys of both generations."""

    def get(self, stack: str, regions: tuple[str, ...], enrolled: Any = None) -> DeployedState:
        return deployed_with(None)


@pytest.fixture
def pack(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Swap the pack's reads: deployed keys from `_State`, CloudTrail from the answers a test appends."""
    answers: list[Any] = []
    monkeypatch.setattr(framework, "DEPLOYED_STATE", _State())
    monkeypatch.setattr(pack_rule, "DEPLOYED_STATE", _State())
    cache = context.ReencryptionActivityCache(
        lambda cfg: read_reencryption_activity(cfg, stubbed(answers[0])[0], now=NOW)
    )
    monkeypatch.setattr(pack_rule, "REENCRYPTION_ACTIVITY", cache)
    yield answers


def findings(**overrides: Any) -> list[str]:
    realm = framework.Realm("prod", config(**REVOKED, **PREPARING, **overrides))
    return [f.sentence() for f in pack_rule.realm_findings(realm, {"liveStateCheck": True})]


def test_a_revocation_while_cloudtrail_shows_re_encryption_is_refused(pack: list[Any]) -> None:
    pack.append({r: [page(event(CURRENT[r], "Decrypt", NOW)), page(event(NEXT[r], "Encrypt", NOW))] for r in REGIONS})
    found = findings()
    assert len(found) == 2
    assert found[0].startswith("us-east-1: CloudTrail shows Atlassian re-encrypting: Decrypt at")


def test_a_revocation_while_cloudtrail_shows_no_re_encryption_passes(pack: list[Any]) -> None:
    old_use = event(CURRENT["us-east-1"], "Decrypt", NOW - timedelta(minutes=1))
    pack.append(
        {r: [page(old_use if r == "us-east-1" else event(CURRENT[r], "Decrypt", NOW)), page()] for r in REGIONS}
    )
    assert findings() == []


def test_one_generation_enrolled_reads_no_evidence(pack: list[Any]) -> None:
    """nextKeys not recorded yet: Atlassian has not been given the next keys; nothing is read."""
    assert findings(nextKeys=None) == []
    assert pack == []
