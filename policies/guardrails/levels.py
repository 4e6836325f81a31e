"""guardrail-levels-intact: the policy config may not turn a mandatory guardrail down.

The CLI reconciles `--policy-pack-config` (or a policy group's config) before the pack runs
(pulumi/pulumi pkg/resource/analyzer/config.go, ReconcilePolicyPackConfig): `"all": "advisory"`
sets every policy's level, `{"<policy>": {"enforcementLevel": "disabled"}}` turns one off, and an
entry under a name no policy has (a misspelling) is kept and passed on. What it validates is only
the JSON types of the policies' properties. The result reaches the pack in the `Configure` call,
every policy with its level (pkg/resource/plugin/analyzer_plugin.go, Configure), and pulumi_policy
then skips a disabled policy and reports an advisory one without blocking
(pulumi-policy sdk/python/lib/pulumi_policy/policy.py, _PolicyAnalyzerServicer.Configure/Analyze).

So the pack records the levels it is configured with, and this policy, whose own level the pack
pins to mandatory whatever the config says, fails every CMK key when the config lowers a
mandatory guardrail, uses `all` or names a policy the pack does not have. A guardrail is lowered
on purpose only by naming it in this policy's `allowLowered`, in a reviewed change of the config
file (CODEOWNERS: security owners); CI's config names none (tests/test_policy_config.py).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, PolicyResourceOptions
from pulumi_policy import policy as pulumi_policy_module

from atlassian_cmk import guardrail_catalog as catalog
from atlassian_cmk.config import shorten_repr

from .framework import ResourceAndStackPolicy, StackFinding
from .resources import CmkKey
from .settings import LEVELS_POLICY

_LEVEL_NAMES: Final = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_BLOCKING: Final = frozenset({"mandatory", "remediate"})  # pulumi_policy runs remediate as mandatory
DESCRIPTION = (
    "Checks whether the policy config keeps every mandatory guardrail mandatory, names only this pack's "
    "policies and does not use `all`."
)


class ConfiguredLevels:
    """The levels of the last `Configure` call, by policy name (empty until the engine configures)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._levels: Mapping[str, str] = MappingProxyType({})

    def record(self, levels: Mapping[str, str]) -> None:
        with self._lock:
            self._levels = MappingProxyType(dict(levels))

    def get(self) -> Mapping[str, str]:
        with self._lock:
            return self._levels


CONFIGURED_LEVELS: Final = ConfiguredLevels()
"""The pack process's record; the servicer below writes it, this policy reads it."""


def level_problems(levels: Mapping[str, str], allow_lowered: Collection[str] = ()) -> list[str]:
    """One sentence per way the configured levels weaken the pack; [] when they do not.

    `levels`: policy name -> configured level ("mandatory", "advisory", "remediate", "disabled"),
    as reconciled by the CLI (names that are no policy of the pack included). `allow_lowered`:
    the mandatory guardrails the config names in this policy's `allowLowered` (a reviewed choice).
    """
    built_in = {guardrail.name: guardrail.enforcement for guardrail in catalog.GUARDRAILS}
    problems: list[str] = []
    for name, level in sorted(levels.items()):
        if name == LEVELS_POLICY:
            if level not in _BLOCKING:
                problems.append(f"the policy config sets {LEVELS_POLICY} to {level}; it stays mandatory")
        elif name == "all":
            problems.append(
                f'the policy config uses "all" ({level}), which sets every guardrail\'s level at once; name each '
                "policy instead"
            )
        elif name not in built_in:
            problems.append(
                f"the policy config names {shorten_repr(name)}, which is no policy of {catalog.PACK_NAME} (misspelt?); "
                f"its settings are ignored; policies: {', '.join(sorted(built_in))}"
            )
        elif built_in[name] == "mandatory" and level not in _BLOCKING and name not in allow_lowered:
            problems.append(
                f"the policy config lowers mandatory guardrail {name} to {level} without naming it in "
                f"{LEVELS_POLICY}.allowLowered"
            )
    return problems


def _message(problems: list[str]) -> str:
    return (
        "; ".join(problems)
        + ". Every CMK key is blocked until the policy config keeps the mandatory guardrails mandatory."
    )


def check_key(_key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    problems = level_problems(CONFIGURED_LEVELS.get(), settings["allowLowered"])
    if problems:
        yield _message(problems)


def check_stack(_keys: list[CmkKey], settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    problems = level_problems(CONFIGURED_LEVELS.get(), settings["allowLowered"])
    if problems:
        yield _message(problems), None


def policy() -> ResourceAndStackPolicy:
    return ResourceAndStackPolicy(LEVELS_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check_key, check_stack)


class LevelRecordingServicer(pulumi_policy_module._PolicyAnalyzerServicer):
    """pulumi_policy's analyzer servicer, recording the configured levels and pinning this policy's.

    pulumi_policy keeps the configured levels private; subclassing its servicer (pinned
    pulumi-policy==1.21.0; tests/test_policy_config.py fails if the hook stops being called) is the
    one place the pack can see them.
    """

    def Configure(self, request: analyzer_pb2.ConfigureAnalyzerRequest, context: Any) -> Any:
        levels = {name: _LEVEL_NAMES.get(c.enforcementLevel, "unknown") for name, c in request.policyConfig.items()}
        CONFIGURED_LEVELS.record(levels)
        pinned = analyzer_pb2.ConfigureAnalyzerRequest()
        pinned.CopyFrom(request)
        pinned.policyConfig[LEVELS_POLICY].enforcementLevel = analyzer_pb2.MANDATORY
        return super().Configure(pinned, context)  # type: ignore[no-untyped-call]


def install_level_recording() -> None:
    """Make PolicyPack serve with LevelRecordingServicer (call before constructing the PolicyPack)."""
    pulumi_policy_module._PolicyAnalyzerServicer = LevelRecordingServicer  # type: ignore[misc]
