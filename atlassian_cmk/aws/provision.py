"""Creating a CMK key pair with boto3, shaped exactly as the Pulumi component shapes it.

Production keys are created by `pulumi up` only. This is for what must exist without Pulumi:
the drill's throwaway keys (`cmkctl drill`) and the deployed state that tests and the demo
hold in the AWS emulator. It uses the same key policy builder, tags and alias scheme as the
component, so whatever reads the live keys sees what a deployment would leave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from atlassian_cmk.aws.kms_actions import tag_key
from atlassian_cmk.aws.kms_reads import ClientFactory, default_client_factory, describe_error
from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, generation_key_tags, generations, role_recorded
from atlassian_cmk.naming import CURRENT_KEY_PAIR, KEY_DESCRIPTION, RECORD_TAGS, TAG_STACK, alias_name, key_tags

MAX_KEYS_SCANNED_PER_REGION = 2000
"""`find_stack_keys` reads at most this many keys' tags per region (a sandbox account, not a key farm)."""


@dataclass(frozen=True)
class ProvisionedKey:
    region: str
    key_id: str
    arn: str
    alias: str


def create_key_pair(
    config: StackConfig,
    stack: str,
    *,
    key_pair: str = CURRENT_KEY_PAIR,
    extra_tags: dict[str, str] | None = None,
    client_factory: ClientFactory = default_client_factory,
    created_keys: list[ProvisionedKey] | None = None,
    drill_stand_in: bool = False,
) -> list[ProvisionedKey]:
    """Create one key per region (or a multi-region primary and replica), with aliases.

    `created_keys`, when given, receives each key the moment CreateKey/ReplicateKey returned, before
    its alias exists: a caller that is interrupted or fails half way can still find (and disable) it.

    The keys start enabled; a disabled configuration is then applied with DisableKey, as the
    provider does after creating a key with `is_enabled = false`.
    """
    first_region = config.regions[0]
    sts = client_factory("sts", first_region)
    identity = sts.get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    policy = composed_key_policy(
        config, account_id=identity["Account"], partition=partition, drill_stand_in=drill_stand_in
    )
    alias = alias_name(stack, key_pair)
    recorded = role_recorded(config, key_pair)
    created: list[ProvisionedKey] = []
    primary_key_id: str | None = None
    for region in config.regions:
        kms = client_factory("kms", region)
        tags = [
            {"TagKey": k, "TagValue": v}
            for k, v in {**key_tags(config, stack, region, key_pair, recorded=recorded), **(extra_tags or {})}.items()
        ]
        description = KEY_DESCRIPTION.format(stack=stack, region=region)
        metadata: dict[str, Any]
        if config.multi_region and primary_key_id is not None:
            primary_kms = client_factory("kms", first_region)
            metadata = primary_kms.replicate_key(
                KeyId=primary_key_id, ReplicaRegion=region, Policy=policy, Tags=tags, Description=description
            )["ReplicaKeyMetadata"]
            # Tag again in the replica's region: idempotent on AWS, needed on moto (drops ReplicateKey's Tags).
            kms.tag_resource(KeyId=metadata["KeyId"], Tags=tags)
        else:
            metadata = kms.create_key(
                Policy=policy,
                Description=description,
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                MultiRegion=config.multi_region,
                Tags=tags,
            )["KeyMetadata"]
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
            primary_key_id = metadata["KeyId"]
        if created_keys is not None:
            created_keys.append(
                ProvisionedKey(region=region, key_id=metadata["KeyId"], arn=metadata["Arn"], alias=alias)
            )
        _ensure_alias(kms, alias, metadata["KeyId"])
        if not config.enabled:
            kms.disable_key(KeyId=metadata["KeyId"])
        created.append(ProvisionedKey(region=region, key_id=metadata["KeyId"], arn=metadata["Arn"], alias=alias))
    return created


def _ensure_alias(kms: Any, alias: str, key_id: str) -> None:
    """Create the alias; an existing alias already on this key is fine (moto shares a multi-region
    key's aliases between primary and replica, and a re-run must not fail)."""
    try:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    except kms.exceptions.AlreadyExistsException:
        if kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] != key_id:
            raise


def apply_generations(
    config: StackConfig,
    stack: str,
    keys: Mapping[int, Sequence[ProvisionedKey]],
    *,
    extra_tags: Mapping[str, str] | None = None,
    client_factory: ClientFactory,
) -> list[str]:
    """Bring live keys and aliases to what the program declares for `config` (`pulumi up` stood in for,
    without Pulumi): for the drill's keys, whose stack no engine holds. Returns one line per change.

    `keys`: generation number (`generations.Generation.number`) -> its keys, one per region; every
    generation of `generations(config)` must be there. Per key, in the provider's order
    (hashicorp/terraform-provider-aws internal/service/kms/key.go resourceKeyUpdate): EnableKey first,
    DisableKey after, tags last (declared ones set, other non-record tags removed, as the provider
    removes undeclared tags; RECORD_TAGS are left alone, `ignore_tags` in components/cmk_key_pair.py).
    Aliases as the component declares them: `alias/atlassian-cmk/<stack>` on the current generation
    (UpdateAlias in place at promotion), `/next` on the next one, and `/next` deleted once there is no
    next generation (the program no longer registers it). Never deletes or schedules deletion of a key;
    the key policy is the same for every generation and is not touched.
    """
    changes: list[str] = []
    for generation in generations(config):
        held = keys.get(generation.number)
        if held is None:
            raise ValueError(f"no keys given for {generation.label}")
        for key in held:
            kms = client_factory("kms", key.region)
            enabled = kms.describe_key(KeyId=key.key_id)["KeyMetadata"]["KeyState"] == "Enabled"
            if generation.enabled and not enabled:
                kms.enable_key(KeyId=key.key_id)
                changes.append(f"{key.region} {generation.label}: enabled")
            if enabled and not generation.enabled:
                kms.disable_key(KeyId=key.key_id)
                changes.append(f"{key.region} {generation.label}: disabled")
            declared = {**generation_key_tags(config, stack, key.region, generation), **(extra_tags or {})}
            live = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key.key_id).get("Tags", [])}
            stale = [k for k in live if k not in declared and k not in RECORD_TAGS]
            if stale:
                kms.untag_resource(KeyId=key.key_id, TagKeys=stale)
            different = {k: v for k, v in declared.items() if live.get(k) != v}
            if different:
                tag_key(kms, key.key_id, different)
            if stale or different:
                changes.append(f"{key.region} {generation.label}: tags {', '.join(sorted([*stale, *different]))}")
            if generation.role in (CURRENT, NEXT):
                changes.extend(_point_alias(kms, alias_name(stack, generation.role), key, generation.label))
    if not config.has_next_generation:
        for region in config.regions:
            kms = client_factory("kms", region)
            try:  # DescribeKey first: no DeleteAlias is sent for an alias that does not exist
                kms.describe_key(KeyId=alias_name(stack, NEXT))
            except kms.exceptions.NotFoundException:
                continue
            kms.delete_alias(AliasName=alias_name(stack, NEXT))
            changes.append(f"{region}: {alias_name(stack, NEXT)} deleted (no next generation)")
    return changes


def _point_alias(kms: Any, alias: str, key: ProvisionedKey, label: str) -> list[str]:
    """Create `alias` on `key`, or move it there in place (UpdateAlias); [] when it names `key` already."""
    try:
        target = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except kms.exceptions.NotFoundException:
        kms.create_alias(AliasName=alias, TargetKeyId=key.key_id)
        return [f"{key.region}: {alias} created on {label}"]
    if target == key.key_id:
        return []
    kms.update_alias(AliasName=alias, TargetKeyId=key.key_id)
    return [f"{key.region}: {alias} moved to {label}"]


def retire_keys(keys: list[ProvisionedKey], tags: dict[str, str], *, client_factory: ClientFactory) -> list[str]:
    """Disable each key and tag it (never delete, never schedule deletion); returns one line per failure.

    Used by the drill to leave nothing usable behind when it is interrupted or fails."""
    problems: list[str] = []
    for key in keys:
        try:
            kms = client_factory("kms", key.region)
            tag_key(kms, key.key_id, tags)
            kms.disable_key(KeyId=key.key_id)
        except Exception as error:  # noqa: BLE001 - every key gets its attempt; the failures are reported
            problems.append(f"{key.arn}: {describe_error(error)}")
    return problems


def find_stack_keys(
    stack: str, regions: tuple[str, ...], *, client_factory: ClientFactory
) -> tuple[list[ProvisionedKey], list[str]]:
    """The keys tagged `atlassian-cmk:stack=<stack>` in `regions` (ListKeys + ListResourceTags), and one line
    per region that could not be searched completely.

    CreateKey carries the tags (KMS applies them atomically with the key, CreateKey API reference
    "Tags"), so a key whose CreateKey response never arrived (Ctrl-C, lost connection) is still found by
    its unique drill stack name. At most MAX_KEYS_SCANNED_PER_REGION keys are read per region.
    """
    found: list[ProvisionedKey] = []
    problems: list[str] = []
    for region in regions:
        try:
            kms = client_factory("kms", region)
            scanned = 0
            for page in kms.get_paginator("list_keys").paginate():
                for entry in page.get("Keys", []):
                    scanned += 1
                    if scanned > MAX_KEYS_SCANNED_PER_REGION:
                        raise _TooManyKeys
                    try:
                        tags = kms.list_resource_tags(KeyId=entry["KeyId"]).get("Tags", [])
                    except Exception:  # noqa: BLE001 - a key we may not read is not one the drill created
                        continue
                    if any(t.get("TagKey") == TAG_STACK and t.get("TagValue") == stack for t in tags):
                        found.append(ProvisionedKey(region, entry["KeyId"], entry["KeyArn"], alias_name(stack)))
        except _TooManyKeys:
            problems.append(f"{region}: more than {MAX_KEYS_SCANNED_PER_REGION} keys, not all searched")
        except Exception as error:  # noqa: BLE001 - every region gets its search; the failures are reported
            problems.append(f"{region}: {describe_error(error)}")
    return found, problems


class _TooManyKeys(Exception):
    pass
