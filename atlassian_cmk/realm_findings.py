"""Findings against the realm as a whole, and the message that reports them on every key.

Atlassian needs every region's key or none. A rule that protects the realm as a whole (no split,
no revocation during re-encryption, deployed keys intact, key policy keeps access, the enrolled
identity) must therefore hold every key of the realm back when any region is unsafe: `pulumi up`
refuses only the resource whose own check failed and lets the other regions' steps run, which is
exactly the split such a rule exists to prevent. A rule returns `RealmFinding`s; the policy pack
(policies/guardrails/framework.py, `realm_policy`) reports `realm_message` on every key.

The message is read once, under pressure, in a terminal or a pull request: one sentence per
problem, a cause that several regions share said once with those regions, the advice once, and
at most `MESSAGE_LIMIT` characters for the realm's usual findings (docs/policy-pack.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

MESSAGE_LIMIT: Final = 400
"""The longest violation message (the text after the policy's description, which pulumi_policy sends
first) a realm rule writes for one cause per region, advice included. AWS error texts inside a cause
are summarised (`aws.kms_reads.summarize_message`); the tests hold every realm rule to it."""


@dataclass(frozen=True)
class RealmFinding:
    """One reason the realm must not change now.

    `cause`: one sentence without the final period, e.g. "the deployed key is PendingDeletion".
    `region`: the region at cause, or None when the cause is the realm's (its configuration, or
    every region alike); a realm-wide cause is said once, not once per region, and a cause several
    regions share is said once naming them.
    """

    cause: str
    region: str | None = None

    def sentence(self) -> str:
        return f"{self.region}: {self.cause}" if self.region else self.cause


_PLAIN_WORD: Final = re.compile(r"[a-z]+(?:-[a-z]+)*")
"""A first word that may be capitalised ("the", "re-encryption"); never "us-east-1:" or "atlassian-cmk:x"."""


def _as_sentence(text: str) -> str:
    """`text` ending in a period; a first word of plain letters ("the") capitalised, never a region,
    a config key or a command ("us-east-1: ...", "atlassian-cmk:enabled ...")."""
    text = text.strip().rstrip(".;")
    if _PLAIN_WORD.fullmatch(text.split(" ", 1)[0]):
        text = text[:1].upper() + text[1:]
    return text + "."


def cause_sentences(findings: Iterable[RealmFinding]) -> list[str]:
    """Each distinct cause once, as a sentence: regions sharing a cause are named together
    ("us-east-1 and us-west-2: ..."), in the order the causes were first found."""
    regions_by_cause: dict[str, list[str]] = {}
    for finding in findings:
        regions = regions_by_cause.setdefault(finding.cause, [])
        if finding.region and finding.region not in regions:
            regions.append(finding.region)
    return [
        _as_sentence(f"{' and '.join(regions)}: {cause}" if regions else cause)
        for cause, regions in regions_by_cause.items()
    ]


def realm_message(regions: Sequence[str], findings: Iterable[RealmFinding], advice: str = "") -> str:
    """The violation every key of the realm carries: why it is held back, each cause once, the advice once.

    The key itself is not named: the Pulumi CLI prints the resource beside each violation
    ("- [mandatory]  <policy>  (aws:kms/key:Key: cmk-us-east-1)", then the description, then this
    message; the engine sends the violation's URN, pulumi/pulumi-policy `ReportViolation`), and its
    region is in the realm's list. `regions`: the realm's regions; `advice`: one
    sentence (or "") on what to do, said after the causes and dropped from them if a cause repeats it.
    """
    held = f"Held back with the realm's keys ({', '.join(regions)}) so no region changes alone."
    said = {held}
    sentences = [held]
    advice_sentence = _as_sentence(advice) if advice else ""
    for sentence in cause_sentences(findings):
        if sentence not in said and sentence != advice_sentence:
            said.add(sentence)
            sentences.append(sentence)
    if advice_sentence:
        sentences.append(advice_sentence)
    return " ".join(sentences)
