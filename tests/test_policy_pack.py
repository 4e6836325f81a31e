"""The guardrails pack over its wire protocol, judging what the real program registers.

These cases need no deployed state: the live-reading policies are switched off through the policy
config (liveStateCheck false, the two live policies disabled), so one pack process per stack
configuration serves every test here. tests/test_policy_live_state.py covers the live reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2

from atlassian_cmk.key_policy import SID_ROOT
from rehearsal.policy_config import PolicyConfigRejected
from rehearsal.policy_pack_client import (
    PolicyPackClient,
    Violation,
    analyze_program_run,
    analyze_request,
    analyzer_resource,
    by_policy,
    describe,
    properties_of,
)
from rehearsal.program_run import ProgramRun, RegisteredResource, run_program
from rehearsal.sample_atlassian_policy import SAMPLE_SID
from tests.support.pack_pool import PackPool
from tests.test_config import PRINCIPAL, engine_config

REENCRYPTION = "no-revocation-during-reencryption"
CONSISTENCY = "dual-region-consistency"
JUSTIFICATION = "revocation-requires-justification"
DELETION = "keys-are-never-deleted"
ACCESS = "key-policy-keeps-access"
DEPLOYED = "deployed-keys-intact"
CLOCK = "revocation-clock"
LEVELS = "guardrail-levels-intact"

OFFLINE: dict[str, dict[str, Any]] = {
    REENCRYPTION: {"liveStateCheck": False},
    ACCESS: {"liveStateCheck": False},
    "context-tag-unchanged": {"liveStateCheck": False},
    "key-policy-access-notes": {"liveStateCheck": False},
    DEPLOYED: {"enforcementLevel": "disabled"},
    CLOCK: {"enforcementLevel": "disabled"},
    LEVELS: {"allowLowered": [DEPLOYED]},
}
"""Policy config for cases that must not depend on AWS: no live reads at all (deployed-keys-intact
always reads, so it is disabled, which guardrail-levels-intact allows only when named)."""

REVOKED = {"enabled": "false", "revocation": {"reason": "Suspected breach of encrypted data", "ticket": "SEC-1234"}}
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's sentinel for an unknown string


@pytest.fixture
def packs(pack_pool: PackPool) -> PackPool:
    return pack_pool


def offline(pool: PackPool, raw: dict[str, Any], **policy_config: dict[str, Any]) -> PolicyPackClient:
    client = pool.get(raw)
    client.configure({**OFFLINE, **policy_config})
    return client


def program(**overrides: Any) -> tuple[dict[str, Any], ProgramRun]:
    raw = engine_config(**overrides)
    run = run_program(raw)
    assert run.error is None, run.error
    return raw, run


def key_in(run: ProgramRun, region: str) -> RegisteredResource:
    """The current generation's key in `region` (during re-encryption the next generation has one too)."""
    return next(
        k
        for k in run.kms_keys
        if k.inputs["region"] == region and k.inputs["tags"]["atlassian-cmk:key-pair"] == "current"
    )


def analyze_key(client: PolicyPackClient, key: RegisteredResource, **changes: Any) -> list[Violation]:
    return client.analyze(analyze_request(key, **changes))


def edited(key: RegisteredResource, **inputs: Any) -> struct_pb2.Struct:
    properties = properties_of(key)
    for name, value in inputs.items():
        properties[name] = value
    return properties


def edited_policy(key: RegisteredResource, edit: Any) -> struct_pb2.Struct:
    document = json.loads(key.inputs["policy"])
    edit(document)
    return edited(key, policy=json.dumps(document))


def only(violations: list[Violation], policy: str, level: str = "mandatory") -> list[Violation]:
    """The violations, asserting they all come from `policy` at `level`."""
    assert violations, f"expected a {policy} violation, got none"
    assert all(v.policy == policy and v.level == level for v in violations), describe(violations)
    return violations


# ----------------------------------------------------------------------------- the pack itself


def test_analyzer_info_names_the_pack_its_policies_levels_and_config_schema(packs: PackPool) -> None:
    info = packs.get(engine_config()).info

    assert info.name == "atlassian-cmk-guardrails"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == {
        REENCRYPTION: analyzer_pb2.MANDATORY,
        CONSISTENCY: analyzer_pb2.MANDATORY,
        JUSTIFICATION: analyzer_pb2.MANDATORY,
        DELETION: analyzer_pb2.MANDATORY,
        ACCESS: analyzer_pb2.MANDATORY,
        DEPLOYED: analyzer_pb2.MANDATORY,
        "enrolled-keys-kept": analyzer_pb2.MANDATORY,
        "only-component-keys": analyzer_pb2.MANDATORY,
        "context-tag-unchanged": analyzer_pb2.MANDATORY,
        "apply-role-configured": analyzer_pb2.MANDATORY,
        CLOCK: analyzer_pb2.ADVISORY,
        "key-policy-access-notes": analyzer_pb2.ADVISORY,
        LEVELS: analyzer_pb2.MANDATORY,
    }
    schemas = {p.name: dict(p.configSchema.properties) for p in info.policies if p.configSchema.properties}
    assert {name: set(props) for name, props in schemas.items()} == {
        REENCRYPTION: {"liveStateCheck"},
        ACCESS: {"liveStateCheck"},
        "context-tag-unchanged": {"liveStateCheck"},
        "key-policy-access-notes": {"liveStateCheck"},
        JUSTIFICATION: {"ticketPattern"},
        LEVELS: {"allowLowered"},
    }
    assert schemas[REENCRYPTION]["liveStateCheck"]["type"] == "boolean"
    assert schemas[REENCRYPTION]["liveStateCheck"]["default"] is True
    assert schemas[JUSTIFICATION]["ticketPattern"]["type"] == "string"
    assert all(p.description.startswith("Checks whether") for p in info.policies)


@pytest.mark.parametrize("overrides", [{}, {"realm": "jp"}, {"multiRegion": "true"}, REVOKED])
def test_what_the_program_registers_passes_every_offline_policy(packs: PackPool, overrides: dict[str, Any]) -> None:
    raw, run = program(**overrides)
    client = offline(packs, raw)

    violations = analyze_program_run(client, run)

    assert violations == [], describe(violations)


def test_a_kms_key_outside_the_component_is_refused_by_only_component_keys_alone(packs: PackPool) -> None:
    client = offline(packs, engine_config())
    stranger = analyzer_pb2.AnalyzeRequest(
        type="aws:kms/key:Key",
        name="logs",
        urn="urn:pulumi:prod::atlassian-cmk::aws:kms/key:Key::logs",
        properties=struct_pb2.Struct(fields={"isEnabled": struct_pb2.Value(bool_value=False)}),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )

    violations = client.analyze(stranger)

    assert [(v.policy, v.level) for v in violations] == [("only-component-keys", "mandatory")], describe(violations)
    assert "aws:kms/key:Key logs is outside the atlassian-cmk:index:CmkKeyPair component" in violations[0].message


# ----------------------------------------------------------------------------- no-revocation-during-reencryption


def test_disabling_while_the_inputs_declare_reencryption_in_progress_is_denied(packs: PackPool) -> None:
    raw, run = program(**REVOKED, reencryption={"status": "in-progress", "ticket": "PS-5678"})
    client = offline(packs, raw)

    violations = only(by_policy(analyze_program_run(client, run), REENCRYPTION), REENCRYPTION)

    assert len(violations) == len(run.kms_keys) == 4  # the next generation is held back too
    message = next(v.message for v in violations if v.urn == key_in(run, "us-west-2").urn)
    assert "Held back with the realm's keys (us-east-1, us-west-2)" in message
    assert "Re-encryption is declared in progress (ticket PS-5678)." in message
    assert "The live check is off (policy config liveStateCheck: false)" in message


def test_one_key_disabled_by_hand_during_declared_reencryption_is_denied(packs: PackPool) -> None:
    raw, run = program(reencryption={"status": "in-progress", "ticket": "PS-5678"})  # enabled: true
    client = offline(packs, raw)
    west = key_in(run, "us-west-2")

    violations = by_policy(analyze_key(client, west, properties=edited(west, isEnabled=False)), REENCRYPTION)

    assert len(violations) == 1, describe(violations)
    assert "cmk-us-west-2 (us-west-2) would be disabled while re-encryption may be in progress" in violations[0].message
    assert "re-encryption is declared in progress (ticket PS-5678)" in violations[0].message


def test_disabling_after_reencryption_is_declared_complete_passes_offline(packs: PackPool) -> None:
    raw, run = program(**REVOKED, reencryption={"status": "complete"})
    client = offline(packs, raw)

    assert by_policy(analyze_program_run(client, run), REENCRYPTION) == []


# ----------------------------------------------------------------------------- dual-region-consistency


def test_one_region_disabled_while_the_other_is_enabled_is_denied_per_key_and_for_the_set(packs: PackPool) -> None:
    raw, run = program()
    client = offline(packs, raw)
    west = key_in(run, "us-west-2")
    split = edited(west, isEnabled=False)

    on_key = only(by_policy(analyze_key(client, west, properties=split), CONSISTENCY), CONSISTENCY)
    on_stack = by_policy(
        client.analyze_stack(analyzer_resource(r, properties=split if r is west else None) for r in run.resources),
        CONSISTENCY,
    )

    assert "cmk-us-west-2 (us-west-2) would be disabled while atlassian-cmk:enabled is true" in on_key[0].message
    assert on_key[0].urn == west.urn
    assert len(on_stack) == 1 and on_stack[0].level == "mandatory"
    assert "disagree on enabled (enabled: cmk-us-east-1 (us-east-1); disabled: cmk-us-west-2 (us-west-2))" in (
        on_stack[0].message
    )


def test_a_stray_key_in_a_third_region_is_denied(packs: PackPool) -> None:
    raw, run = program()
    client = offline(packs, raw)
    west = key_in(run, "us-west-2")
    stray_props = edited(west, region="eu-west-1")
    stray = analyzer_pb2.AnalyzerResource(
        type=west.type,
        name="cmk-eu-west-1",
        urn=west.urn.replace("cmk-us-west-2", "cmk-eu-west-1"),
        properties=stray_props,
        parent=west.parent,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=True, parent=west.parent),
    )

    on_key = only(
        client.analyze(
            analyzer_pb2.AnalyzeRequest(
                type=stray.type, name=stray.name, urn=stray.urn, properties=stray.properties, options=stray.options
            )
        ),
        CONSISTENCY,
    )
    on_stack = by_policy(client.analyze_stack([*(analyzer_resource(r) for r in run.resources), stray]), CONSISTENCY)

    assert "cmk-eu-west-1 (eu-west-1) is outside the realm's regions (us-east-1, us-west-2)" in on_key[0].message
    assert [v.message.splitlines()[-1] for v in on_stack] == [
        "CMK key cmk-eu-west-1 is in eu-west-1, outside the realm's regions (us-east-1, us-west-2): data cannot "
        "leave the realm and Atlassian never uses such a key; remove it from the program"
    ]


def test_a_dual_region_stack_missing_a_region_and_a_single_region_stack_with_two_keys_are_denied(
    packs: PackPool,
) -> None:
    raw, run = program()
    client = offline(packs, raw)
    without_west = [analyzer_resource(r) for r in run.resources if r is not key_in(run, "us-west-2")]
    missing = only(by_policy(client.analyze_stack(without_west), CONSISTENCY), CONSISTENCY)

    raw_jp, run_jp = program(realm="jp")
    client_jp = offline(packs, raw_jp)
    key = run_jp.kms_keys[0]
    twin = analyzer_resource(key)
    twin.name, twin.urn = "cmk-twin", key.urn.replace("cmk-ap-northeast-1", "cmk-twin")
    doubled = only(
        by_policy(client_jp.analyze_stack([*(analyzer_resource(r) for r in run_jp.resources), twin]), CONSISTENCY),
        CONSISTENCY,
    )

    assert "no CMK key in us-west-2: a dual-region realm needs exactly one key in each of us-east-1, us-west-2" in (
        missing[0].message
    )
    assert "2 CMK keys in ap-northeast-1 (cmk-ap-northeast-1, cmk-twin): a single-region realm" in doubled[0].message


# ----------------------------------------------------------------------------- revocation-requires-justification


def test_a_ticket_matching_the_configured_pattern_passes(packs: PackPool) -> None:
    raw, run = program(**REVOKED)
    client = offline(packs, raw, **{JUSTIFICATION: {"ticketPattern": "SEC-[0-9]+"}})

    assert by_policy(analyze_program_run(client, run), JUSTIFICATION) == []


@pytest.mark.parametrize(
    ("ticket", "policy_config", "pattern"),
    [("see slack", {}, r"'\\S+'"), ("INC-42", {"ticketPattern": "SEC-[0-9]+"}, "'SEC-[0-9]+'")],
)
def test_a_ticket_not_matching_the_pattern_is_denied(
    packs: PackPool, ticket: str, policy_config: dict[str, Any], pattern: str
) -> None:
    # The stack schema already refuses a ticket with spaces, so that case is a hand-edited tag: the
    # pack's own pattern is the second line of defence for a component that drifts from the schema.
    valid_ticket = ticket if " " not in ticket else "SEC-1"
    raw, run = program(enabled="false", revocation={"reason": "Suspected breach", "ticket": valid_ticket})
    client = offline(packs, raw, **{JUSTIFICATION: policy_config})
    east = key_in(run, "us-east-1")
    properties = properties_of(east)
    properties["tags"]["atlassian-cmk:revocation-ticket"] = ticket

    violations = only(analyze_key(client, east, properties=properties), JUSTIFICATION)

    assert [v.urn for v in violations] == [east.urn]
    assert f"the revocation ticket {ticket!r} of cmk-us-east-1 (us-east-1) does not match" in violations[0].message
    assert pattern in violations[0].message


@pytest.mark.parametrize(
    ("tag", "value", "named"),
    [
        ("atlassian-cmk:revocation-reason", "line one\nline two", "U+000A LINE FEED"),
        ("atlassian-cmk:revocation-reason", "a\rb", "U+000D CARRIAGE RETURN"),
        ("atlassian-cmk:revocation-ticket", "SEC-1\x1b[2K", "U+001B ESCAPE"),
    ],
)
def test_a_reason_or_ticket_outside_the_character_set_is_denied_naming_the_character(
    packs: PackPool, tag: str, value: str, named: str
) -> None:
    # A hand-edited tag or a component drifting from the schema: the pack applies the schema's own rule.
    raw, run = program(**REVOKED)
    client = offline(packs, raw)
    east = key_in(run, "us-east-1")
    properties = properties_of(east)
    properties["tags"][tag] = value

    violations = only(analyze_key(client, east, properties=properties), JUSTIFICATION)

    assert [v.urn for v in violations] == [east.urn]
    assert f"not {named}" in violations[0].message


def test_a_disabled_key_without_reason_and_ticket_tags_is_denied(packs: PackPool) -> None:
    raw, run = program(**REVOKED)
    client = offline(packs, raw)
    east = key_in(run, "us-east-1")
    properties = properties_of(east)
    del properties["tags"]["atlassian-cmk:revocation-reason"]
    del properties["tags"]["atlassian-cmk:revocation-ticket"]

    violations = only(analyze_key(client, east, properties=properties), JUSTIFICATION)

    assert [v.message.splitlines()[-1].split(";")[0] for v in violations] == [
        "cmk-us-east-1 (us-east-1) would be disabled without a revocation reason (tag atlassian-cmk:revocation-reason)",
        "cmk-us-east-1 (us-east-1) would be disabled without a revocation ticket (tag atlassian-cmk:revocation-ticket)",
    ]


# ----------------------------------------------------------------------------- keys-are-never-deleted


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"protect": False}, "cmk-us-east-1 (us-east-1) is not protected (protect is false)"),
        ({"inputs": {"deletionWindowInDays": 7}}, "has deletionWindowInDays 7 days; it must be 30"),
        (
            {"inputs": {"forceDeleteWithoutRecovery": True}},
            "sets the deletion-related input forceDeleteWithoutRecovery",
        ),
        ({"delete_before_replace": True}, "has deleteBeforeReplace set"),
    ],
)
def test_a_key_that_could_be_deleted_is_denied_and_told_why(
    packs: PackPool, change: dict[str, Any], expected: str
) -> None:
    raw, run = program()
    client = offline(packs, raw)
    east = key_in(run, "us-east-1")
    inputs = change.pop("inputs", {})

    violations = only(analyze_key(client, east, properties=edited(east, **inputs), **change), DELETION)

    assert len(violations) == 1
    assert expected in violations[0].message
    assert "destroys the organization's Atlassian data" in violations[0].message


# ----------------------------------------------------------------------------- key-policy-keeps-access


def _drop_statement(sid: str) -> Any:
    return lambda doc: doc.__setitem__("Statement", [s for s in doc["Statement"] if s["Sid"] != sid])


def _narrow_atlassian(doc: dict[str, Any]) -> None:
    statement = next(s for s in doc["Statement"] if s["Sid"] == SAMPLE_SID)
    statement["Action"] = ["kms:Decrypt"]


def _deny_atlassian(doc: dict[str, Any]) -> None:
    doc["Statement"].append(
        {"Sid": "Quiet", "Effect": "Deny", "Principal": {"AWS": PRINCIPAL}, "Action": "kms:*", "Resource": "*"}
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _drop_statement(SAMPLE_SID),
            f"Atlassian's statement '{SAMPLE_SID}' (principal {PRINCIPAL}) from atlassian-cmk:atlassianKeyPolicy is "
            "missing or altered in the key policy",
        ),
        (_narrow_atlassian, f"Atlassian's statement '{SAMPLE_SID}' (principal {PRINCIPAL})"),
        (_deny_atlassian, f"statement 'Quiet' (principal {PRINCIPAL}) is neither ours nor one of Atlassian's"),
        (_drop_statement(SID_ROOT), "the account root administrator statement"),
    ],
)
def test_a_key_policy_that_drops_narrows_or_denies_access_is_denied(packs: PackPool, edit: Any, expected: str) -> None:
    raw, run = program()
    client = offline(packs, raw)
    east = key_in(run, "us-east-1")

    violations = only(analyze_key(client, east, properties=edited_policy(east, edit)), ACCESS)

    assert any(expected in v.message for v in violations), describe(violations)
    assert all(v.urn == east.urn for v in violations)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"bypassPolicyLockoutSafetyCheck": True}, "sets bypassPolicyLockoutSafetyCheck (True)"),
        ({"policy": UNKNOWN_STRING}, "the key policy of cmk-us-east-1 (us-east-1) is unknown until apply"),
        ({"policy": ""}, "has no key policy"),
    ],
)
def test_a_lockout_bypass_or_an_uncheckable_policy_is_denied(
    packs: PackPool, inputs: dict[str, Any], expected: str
) -> None:
    raw, run = program()
    client = offline(packs, raw)
    east = key_in(run, "us-east-1")

    violations = only(analyze_key(client, east, properties=edited(east, **inputs)), ACCESS)

    assert expected in violations[0].message


# ----------------------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    ("policy_config", "policy", "expected"),
    [
        (
            {REENCRYPTION: {"liveStatCheck": False}},
            REENCRYPTION,
            "no-revocation-during-reencryption.liveStatCheck: False is not allowed; allowed keys: liveStateCheck",
        ),
        (
            {DEPLOYED: {"enforcementLevel": "mandatory", "expectDeployedKeys": False}},
            DEPLOYED,
            "deployed-keys-intact.expectDeployedKeys: False is not allowed; this policy takes no config keys",
        ),
        (
            {JUSTIFICATION: {"ticketPattern": "SEC-[0-9"}},
            JUSTIFICATION,
            "revocation-requires-justification.ticketPattern: 'SEC-[0-9' is not allowed; allowed: an RE2 regular "
            "expression (no backreferences or lookaround); RE2 says: missing ]: [0-9",
        ),
    ],
)
def test_bad_policy_config_is_one_clear_mandatory_violation_per_key(
    packs: PackPool, policy_config: dict[str, Any], policy: str, expected: str
) -> None:
    raw, run = program()
    client = offline(packs, raw, **policy_config)

    violations = only(by_policy(analyze_program_run(client, run), policy), policy)

    assert len(violations) == 2  # one per CMK key, nothing else
    assert expected in violations[0].message
    assert "Traceback" not in violations[0].message


def test_a_huge_bad_pattern_is_echoed_shortened_in_each_violation(packs: PackPool) -> None:
    raw, run = program()
    huge = "(" + "a" * 2_000_000  # invalid (unclosed group), and far too long to quote
    client = offline(packs, raw, **{JUSTIFICATION: {"ticketPattern": huge}})

    violations = only(by_policy(analyze_program_run(client, run), JUSTIFICATION), JUSTIFICATION)

    assert len(violations) == 2
    for violation in violations:
        assert "(2000001 characters)" in violation.message
        assert len(violation.message) < 1_000, len(violation.message)


def test_a_wrong_json_type_is_refused_by_the_cli_before_the_pack_runs(packs: PackPool) -> None:
    # pkg/resource/analyzer/config.go validates each policy's properties against its schema's types.
    raw, _ = program()

    with pytest.raises(PolicyConfigRejected, match=r"no-revocation-during-reencryption: liveStateCheck: Invalid type"):
        offline(packs, raw, **{REENCRYPTION: {"enforcementLevel": "mandatory", "liveStateCheck": "no"}})


def test_an_invalid_stack_config_reaching_the_pack_fails_closed_with_the_config_errors(packs: PackPool) -> None:
    _, run = program()
    broken = {**engine_config(), "atlassian-cmk:enabeld": "false", "atlassian-cmk:realm": "mars"}
    client = offline(packs, broken)

    violations = analyze_program_run(client, run)

    failing = {v.policy for v in violations}
    assert {CONSISTENCY, ACCESS} <= failing, describe(violations)
    assert all(v.level == "mandatory" for v in violations)
    message = by_policy(violations, ACCESS)[0].message
    assert "the stack configuration (Pulumi.prod.yaml) is invalid" in message
    assert "atlassian-cmk:enabeld: 'false' is not allowed" in message
    assert "atlassian-cmk:realm: 'mars' is not allowed" in message


def test_the_pack_recognizes_the_program_keys_by_the_component_type_in_their_urn() -> None:
    from atlassian_cmk.key_set import DELETION_WINDOW_DAYS
    from atlassian_cmk.naming import COMPONENT_TYPE

    _, run = program()
    assert all(f"{COMPONENT_TYPE}$" in key.urn for key in run.kms_keys)
    assert {key.inputs["deletionWindowInDays"] for key in run.kms_keys} == {DELETION_WINDOW_DAYS}


@pytest.mark.parametrize(
    ("resource_type", "name", "parent", "expected"),
    [
        ("aws:kms/keyPolicy:KeyPolicy", "empty", "", "is outside the atlassian-cmk:index:CmkKeyPair component"),
        ("aws:kms/alias:Alias", "prod-alias", "", "is outside the atlassian-cmk:index:CmkKeyPair component"),
        ("aws:kms/externalKey:ExternalKey", "ext", "", "is outside the atlassian-cmk:index:CmkKeyPair component"),
        ("aws:kms/replicaExternalKey:ReplicaExternalKey", "rext", "", "is outside the atlassian-cmk:index:CmkKeyPair"),
        ("aws:kms/grant:Grant", "to-other-account", "", "a KMS grant gives a principal use of a key"),
        (
            "aws:kms/grant:Grant",
            "inside",
            "atlassian-cmk:index:CmkKeyPair$",
            "a KMS grant gives a principal use of a key",
        ),
    ],
)
def test_every_kms_resource_outside_the_component_and_every_grant_is_refused(
    packs: PackPool, resource_type: str, name: str, parent: str, expected: str
) -> None:
    client = offline(packs, engine_config())
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type,
        name=name,
        urn=f"urn:pulumi:prod::atlassian-cmk::{parent}{resource_type}::{name}",
        properties=struct_pb2.Struct(
            fields={"targetKeyId": struct_pb2.Value(string_value="arn:aws:kms:us-east-1:111122223333:key/x")}
        ),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )

    violations = client.analyze(request)

    assert [(v.policy, v.level) for v in violations] == [("only-component-keys", "mandatory")], describe(violations)
    assert expected in violations[0].message


def test_the_components_own_alias_is_not_refused_by_only_component_keys(packs: PackPool) -> None:
    client = offline(packs, engine_config())
    alias = analyzer_pb2.AnalyzeRequest(
        type="aws:kms/alias:Alias",
        name="alias-us-east-1",
        urn="urn:pulumi:prod::atlassian-cmk::atlassian-cmk:index:CmkKeyPair$aws:kms/alias:Alias::alias-us-east-1",
        properties=struct_pb2.Struct(),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )

    assert by_policy(client.analyze(alias), "only-component-keys") == []
