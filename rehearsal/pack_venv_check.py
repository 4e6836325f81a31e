"""Run the policy pack from its own virtualenv, as `pulumi preview --policy-pack policies` does.

The CLI creates `policies/venv` from `policies/requirements.txt`, without this project installed,
and starts `__main__.py` from `policies/`. This check builds such a virtualenv (a temporary one),
starts the pack with its python, and has it judge a revocation during live re-encryption against
keys held in the emulator. Slow (it installs packages), so it is `make check-pack-venv`, not part
of `make test`. Exit 0 when the pack answers as in the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from atlassian_cmk.aws.kms_reads import shared_client_factory
from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REENCRYPTION
from rehearsal import policy_pack_client
from rehearsal.emulator import emulator_env, moto_server
from rehearsal.program_run import run_program
from rehearsal.sample_atlassian_policy import sample_config_value

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONFIG = {
    "atlassian-cmk:realm": "us",
    "atlassian-cmk:enabled": "true",
    "atlassian-cmk:contextTag": "AcmeCMK",
    "atlassian-cmk:atlassianKeyPolicy": sample_config_value(),
}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pack-venv-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        requirements = PROJECT_DIR / "policies" / "requirements.txt"
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)], check=True)
        python = str(venv / "bin" / "python")
        if subprocess.run([python, "-c", "import atlassian_cmk"], capture_output=True, cwd=folder).returncode == 0:
            print("the pack's virtualenv must not have the project installed", file=sys.stderr)
            return 1
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
            with policy_pack_client.start_policy_pack(revoke, env, python=python) as client:
                client.configure({})
                violations = policy_pack_client.analyze_program_run(client, run)
    blocking = sorted({v.policy for v in violations if v.level == "mandatory"})
    print(f"pack from its own virtualenv: {len(client.info.policies)} policies; blocking: {blocking}")
    return 0 if blocking == ["no-revocation-during-reencryption"] else 1


if __name__ == "__main__":
    sys.exit(main())
