"""Issue 12 item 1, attack finding 5: the evidence protection is judged on EVERY generation's key policy.

While the stack holds two generations (nextKeys, re-encryption `preparing`), revoke disables all four
keys and the guard trusts the tags of all four, so each key's live policy must carry the
ProtectCmkEvidence* statements. The review's case: the Deny statements stripped from the NEXT keys'
policy (kms:PutKeyPolicy, here in the emulator). `cmkctl status` says EVIDENCE UNPROTECTED naming
`<region> (next)`, `cmkctl revoke` refuses (exit 4) and disables nothing unless the audited override,
and the pack refuses the revocation pull request, all with the same line from
`evidence.deployed_evidence_protection`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlassian_cmk.aws.kms_reads import read_key
from atlassian_cmk.aws.provision import ProvisionedKey
from atlassian_cmk.cli.main import main
from atlassian_cmk.evidence import EVIDENCE_REMEDY, EVIDENCE_SIDS, deployed_evidence_protection
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.generations import CURRENT, NEXT, key_resource_name
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE, TAG_STACK
from rehearsal.policy_pack_client import describe
from rehearsal.pull_request import load_policy_config, rehearse_pull_request
from tests.support.aws import aws_env
from tests.support.cmkctl import REGIONS, STACK, key_states, kms, two_generations, unwrap
from tests.test_break_glass_generations import quiet_cloudtrail
from tests.test_evidence_protection import APPLY, composed, without
from tests.test_policy_live_state import REENCRYPTION

ROOT = Path(__file__).resolve().parents[1]
CI_POLICY_CONFIG = load_policy_config((ROOT / "policies" / "policy-config.json").read_text())
REVOKE = ["revoke", "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"]
STRIPPED = "us-east-1"
UNPROTECTED_NEXT = (
    f"the key policy in {STRIPPED} (next) does not protect the evidence tags (it lacks every ProtectCmkEvidence* "
    "statement: deployed before the evidence model, or rewritten)"
)


def strip(endpoint: str, key: ProvisionedKey) -> None:
    """What an account admin with kms:PutKeyPolicy can do: the key's live policy without the Deny statements."""
    client = kms(endpoint, key.region)
    document = json.loads(client.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"])
    for sid in EVIDENCE_SIDS:
        document = without(document, sid)
    client.put_key_policy(KeyId=key.key_id, PolicyName="default", Policy=json.dumps(document))


def guard_override(endpoint: str, key: ProvisionedKey) -> str | None:
    reading = read_key(kms(endpoint, key.region), key.region, key.key_id)
    assert reading.key is not None
    return reading.key.tags.get(TAG_GUARD_OVERRIDE)


@pytest.fixture
def stripped_next(tmp_path: Path, moto_endpoint: str) -> tuple[Path, list[ProvisionedKey], list[ProvisionedKey]]:
    """Two generations (preparing, nextKeys recorded); the next key in us-east-1 without the evidence Denies."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    strip(moto_endpoint, next(key for key in following if key.region == STRIPPED))
    return project, current, following


# ----------------------------------------------------------------------------- the rule


def test_two_generations_in_one_region_are_judged_apart_and_named_by_generation() -> None:
    document = composed()
    protected = json.dumps(document)
    for sid in EVIDENCE_SIDS:
        document = without(document, sid)
    stripped = json.dumps(document)

    def state(arns: dict[str, str]) -> DeployedState:
        readings = tuple(
            RegionReading(
                region,
                key=LiveKey(region, arn.rsplit("/", 1)[1], arn, "Enabled", False, {TAG_STACK: STACK}),
                enrolled_arn=arn,
            )
            for region, arn in arns.items()
        )
        return DeployedState(STACK, "alias/atlassian-cmk/prod", readings, True)

    arn = "arn:aws:kms:{}:123456789012:key/{}"
    current = {region: arn.format(region, f"c-{region}") for region in REGIONS}
    following = {region: arn.format(region, f"n-{region}") for region in REGIONS}
    policies = {**dict.fromkeys(current.values(), protected), **dict.fromkeys(following.values(), protected)}
    policies[following[STRIPPED]] = stripped
    held = [(CURRENT, state(current)), (NEXT, state(following))]

    lines = deployed_evidence_protection(held, APPLY, (policies, {}))

    assert len(lines) == 2 and lines[-1] == EVIDENCE_REMEDY, lines
    assert lines[0] == UNPROTECTED_NEXT, lines
    # A key read whose policy was not read at all is unknown, so unprotected (fail closed).
    del policies[following["us-west-2"]]
    lines = deployed_evidence_protection(held, APPLY, (policies, {}))
    assert "the key policy in us-west-2 (next) could not be read (not read with the key)" in lines[0], lines


# ----------------------------------------------------------------------------- cmkctl status and revoke


def test_status_names_the_next_generations_unprotected_key_policy(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, _, following = two_generations(tmp_path, moto_endpoint, "preparing")
    assert main(["status", "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint)) == (
        ExitCode.AS_DECLARED
    ), capsys.readouterr().out
    capsys.readouterr()
    strip(moto_endpoint, next(key for key in following if key.region == STRIPPED))

    code = main(["status", "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.DRIFT, out
    (line,) = [line for line in out.splitlines() if "EVIDENCE UNPROTECTED" in line]
    assert UNPROTECTED_NEXT in line and EVIDENCE_REMEDY in line
    assert "the key policy in us-east-1 does not" not in line and "us-west-2" not in line


def test_revoke_is_refused_and_disables_nothing_while_a_next_key_policy_lacks_the_protection(
    stripped_next: tuple[Path, list[ProvisionedKey], list[ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, current, following = stripped_next

    code = main([*REVOKE, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))

    captured = capsys.readouterr()
    said = " ".join(unwrap(captured.out + captured.err).split())
    assert code == ExitCode.REFUSED and int(code) == 4, said
    enabled = dict.fromkeys(REGIONS, "Enabled")
    assert key_states(moto_endpoint, current) == enabled and key_states(moto_endpoint, following) == enabled
    assert UNPROTECTED_NEXT in said
    assert "the key policy in us-east-1 does not" not in said and "us-west-2 (next) does not" not in said
    assert "--override-reencryption-guard" in said


def test_revoke_with_the_override_disables_every_key_of_both_generations_and_records_it(
    stripped_next: tuple[Path, list[ProvisionedKey], list[ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, current, following = stripped_next
    justification = "Next key policy restore pending CHG-9"

    code = main(
        [*REVOKE, "--project-dir", str(project), "--override-reencryption-guard", justification],
        runtime=quiet_cloudtrail(moto_endpoint),
    )

    out = capsys.readouterr().out
    assert code == ExitCode.AS_DECLARED, out
    disabled = dict.fromkeys(REGIONS, "Disabled")
    assert key_states(moto_endpoint, current) == disabled and key_states(moto_endpoint, following) == disabled
    assert {guard_override(moto_endpoint, key) for key in (*current, *following)} == {justification}


# ----------------------------------------------------------------------------- the pack, over gRPC


def test_the_pack_refuses_the_revocation_pull_request_with_the_same_line(
    stripped_next: tuple[Path, list[ProvisionedKey], list[ProvisionedKey]], moto_endpoint: str
) -> None:
    project, current, following = stripped_next
    base = (project / f"Pulumi.{STACK}.yaml").read_text()
    head = base.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + (
        "  atlassian-cmk:revocation:\n    reason: Suspected breach\n    ticket: SEC-1\n"
    )
    deployed = {key_resource_name(1, key.region): key.arn for key in current}
    deployed |= {key_resource_name(2, key.region): key.arn for key in following}

    result = rehearse_pull_request(
        base, head, env=aws_env(moto_endpoint), policy_config=CI_POLICY_CONFIG, deployed_keys=deployed
    )

    assert result.blocking_policies() == ["no-revocation-during-reencryption"], describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {key.urn for key in result.run.kms_keys} <= result.steps.refused()  # every key of both generations
    for violation in result.mandatory:
        said = " ".join(violation.message.split())
        assert UNPROTECTED_NEXT.lower() in said.lower(), said  # a message starts with a capital
        assert "the key policy in us-east-1 does not" not in said.lower()
        # The remedy is the key policy's, not re-encryption's (issue 12 second review).
        assert "restore them with a reviewed change to the key policy alone" in said, said
        assert "reencryption.status: complete alone" not in said, said


def test_the_pack_refuses_a_status_transition_judged_on_tags_an_unprotected_policy_cannot_vouch_for(
    tmp_path: Path, moto_endpoint: str
) -> None:
    # preparing -> in-progress is judged on the applied status the keys' tags say (status_transition_findings):
    # allowed while every key policy protects the tags, refused with the same line once the next one does not.
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    base = (project / f"Pulumi.{STACK}.yaml").read_text()
    head = base.replace("    status: preparing", "    status: in-progress")
    deployed = {key_resource_name(1, key.region): key.arn for key in current}
    deployed |= {key_resource_name(2, key.region): key.arn for key in following}

    def rehearse() -> list[str]:
        result = rehearse_pull_request(
            base, head, env=aws_env(moto_endpoint), policy_config=CI_POLICY_CONFIG, deployed_keys=deployed
        )
        return [" ".join(v.message.split()) for v in result.mandatory if v.policy == REENCRYPTION]

    assert rehearse() == []
    strip(moto_endpoint, next(key for key in following if key.region == STRIPPED))

    refused = rehearse()

    assert refused, "the transition passed although the next key's policy no longer protects its tags"
    assert all(UNPROTECTED_NEXT.lower() in message.lower() for message in refused), refused
