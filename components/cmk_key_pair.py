"""`CmkKeyPair`: the Atlassian CMK keys of one realm, one per region, behind one `enabled` flag.

Revoking or restoring Atlassian's access is a change of `enabled`: it drives every key of the
pair identically, so "one region on, one off" cannot be expressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from atlassian_cmk.config import StackConfig
from atlassian_cmk.key_set import DELETION_WINDOW_DAYS
from atlassian_cmk.naming import COMPONENT_TYPE, CURRENT_KEY_PAIR, KEY_DESCRIPTION, RECORD_TAGS, alias_name, key_tags


@dataclass
class CmkKeyPairArgs:
    """What a key pair needs: the validated configuration and the key policy composed from it."""

    config: StackConfig
    stack: str
    policy: str
    """The key policy JSON, composed and checked before any resource (`composed_key_policy`)."""
    key_pair: str = CURRENT_KEY_PAIR
    """`current` for the keys Atlassian uses; another name for the next generation during re-encryption."""


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
    """One KMS key per region of the realm, with alias, key policy and tags.

    Every key and alias carries its region as the pulumi-aws v7 per-resource `region` input
    rather than through one provider per region: the region then sits in the resource's own
    inputs, where the policy pack reads it, and there are no provider resources whose
    replacement could cascade into replacing the keys.
    """

    key_arns: pulumi.Output[dict[str, str]]
    """Region to key ARN: what the customer hands Atlassian at enrollment."""

    def __init__(self, name: str, args: CmkKeyPairArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        config = args.config
        policy = args.policy
        # Keys are never deleted by this code: `protect` makes `pulumi destroy` and a removed
        # resource fail loudly, `retain_on_delete` keeps the key in AWS even if protection is lifted.
        key_options = pulumi.ResourceOptions(
            parent=self, protect=True, retain_on_delete=True, provider=record_keeping_provider(name, self)
        )
        arns: dict[str, pulumi.Output[str]] = {}
        primary: aws.kms.Key | None = None
        for region in config.regions:
            resource_name = f"{name}-{region}"
            description = KEY_DESCRIPTION.format(stack=args.stack, region=region)
            tags = key_tags(config, args.stack, region, args.key_pair)
            key: aws.kms.Key | aws.kms.ReplicaKey
            if config.multi_region and primary is not None:
                # The replica shares key material and rotation with the primary, but has its
                # own enabled state: `enabled` must be set on it as on the primary.
                key = aws.kms.ReplicaKey(
                    resource_name,
                    region=region,
                    primary_key_arn=primary.arn,
                    enabled=config.enabled,
                    description=description,
                    policy=policy,
                    deletion_window_in_days=DELETION_WINDOW_DAYS,
                    tags=tags,
                    opts=key_options,
                )
            else:
                primary = key = aws.kms.Key(
                    resource_name,
                    region=region,
                    is_enabled=config.enabled,
                    multi_region=config.multi_region,
                    key_usage="ENCRYPT_DECRYPT",
                    customer_master_key_spec="SYMMETRIC_DEFAULT",
                    enable_key_rotation=True,
                    description=description,
                    policy=policy,
                    deletion_window_in_days=DELETION_WINDOW_DAYS,
                    tags=tags,
                    opts=key_options,
                )
            aws.kms.Alias(
                f"{resource_name}-alias",
                name=alias_name(args.stack, args.key_pair),
                target_key_id=key.key_id,
                region=region,
                opts=pulumi.ResourceOptions(parent=self),
            )
            arns[region] = key.arn
        self.key_arns = pulumi.Output.all(**arns).apply(lambda resolved: dict(resolved))
        self.register_outputs({"keyArns": self.key_arns, "enabled": config.enabled})
