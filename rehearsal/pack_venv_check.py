"""Run the policy pack from its own virtualenv, as `pulumi preview --policy-pack policies` does.

`pulumi install`, run in policies/, creates `policies/venv` from `policies/requirements.txt`
(pulumi/pulumi pkg/cmd/pulumi/install/install.go: a PulumiPolicy.yaml below the project's folder
selects the pack's dependencies); `pulumi preview`/`up` create nothing. The CLI then starts
`venv/bin/python -u -m pulumi.policy <engine address> <absolute pack dir>` in the pack folder
(`policy_pack_client.pack_command`). This check (`make check-pack-venv`) builds `policies/venv`
from `policies/requirements.txt` alone, starts the pack with that command and the CLI's
environment, and has it judge a revocation during live re-encryption against keys held in the
emulator. Slow (it installs packages), so not part of `make test`. Exit 0 when the pack blocks it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from atlassian_cmk.aws.kms_reads import shared_client_factory
from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REENCRYPTION
from rehearsal import policy_pack_client
from rehearsal.emulator import emulator_env, moto_server
from rehearsal.program_run import ACCOUNT_ID, run_program
from rehearsal.published_pack import PACK_DIR, build_pack_venv
from rehearsal.sample_atlassian_policy import sample_config_value

CONFIG = {
    "atlassian-cmk:realm": "us",
    "atlassian-cmk:enabled": "true",
    "atlassian-cmk:contextTag": "AcmeCMK",
    "atlassian-cmk:atlassianKeyPolicy": sample_config_value(),
    # Required (`config.apply_role_missing`); in the emulator's account, as the shipped stack's sample.
    "atlassian-cmk:applyRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/cmk-apply",
}


def judge_reencryption_revocation(pack_dir: Path, python: str) -> tuple[list[str], int]:
    """Start the pack in `pack_dir` with `python` as the CLI does; judge a revocation during re-encryption.

    Returns (the mandatory policies that block it, the number of policies the pack serves).
    Raises RuntimeError when the pack's interpreter can import the project from elsewhere.
    """
    probe = subprocess.run([python, "-c", "import components"], capture_output=True, cwd=pack_dir, check=False)
    if probe.returncode == 0:
        raise RuntimeError("the pack's virtualenv must not have the project installed")
    revoke = {
        **CONFIG,
        "atlassian-cmk:enabled": "false",
        "atlassian-cmk:revocation": '{"reason": "Suspected breach", "ticket": "SEC-1"}',
    }
    run = run_program(revoke)
    with moto_server() as endpoint:
        env = emulator_env(endpoint)
        os.environ.update(env)
        factory = shared_client_factory()
        keys = create_key_pair(parse_stack_config(CONFIG), "prod", client_factory=factory)
        for key in keys:
            tag = {"TagKey": TAG_REENCRYPTION, "TagValue": "in-progress"}
            factory("kms", key.region).tag_resource(KeyId=key.key_id, Tags=[tag])
        with policy_pack_client.start_policy_pack(revoke, env, pack_dir=pack_dir, python=python) as client:
            client.configure(policy_pack_client_config())
            verdicts = policy_pack_client.judge_each_step(client, run)
            served = len(client.info.policies)
    refused = verdicts.refused()
    if {k.urn for k in run.kms_keys} - refused:
        return [], served  # a key would be updated alone
    blocking = sorted({v.policy for found in verdicts.violations.values() for v in found if v.level == "mandatory"})
    return blocking, served


def policy_pack_client_config() -> dict[str, object]:
    """CI's policy config file (policies/policy-config.json), as the CLI reads it."""
    from rehearsal.policy_config import load_policy_config_file

    return load_policy_config_file((PACK_DIR / "policy-config.json").read_text())


def main() -> int:
    started = time.monotonic()
    python = build_pack_venv(PACK_DIR)
    blocking, served = judge_reencryption_revocation(PACK_DIR, python)
    print(
        f"pack from policies/venv: {served} policies; blocking: {blocking}; {time.monotonic() - started:.0f} s "
        "(including the install)"
    )
    return 0 if blocking == ["no-revocation-during-reencryption"] else 1


if __name__ == "__main__":
    sys.exit(main())
