"""The stack-file reader refuses what it cannot read as the engine does (review of issue 9).

Sources: go-yaml/yaml v3 `decode.go` (`isMerge`, `parser.scalar`: a plain `<<` key is a merge
key; `d.merge` merges it, also into the engine's stack-file struct), `readerc.go` (control
characters refused); Go's regexp `$` (end of text, unlike Python's `$` before a final newline);
pulumi/pulumi `sdk/go/common/resource/config/key.go` `ParseKey` (`<ns>:config:<name>` accepted).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.config_edit import with_restoration, with_revocation
from atlassian_cmk.git_source import stack_text_at_ref
from atlassian_cmk.naming import stack_name_problem
from atlassian_cmk.stack_file import MAX_FILE_BYTES, StackFileError, check_text, engine_config, load_engine_config
from tests.support.cmkctl import provision, runtime, stack_dir
from tests.test_stack_file_reader import VALID


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # Merging `enabled: false` from an anchor: the engine disables the keys.
        (
            VALID + "  base: &b {atlassian-cmk:enabled: false}\n".replace("  base", "  x:base") + "  <<: *b\n",
            "line 7, column 3",
        ),
        ("<<: {config: {atlassian-cmk:enabled: false}}\n" + VALID, "line 1, column 1"),
        (VALID + "environment:\n  <<: {imports: [prod]}\n", "line 7, column 3"),
        (VALID + "  atlassian-cmk:revocation:\n    ! <<: {reason: r}\n", "line 7, column 5"),
    ],
)
def test_merge_keys_are_refused_anywhere_with_line_and_column(text: str, where: str) -> None:
    with pytest.raises(StackFileError, match=rf"s: not valid YAML: {where}: merge key \(<<\) refused") as caught:
        engine_config(text, None, stack="prod", source="s")
    assert "\n" not in str(caught.value)


def test_merge_keys_in_the_project_file_are_refused() -> None:
    project = "name: atlassian-cmk\nruntime: python\nconfig:\n  <<: {multiRegion: {default: true}}\n"
    with pytest.raises(StackFileError, match=r"Pulumi.yaml: not valid YAML: line 4, column 3: merge key"):
        engine_config(VALID, project, stack="prod", source="s")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("config:\n  atlassian-cmk:enabled: tr\x07ue\n", "line 2, column 28"),
        ("config:\n  other:k: 'é\x01'\n", "line 2, column 14"),
        ("\x07", "line 1, column 1"),
    ],
)
def test_control_characters_name_line_and_column(text: str, where: str) -> None:
    with pytest.raises(StackFileError, match=rf"s: not valid YAML: {where}: unacceptable character #x000"):
        engine_config(text, None, stack="prod", source="s")


@pytest.mark.parametrize("stack", ["prod\n", "prod\r\n", "\nprod"])
def test_a_stack_name_with_a_newline_is_refused(stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack_name_problem(stack) is not None
    (tmp_path / "Pulumi.prod.yaml").write_text(VALID)
    assert main(["status", "--stack", stack, "--project-dir", str(tmp_path)]) == 64
    assert "--stack:" in capsys.readouterr().err


def test_validating_patterns_match_the_whole_text() -> None:
    text = VALID.replace("contextTag: AcmeCMK", 'contextTag: "AcmeCMK\\n"')
    with pytest.raises(StackConfigErrors, match="atlassian-cmk:contextTag"):
        check_text(text, "s")


def test_a_symlinked_stack_file_is_refused_not_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(VALID)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.prod.yaml").symlink_to(outside)
    with pytest.raises(StackFileError, match=r"Pulumi.prod.yaml: is a symbolic link; allowed: a regular file"):
        load_engine_config(project, "prod")
    assert main(["status", "--project-dir", str(project)]) == 64
    assert "is a symbolic link" in capsys.readouterr().err


def test_a_symlinked_project_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod.yaml").write_text(VALID)
    (tmp_path / "elsewhere.yaml").write_text("name: atlassian-cmk\n")
    (tmp_path / "Pulumi.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(StackFileError, match=r"Pulumi.yaml: is a symbolic link"):
        load_engine_config(tmp_path, "prod")


def test_a_fifo_stack_file_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "Pulumi.prod.yaml")  # nobody writes: opening it to read would block
    with pytest.raises(StackFileError, match=r"Pulumi.prod.yaml: is not a regular file"):
        load_engine_config(tmp_path, "prod")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "ci@example.com")
    _git(tmp_path, "config", "user.name", "ci")
    return tmp_path


def test_a_base_file_over_the_limit_is_refused_by_its_size(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text("#" * (MAX_FILE_BYTES + 1))
    _git(repo, "add", "Pulumi.prod.yaml")
    _git(repo, "commit", "-q", "-m", "big")
    with pytest.raises(StackFileError, match=r"Pulumi.prod.yaml at main: larger than 1048576 bytes"):
        stack_text_at_ref(repo, "prod", "main")


def test_a_base_file_that_is_a_symlink_is_refused(repo: Path) -> None:
    (repo / "real.yaml").write_text(VALID)
    (repo / "Pulumi.prod.yaml").symlink_to("real.yaml")
    _git(repo, "add", "Pulumi.prod.yaml", "real.yaml")
    _git(repo, "commit", "-q", "-m", "link")
    with pytest.raises(StackFileError, match=r"Pulumi.prod.yaml at main: is a symbolic link"):
        stack_text_at_ref(repo, "prod", "main")
    (repo / "Pulumi.dev.yaml").write_text(VALID)
    _git(repo, "add", "Pulumi.dev.yaml")
    _git(repo, "commit", "-q", "-m", "dev")
    assert stack_text_at_ref(repo, "dev", "main") == VALID
    assert stack_text_at_ref(repo, "gone", "main") is None


LEGACY = VALID.replace("atlassian-cmk:enabled: true", "atlassian-cmk:config:enabled: true")


def test_the_legacy_key_form_is_edited_as_the_file_spells_it() -> None:
    revoked = with_revocation(LEGACY, "Suspected breach", "SEC-1")
    assert "atlassian-cmk:config:enabled: false" in revoked and "atlassian-cmk:enabled" not in revoked
    assert check_text(revoked, "s").enabled is False
    assert with_restoration(revoked) == LEGACY


def test_revoke_and_restore_write_config_on_the_legacy_key_form(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path, {"atlassian-cmk:enabled: true": "atlassian-cmk:config:enabled: true"})
    provision(project, moto_endpoint)
    path = project / "Pulumi.prod.yaml"
    before = path.read_text()
    common = ["--project-dir", str(project), "--yes", "--write-config"]

    assert (
        main(["revoke", *common, "--reason", "Suspected breach", "--ticket", "SEC-1"], runtime=runtime(moto_endpoint))
        == 0
    )
    revoked = path.read_text()
    assert "  atlassian-cmk:config:enabled: false\n" in revoked and "  atlassian-cmk:enabled:" not in revoked
    assert main(["restore", *common, "--ticket", "SEC-2"], runtime=runtime(moto_endpoint)) == 0
    assert path.read_text() == before, capsys.readouterr()


PROJECT = "name: atlassian-cmk\nruntime: python\n"


def test_a_project_key_spelled_twice_is_refused() -> None:
    # pkg/workspace/config.go mergeConfig: sorted keys, the first sets the value, the second is skipped.
    project = PROJECT + "config:\n  multiRegion: {type: boolean, default: true}\n  atlassian-cmk:multiRegion: false\n"
    with pytest.raises(
        StackFileError, match=r"'multiRegion' and 'atlassian-cmk:multiRegion' both set atlassian-cmk:multiRegion"
    ):
        engine_config(VALID, project, stack="prod", source="s")


def test_an_array_type_without_items_is_refused_with_the_engines_reason() -> None:
    project = PROJECT + "config:\n  keyAdministrators: {type: array, default: []}\n"
    with pytest.raises(
        StackFileError,
        match="The configuration key 'keyAdministrators' declares an array but does not specify the underlying type",
    ):
        engine_config(VALID, project, stack="prod", source="s")
    typed = PROJECT + "config:\n  keyAdministrators: {type: array, items: {type: integer}, default: [a]}\n"
    with pytest.raises(StackFileError, match="not of the expected type 'array'"):
        engine_config(VALID, typed, stack="prod", source="s")


@pytest.mark.parametrize("namespace", ["Atlassian-CMK", "atlassian_cmk", "ATLASSIAN-CMK"])
def test_a_misspelt_namespace_is_named_as_a_likely_typo(namespace: str) -> None:
    text = VALID.replace("  atlassian-cmk:enabled: true\n", f"  {namespace}:enabled: false\n")
    with pytest.raises(StackConfigErrors) as caught:
        check_text(text, "s")
    assert (
        f"{namespace}:enabled: a key of namespace '{namespace}', which the program never reads; did you mean "
        "atlassian-cmk:enabled?" in str(caught.value).splitlines()
    )


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ("[cn-north-1, us-east-1]", "'cn-north-1' is not allowed; allowed: a region of the aws partition"),
        ("[us-east-1, us-gov-west-1]", "us-gov-west-1 is in aws-us-gov"),
        ("[eu-west-1, zz-fake-9]", "'zz-fake-9' is not allowed; allowed: an AWS region of the aws partition"),
    ],
)
def test_regions_must_be_in_the_commercial_partition(regions: str, message: str) -> None:
    text = VALID.replace("atlassian-cmk:realm: us", f"atlassian-cmk:regions: {regions}")
    with pytest.raises(StackConfigErrors, match=message):
        check_text(text, "s")


SECRET = VALID + "  atlassian-cmk:revocation:\n    reason:\n      secure: v1:" + "A" * 80 + "\n    ticket: SEC-1\n"
ESC = "environment:\n  - prod-cmk\n" + VALID


@pytest.mark.parametrize(
    ("text", "said"),
    [(SECRET, "atlassian-cmk:revocation.reason: is a secret"), (ESC, "imports a Pulumi ESC environment")],
)
def test_secrets_and_esc_are_refused_by_cmkctl_and_impact_as_usage_errors(
    text: str, said: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "Pulumi.prod.yaml").write_text(VALID)
    _git(repo, "add", "Pulumi.prod.yaml")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "Pulumi.prod.yaml").write_text(text)

    assert main(["status", "--project-dir", str(repo)]) == 64
    status = capsys.readouterr()
    assert main(["impact", "--base", "main", "--project-dir", str(repo)]) == 64
    impact = capsys.readouterr()
    assert said in status.err and said in impact.out
    assert "A" * 80 not in status.err + impact.out


def test_status_reads_a_context_tag_given_only_as_a_project_default(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("  atlassian-cmk:contextTag: AcmeCMK\n", ""))
    (project / "Pulumi.yaml").write_text(PROJECT + "config:\n  contextTag: {type: string, default: AcmeCMK}\n")
    provision(project, moto_endpoint)

    code = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "contextTag" not in captured.err
