"""Findings against the realm as a whole, and the one sentence that reports them on every key.

Atlassian needs every region's key or none. A rule that protects the realm as a whole (no split,
no revocation during re-encryption, deployed keys intact, key policy keeps access, the enrolled
identity) must therefore hold every key of the realm back when any region is unsafe: `pulumi up`
refuses only the resource whose own check failed and lets the other regions' steps run, which is
exactly the split such a rule exists to prevent. A rule returns `RealmFinding`s; the policy pack
(policies/guardrails/framework.py, `realm_policy`) reports `realm_message` on every key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RealmFinding:
    """One reason the realm must not change now.

    `cause`: one sentence without the final period, e.g. "the deployed key (arn) is PendingDeletion".
    `region`: the region at cause, or None when the cause is the realm's (its configuration, or
    every region alike); a realm-wide cause is said once, not once per region.
    """

    cause: str
    region: str | None = None

    def sentence(self) -> str:
        return f"{self.region}: {self.cause}" if self.region else self.cause


def realm_message(key_label: str, regions: Sequence[str], findings: Iterable[RealmFinding], advice: str = "") -> str:
    """The violation every key of the realm carries: the causes, each once, then the advice once.

    `key_label`: how the key is named ("cmk-us-east-1 (us-east-1)"); `regions`: the realm's
    regions; `advice`: one sentence (or "") on what to do, said after the causes.
    """
    causes = list(dict.fromkeys(finding.sentence() for finding in findings))
    held = f"{key_label} is held back with every key of the realm ({', '.join(regions)}) so no region changes alone"
    text = f"{held}: {'; '.join(causes)}."
    return f"{text} {advice}" if advice else text
