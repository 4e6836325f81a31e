"""The GitOps loop's files: workflows valid and wired as designed, IAM least privilege, CODEOWNERS."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pathspec
import pytest
from parliament import analyze_policy_string
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
IAM_DOCUMENTS = sorted((ROOT / "iam").rglob("*.json"))
FORBIDDEN = ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy")

# Parliament findings we accept, each with its reason.
ACCEPTED_FINDINGS = {
    # Before enrollment only: CreateKey with Tags needs kms:TagResource on "*" (the key does not
    # exist yet); the statement is bound to aws:RequestTag/atlassian-cmk:stack.
    ("apply-role.json", "RESOURCE_STAR"),
    # Before enrollment (and for an unrecorded next generation) CreateAlias/UpdateAlias are split:
    # the alias side by name, the key side by the stack's tag in its own statement; parliament wants
    # both resource types in one statement, which would need IfExists and admit untagged keys.
    ("apply-role.json", "RESOURCE_MISMATCH"),
}


def load_workflow(name: str) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load((ROOT / ".github" / "workflows" / name).read_text())
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def uses(workflow: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(workflow) if str(step.get("uses", "")).startswith(action)]


def test_there_are_three_workflows() -> None:
    assert [w.name for w in WORKFLOWS] == ["apply.yml", "drift.yml", "preview.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_actions_schema(workflow: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_use_oidc_never_long_lived_keys(workflow: Path) -> None:
    document = load_workflow(workflow.name)
    text = workflow.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    (credentials,) = uses(document, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"].startswith("${{ vars.CMK_")
    (job,) = [j for j in document["jobs"].values() if credentials in j["steps"]]
    assert job_permissions(document, job)["id-token"] == "write"


def pulumi_command(workflow: dict[str, Any]) -> dict[str, Any]:
    """The one pulumi/actions step that runs a command (the other only installs the CLI)."""
    (step,) = [s for s in uses(workflow, "pulumi/actions@") if "command" in s.get("with", {})]
    return step


@pytest.mark.parametrize("name", ["preview.yml", "apply.yml"])
def test_the_packs_virtualenv_is_created_before_pulumi_runs(name: str) -> None:
    # pulumi/pulumi pkg/cmd/pulumi/install/install.go: `pulumi install` in the pack's folder (below the
    # project's) installs the pack's requirements into its venv; preview and up create nothing.
    workflow = load_workflow(name)
    order = steps(workflow)
    install_cli = next(i for i, s in enumerate(order) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert "command" not in order[install_cli].get("with", {})
    pack_venv = next(i for i, s in enumerate(order) if s.get("run") == "pulumi install")
    assert order[pack_venv]["working-directory"] == "policies"
    assert install_cli < pack_venv < order.index(pulumi_command(workflow))


@pytest.mark.parametrize("name", ["preview.yml", "apply.yml"])
def test_pulumi_cloud_access_is_oidc_never_a_stored_token(name: str) -> None:
    workflow = load_workflow(name)
    text = (ROOT / ".github" / "workflows" / name).read_text()
    assert "PULUMI_ACCESS_TOKEN" not in text
    (auth,) = uses(workflow, "pulumi/auth-actions@")
    assert auth["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
    order = steps(workflow)
    assert order.index(auth) < order.index(pulumi_command(workflow))


def test_no_secret_reaches_the_pull_requests_own_code() -> None:
    workflow = load_workflow("preview.yml")
    assert all("env" not in job for job in workflow["jobs"].values())
    assert all("secrets." not in json.dumps(value) for value in workflow.get("env", {}).values())
    for step in steps(workflow):
        assert "secrets." not in json.dumps(step), f"step {step.get('name')} uses a secret"


def job_permissions(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """The permissions a job's GITHUB_TOKEN and OIDC requests get: its own, else the workflow's."""
    permissions: dict[str, str] = job.get("permissions", workflow.get("permissions", {}))
    return permissions


PULL_REQUEST_BUILD = ("make ", ".venv/bin/cmkctl", "python -m rehearsal", "pytest")
"""What runs the pull request's own build or tools (as opposed to `pulumi preview`, whose running of the
program and the pack is the point of the credentialed job)."""


def test_the_pull_requests_build_and_tools_never_run_in_a_job_that_can_mint_tokens() -> None:
    # Asserted for preview.yml: the workflow grants nothing by default; every job that runs `make ...`,
    # cmkctl, the rehearsal or pytest has neither `id-token: write` (no AWS or Pulumi OIDC token can be
    # requested from it) nor any write permission, and checks out without persisting the token; the job
    # that may mint tokens runs none of those, its only step of pull-request code being `pulumi preview`
    # (and the installs of pinned requirements before it); the comment job checks out nothing.
    workflow = load_workflow("preview.yml")
    assert workflow["permissions"] == {}
    minting = []
    for name, job in workflow["jobs"].items():
        permissions = job_permissions(workflow, job)
        runs = " ".join(str(step.get("run", "")) for step in job["steps"])
        builds = any(marker in runs for marker in PULL_REQUEST_BUILD)
        if permissions.get("id-token") == "write":
            minting.append(name)
            assert not builds, f"job {name} can mint tokens and runs the pull request's build or tools"
        if builds:
            assert permissions == {"contents": "read"}, f"job {name} runs pull-request code with {permissions}"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"job {name} persists the checkout token"
    assert minting == ["preview"]
    assert not any(str(s.get("uses", "")).startswith("actions/checkout@") for s in workflow["jobs"]["comment"]["steps"])
    assert any("cmkctl impact" in str(s.get("run", "")) for s in workflow["jobs"]["impact"]["steps"])


def test_apply_waits_for_the_prod_environments_reviewers() -> None:
    job = load_workflow("apply.yml")["jobs"]["apply"]
    assert job["environment"] == "prod"
    assert "required reviewers" in (ROOT / ".github" / "workflows" / "apply.yml").read_text()


def test_preview_runs_the_guardrails_and_posts_the_impact() -> None:
    document = load_workflow("preview.yml")
    assert "Pulumi.*.yaml" in document["on"]["pull_request"]["paths"]
    assert {"components/**", "policies/**"} <= set(document["on"]["pull_request"]["paths"])
    pulumi = pulumi_command(document)
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "policies/policy-config.json"
    assert pulumi["with"]["comment-on-pr"] is True
    assert any("cmkctl impact --base" in str(step.get("run", "")) for step in steps(document))
    (credentials,) = uses(document, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ vars.CMK_PREVIEW_ROLE_ARN }}"


def test_apply_is_serialized_guarded_and_verified() -> None:
    document = load_workflow("apply.yml")
    assert document["on"]["push"]["branches"] == ["main"]
    assert document["concurrency"] == {"group": "cmk-apply-prod", "cancel-in-progress": False}
    pulumi = pulumi_command(document)
    assert (pulumi["with"]["command"], pulumi["with"]["policyPacks"]) == ("up", "policies")
    (credentials,) = uses(document, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ vars.CMK_APPLY_ROLE_ARN }}"
    step_names = [step.get("name", "") for step in steps(document)]
    verify = step_names.index("Verify the live keys now match the stack")
    assert verify > step_names.index("pulumi up with the guardrails")


def test_drift_job_is_scheduled_and_fails_on_any_non_zero_status() -> None:
    document = load_workflow("drift.yml")
    assert document["on"]["schedule"]
    run = next(step["run"] for step in steps(document) if "cmkctl status" in str(step.get("run", "")))
    assert 'exit "$code"' in run
    (credentials,) = uses(document, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ vars.CMK_PREVIEW_ROLE_ARN }}"


SECURITY = ["@your-org/security-owners"]


def codeowners_for(path: str) -> list[str]:
    """The owners GitHub requests for `path`: the last matching CODEOWNERS line (gitignore patterns)."""
    owners: list[str] = []
    for line in (ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *names = line.split()
            if pathspec.GitIgnoreSpec.from_lines([pattern]).match_file(path):
                owners = names
    return owners


@pytest.mark.parametrize(
    "path",
    [
        "Pulumi.yaml",
        "Pulumi.prod.yaml",
        "Pulumi.staging.yaml",
        "__main__.py",
        "atlassian_cmk/config.py",
        "atlassian_cmk/cli/main.py",
        "components/cmk_key_pair.py",
        "policies/guardrails/framework.py",
        "policies/policy-config.json",
        ".github/workflows/apply.yml",
        ".github/CODEOWNERS",
        "iam/apply-role.json",
        "Makefile",
        "pyproject.toml",
        "requirements.txt",
        "requirements.lock",
        "a-file-added-later.py",
    ],
)
def test_the_security_owners_alone_approve_everything_that_runs_with_the_roles(path: str) -> None:
    # Owners on one line are alternatives: any other team listed would approve without security.
    assert codeowners_for(path) == SECURITY


# --- IAM ---------------------------------------------------------------------------------------


def allowed_actions(document: dict[str, Any]) -> list[str]:
    actions: list[str] = []
    for statement in document["Statement"]:
        if statement["Effect"] == "Allow":
            value = statement["Action"]
            actions.extend([value] if isinstance(value, str) else value)
    return actions


@pytest.mark.parametrize("path", IAM_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT / "iam")))
def test_iam_document_passes_parliament(path: Path) -> None:
    policy = analyze_policy_string(path.read_text())
    findings = [(str(path.relative_to(ROOT / "iam")), f.issue) for f in policy.findings]
    assert [f for f in findings if f not in ACCEPTED_FINDINGS] == []


@pytest.mark.parametrize("path", IAM_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT / "iam")))
def test_iam_document_grants_no_deletion_no_policy_rewrite_no_wildcard(path: Path) -> None:
    document = json.loads(path.read_text())
    for pattern in allowed_actions(document):
        assert pattern != "kms:*" and pattern != "*", pattern
        for forbidden in FORBIDDEN:
            assert not fnmatch.fnmatchcase(forbidden.lower(), pattern.lower()), (pattern, forbidden)
    denied = [a for s in document["Statement"] if s["Effect"] == "Deny" for a in s["Action"]]
    assert set(FORBIDDEN) <= set(denied)


@pytest.mark.parametrize("folder", ["", "enrolled"])
def test_break_glass_role_can_only_revoke_restore_tag_and_read(folder: str) -> None:
    document = json.loads((ROOT / "iam" / folder / "break-glass-role.json").read_text())
    assert set(allowed_actions(document)) == {
        "kms:DescribeKey",
        "kms:ListResourceTags",
        "kms:GetKeyPolicy",
        "kms:DisableKey",
        "kms:EnableKey",
        "kms:TagResource",
        "kms:ListAliases",
        "kms:ListKeys",  # a generation whose alias names no key: is a key tagged as it there?
        "cloudtrail:LookupEvents",
    }


@pytest.mark.parametrize("folder", ["", "enrolled"])
def test_preview_role_cannot_change_any_key(folder: str) -> None:
    document = json.loads((ROOT / "iam" / folder / "preview-role.json").read_text())
    mutating = ("kms:Create", "kms:Disable", "kms:Enable", "kms:Tag", "kms:Untag", "kms:Put", "kms:Update")
    assert not [a for a in allowed_actions(document) if a.startswith(mutating)]
