"""`--policy-pack-config` as the Pulumi CLI turns it into the pack's `Configure` call.

A transcription of pulumi/pulumi pkg/resource/analyzer/config.go (parsePolicyPackConfig,
ReconcilePolicyPackConfig, applyConfig, validatePolicyPackConfig) and of the check in
pkg/resource/plugin/analyzer_plugin.go (Configure), so the rehearsal harness configures the pack
with what the engine would send, and refuses what the CLI refuses:

- every policy starts at its own level with its schema defaults;
- `"all": <level>` sets every policy's level; the `all` entry itself is passed on too;
- an entry under a name no policy has is passed on, not refused (the pack sees it);
- such an entry with properties but no level has the empty level, which Configure refuses
  (`invalid enforcement level ""`): the run stops;
- a level that is not advisory/mandatory/remediate/disabled, a value that is neither a string
  nor an object, and a property of the wrong JSON type stop the run before the pack is configured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import Draft7Validator  # type: ignore[import-untyped]

LEVELS: Final = ("advisory", "mandatory", "remediate", "disabled")


class PolicyConfigRejected(ValueError):
    """The CLI stops the run on this config before the pack sees it (the CLI's own message)."""


@dataclass(frozen=True)
class PolicyInfo:
    """What GetAnalyzerInfo says of one policy: its level and its config schema's properties."""

    name: str
    level: str
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class PolicyConfig:
    """One entry of the reconciled config: its level ("" when none) and properties (None when none)."""

    level: str
    properties: dict[str, Any] | None


def parse_policy_config(document: Mapping[str, Any]) -> dict[str, PolicyConfig]:
    """config.go parsePolicyPackConfig: name -> level string or object with `enforcementLevel`."""
    result: dict[str, PolicyConfig] = {}
    for name, value in document.items():
        if name == "environments":  # ESC environments, resolved by the CLI, not config
            continue
        level = ""
        properties: dict[str, Any] | None = None
        if isinstance(value, str):
            if value not in LEVELS:
                raise PolicyConfigRejected(
                    f'parsing enforcement level for "{name}": "{value}" is not a valid enforcement level'
                )
            level = value
        elif isinstance(value, Mapping):
            given = dict(value)
            if "enforcementLevel" in given:
                raw = given.pop("enforcementLevel")
                if not isinstance(raw, str):
                    raise PolicyConfigRejected(
                        f'parsing enforcement level for "{name}": {raw} is not a valid enforcement level; must be a '
                        "string"
                    )
                if raw not in LEVELS:
                    raise PolicyConfigRejected(
                        f'parsing enforcement level for "{name}": "{raw}" is not a valid enforcement level'
                    )
                level = raw
            properties = given or None
        else:
            raise PolicyConfigRejected(f'parsing "{name}": {value} is not a valid value; must be a string or object')
        if not level and not properties:
            continue
        result[name] = PolicyConfig(level, properties)
    return result


def _json_type(value: Any) -> str:
    """gojsonschema's name for a value's JSON type (the "given" of its Invalid type message)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_errors(policy: PolicyInfo, properties: Mapping[str, Any]) -> list[str]:
    """validatePolicyPackConfig: the properties against the policy's whole JSON schema.

    The CLI validates with gojsonschema (pkg/resource/analyzer/config.go, validatePolicyPackConfig),
    every keyword of the schema, not only `type`; the `jsonschema` library (Draft 7, which
    gojsonschema supports) does the same here. Type errors read as gojsonschema words them.
    """
    schema = {"type": "object", "properties": dict(policy.properties)}
    errors: list[str] = []
    for error in Draft7Validator(schema).iter_errors(dict(properties)):
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        if error.validator == "type":
            text = f"Invalid type. Expected: {error.validator_value}, given: {_json_type(error.instance)}"
        else:
            text = error.message
        errors.append(f"{policy.name}: {where}: {text}")
    return errors


def reconcile_policy_config(policies: list[PolicyInfo], document: Mapping[str, Any] | None) -> dict[str, PolicyConfig]:
    """config.go ReconcilePolicyPackConfig plus analyzer_plugin.go Configure's level check.

    Returns what Configure sends: policy name -> level and properties, unknown names and `all`
    included. Raises PolicyConfigRejected where the CLI stops the run.
    """
    given = parse_policy_config(document or {})
    result = {
        p.name: PolicyConfig(p.level, {k: v["default"] for k, v in p.properties.items() if "default" in v} or None)
        for p in policies
    }
    everything = given.get("all")
    if everything is not None and everything.level in LEVELS:
        for name, entry in result.items():
            result[name] = PolicyConfig(everything.level, entry.properties)
    for name, entry in given.items():
        current = result.get(name, PolicyConfig("", None))
        level = entry.level if entry.level in LEVELS else current.level
        properties = current.properties
        if entry.properties:
            properties = {**(properties or {}), **entry.properties}
        result[name] = PolicyConfig(level, properties)
    errors = [error for p in policies for error in _type_errors(p, result[p.name].properties or {})]
    if errors:
        raise PolicyConfigRejected("validating policy config: " + "; ".join(sorted(errors)))
    for name, entry in result.items():
        if entry.level not in LEVELS:
            raise PolicyConfigRejected(f'configuring policy pack: invalid enforcement level "{entry.level}" ({name})')
    return result


def load_policy_config_file(text: str) -> dict[str, Any]:
    """A `--policy-pack-config` file's document (name -> level string or object)."""
    document = json.loads(text) if text.strip() else {}
    if not isinstance(document, dict):
        raise PolicyConfigRejected("the policy config file must hold a JSON object")
    return document
