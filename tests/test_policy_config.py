"""Policy config as the Pulumi CLI reconciles it, what the CLI refuses, and what the pack refuses.

pulumi/pulumi pkg/resource/analyzer/config.go reconciles `--policy-pack-config` before the pack
runs (rehearsal/policy_config.py transcribes it); the pack then sees every policy's level at
Configure and guardrail-levels-intact (pinned mandatory) fails every key when the config weakens it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import re2

from atlassian_cmk.guardrail_catalog import GUARDRAILS
from policies.guardrails.levels import level_problems
from policies.guardrails.settings import JUSTIFICATION_POLICY, compile_ticket_pattern
from rehearsal.policy_config import PolicyConfigRejected, PolicyInfo, reconcile_policy_config
from rehearsal.policy_pack_client import analyze_request, by_policy, describe, judge_each_step
from rehearsal.published_pack import PACK_DIR
from tests.support.pack_pool import PackPool
from tests.test_policy_pack import OFFLINE, REVOKED, program

LEVELS = "guardrail-levels-intact"
REENCRYPTION = "no-revocation-during-reencryption"
MANDATORY = {g.name for g in GUARDRAILS if g.enforcement == "mandatory"}
POLICIES = [PolicyInfo("a", "mandatory", {"on": {"type": "boolean", "default": True}}), PolicyInfo("b", "advisory")]


@pytest.fixture
def packs(pack_pool: PackPool) -> PackPool:
    return pack_pool


# ----------------------------------------------------------------------------- the CLI's reconciliation


def test_defaults_then_all_then_each_policy_as_config_go_applies_them() -> None:
    reconciled = reconcile_policy_config(POLICIES, {"all": "advisory", "b": "mandatory"})

    assert {name: entry.level for name, entry in reconciled.items()} == {
        "a": "advisory",
        "b": "mandatory",
        "all": "advisory",  # passed on to the pack, which sees it
    }
    assert reconciled["a"].properties == {"on": True}  # the schema default


def test_a_misspelt_policy_with_a_level_reaches_the_pack_as_an_unknown_name() -> None:
    reconciled = reconcile_policy_config(POLICIES, {"aa": "disabled"})

    assert reconciled["aa"].level == "disabled"
    assert reconciled["a"].level == "mandatory"


def test_a_misspelt_policy_with_only_properties_stops_the_run_at_configure() -> None:
    # analyzer_plugin.go Configure: the entry's level is "", not a valid enforcement level.
    with pytest.raises(PolicyConfigRejected, match=r'invalid enforcement level ""'):
        reconcile_policy_config(POLICIES, {"aa": {"on": False}})


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a": "off"}, r'parsing enforcement level for "a": "off" is not a valid enforcement level'),
        ({"a": {"enforcementLevel": 1}}, r"1 is not a valid enforcement level; must be a string"),
        ({"a": 3}, r'parsing "a": 3 is not a valid value; must be a string or object'),
        ({"a": {"on": "yes"}}, r"a: on: Invalid type. Expected: boolean, given: str"),
    ],
)
def test_what_the_cli_refuses_before_the_pack_runs(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(PolicyConfigRejected, match=expected):
        reconcile_policy_config(POLICIES, document)


# ----------------------------------------------------------------------------- CI's config files


@pytest.mark.parametrize("name", ["policy-config.json", "policy-config.sample.json"])
def test_the_shipped_policy_configs_name_real_policies_and_lower_no_guardrail(name: str) -> None:
    document = json.loads((PACK_DIR / name).read_text())
    levels = {
        policy: (value if isinstance(value, str) else value.get("enforcementLevel", "mandatory"))
        for policy, value in document.items()
    }

    assert set(document) <= {g.name for g in GUARDRAILS}, "names no policy of the pack"
    assert "all" not in document
    assert {p for p in MANDATORY if p in levels and levels[p] != "mandatory"} == set()
    assert document.get(LEVELS, {}).get("allowLowered", []) == []
    infos = [PolicyInfo(g.name, g.enforcement) for g in GUARDRAILS]
    reconciled = reconcile_policy_config(infos, document)  # the CLI accepts it
    assert level_problems({n: e.level for n, e in reconciled.items()}) == []


# ----------------------------------------------------------------------------- what the pack refuses


@pytest.mark.parametrize(
    ("policy_config", "expected"),
    [
        ({"all": "advisory"}, 'the policy config uses "all" (advisory)'),
        ({REENCRYPTION: {"enforcementLevel": "disabled"}}, f"lowers mandatory guardrail {REENCRYPTION} to disabled"),
        ({REENCRYPTION: "advisory"}, f"lowers mandatory guardrail {REENCRYPTION} to advisory"),
        ({"revocation-requires-justificaton": "advisory"}, "names 'revocation-requires-justificaton', which is no"),
        ({LEVELS: "disabled"}, f"sets {LEVELS} to disabled; it stays mandatory"),
    ],
)
def test_a_config_that_weakens_the_pack_fails_every_key_loudly(
    packs: PackPool, policy_config: dict[str, Any], expected: str
) -> None:
    raw, run = program(**REVOKED)
    client = packs.get(raw)
    client.configure({**OFFLINE, **policy_config})

    verdicts = judge_each_step(client, run)

    assert {k.urn for k in run.kms_keys} <= verdicts.refused(), describe(
        v for found in verdicts.violations.values() for v in found
    )
    found = [v for k in run.kms_keys for v in by_policy(verdicts.violations[k.urn], LEVELS)]
    assert len(found) == 2 and all(v.level == "mandatory" for v in found), describe(found)
    assert expected in found[0].message


def test_a_guardrail_lowered_on_purpose_is_named_in_allow_lowered(packs: PackPool) -> None:
    raw, run = program(**REVOKED)
    client = packs.get(raw)
    allow = {"allowLowered": ["deployed-keys-intact", REENCRYPTION]}
    client.configure({**OFFLINE, REENCRYPTION: "advisory", LEVELS: allow})

    verdicts = judge_each_step(client, run)

    assert verdicts.refused() == set(), describe(v for found in verdicts.violations.values() for v in found)


# ----------------------------------------------------------------------------- ticketPattern in linear time


def test_the_ticket_pattern_is_compiled_by_re2() -> None:
    assert isinstance(compile_ticket_pattern(JUSTIFICATION_POLICY, "SEC-[0-9]+"), re2._Regexp)


def test_the_redos_pattern_is_judged_without_backtracking(packs: PackPool) -> None:
    # `(a+)+$` backtracks exponentially in Python's re (19 s at 29 characters, doubling per character):
    # 64 characters would not finish in a lifetime. RE2 answers in linear time.
    ticket = "a" * 64 + "-"
    raw, run = program(enabled="false", revocation={"reason": "Suspected breach", "ticket": ticket})
    client = packs.get(raw)
    client.configure({**OFFLINE, JUSTIFICATION_POLICY: {"ticketPattern": "(a+)+$"}})

    violations = by_policy([v for k in run.kms_keys for v in client.analyze(analyze_request(k))], JUSTIFICATION_POLICY)

    assert len(violations) == 2
    assert "does not match the required pattern '(a+)+$'" in violations[0].message


def test_a_pattern_re2_cannot_run_in_linear_time_is_a_config_error(packs: PackPool) -> None:
    raw, run = program(**REVOKED)
    client = packs.get(raw)
    client.configure({**OFFLINE, JUSTIFICATION_POLICY: {"ticketPattern": r"(SEC)-\1"}})

    violations = by_policy([v for k in run.kms_keys for v in client.analyze(analyze_request(k))], JUSTIFICATION_POLICY)

    assert len(violations) == 2
    assert "allowed: an RE2 regular expression (no backreferences or lookaround)" in violations[0].message


# ----------------------------------------------------------------------------- the CLI's schema validation


def test_the_harness_validates_every_schema_keyword_as_the_cli_does() -> None:
    # config.go validates with gojsonschema, every keyword of a policy's schema; so does the harness.
    info = PolicyInfo("p", "mandatory", {"mode": {"type": "string", "enum": ["a", "b"]}, "n": {"type": "integer"}})

    with pytest.raises(PolicyConfigRejected, match=r"p: mode: 'c' is not one of \['a', 'b'\]"):
        reconcile_policy_config([info], {"p": {"mode": "c"}})
    with pytest.raises(PolicyConfigRejected, match=r"p: n: Invalid type. Expected: integer, given: string"):
        reconcile_policy_config([info], {"p": {"n": "1"}})
    assert reconcile_policy_config([info], {"p": {"mode": "a", "n": 1}})["p"].properties == {"mode": "a", "n": 1}
