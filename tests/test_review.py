"""The pull request's impact summary, computed from real Git history in a temporary repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.git_source import GitRefError
from atlassian_cmk.review import review_stack_change
from tests.support.cmkctl import unwrap

ROOT = Path(__file__).resolve().parents[1]
PROD = (ROOT / "Pulumi.prod.yaml").read_text()
REVOCATION_BLOCK = """  # atlassian-cmk:revocation:
  #   reason: Suspected breach of encrypted data
  #   ticket: SEC-1234
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose main branch holds the shipped Pulumi.prod.yaml."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "ci@example.com")
    git(tmp_path, "config", "user.name", "ci")
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD)
    git(tmp_path, "add", "Pulumi.prod.yaml")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def revoke(text: str) -> str:
    assert REVOCATION_BLOCK in text
    return text.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false").replace(
        REVOCATION_BLOCK,
        "  atlassian-cmk:revocation:\n    reason: Suspected breach of encrypted data\n    ticket: SEC-1234\n",
    )


def test_revocation_pull_request_shows_consequences_timeline_and_checklist(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(revoke(PROD))
    review = review_stack_change(repo, "prod", "main")
    assert review.valid and review.revokes
    markdown = unwrap(review.to_markdown())  # the code block is wrapped to 100 columns
    for fact in (
        "REVOCATION",
        "us-east-1 and us-west-2",
        "30 to 60 minutes",
        "up to 1 hour of data",
        "within 10 days",
        "after 20 days",
        "Suspected breach of encrypted data",
        "SEC-1234",
        "- [ ] internal comms",
        "`no-revocation-during-reencryption` (mandatory)",
    ):
        assert fact in markdown, fact


def test_restoration_shows_the_window_and_the_atlassian_step(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(revoke(PROD))
    git(repo, "commit", "-q", "-am", "revoke")
    (repo / "Pulumi.prod.yaml").write_text(PROD)
    review = review_stack_change(repo, "prod", "HEAD")
    assert [c.kind for c in review.changes] == ["restoration"]
    markdown = review.to_markdown()
    assert "RESTORATION" in markdown and "within 10 days" in markdown
    assert "reply on the same Atlassian support ticket" in markdown


def test_unrelated_change_says_nothing_is_revoked(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD.replace("# Production stack", "# The production stack"))
    review = review_stack_change(repo, "prod", "main")
    assert review.changes == []
    assert "nothing is revoked or restored" in review.to_markdown()
    assert json.loads(review.to_json())["revokes_access"] is False


def test_reencryption_and_a_changed_atlassian_statement_are_called_out(repo: Path) -> None:
    text = PROD.replace("status: none", "status: in-progress").replace(
        "role/SAMPLE-AtlassianCmkAccess\n", "role/SAMPLE-AtlassianCmkAccessV2\n"
    )
    (repo / "Pulumi.prod.yaml").write_text(text)
    review = review_stack_change(repo, "prod", "main")
    kinds = {c.kind: c for c in review.changes}
    assert kinds["reencryption"].summary.startswith("Re-encryption status: none -> in-progress. RE-ENCRYPTION IN")
    assert kinds["atlassian-key-policy"].severity == "critical"
    *deltas, removed, added = kinds["atlassian-key-policy"].details.splitlines()
    assert deltas == [
        "Atlassian's arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess loses kms:decrypt, kms:describekey, "
        "kms:encrypt, kms:generatedatakey, kms:generatedatakeypair, kms:generatedatakeypairwithoutplaintext, "
        "kms:generatedatakeywithoutplaintext, kms:reencryptfrom, kms:reencryptto",
        "Atlassian's arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccessV2 gains kms:decrypt, kms:describekey, "
        "kms:encrypt, kms:generatedatakey, kms:generatedatakeypair, kms:generatedatakeypairwithoutplaintext, "
        "kms:generatedatakeywithoutplaintext, kms:reencryptfrom, kms:reencryptto",
    ]
    assert review.atlassian_loses_access and json.loads(review.to_json())["atlassian_loses_access"] is True
    assert removed.startswith("- ") and '"AWS": "arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess"}' in removed
    assert added.startswith("+ ") and "SAMPLE-AtlassianCmkAccessV2" in added


def test_a_respelled_atlassian_statement_is_no_change(repo: Path) -> None:
    text = PROD.replace("        - kms:Encrypt\n", "        - KMS:encrypt\n").replace(
        "        AWS: arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess\n",
        "        AWS: [arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess]\n",
    )
    assert text != PROD
    (repo / "Pulumi.prod.yaml").write_text(text)
    review = review_stack_change(repo, "prod", "main")
    assert review.changes == []


def test_invalid_head_config_yields_the_validation_errors(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: no"))
    review = review_stack_change(repo, "prod", "main")
    assert not review.valid
    assert review.errors == [
        "atlassian-cmk:enabled: 'no' is not allowed; allowed: true or false (as the Pulumi engine (yaml.v3) reads "
        "them, yes/no/on/off are strings, not booleans)"
    ]
    document = json.loads(review.to_json())
    assert document["valid"] is False and document["schema_version"] == 1
    assert "is invalid" in review.to_markdown()


def test_unknown_base_ref_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(GitRefError, match="'nope' is not a commit"):
        review_stack_change(repo, "prod", "nope")


def test_a_stack_file_new_in_the_pull_request_is_a_new_stack(repo: Path) -> None:
    (repo / "Pulumi.staging.yaml").write_text(PROD)
    review = review_stack_change(repo, "staging", "main")
    assert [c.kind for c in review.changes] == ["new-stack"]


def test_cmkctl_impact_prints_markdown_and_exits_zero(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atlassian_cmk.cli.main import main

    (repo / "Pulumi.prod.yaml").write_text(revoke(PROD))
    assert main(["--project-dir", str(repo), "impact", "--base", "main"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Atlassian CMK impact: stack `prod` (against `main`)")
    assert "REVOCATION" in out


def test_cmkctl_impact_json_for_invalid_config_exits_64(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atlassian_cmk.cli.main import main

    (repo / "Pulumi.prod.yaml").write_text(PROD.replace("contextTag: AcmeCMK", "contextTag: Acme-CMK"))
    assert main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"]) == 64
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert document["errors"][0].startswith("atlassian-cmk:contextTag: 'Acme-CMK' is not allowed")


def test_cmkctl_impact_unknown_ref_is_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atlassian_cmk.cli.main import main

    assert main(["--project-dir", str(repo), "impact", "--base", "no-such-branch"]) == 64
    assert "--base: 'no-such-branch' is not a commit" in capsys.readouterr().err


def test_an_allow_flipped_to_deny_under_a_marker_is_critical_names_the_loss_and_fails_impact(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PROD.replace("      Effect: Allow\n", "      Effect: Deny\n", 1).replace(
        "  # atlassian-cmk:atlassianKeyPolicyRevision: ATL-1234", "  atlassian-cmk:atlassianKeyPolicyRevision: ATL-1234"
    )
    assert text.count("Effect: Deny") == 1 and "atlassianKeyPolicyRevision: ATL-1234" in text
    (repo / "Pulumi.prod.yaml").write_text(text)
    review = review_stack_change(repo, "prod", "main")
    change = next(c for c in review.changes if c.kind == "atlassian-key-policy")
    assert change.severity == "critical"
    assert change.summary.startswith(
        "Atlassian would LOSE access: Atlassian's arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess loses "
        "kms:decrypt"
    )
    assert "(a revocation: revoke through atlassian-cmk:enabled)" in change.summary
    capsys.readouterr()
    assert main(["--project-dir", str(repo), "impact", "--base", "main"]) == ExitCode.REFUSED
    assert "Atlassian would LOSE access" in capsys.readouterr().out


EAST_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
WEST_ARN = "arn:aws:kms:us-west-2:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab"
ENROLLED = f"  atlassian-cmk:enrolledKeys:\n    us-east-1: {EAST_ARN}\n    us-west-2: {WEST_ARN}\n"


def commit_base(repo: Path, text: str) -> None:
    (repo / "Pulumi.prod.yaml").write_text(text)
    git(repo, "commit", "-q", "-am", "base")


def test_reordering_regions_is_no_change(repo: Path) -> None:
    commit_base(repo, PROD.replace("atlassian-cmk:realm: us", "atlassian-cmk:regions: [us-east-1, us-west-2]"))
    (repo / "Pulumi.prod.yaml").write_text(
        PROD.replace("atlassian-cmk:realm: us", "atlassian-cmk:regions: [us-west-2, us-east-1]")
    )

    review = review_stack_change(repo, "prod", "main")

    assert review.valid and review.changes == [], review.changes
    assert "No change to Atlassian's access" in review.to_markdown()


def test_a_region_leaving_is_named_with_the_key_atlassian_would_lose(repo: Path) -> None:
    commit_base(repo, PROD + ENROLLED)
    (repo / "Pulumi.prod.yaml").write_text(
        PROD.replace("atlassian-cmk:realm: us", "atlassian-cmk:regions: [us-east-1]") + ENROLLED
    )

    review = review_stack_change(repo, "prod", "main")

    leaving = [c for c in review.changes if c.kind == "region-leaving"]
    assert [(c.regions, c.severity) for c in leaving] == [(("us-west-2",), "critical")]
    assert f"us-west-2 leaves the stack: Atlassian would lose the key it holds there ({WEST_ARN})" in leaving[0].summary
    assert not [c for c in review.changes if c.kind == "region-joining"]
    assert "new keys" not in review.to_markdown()


def test_a_realm_change_names_each_region_leaving_and_joining(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD.replace("atlassian-cmk:realm: us", "atlassian-cmk:realm: eu"))

    review = review_stack_change(repo, "prod", "main")

    by_kind = {(c.kind, c.regions) for c in review.changes}
    assert ("realm", ()) in by_kind  # the summary names both sets; no "(eu-...)" suffix naming only one
    realm = next(c for c in review.changes if c.kind == "realm")
    assert realm.summary.endswith("data cannot leave its realm (eu-central-1 and eu-west-1 not in realm us)")
    assert {("region-leaving", ("us-east-1",)), ("region-leaving", ("us-west-2",))} <= by_kind
    assert {("region-joining", ("eu-central-1",)), ("region-joining", ("eu-west-1",))} <= by_kind
    joining = next(c for c in review.changes if c.kind == "region-joining")
    assert "Atlassian would never have" in joining.summary


def test_enrollment_and_a_changed_enrolled_arn_are_shown_as_what_atlassian_holds(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD + ENROLLED)
    enrollment = review_stack_change(repo, "prod", "main")
    commit_base(repo, PROD + ENROLLED)
    other = WEST_ARN.replace("2234abcd", "9934abcd")
    (repo / "Pulumi.prod.yaml").write_text(PROD + ENROLLED.replace(WEST_ARN, other))
    changed = review_stack_change(repo, "prod", "main")

    assert [(c.kind, c.severity) for c in enrollment.changes] == [("enrolled-keys", "info")]
    assert f"+ us-east-1: {EAST_ARN}" in enrollment.changes[0].details
    assert [(c.kind, c.severity) for c in changed.changes] == [("enrolled-keys", "critical")]
    assert changed.changes[0].details == f"- us-west-2: {WEST_ARN}\n+ us-west-2: {other}"
    assert "only a re-encryption agreed with Atlassian" in changed.changes[0].summary


def test_dropping_a_region_is_headed_as_the_realm_shrinking_not_data_leaving(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(
        PROD.replace("atlassian-cmk:realm: us", "atlassian-cmk:regions: [us-east-1]")
    )

    markdown = review_stack_change(repo, "prod", "main").to_markdown()

    heading = next(line for line in markdown.splitlines() if "Realm us" in line)
    assert heading.endswith("-> explicit (us-east-1): the realm shrinks (the region leaving is named below)"), heading
    assert "data cannot leave its realm" not in markdown
    assert "us-west-2 leaves the stack" in markdown


def test_a_changed_enrolled_arn_is_headed_by_its_region_only_and_fails_the_impact_check(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlassian_cmk.cli.main import main

    commit_base(repo, PROD + ENROLLED)
    other = WEST_ARN.replace("2234abcd", "9934abcd")
    (repo / "Pulumi.prod.yaml").write_text(PROD + ENROLLED.replace(WEST_ARN, other))

    review = review_stack_change(repo, "prod", "main")
    code = main(["--project-dir", str(repo), "impact", "--base", "main"])

    change = next(c for c in review.changes if c.kind == "enrolled-keys")
    assert change.regions == ("us-west-2",) and change.blocks and review.blocked
    assert "(us-west-2)" in capsys.readouterr().out and code == 4


def test_removing_the_enrolled_keys_fails_the_impact_check_even_with_a_revocation(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlassian_cmk.cli.main import main

    commit_base(repo, PROD + ENROLLED)
    (repo / "Pulumi.prod.yaml").write_text(revoke(PROD))

    code = main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"])

    document = json.loads(capsys.readouterr().out)
    assert code == 4 and document["blocked"] is True
    removed = next(c for c in document["changes"] if c["kind"] == "enrolled-keys")
    assert removed["blocks"] is True and removed["summary"].startswith("Enrollment removed")
    assert "this check fails until the change is declared" in removed["summary"]


def test_enrolling_for_the_first_time_does_not_fail_the_impact_check(repo: Path) -> None:
    from atlassian_cmk.cli.main import main

    (repo / "Pulumi.prod.yaml").write_text(PROD + ENROLLED)

    assert main(["--project-dir", str(repo), "impact", "--base", "main"]) == 0


NEXT_KEYS = (
    "  atlassian-cmk:nextKeys:\n"
    f"    us-east-1: {EAST_ARN.replace('1234abcd', '3334abcd')}\n"
    f"    us-west-2: {WEST_ARN.replace('2234abcd', '4434abcd')}\n"
)


@pytest.mark.parametrize("status", ["preparing", "in-progress"])
def test_removing_recorded_next_keys_fails_the_impact_check(
    repo: Path, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    """As for enrolledKeys: no declaration makes dropping the next generation's record acceptable (issue 15)."""
    from atlassian_cmk.cli.main import main

    reencrypting = PROD.replace("status: none", f"status: {status}\n    ticket: PS-1") + ENROLLED
    commit_base(repo, reencrypting + NEXT_KEYS)
    (repo / "Pulumi.prod.yaml").write_text(reencrypting)

    code = main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"])

    document = json.loads(capsys.readouterr().out)
    assert code == 4 and document["blocked"] is True
    removed = next(c for c in document["changes"] if c["kind"] == "next-keys")
    assert removed["severity"] == "critical" and removed["blocks"] is True
    assert removed["summary"].startswith("NEXT KEYS REMOVED: the next generation was handed to Atlassian")
    assert removed["summary"].endswith("; this check fails")


OLD_EAST = EAST_ARN.replace("1234abcd", "0034abcd")
OLD_WEST = WEST_ARN.replace("2234abcd", "0044abcd")
RETIRED = f"  atlassian-cmk:retiredKeys:\n    - us-east-1: {OLD_EAST}\n      us-west-2: {OLD_WEST}\n"


@pytest.mark.parametrize(
    ("head", "summary", "detail"),
    [
        (PROD + ENROLLED, "A retired key generation is dropped", f"- retiredKeys[0] us-east-1: {OLD_EAST}"),
        (
            PROD + ENROLLED + RETIRED.replace(OLD_WEST, OLD_WEST.replace("0044abcd", "9944abcd")),
            "The retired keys change",
            f"+ retiredKeys[0] us-west-2: {OLD_WEST.replace('0044abcd', '9944abcd')}",
        ),
    ],
    ids=["entry dropped", "ARN changed"],
)
def test_a_retired_keys_edit_fails_the_impact_check(
    repo: Path, capsys: pytest.CaptureFixture[str], head: str, summary: str, detail: str
) -> None:
    """Issue 15 review, finding 7: retired generations are kept and numbered by position; no declaration makes
    dropping or changing an entry acceptable (a dropped entry makes the retired key current again)."""
    commit_base(repo, PROD + ENROLLED + RETIRED)
    (repo / "Pulumi.prod.yaml").write_text(head)

    code = main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"])

    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REFUSED and document["blocked"] is True
    (change,) = [c for c in document["changes"] if c["kind"] == "retired-keys"]
    assert change["severity"] == "critical" and change["blocks"] is True
    assert change["summary"].startswith(f"{summary}: retired keys are kept for good")
    assert change["summary"].endswith("restore atlassian-cmk:retiredKeys from the base branch; this check fails")
    assert detail in change["details"].splitlines()


def test_a_promotion_appending_the_retired_generation_is_no_retired_keys_change(repo: Path) -> None:
    promoted = NEXT_KEYS.replace("nextKeys", "enrolledKeys")
    retired = RETIRED.replace(OLD_EAST, EAST_ARN).replace(OLD_WEST, WEST_ARN)
    commit_base(repo, PROD.replace("status: none", "status: complete\n    ticket: PS-1") + ENROLLED + NEXT_KEYS)
    (repo / "Pulumi.prod.yaml").write_text(
        PROD.replace("status: none", "status: complete\n    ticket: PS-1") + promoted + retired
    )

    review = review_stack_change(repo, "prod", "main")

    assert review.valid, review.errors
    assert [c.kind for c in review.changes if c.kind == "retired-keys"] == []
    assert any(c.summary.startswith("Re-encryption status: complete -> complete. PROMOTION") for c in review.changes)


RETIRED_KEYS = (
    "  atlassian-cmk:retiredKeys:\n"
    f"    - us-east-1: {EAST_ARN.replace('1234abcd', '5534abcd')}\n"
    f"      us-west-2: {WEST_ARN.replace('2234abcd', '6634abcd')}\n"
)


@pytest.mark.parametrize(
    ("before", "after", "extra", "refusal"),
    [
        # The reviewer's sequence: retirement applied (none), then complete would enable the retired keys again.
        ("none", "complete", RETIRED_KEYS, "REFUSED: complete without a re-encryption"),
        ("none", "complete", "", "REFUSED: complete without a re-encryption"),
        ("in-progress", "preparing", NEXT_KEYS, "REFUSED: a step back (in-progress -> preparing)"),
        ("preparing", "none", "", "REFUSED: abandoning the re-encryption (preparing -> none)"),
        ("in-progress", "none", NEXT_KEYS, "REFUSED: abandoning the re-encryption (in-progress -> none)"),
    ],
)
def test_a_refused_re_encryption_transition_fails_the_impact_check(
    repo: Path, capsys: pytest.CaptureFixture[str], before: str, after: str, extra: str, refusal: str
) -> None:
    """No declaration makes these acceptable: `cmkctl impact` exits 4, as the pack refuses them."""

    def stack(status: str) -> str:
        ticket = "" if status == "none" else "\n    ticket: PS-1"
        keys = extra if status != "none" or "retiredKeys" in extra else ""
        return PROD.replace("status: none", f"status: {status}{ticket}") + ENROLLED + keys

    commit_base(repo, stack(before))
    (repo / "Pulumi.prod.yaml").write_text(stack(after))

    code = main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"])

    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REFUSED and document["blocked"] is True
    (change,) = [c for c in document["changes"] if c["kind"] == "reencryption"]
    assert change["severity"] == "critical" and change["blocks"] is True
    assert change["summary"].startswith(f"Re-encryption status: {before} -> {after}. {refusal}")


def test_the_forward_steps_pass_the_impact_check(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each step forward (and the retirement, complete -> none) is no refusal."""
    for before, after in (("none", "preparing"), ("preparing", "in-progress"), ("in-progress", "complete")):
        base = PROD.replace("status: none", f"status: {before}\n    ticket: PS-1") if before != "none" else PROD
        commit_base(repo, base + ENROLLED + (NEXT_KEYS if before != "none" else ""))
        (repo / "Pulumi.prod.yaml").write_text(
            PROD.replace("status: none", f"status: {after}\n    ticket: PS-1") + ENROLLED + NEXT_KEYS
        )
        assert main(["--project-dir", str(repo), "impact", "--base", "main", "--format", "json"]) == 0, after
        capsys.readouterr()
