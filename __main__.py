"""The atlassian-cmk Pulumi program: the CMK keys of the stack's realm, governed by `enabled`.

Validates the whole stack configuration before registering anything, so a bad value stops
`pulumi preview` with one line per problem and no resource touched.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from atlassian_cmk.composed_policy import KeyPolicyRefused, composed_key_policy
from atlassian_cmk.config import NAMESPACE, SECRET_REFUSAL, StackConfigErrors, apply_role_missing, parse_stack_config
from atlassian_cmk.impact import preview_warnings
from atlassian_cmk.naming import alias_name
from components.cmk_key_pair import CmkKeyPair, CmkKeyPairArgs
from components.stack_config import raw_stack_config, secret_keys_of

stack = pulumi.get_stack()
raw_config = raw_stack_config()
secrets = secret_keys_of(raw_config, NAMESPACE)
if secrets:
    # The pack is not told which keys are secret; this refusal is what stops `pulumi up`.
    raise pulumi.RunError(
        f"invalid stack configuration in Pulumi.{stack}.yaml:\n"
        + "\n".join(f"{key}: is a secret; {SECRET_REFUSAL}" for key in secrets)
    )
try:
    config = parse_stack_config(raw_config)
except StackConfigErrors as errors:
    # RunError ends the program cleanly: the engine prints the message, not a traceback.
    raise pulumi.RunError(f"invalid stack configuration in Pulumi.{stack}.yaml:\n{errors}") from None
missing_apply_role = apply_role_missing(config)
if missing_apply_role is not None:
    # Always, before the first `pulumi up` too: that up bakes the key policy, which no shipped role may
    # rewrite later (atlassian_cmk.config.apply_role_missing). One line, no resource registered.
    raise pulumi.RunError(f"invalid stack configuration in Pulumi.{stack}.yaml: {missing_apply_role}")

for warning in preview_warnings(config, stack):
    pulumi.log.warn(warning)

# A plain (synchronous) invoke: the account is known before any resource is registered, so the
# composed key policy is checked first and a broken one stops the program with no resource.
identity = aws.get_caller_identity()
try:
    # The partition from the caller's own ARN (arn:aws:..., arn:aws-us-gov:...), one call fewer.
    policy = composed_key_policy(config, account_id=identity.account_id, partition=identity.arn.split(":")[1])
except KeyPolicyRefused as refused:
    raise pulumi.RunError(f"the key policy composed from Pulumi.{stack}.yaml is refused:\n{refused}") from None

key_pair = CmkKeyPair("cmk", CmkKeyPairArgs(config=config, stack=stack, policy=policy))

pulumi.export("keyArns", key_pair.key_arns)
if key_pair.next_key_arns is not None:
    # What the customer sends Atlassian on the re-encryption ticket; `cmkctl enroll --next` records it.
    pulumi.export("nextKeyArns", key_pair.next_key_arns)
pulumi.export("enabled", config.enabled)
pulumi.export("realm", config.realm)
pulumi.export("regions", list(config.regions))
pulumi.export("alias", alias_name(stack))
