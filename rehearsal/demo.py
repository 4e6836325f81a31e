"""`make demo`: the main job, end to end, on an embedded AWS emulator. No account, no credentials.

1. Enrollment: the stack's keys created as the first `pulumi up` creates them, then
   `cmkctl enroll --write-config` checks them and records their ARNs as `enrolledKeys`.
2. `cmkctl drill`: throwaway keys shaped like the component's; enroll, status, a revoke refused during
   re-encryption, revoke, status with deadlines, restore, status; timed.
3. The review loop: two pull requests to the shipped Pulumi.prod.yaml judged as CI judges them
   (program under Pulumi mocks, the policy pack over its wire protocol, the deployed keys in the
   emulator): a revocation while re-encryption is live (blocked), then after it completed (allowed).
4. A whole re-encryption (`rehearsal.reencryption`), each step a pull request judged the same way and
   applied to the emulator when allowed: prepare, `cmkctl enroll --next`, in-progress with a revocation
   refused, complete and promote in one change refused, complete, promote, retire.
5. `cmkctl drill --reencryption`: the same re-encryption done by the operator's own commands on throwaway
   drill keys (prepare, enroll --next, a revoke refused in progress, complete, promote, retire; status at
   each step), what a team runs in its sandbox account.

The emulator and the pack processes are stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from atlassian_cmk.aws.kms_reads import shared_client_factory
from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.cli.drill import run_drill
from atlassian_cmk.cli.main import main as cmkctl
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REENCRYPTION
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.emulator import emulator_env, moto_server
from rehearsal.pull_request import Rehearsal, load_policy_config, rehearse_pull_request
from rehearsal.reencryption import rehearse_reencryption

ROOT = Path(__file__).resolve().parents[1]
REVOCATION = "  atlassian-cmk:revocation:\n    reason: Suspected breach of encrypted data\n    ticket: SEC-1234\n"


def heading(text: str) -> None:
    print(f"\n{'=' * 78}\n{text}\n{'=' * 78}", flush=True)


def show(title: str, result: Rehearsal) -> None:
    print(f"\n--- {title}", flush=True)
    print(result.summary())
    if result.run is not None and result.run.warnings:
        print("\npulumi preview would warn:")
        print("\n".join(f"  | {line}" for line in result.run.warnings[0].splitlines()))


def enrollment(project: Path) -> tuple[str, dict[str, str]]:
    """Create the stack's keys (re-encryption in progress, as the review loop needs), then enroll them."""
    prod = (ROOT / "Pulumi.prod.yaml").read_text()
    in_progress = prod.replace("    status: none", "    status: in-progress\n    ticket: PS-77")
    (project / "Pulumi.prod.yaml").write_text(in_progress)
    print("  ... the first `pulumi up` creates the keys (here: the same shapes, straight into the emulator)")
    keys = create_key_pair(parse_stack_config(raw_config_from_text(in_progress)), "prod")
    for key in keys:
        print(f"      {key.region}: {key.arn}")
    print("  ... cmkctl enroll --write-config", flush=True)
    code = cmkctl(["enroll", "--write-config", "--project-dir", str(project)])
    if code != 0:
        raise SystemExit(f"cmkctl enroll failed with exit {code}")
    return (project / "Pulumi.prod.yaml").read_text(), {key.region: key.arn for key in keys}


def review_loop(endpoint: str, enrolled: str, arns: dict[str, str]) -> bool:
    """Two revocation pull requests against enrolled keys deployed with re-encryption running."""
    in_progress = enrolled
    complete = enrolled.replace("    status: in-progress", "    status: complete")
    revoke_now = in_progress.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + REVOCATION
    policy_config = load_policy_config((ROOT / "policies" / "policy-config.json").read_text())
    env = emulator_env(endpoint)
    print(
        "  ... Atlassian's key-policy statement in Pulumi.prod.yaml is a labelled SAMPLE"
        "\n      (principal in 279766244153); a real stack pastes Atlassian's own",
        flush=True,
    )
    factory = shared_client_factory()

    print("  ... pull request 1: revoke now (program under mocks -> policy pack over gRPC)", flush=True)
    blocked = rehearse_pull_request(in_progress, revoke_now, env=env, policy_config=policy_config, deployed_arns=arns)
    show("Pull request 1: enabled: false while re-encryption is in progress", blocked)

    print("\n  ... applying 'reencryption.status: complete' (its own reviewed change)", flush=True)
    for region, arn in arns.items():
        factory("kms", region).tag_resource(
            KeyId=arn.rsplit("/", 1)[1], Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": "complete"}]
        )
    revoke_later = complete.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + REVOCATION
    print("  ... pull request 2: revoke after re-encryption completed", flush=True)
    allowed = rehearse_pull_request(complete, revoke_later, env=env, policy_config=policy_config, deployed_arns=arns)
    show("Pull request 2: enabled: false after re-encryption completed", allowed)
    print("\nThe reviewer's summary CI posts on pull request 2 (`cmkctl impact`), first lines:")
    print("\n".join(f"  | {line}" for line in allowed.review.to_markdown().splitlines()[:14]))
    return (
        blocked.blocked and blocked.blocking_policies() == ["no-revocation-during-reencryption"] and not allowed.blocked
    )


def main() -> int:
    started = time.perf_counter()
    try:
        with moto_server() as endpoint:
            os.environ.update(emulator_env(endpoint))
            heading(f"1. Enrollment against the AWS emulator at {endpoint}: keys created, cmkctl enroll")
            with tempfile.TemporaryDirectory(prefix="cmk-demo-") as folder:
                enrolled, arns = enrollment(Path(folder))
            heading("2. Revocation drill (cmkctl drill)")
            drill = run_drill(cli=cmkctl, realm="us")
            heading("3. The review loop: revocation pull requests judged by the guardrails")
            loop_ok = review_loop(endpoint, enrolled, arns)
            heading("4. Re-encryption, step by step: each change a pull request, applied when allowed")
            with tempfile.TemporaryDirectory(prefix="cmk-demo-reencryption-") as folder:
                # Its own stack, so its keys and aliases never meet section 1's.
                project = Path(folder)
                (project / "Pulumi.reencrypt.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
                walk = rehearse_reencryption(
                    project, endpoint=endpoint, client_factory=shared_client_factory(), stack="reencrypt"
                )
            heading("5. Re-encryption drill (cmkctl drill --reencryption): the operator's commands on drill keys")
            reencryption_drill = run_drill(cli=cmkctl, realm="us", reencryption=True)
    except KeyboardInterrupt:
        print("\nInterrupted: the emulator and the policy pack are stopped; nothing was left running.")
        return 130
    passed = drill.passed and loop_ok and walk.passed and reencryption_drill.passed
    verdict = "PASS" if passed else "FAIL"
    heading(f"Demo {verdict} in {time.perf_counter() - started:.1f} s (emulator stopped)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
