"""Org-wide enforcement: the pack judges this product's stacks and leaves other projects alone.

A pack enabled for a Pulumi Cloud policy group runs on every stack of every project in the group
(policies/guardrails/scope.py). These tests start the pack with another project's environment and
send what the engine would send for that project's resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2

from rehearsal.policy_pack_client import PolicyPackClient, Violation, describe, start_policy_pack
from tests.support.counting_proxy import closed_port_url
from tests.support.pack_pool import env_without_aws

FOREIGN_CONFIG = {"aws:region": "eu-west-1"}


def resource(project: str, type_: str, name: str, **inputs: Any) -> analyzer_pb2.AnalyzerResource:
    props = struct_pb2.Struct()
    props.update(inputs)
    return analyzer_pb2.AnalyzerResource(
        type=type_, name=name, urn=f"urn:pulumi:dev::{project}::{type_}::{name}", properties=props
    )


def request(res: analyzer_pb2.AnalyzerResource) -> analyzer_pb2.AnalyzeRequest:
    return analyzer_pb2.AnalyzeRequest(
        type=res.type,
        name=res.name,
        urn=res.urn,
        properties=res.properties,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )


@pytest.fixture
def pack() -> Iterator[Any]:
    env = {**env_without_aws(), "AWS_ENDPOINT_URL": closed_port_url()}

    def start(project: str, raw_config: dict[str, Any]) -> Any:
        return start_policy_pack(raw_config, env, "dev", project=project)

    yield start


def judge(client: PolicyPackClient, resources: list[analyzer_pb2.AnalyzerResource]) -> list[Violation]:
    client.configure()
    found = [v for r in resources for v in client.analyze(request(r))]
    return found + client.analyze_stack(resources)


def webapp_stack(project: str = "webapp") -> list[analyzer_pb2.AnalyzerResource]:
    return [
        resource(project, "aws:s3/bucket:Bucket", "assets"),
        resource(project, "aws:kms/key:Key", "assets-key", isEnabled=False, description="webapp's own key"),
    ]


def test_another_projects_stack_with_its_own_kms_key_gets_no_violation(pack: Any) -> None:
    with pack("webapp", FOREIGN_CONFIG) as client:
        violations = judge(client, webapp_stack())

    assert violations == [], describe(violations)


def test_this_project_without_its_configuration_is_refused_not_skipped(pack: Any) -> None:
    # A stack of atlassian-cmk that drops every atlassian-cmk: key must not escape the pack.
    with pack("atlassian-cmk", FOREIGN_CONFIG) as client:
        violations = judge(client, webapp_stack("atlassian-cmk"))

    mandatory = {(v.policy, v.level) for v in violations}
    assert ("dual-region-consistency", "mandatory") in mandatory, describe(violations)
    assert ("only-component-keys", "mandatory") in mandatory, describe(violations)
    assert any("atlassian-cmk:realm: missing" in v.message for v in violations)


def test_another_project_with_atlassian_cmk_configuration_is_judged(pack: Any) -> None:
    with pack("renamed", {**FOREIGN_CONFIG, "atlassian-cmk:enabled": "false"}) as client:
        violations = judge(client, webapp_stack("renamed"))

    assert {v.policy for v in violations} >= {"dual-region-consistency", "only-component-keys"}, describe(violations)


def test_another_project_holding_the_component_is_judged(pack: Any) -> None:
    component = "atlassian-cmk:index:CmkKeyPair"
    key = analyzer_pb2.AnalyzerResource(
        type="aws:kms/key:Key",
        name="cmk-us-east-1",
        urn=f"urn:pulumi:dev::renamed::{component}$aws:kms/key:Key::cmk-us-east-1",
        properties=struct_pb2.Struct(),
    )
    key.properties.update({"isEnabled": False, "region": "us-east-1"})
    parent = resource("renamed", component, "cmk")

    with pack("renamed", FOREIGN_CONFIG) as client:
        violations = judge(client, [parent, key])

    refused = [v for v in violations if v.policy == "dual-region-consistency" and v.level == "mandatory"]
    assert refused, describe(violations)
    assert "atlassian-cmk:realm: missing" in refused[0].message
