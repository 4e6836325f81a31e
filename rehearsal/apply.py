"""`pulumi up` stood in for: the emulator brought to what the program registered, as the provider would.

The rehearsal runs the real program under Pulumi's mocks, so no engine diffs and no provider
applies. After a pull request the guardrails allowed, this module makes the AWS emulator hold what
the engine and pulumi-aws (the Terraform AWS provider underneath) would leave, from the program's
registered inputs alone:

- a key resource the state does not hold yet: CreateKey with its policy, description and tags,
  rotation on, then DisableKey when `isEnabled` is false (the provider creates keys enabled and
  disables after: hashicorp/terraform-provider-aws internal/service/kms/key.go resourceKeyCreate,
  `if enabled := d.Get("is_enabled").(bool); !enabled { updateKeyEnabled(...) }`);
- a key the state holds: its tags made equal to the declared ones (TagResource, UntagResource for a
  tag it no longer declares, except the break-glass record tags the provider ignores,
  `ignore_tags` in components/cmk_key_pair.py), PutKeyPolicy when the policy differs, and
  EnableKey/DisableKey when `isEnabled` differs. The resource keeps its key (same name = same URN:
  no replacement, see atlassian_cmk/generations.py);
- an alias: created, or repointed in place (UpdateAlias) when its target changes; an alias
  resource the program no longer registers is deleted (aliases are not protected);
- a key resource the program no longer registers: refused, as the engine refuses to delete a
  protected resource (`protect=True`; Pulumi docs, resource option "protect": "A protected resource
  cannot be deleted directly. Instead, you must first set `protect: false` and run `pulumi up`");
  a key is never deleted or scheduled for deletion.

Independent keys only (`multiRegion: false`, the shipped stack): a ReplicaKey is refused rather
than approximated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import rpc

from atlassian_cmk.aws.kms_reads import ClientFactory
from atlassian_cmk.aws.provision import ProvisionedKey
from atlassian_cmk.naming import RECORD_TAGS
from rehearsal.program_run import ProgramRun, RegisteredResource

KEY_TYPE = "aws:kms/key:Key"
REPLICA_TYPE = "aws:kms/replicaKey:ReplicaKey"
ALIAS_TYPE = "aws:kms/alias:Alias"


class ApplyRefused(Exception):
    """What `pulumi up` would refuse (a protected key no longer declared), or what the rehearsal cannot apply."""


@dataclass
class DeployedStack:
    """The engine's state of the stack, as far as the rehearsal needs it: resource name -> deployed object."""

    keys: dict[str, ProvisionedKey] = field(default_factory=dict)
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    """alias resource name -> (region, alias name)."""

    def arns(self) -> dict[str, str]:
        """Key resource name -> ARN: the `arn` outputs AnalyzeStack sees for keys the update keeps."""
        return {name: key.arn for name, key in self.keys.items()}


@dataclass
class ApplyReport:
    """What one apply did, resource by resource (names of the program's resources)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted_aliases: list[str] = field(default_factory=list)


def _outputs(resource: RegisteredResource) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(resource.outputs)) if resource.outputs is not None else {}


def _create_key(kms: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    tags = [{"TagKey": k, "TagValue": v} for k, v in (inputs.get("tags") or {}).items()]
    metadata: dict[str, Any] = kms.create_key(
        Policy=inputs["policy"],
        Description=inputs.get("description", ""),
        KeyUsage=inputs.get("keyUsage", "ENCRYPT_DECRYPT"),
        KeySpec="SYMMETRIC_DEFAULT",
        MultiRegion=bool(inputs.get("multiRegion", False)),
        Tags=tags,
    )["KeyMetadata"]
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    if inputs.get("isEnabled") is False:
        kms.disable_key(KeyId=metadata["KeyId"])
    return metadata


def _update_key(kms: Any, key_id: str, inputs: dict[str, Any]) -> bool:
    """Make the key hold the declared enabled state, policy and tags; True when anything changed.

    In the provider's order (key.go resourceKeyUpdate): enable first, then the policy, disable only
    after ("we cannot modify disabled keys"), tags last.
    """
    changed = False
    enabled = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    wanted = inputs.get("isEnabled", True) is not False
    if wanted and not enabled:
        kms.enable_key(KeyId=key_id)
        changed = True
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    if json.loads(policy) != json.loads(inputs["policy"]):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=inputs["policy"])
        changed = True
    if enabled and not wanted:
        kms.disable_key(KeyId=key_id)
        changed = True
    declared: dict[str, str] = dict(inputs.get("tags") or {})
    live = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id).get("Tags", [])}
    stale = [k for k in live if k not in declared and k not in RECORD_TAGS]
    if stale:
        kms.untag_resource(KeyId=key_id, TagKeys=stale)
        changed = True
    different = {k: v for k, v in declared.items() if live.get(k) != v}
    if different:
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in different.items()])
        changed = True
    return changed


def apply_program(run: ProgramRun, deployed: DeployedStack, client_factory: ClientFactory) -> ApplyReport:
    """Bring the emulator (and `deployed`, the engine's state) to what `run` registered; see the module text.

    `run` must come from `run_program(..., preview=False)`: the aliases' `targetKeyId` inputs are the
    keys' mock IDs, mapped here to the deployed keys. Raises ApplyRefused before changing anything when
    the program drops a deployed key or registers a ReplicaKey.
    """
    if run.error is not None:
        raise ApplyRefused(f"the program failed: {run.error}")
    if run.of_type(REPLICA_TYPE):
        raise ApplyRefused("the rehearsal applies independent keys only (multiRegion: false)")
    registered = {r.name for r in run.of_type(KEY_TYPE)}
    dropped = sorted(set(deployed.keys) - registered)
    if dropped:
        raise ApplyRefused(
            f"the program no longer registers the protected key resource(s) {', '.join(dropped)}: pulumi up refuses "
            "to delete a protected resource"
        )
    report = ApplyReport()
    by_mock_id: dict[str, ProvisionedKey] = {}
    for resource in run.of_type(KEY_TYPE):
        inputs = dict(resource.inputs)
        region = str(inputs["region"])
        kms = client_factory("kms", region)
        key = deployed.keys.get(resource.name)
        if key is None:
            metadata = _create_key(kms, inputs)
            key = ProvisionedKey(region=region, key_id=metadata["KeyId"], arn=metadata["Arn"], alias="")
            deployed.keys[resource.name] = key
            report.created.append(resource.name)
        elif _update_key(kms, key.key_id, inputs):
            report.updated.append(resource.name)
        by_mock_id[str(_outputs(resource)["keyId"])] = key
    aliases = run.of_type(ALIAS_TYPE)
    for resource in aliases:
        inputs = dict(resource.inputs)
        region, name = str(inputs["region"]), str(inputs["name"])
        target = by_mock_id[str(inputs["targetKeyId"])]
        kms = client_factory("kms", region)
        if resource.name not in deployed.aliases:
            kms.create_alias(AliasName=name, TargetKeyId=target.key_id)
            deployed.aliases[resource.name] = (region, name)
            report.created.append(resource.name)
        elif kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] != target.key_id:
            kms.update_alias(AliasName=name, TargetKeyId=target.key_id)
            report.updated.append(resource.name)
    for resource_name in sorted(set(deployed.aliases) - {r.name for r in aliases}):
        region, name = deployed.aliases.pop(resource_name)
        client_factory("kms", region).delete_alias(AliasName=name)
        report.deleted_aliases.append(resource_name)
    return report
