"""`CmkKeyPair`: the Atlassian CMK keys of one realm, one per region, behind one `enabled` flag.

Revoking or restoring Atlassian's access is a change of `enabled`: it drives every key of the
pair identically, so "one region on, one off" cannot be expressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import (
    CURRENT,
    NEXT,
    RETIRED,
    Generation,
    GenerationRole,
    alias_resource_name,
    generation_key_tags,
    generations,
)
from atlassian_cmk.key_set import DELETION_WINDOW_DAYS
from atlassian_cmk.naming import COMPONENT_TYPE, KEY_DESCRIPTION, RECORD_TAGS, alias_name


@dataclass
class CmkKeyPairArgs:
    """What the keys need: the validated configuration and the key policy composed from it."""

    config: StackConfig
    stack: str
    policy: str
    """The key policy JSON, composed and checked before any resource (`composed_key_policy`); every
    generation carries the same one."""


def record_keeping_provider(name: str, parent: pulumi.Resource) -> aws.Provider:
    """The AWS provider of the keys: the default one's region, and the break-glass record left alone.

    `cmkctl revoke`/`restore` write the record (RECORD_TAGS) on the live keys; the component does not
    declare it. The Terraform AWS provider, which pulumi-aws bridges, manages a resource's tags
    wholly: "Any non-AWS tags added ... outside of Terraform will be proposed for removal on the next
    Terraform execution" (hashicorp/terraform-provider-aws website/docs/guides/resource-tagging.html.md),
    which CI's `pulumi up --refresh` is. The provider-level `ignore_tags` ("Ignoring Changes in All
    Resources", same guide) makes the provider neither read nor remove those keys. An explicit
    provider with the default provider's region: moving the keys to it is no replacement. The engine
    asks the NEW provider's DiffConfig about the old and new provider inputs and replaces the key
    only if that diff says replace (pulumi/pulumi pkg/resource/deploy/step_generator.go,
    providerChanged). pulumi-aws's DiffConfig is the bridge's configDiffer
    (pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go, DiffConfig): a changed key is a
    replacement only when the provider marks it ForcesProviderReplace, and never when the old inputs
    lack the key (pulumi/pulumi-aws#3826), which the default provider's inputs do for `ignoreTags`;
    `region` stays the same. `protect` refuses a replacement anyway.
    """
    return aws.Provider(
        f"{name}-aws",
        region=pulumi.Config("aws").get("region"),
        ignore_tags=aws.ProviderIgnoreTagsArgs(keys=list(RECORD_TAGS)),
        opts=pulumi.ResourceOptions(parent=parent),
    )


class CmkKeyPair(pulumi.ComponentResource):
    """One KMS key per region of the realm and per generation, with aliases, key policy and tags.

    Every key and alias carries its region as the pulumi-aws v7 per-resource `region` input
    rather than through one provider per region: the region then sits in the resource's own
    inputs, where the policy pack reads it, and there are no provider resources whose
    replacement could cascade into replacing the keys. Generations (`atlassian_cmk.generations`)
    name their keys by number, so promotion renames nothing.
    """

    key_arns: pulumi.Output[dict[str, str]]
    """Region to key ARN of the current generation: what the customer hands Atlassian at enrollment."""
    next_key_arns: pulumi.Output[dict[str, str]] | None
    """Region to key ARN of the next generation (re-encryption), or None when there is none."""

    def __init__(self, name: str, args: CmkKeyPairArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        # Keys are never deleted by this code: `protect` makes `pulumi destroy` and a removed
        # resource fail loudly, `retain_on_delete` keeps the key in AWS even if protection is lifted.
        key_options = pulumi.ResourceOptions(
            parent=self, protect=True, retain_on_delete=True, provider=record_keeping_provider(name, self)
        )
        arns: dict[GenerationRole, pulumi.Output[dict[str, str]]] = {}
        for generation in generations(args.config):
            keys = self._generation_keys(generation, args, key_options)
            if generation.role != RETIRED:
                for region, key in keys.items():
                    aws.kms.Alias(
                        alias_resource_name(generation.role, region),
                        name=alias_name(args.stack, generation.role),
                        target_key_id=key.key_id,
                        region=region,
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                by_region = {region: key.arn for region, key in keys.items()}
                arns[generation.role] = pulumi.Output.all(**by_region).apply(lambda resolved: dict(resolved))
        self.key_arns = arns[CURRENT]
        self.next_key_arns = arns.get(NEXT)
        outputs: dict[str, object] = {"keyArns": self.key_arns, "enabled": args.config.enabled}
        if self.next_key_arns is not None:
            outputs["nextKeyArns"] = self.next_key_arns
        self.register_outputs(outputs)

    def _generation_keys(
        self, generation: Generation, args: CmkKeyPairArgs, key_options: pulumi.ResourceOptions
    ) -> dict[str, aws.kms.Key | aws.kms.ReplicaKey]:
        """One key per region for `generation`: independent keys, or a primary and its replica."""
        config = args.config
        keys: dict[str, aws.kms.Key | aws.kms.ReplicaKey] = {}
        primary: aws.kms.Key | None = None
        for region in config.regions:
            resource_name = generation.key_resource_name(region)
            description = KEY_DESCRIPTION.format(stack=args.stack, region=region)
            tags = generation_key_tags(config, args.stack, region, generation)
            if config.multi_region and primary is not None:
                # The replica shares key material and rotation with the primary, but has its
                # own enabled state: `enabled` must be set on it as on the primary.
                keys[region] = aws.kms.ReplicaKey(
                    resource_name,
                    region=region,
                    primary_key_arn=primary.arn,
                    enabled=generation.enabled,
                    description=description,
                    policy=args.policy,
                    deletion_window_in_days=DELETION_WINDOW_DAYS,
                    tags=tags,
                    opts=key_options,
                )
            else:
                primary = aws.kms.Key(
                    resource_name,
                    region=region,
                    is_enabled=generation.enabled,
                    multi_region=config.multi_region,
                    key_usage="ENCRYPT_DECRYPT",
                    customer_master_key_spec="SYMMETRIC_DEFAULT",
                    enable_key_rotation=True,
                    description=description,
                    policy=args.policy,
                    deletion_window_in_days=DELETION_WINDOW_DAYS,
                    tags=tags,
                    opts=key_options,
                )
                keys[region] = primary
        return keys
