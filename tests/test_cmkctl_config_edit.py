"""`--write-config`: the real Pulumi.prod.yaml edited line by line, comments intact, still valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.config_edit import validate_text, with_restoration, with_revocation, write_stack_file
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import REAL_STACK_FILE


def comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


@pytest.fixture
def stack_copy(tmp_path: Path) -> Path:
    target = tmp_path / "Pulumi.prod.yaml"
    shutil.copyfile(REAL_STACK_FILE, target)
    return target


def test_revocation_edit_keeps_every_comment_and_passes_the_programs_validation(stack_copy: Path) -> None:
    original = stack_copy.read_text()

    write_stack_file(stack_copy, with_revocation(original, "Suspected breach: key exposed", "SEC-42"))

    edited = stack_copy.read_text()
    assert comment_lines(edited) == comment_lines(original)
    config = load_stack_config(stack_copy.parent, "prod")
    assert config.enabled is False
    assert config.revocation is not None
    assert (config.revocation.reason, config.revocation.ticket) == ("Suspected breach: key exposed", "SEC-42")
    # Only the two settings changed: every other line is where it was.
    added = set(edited.splitlines()) - set(original.splitlines())
    assert added == {
        "  atlassian-cmk:enabled: false",
        "  atlassian-cmk:revocation:",
        "    reason: 'Suspected breach: key exposed'",
        "    ticket: SEC-42",
    }
    # The block sits under its commented example, above the re-encryption comment.
    lines = edited.splitlines()
    block = lines.index("  atlassian-cmk:revocation:")
    assert lines[block - 1] == "  #   ticket: SEC-1234"
    assert lines[block + 3] == ""
    assert lines[block + 4].startswith("  # Re-encryption requested")


def test_restoration_after_revocation_gives_back_the_original_file(stack_copy: Path) -> None:
    original = stack_copy.read_text()

    restored = with_restoration(with_revocation(original, "breach", "SEC-1"))

    assert restored == original


def test_a_second_revocation_updates_the_block_in_place(stack_copy: Path) -> None:
    once = with_revocation(stack_copy.read_text(), "first", "SEC-1")

    twice = with_revocation(once, "second", "SEC-2")

    assert twice.count("atlassian-cmk:revocation:") == 2  # the commented example and the block
    config = validate_text(twice, "test")
    assert config.revocation is not None and config.revocation.ticket == "SEC-2"
    assert comment_lines(twice) == comment_lines(once)


def test_flow_style_and_comments_are_edited_where_they_are(tmp_path: Path) -> None:
    text = (
        "config:\n"
        "  # Realm.\n"
        "  atlassian-cmk:realm: eu  # two regions\n"
        "  atlassian-cmk:enabled: true\n"
        "  atlassian-cmk:atlassianKeyPolicy: [{Effect: Allow, Principal: {AWS: '279766244153'}, Action: kms:Decrypt,"
        " Resource: '*'}]\n"
        "  atlassian-cmk:contextTag: Acme\n"
    )

    revoked = with_revocation(text, "breach", "SEC-1")

    assert (
        "  atlassian-cmk:enabled: false\n  atlassian-cmk:revocation:\n    reason: breach\n    ticket: SEC-1\n"
        in revoked
    )
    assert "# two regions" in revoked and "# Realm." in revoked
    assert validate_text(revoked, "test").enabled is False
    assert with_restoration(revoked) == text


def test_write_refuses_text_the_program_would_reject_and_leaves_the_file(stack_copy: Path) -> None:
    original = stack_copy.read_text()
    invalid = original.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false")  # no revocation block

    with pytest.raises(StackConfigErrors, match="atlassian-cmk:revocation: missing"):
        write_stack_file(stack_copy, invalid)

    assert stack_copy.read_text() == original
    assert [p.name for p in stack_copy.parent.iterdir()] == ["Pulumi.prod.yaml"]  # no temp file left
