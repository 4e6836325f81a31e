"""Which stacks the pack judges: this product's, and only this product's (one rule for every policy).

A pack enforced org-wide from a Pulumi Cloud policy group runs on every stack of every project in
the group. A stack of another project (`webapp` with an S3 bucket and its own KMS key) must pass
untouched: no "stack configuration is invalid" for config it never had, no refusal of its own KMS
keys. A stack of THIS project must never escape by dropping its configuration, so the project
name alone brings it in (its missing `atlassian-cmk:` config then fails every guardrail closed).

The pack judges a stack when any of these holds:
- its project is `atlassian-cmk` (the engine's PULUMI_PROJECT; pulumi/pulumi
  pkg/resource/plugin/analyzer_plugin.go, constructEnv), the name Pulumi.yaml gives it and the
  namespace of its configuration keys (`atlassian_cmk.config.NAMESPACE`);
- its configuration has any `atlassian-cmk:` key;
- it holds a CMK key: a KMS key whose parent is the CmkKeyPair component (from the URN) or that
  carries this product's stack/key-pair tag (`resources.cmk_key`); per resource, that key itself.

Otherwise every policy stays silent. Each key's Analyze sees only its own resource, so per
resource the third condition is the resource at hand; on the whole stack it is any resource.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from atlassian_cmk.config import NAMESPACE
from atlassian_cmk.naming import COMPONENT_TYPE

from .resources import parent_types

PROJECT = NAMESPACE
"""This product's Pulumi project name (Pulumi.yaml `name`); its config keys live under the same name."""


def engine_project() -> str:
    """The project of the stack the engine runs the pack for ("" when the engine gave none)."""
    return os.environ.get("PULUMI_PROJECT", "")


def product_stack(project: str, raw_config: Mapping[str, Any]) -> bool:
    """Whether the stack is this product's by its project or its configuration (keys as `ns:name`)."""
    return project == PROJECT or any(str(key).startswith(f"{NAMESPACE}:") for key in raw_config)


def holds_product_resource(types_and_urns: Iterable[tuple[str, str]]) -> bool:
    """Whether any (type, URN) is the CmkKeyPair component or a resource inside it."""
    return any(t == COMPONENT_TYPE or COMPONENT_TYPE in parent_types(urn) for t, urn in types_and_urns)
