"""The real `__main__.py` under Pulumi's mock runtime: what it registers for each stack configuration."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from atlassian_cmk.evidence import EVIDENCE_SIDS
from atlassian_cmk.key_policy import SID_ADMINISTRATORS, SID_ROOT, key_policy_findings
from atlassian_cmk.naming import RECORD_TAGS, TAG_ENROLLED
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.program_run import ACCOUNT_ID, PROJECT_DIR, ProgramRun, RegisteredResource, run_program
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY, SAMPLE_SID
from tests.support.cmkctl import unwrap
from tests.test_config import PRINCIPAL, engine_config

KEY = "aws:kms/key:Key"
REPLICA = "aws:kms/replicaKey:ReplicaKey"
ALIAS = "aws:kms/alias:Alias"
COMPONENT = "atlassian-cmk:index:CmkKeyPair"
ADMIN = f"arn:aws:iam::{ACCOUNT_ID}:role/SecurityBreakGlass"


def enabled_input(key: RegisteredResource) -> Any:
    return key.inputs["isEnabled"] if key.type == KEY else key.inputs["enabled"]


def run_ok(**overrides: Any) -> ProgramRun:
    run = run_program(engine_config(**overrides))
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize(
    ("overrides", "regions"),
    [
        ({"realm": "us"}, ["us-east-1", "us-west-2"]),
        ({"realm": "eu"}, ["eu-central-1", "eu-west-1"]),
        ({"realm": "jp"}, ["ap-northeast-1"]),
        ({"realm": None, "regions": ["eu-west-2", "eu-west-3"]}, ["eu-west-2", "eu-west-3"]),
        ({"realm": None, "regions": ["sa-east-1"]}, ["sa-east-1"]),
    ],
)
def test_one_independent_key_and_alias_per_region_of_the_realm(overrides: dict[str, Any], regions: list[str]) -> None:
    run = run_ok(**overrides)
    keys = run.kms_keys
    assert [k.type for k in keys] == [KEY] * len(regions)
    # Registration order is not part of the contract (the engine orders by dependency).
    assert sorted(k.inputs["region"] for k in keys) == sorted(regions)
    assert sorted(k.name for k in keys) == sorted(f"cmk-{region}" for region in regions)
    assert all(k.inputs["multiRegion"] is False for k in keys)
    aliases = run.of_type(ALIAS)
    assert sorted((a.inputs["region"], a.inputs["name"]) for a in aliases) == sorted(
        (region, "alias/atlassian-cmk/prod") for region in regions
    )
    assert len(run.of_type(COMPONENT)) == 1
    assert len(run.of_type("pulumi:providers:aws")) == 1  # the keys' provider (record tags ignored)
    assert len(run.resources) == 2 + 2 * len(regions)


def test_every_key_and_alias_is_a_child_of_the_component() -> None:
    run = run_ok()
    component = run.of_type(COMPONENT)[0]
    assert {r.parent for r in run.resources if r is not component} == {component.urn}


def test_multi_region_is_a_primary_in_the_first_region_and_a_replica_in_the_second() -> None:
    run = run_ok(multiRegion="true")
    (primary,) = run.of_type(KEY)
    (replica,) = run.of_type(REPLICA)
    assert (primary.type, primary.inputs["region"], primary.inputs["multiRegion"]) == (KEY, "us-east-1", True)
    assert (replica.type, replica.inputs["region"]) == (REPLICA, "us-west-2")
    assert replica.inputs["primaryKeyArn"].startswith("arn:aws:kms:us-east-1:")
    assert primary.inputs["enableKeyRotation"] is True
    assert "enableKeyRotation" not in replica.inputs  # rotation follows the primary


@pytest.mark.parametrize("multi_region", ["false", "true"])
@pytest.mark.parametrize("enabled", [True, False])
def test_one_enabled_flag_drives_every_key(multi_region: str, enabled: bool) -> None:
    overrides: dict[str, Any] = {"multiRegion": multi_region, "enabled": "true" if enabled else "false"}
    if not enabled:
        overrides["revocation"] = {"reason": "Suspected breach", "ticket": "SEC-1"}
    run = run_ok(**overrides)
    assert [enabled_input(k) for k in run.kms_keys] == [enabled, enabled]
    assert run.outputs["enabled"] is enabled


def test_keys_are_protected_retained_and_never_bypass_the_lockout_check() -> None:
    run = run_ok(multiRegion="true")
    for key in run.kms_keys:
        assert key.protect and key.retain_on_delete, key.name
        assert key.inputs["deletionWindowInDays"] == 30
        assert "bypassPolicyLockoutSafetyCheck" not in key.inputs
    (primary,) = run.of_type(KEY)
    assert (primary.inputs["keyUsage"], primary.inputs["customerMasterKeySpec"]) == (
        "ENCRYPT_DECRYPT",
        "SYMMETRIC_DEFAULT",
    )


def test_key_policy_is_the_own_root_our_administrators_and_atlassians_statements_verbatim() -> None:
    run = run_ok(keyAdministrators=[ADMIN])
    for key in run.kms_keys:
        policy = json.loads(key.inputs["policy"])
        statements = {s["Sid"]: s for s in policy["Statement"]}
        assert list(statements) == [SID_ROOT, SID_ADMINISTRATORS, *EVIDENCE_SIDS, SAMPLE_SID]
        assert statements[SID_ROOT]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
        assert statements[SID_ROOT]["Action"] == "kms:*"
        assert statements[SAMPLE_SID] == SAMPLE_ATLASSIAN_KEY_POLICY[0]
        admin = statements[SID_ADMINISTRATORS]
        assert admin["Principal"] == {"AWS": [ADMIN]}
        assert "kms:ScheduleKeyDeletion" not in admin["Action"] and "kms:PutKeyPolicy" not in admin["Action"]
        findings = key_policy_findings(
            key.inputs["policy"],
            atlassian_statements=SAMPLE_ATLASSIAN_KEY_POLICY,
            context_tag="AcmeCMK",
            account_id=ACCOUNT_ID,
        )
        assert findings == []


def test_a_statement_with_its_own_keys_in_the_stack_file_reaches_the_policy_verbatim() -> None:
    text = (PROJECT_DIR / "Pulumi.prod.yaml").read_text()
    run = run_program(raw_config_from_text(text))
    assert run.error is None, run.error
    statement = json.loads(run.kms_keys[0].inputs["policy"])["Statement"][-1]
    assert statement == SAMPLE_ATLASSIAN_KEY_POLICY[0]
    assert statement["Principal"]["AWS"] == PRINCIPAL


def test_a_key_administrator_of_another_account_stops_the_program_before_any_resource() -> None:
    foreign = "arn:aws:iam::444455556666:role/SecurityBreakGlass"
    run = run_program(engine_config(keyAdministrators=[foreign]))
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error).splitlines()[1:] == [
        f"statement '{SID_ADMINISTRATORS}' grants {foreign}, outside the key's own account {ACCOUNT_ID}: key "
        "administrators and the root are the own account's; Atlassian's access comes only from its statements in "
        "atlassian-cmk:atlassianKeyPolicy"
    ]
    assert run.resources == []


def test_every_problem_of_atlassian_key_policy_is_one_line_and_nothing_is_registered() -> None:
    raw = engine_config(
        atlassianKeyPolicy=[{"Effect": "Allow", "Principal": {"AWS": PRINCIPAL}}],
        atlassianKeyPolicyRevision="ATL 1",
    )
    run = run_program(raw)
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error).splitlines()[1:] == [
        # The value is echoed shortened (config.shorten): a pasted policy cannot flood a CI log.
        "atlassian-cmk:atlassianKeyPolicy[0]: {'Effect': 'Allow', 'Principal': {'AWS': "
        "'arn:aws:iam::279766244153:role/SAMPLE… (101 characters) is not allowed; not an IAM statement "
        "(atlassianKeyPolicy[0].Action: missing; required (or NotAction))",
        "atlassian-cmk:atlassianKeyPolicyRevision: 'ATL 1' is not allowed; allowed: a ticket id such as SEC-1234: "
        "at most 256 of ASCII letters, digits and _ . : / = + - @ (no spaces), not U+0020 SPACE",
    ]
    assert run.resources == []


def test_tags_describe_a_healthy_key() -> None:
    run = run_ok(reencryption={"status": "in-progress", "ticket": "PS-9"})
    for key in run.kms_keys:
        assert key.inputs["tags"] == {
            "atlassian-cmk:stack": "prod",
            "atlassian-cmk:region": key.inputs["region"],
            "atlassian-cmk:key-pair": "next" if "-gen2-" in key.name else "current",
            "atlassian-cmk:enabled": "true",
            "atlassian-cmk:reencryption": "in-progress",
            "atlassian-cmk:context-tag": "AcmeCMK",
        }


def test_tags_of_a_revoked_key_carry_the_justification() -> None:
    run = run_ok(enabled="false", revocation={"reason": "Suspected breach", "ticket": "SEC-7"})
    for key in run.kms_keys:
        tags = key.inputs["tags"]
        assert tags["atlassian-cmk:enabled"] == "false"
        assert tags["atlassian-cmk:revocation-reason"] == "Suspected breach"
        assert tags["atlassian-cmk:revocation-ticket"] == "SEC-7"


def test_exports_key_arns_by_region_enabled_and_realm() -> None:
    run = run_ok(realm="eu")
    arns = run.outputs["keyArns"]
    assert set(arns) == {"eu-central-1", "eu-west-1"}
    assert all(arns[region].startswith(f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/") for region in arns)
    assert (run.outputs["enabled"], run.outputs["realm"]) == (True, "eu")
    assert run.outputs["alias"] == "alias/atlassian-cmk/prod"


def test_revocation_preview_warns_with_regions_timeline_and_restore_steps() -> None:
    run = run_ok(enabled="false", revocation={"reason": "Suspected breach", "ticket": "SEC-7"})
    assert len(run.warnings) == 1
    assert all(len(line) <= 100 for line in run.warnings[0].splitlines())  # wrapped for a terminal
    warning = unwrap(run.warnings[0])
    for fact in (
        "REVOCATION",
        "us-east-1",
        "us-west-2",
        "30 to 60 minutes",
        "up to 1 hour of data",
        "within 10 days",
        "after 20 days",
        "reply on the same Atlassian support ticket",
        "Suspected breach",
        "SEC-7",
    ):
        assert fact in warning, fact


def test_reencryption_in_progress_is_called_out_in_preview() -> None:
    run = run_ok(reencryption={"status": "in-progress", "ticket": "PS-9"})
    assert len(run.warnings) == 1
    assert "RE-ENCRYPTION IN PROGRESS (ticket PS-9)" in run.warnings[0]


def test_a_healthy_stack_previews_without_warnings() -> None:
    assert run_ok().warnings == []


# --- bad configuration: a clear error and nothing registered ---------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"realm": "mars"}, "atlassian-cmk:realm: 'mars' is not allowed"),
        ({"regions": ["us-east-1"]}, "atlassian-cmk:regions: ['us-east-1'] is not allowed; not allowed together"),
        ({"realm": None}, "atlassian-cmk:realm: missing; set exactly one of"),
        (
            {"realm": None, "regions": ["us-east-1", "us-west-2", "eu-west-1"]},
            "atlassian-cmk:regions: ['us-east-1', 'us-west-2', 'eu-west-1'] is not allowed",
        ),
        ({"enabled": None}, "atlassian-cmk:enabled: missing"),
        ({"enabled": "no"}, "atlassian-cmk:enabled: 'no' is not allowed"),
        ({"enabled": "yes"}, "atlassian-cmk:enabled: 'yes' is not allowed"),
        ({"enabled": "0"}, "atlassian-cmk:enabled: '0' is not allowed"),
        ({"enabled": "false"}, "atlassian-cmk:revocation: missing; required when enabled is false"),
        (
            {"enabled": "false", "revocation": {"reason": "breach"}},
            "atlassian-cmk:revocation.ticket: missing; required",
        ),
        (
            {"enabled": "false", "revocation": {"ticket": "SEC-1"}},
            "atlassian-cmk:revocation.reason: missing; required",
        ),
        ({"atlassianKeyPolicy": None}, "atlassian-cmk:atlassianKeyPolicy: missing; required, no default; paste"),
        (
            {
                "atlassianKeyPolicy": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::12:role/x"}, "Action": "kms:*"}
                ]
            },
            "atlassian-cmk:atlassianKeyPolicy[0].Principal.AWS: 'arn:aws:iam::12:role/x' is not allowed",
        ),
        ({"contextTag": "ABCDEFGHIJKLM"}, "atlassian-cmk:contextTag: 'ABCDEFGHIJKLM' is not allowed"),
        ({"contextTag": "Acme-CMK"}, "atlassian-cmk:contextTag: 'Acme-CMK' is not allowed"),
        ({"reencryption": {"status": "paused"}}, "atlassian-cmk:reencryption.status: 'paused' is not allowed"),
    ],
)
def test_bad_config_stops_the_program_before_any_resource(overrides: dict[str, Any], expected: str) -> None:
    run = run_program(engine_config(**overrides))
    assert isinstance(run.error, pulumi.RunError)
    assert expected in str(run.error)
    assert run.resources == []


def test_the_shipped_prod_stack_file_runs_as_the_engine_would_pass_it() -> None:
    raw = raw_config_from_text((PROJECT_DIR / "Pulumi.prod.yaml").read_text())
    run = run_program(raw)
    assert run.error is None
    assert sorted((k.type, k.inputs["region"]) for k in run.kms_keys) == [(KEY, "us-east-1"), (KEY, "us-west-2")]


@pytest.mark.parametrize("multi_region", ["false", "true"])
def test_the_program_registers_the_same_keys_with_and_without_enrolled_keys(multi_region: str) -> None:
    plain = run_ok(multiRegion=multi_region)
    arns = {r: a for r, a in plain.outputs["keyArns"].items()}
    enrolled = run_ok(multiRegion=multi_region, enrolledKeys=arns)

    def shape(run: ProgramRun) -> list[tuple[str, str, bool, bool, str]]:
        # Sorted by URN: the runtime registers concurrently, so the order of registration varies.
        # The enrolled evidence tag is the only difference (a tag update in place, never a replacement).
        def inputs(r: Any) -> str:
            tags = {k: v for k, v in (r.inputs.get("tags") or {}).items() if k != TAG_ENROLLED}
            return json.dumps({**r.inputs, "tags": tags}, sort_keys=True, default=str)

        return sorted((r.urn, r.type, r.protect, r.retain_on_delete, inputs(r)) for r in run.resources)

    assert shape(enrolled) == shape(plain)
    assert enrolled.outputs == plain.outputs
    assert all(k.inputs["tags"][TAG_ENROLLED] == "true" for k in enrolled.kms_keys)
    assert all(TAG_ENROLLED not in k.inputs["tags"] for k in plain.kms_keys)


def test_the_shipped_stack_file_shows_the_enrolled_keys_block_commented_with_how_to_fill_it() -> None:
    text = (PROJECT_DIR / "Pulumi.prod.yaml").read_text()

    assert "  # atlassian-cmk:enrolledKeys:\n" in text
    assert "cmkctl enroll --write-config" in text
    assert "atlassian-cmk:enrolledKeys" not in raw_config_from_text(text)


def test_a_context_condition_other_than_the_context_tag_stops_the_program() -> None:
    statement = {
        "Sid": "SAMPLEAtlassianUse",
        "Effect": "Allow",
        "Principal": {"AWS": PRINCIPAL},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:SAMPLE-context": "Other"}},
    }
    run = run_program(engine_config(atlassianKeyPolicy=[statement]))
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error).splitlines()[1:] == [
        "Atlassian's statement 'SAMPLEAtlassianUse' in atlassian-cmk:atlassianKeyPolicy conditions on "
        "kms:encryptioncontext:sample-context = Other, but atlassian-cmk:contextTag is AcmeCMK: Atlassian would be "
        "denied (a stealth revocation); the context tag is immutable once enrolled"
    ]
    assert run.resources == []
    conditioned = {**statement, "Condition": {"StringEquals": {"kms:EncryptionContext:SAMPLE-context": "AcmeCMK"}}}
    assert run_program(engine_config(atlassianKeyPolicy=[conditioned])).error is None


@pytest.mark.parametrize("multi_region", ["false", "true"])
def test_the_keys_provider_leaves_the_break_glass_record_to_cmkctl(multi_region: str) -> None:
    # CI's `pulumi up --refresh` would otherwise remove the tags cmkctl writes (the Terraform AWS
    # provider manages a resource's tags wholly); see components/cmk_key_pair.record_keeping_provider.
    run = run_program({**engine_config(multiRegion=multi_region), "aws:region": "us-east-1"})
    assert run.error is None, run.error
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    # Provider inputs reach the engine as strings, objects as JSON (as a provider's config does).
    assert json.loads(provider.inputs["ignoreTags"]) == {"keys": list(RECORD_TAGS)}
    assert set(RECORD_TAGS) >= {"atlassian-cmk:revoked-at", "atlassian-cmk:revoked-by", "atlassian-cmk:guard-override"}
    for key in run.kms_keys:
        assert key.request.provider.startswith(provider.urn + "::"), key.request.provider
        assert not set(RECORD_TAGS) & set(key.inputs["tags"])  # the program never declares the record
