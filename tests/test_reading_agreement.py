"""cmkctl, `cmkctl impact` and the program (under mocks, fed by the reader) agree on every spelling.

Each case is a pull request against the shipped `Pulumi.prod.yaml` in a real Git repository. The
program runs on what the engine would hand it (`stack_file.load_engine_config`); cmkctl and impact
read the same files. Where they accept a value they read what the program reads; where the
engine would silently change a text, they refuse it with the quote advice (the rehearsed pull
requests in test_gitops_rehearsal.py add the policy pack).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.review import review_stack_change
from atlassian_cmk.stack_file import load_engine_config, load_stack_config
from rehearsal.program_run import run_program

ROOT = Path(__file__).resolve().parents[1]
PROD = (ROOT / "Pulumi.prod.yaml").read_text()
PROJECT = (ROOT / "Pulumi.yaml").read_text()
REVOCATION = "  atlassian-cmk:revocation:\n    reason: Suspected breach\n    ticket: SEC-1234\n"


@dataclass(frozen=True)
class Case:
    stack: str
    project: str = PROJECT
    refused: str | None = None  # the line cmkctl and impact say instead of reading it


def revoked(spelling: str) -> str:
    return PROD.replace("atlassian-cmk:enabled: true", f"atlassian-cmk:enabled: {spelling}") + REVOCATION


CASES = {
    "enabled FALSE": Case(revoked("FALSE")),
    "enabled False": Case(revoked("False")),
    "enabled quoted": Case(revoked('"false"')),
    "enabled TRUE": Case(PROD.replace("enabled: true", "enabled: TRUE")),
    "multiRegion from Pulumi.yaml": Case(
        PROD.replace("  atlassian-cmk:multiRegion: false\n", ""),
        PROJECT + "config:\n  multiRegion: {type: boolean, default: true}\n",
    ),
    "contextTag from Pulumi.yaml": Case(
        PROD.replace("  atlassian-cmk:contextTag: AcmeCMK\n", ""),
        PROJECT + "config:\n  contextTag: {type: string, default: FromProject}\n",
    ),
    "contextTag octal": Case(
        PROD.replace("contextTag: AcmeCMK", "contextTag: 0012345"),
        refused="atlassian-cmk:contextTag: 0012345 is read by Pulumi as the number 5349; quote it: '0012345'",
    ),
    "contextTag float": Case(
        PROD.replace("contextTag: AcmeCMK", "contextTag: 1e3"),
        refused="atlassian-cmk:contextTag: 1e3 is read by Pulumi as the number 1000; quote it: '1e3'",
    ),
    "ticket timestamp": Case(
        revoked("false").replace("ticket: SEC-1234", "ticket: 2024-01-01"),
        refused="atlassian-cmk:revocation.ticket: 2024-01-01 is read by Pulumi as the timestamp "
        "2024-01-01 00:00:00 +0000 UTC; quote it: '2024-01-01'",
    ),
    "ticket octal": Case(
        revoked("false").replace("ticket: SEC-1234", "ticket: 0042"),
        refused="atlassian-cmk:revocation.ticket: 0042 is read by Pulumi as the number 34; quote it: '0042'",
    ),
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "ci@example.com")
    git(tmp_path, "config", "user.name", "ci")
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD)
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    git(tmp_path, "add", "Pulumi.prod.yaml", "Pulumi.yaml")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_cmkctl_impact_and_the_program_agree(name: str, repo: Path) -> None:
    case = CASES[name]
    (repo / "Pulumi.prod.yaml").write_text(case.stack)
    (repo / "Pulumi.yaml").write_text(case.project)

    engine = load_engine_config(repo, "prod")
    run = run_program(engine.values, secret_keys=engine.secret_keys)
    # Where cmkctl refuses, the program may run on the changed text (contextTag 1000) or refuse it in
    # its own words (a ticket with spaces); either way cmkctl and impact must refuse.
    assert run.error is None or case.refused is not None, run.error
    program_enabled = {key.inputs.get("isEnabled", key.inputs.get("enabled")) for key in run.kms_keys}
    program_multi_region = {key.inputs.get("multiRegion") for key in run.of_type("aws:kms/key:Key")}
    review = review_stack_change(repo, "prod", "main")

    if case.refused is not None:
        with pytest.raises(StackConfigErrors) as caught:
            load_stack_config(repo, "prod")
        assert case.refused in [str(e).split(" (", 1)[0] for e in caught.value.errors]
        assert not review.valid and any(error.startswith(case.refused) for error in review.errors)
        return

    config = load_stack_config(repo, "prod")
    assert program_enabled == {config.enabled}
    assert program_multi_region == {config.multi_region}
    # Atlassian's statements go in verbatim; the context tag reaches the policy only through their
    # encryption-context conditions, which the program checks against it (it ran, so they agree).
    assert all(
        json.loads(key.inputs["policy"])["Statement"][-len(config.atlassian_key_policy) :]
        == list(config.atlassian_key_policy)
        for key in run.kms_keys
    )
    assert review.valid and review.revokes == (not config.enabled)
    changed = {change.kind for change in review.changes}
    assert ("multi-region" in changed) == config.multi_region
