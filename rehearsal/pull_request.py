"""Rehearse a pull request to `Pulumi.<stack>.yaml` as CI would judge it.

What CI does with the real CLI (`pulumi preview --policy-pack policies` and `cmkctl impact`), done
here with the real program under Pulumi's mock runtime, the real policy pack over its gRPC wire
protocol, and the deployed state wherever AWS_ENDPOINT_URL points (moto in tests and the demo).
The Pulumi engine is the one part not run: resources' inputs stand in for what it would send.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.display import fit_lines
from atlassian_cmk.review import Review, invalid_review, review_change
from atlassian_cmk.stack_file import StackFileError, check_text, checked_stack_config, engine_config
from rehearsal.policy_pack_client import (
    UNKNOWN_STRING,
    StepVerdicts,
    Violation,
    analyze_program_run,
    analyzer_resource,
    judge_each_step,
    start_policy_pack,
    with_outputs,
)
from rehearsal.program_run import ProgramRun, run_program

SUMMARY_WIDTH = 100
"""Longest line of a summary: the demo prints it to a terminal."""


@dataclass
class Rehearsal:
    """The verdict on one pull request: the preview's warnings, the guardrails' violations, the review."""

    review: Review
    run: ProgramRun | None = None
    violations: list[Violation] = field(default_factory=list)
    steps: StepVerdicts | None = None
    """Each resource's Analyze on its own: what `pulumi up` would refuse and let proceed."""

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "advisory"]

    @property
    def preview_failed(self) -> bool:
        return self.run is None or self.run.error is not None

    @property
    def impact_failed(self) -> bool:
        """CI's `cmkctl impact` check: it fails on a stack file people would misread (a text the engine types,
        exit 64) and on a change it refuses or that is not declared (exit 4: `Review.check_fails`)."""
        return not self.review.valid or self.review.check_fails

    @property
    def blocked(self) -> bool:
        """What CI answers: an invalid stack, a failed impact check or any mandatory violation fails it."""
        return self.preview_failed or self.impact_failed or bool(self.mandatory)

    def keys_updated_alone(self) -> list[str]:
        """CMK keys `pulumi up` would update while another key of the stack is refused: a split. [] is safe."""
        if self.run is None or self.steps is None:
            return []
        keys = {k.urn: k.name for k in self.run.kms_keys}
        refused = self.steps.refused() & set(keys)
        return sorted(keys[u] for u in set(keys) - refused) if refused else []

    def blocking_policies(self) -> list[str]:
        return sorted({v.policy for v in self.mandatory})

    def summary(self) -> str:
        """A few lines a terminal or a pull request shows, each at most SUMMARY_WIDTH characters (ARNs and
        URLs are never broken)."""
        if self.run is None or self.run.error is not None:
            return "BLOCKED: the program stops on the stack configuration:\n" + "\n".join(
                f"  {e}" for e in self.review.errors or [str(self.run.error if self.run else "")]
            )
        lines = [f"{'BLOCKED' if self.blocked else 'ALLOWED'}: {len(self.mandatory)} mandatory violation(s)"]
        if self.impact_failed:
            lines.append("  the impact check refuses the stack file:")
            failing = [c.summary for c in self.review.changes if c.blocks or c.summary in self.review.refused]
            lines.extend(fit_lines([f"    {line}" for line in [*self.review.errors, *failing]], SUMMARY_WIDTH))
        for violation in self.mandatory + self.advisory:
            # pulumi_policy sends the policy's description, then the violation's own message.
            body = " ".join(violation.message.splitlines()[1:]) or violation.message
            resource = violation.urn.rsplit("::", 1)[-1] if violation.urn else "stack"
            text = f"[{violation.level}] {violation.policy} ({resource}): {body}"
            lines.extend(
                textwrap.wrap(
                    text,
                    SUMMARY_WIDTH,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        return "\n".join(lines)


def rehearse_pull_request(
    base_text: str | None,
    head_text: str,
    *,
    env: Mapping[str, str],
    stack: str = "prod",
    policy_config: Mapping[str, Mapping[str, Any]] | None = None,
    base_project: str | None = None,
    head_project: str | None = None,
    deployed_arns: Mapping[str, str] | None = None,
    deployed_keys: Mapping[str, str] | None = None,
) -> Rehearsal:
    """Judge the change from `base_text` to `head_text` (stack-file texts, with the `Pulumi.yaml`
    texts of each side) as CI would: `cmkctl impact` on the files, the program and the pack on
    what the engine reads from them (`stack_file.engine_config`).

    `deployed_arns` (region -> ARN) is the engine's state of the deployed keys: AnalyzeStack then
    sees each key resource's real `arn` output, as it would for a key the update keeps.
    `deployed_keys` (key resource name -> ARN, every generation; `rehearsal.apply.DeployedStack.arns`)
    says the same for named resources, and a key resource it does not hold is one the plan creates:
    its `arn` is unknown in the preview, as the engine sends it.
    """
    source = f"Pulumi.{stack}.yaml"
    try:
        engine = engine_config(head_text, head_project, stack=stack, source=source)
    except StackFileError as error:
        return Rehearsal(review=invalid_review([str(error)], stack, "base"))
    raw = engine.values
    try:
        head = checked_stack_config(engine, source)
    except StackFileError as error:
        review = invalid_review([str(error)], stack, "base")
        return Rehearsal(review=review, run=run_program(raw, stack=stack, secret_keys=engine.secret_keys))
    except StackConfigErrors as errors:
        review = invalid_review([str(e) for e in errors.errors], stack, "base")
        run = run_program(raw, stack=stack, secret_keys=engine.secret_keys)
        if run.error is not None:
            return Rehearsal(review=review, run=run)
        with start_policy_pack(raw, env, stack) as client:
            client.configure(policy_config)
            violations = analyze_program_run(client, run)
        return Rehearsal(review=review, run=run, violations=violations)
    base = None
    if base_text is not None:
        try:
            base = check_text(base_text, f"{source} at base", base_project, stack)
        except (StackFileError, StackConfigErrors):
            base = None
    review = review_change(base, head, stack, "base")
    run = run_program(raw, stack=stack, secret_keys=engine.secret_keys)
    if run.error is not None:
        return Rehearsal(review=review, run=run)
    with start_policy_pack(raw, env, stack) as client:
        client.configure(policy_config)
        steps = judge_each_step(client, run)
        outputs = {f"cmk-{region}": {"arn": arn} for region, arn in (deployed_arns or {}).items()}
        if deployed_keys is not None:
            outputs.update({k.name: {"arn": deployed_keys.get(k.name, UNKNOWN_STRING)} for k in run.kms_keys})
        after = client.analyze_stack(
            analyzer_resource(r, properties=with_outputs(r.outputs, outputs[r.name]) if r.name in outputs else None)
            for r in run.resources
        )
    violations = [v for found in steps.violations.values() for v in found] + after
    return Rehearsal(review=review, run=run, violations=violations, steps=steps)


def load_policy_config(text: str) -> dict[str, dict[str, Any]]:
    """A `--policy-pack-config` file: a policy name maps to a level string or an object."""
    document = json.loads(text)
    return {name: value if isinstance(value, dict) else {"enforcementLevel": value} for name, value in document.items()}
