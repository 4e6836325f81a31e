"""The stack file as it was at a Git ref: the "before" side of a pull request's review."""

from __future__ import annotations

import subprocess
from pathlib import Path

from atlassian_cmk.stack_file import PROJECT_FILE, decode_text


class GitRefError(ValueError):
    """The ref cannot be read (unknown ref, not a Git checkout)."""


def stack_text_at_ref(project_dir: Path, stack: str, ref: str) -> str | None:
    """The text of `Pulumi.<stack>.yaml` at `ref`, or None when the file did not exist there."""
    return file_text_at_ref(project_dir, f"Pulumi.{stack}.yaml", ref)


def project_text_at_ref(project_dir: Path, ref: str) -> str | None:
    """The text of `Pulumi.yaml` at `ref` (its config defaults are part of the stack's config), or None."""
    return file_text_at_ref(project_dir, PROJECT_FILE, ref)


def file_text_at_ref(project_dir: Path, name: str, ref: str) -> str | None:
    """A file of the project folder at `ref`: None when absent there; StackFileError when too large or not UTF-8."""
    verify = subprocess.run(
        ["git", "-C", str(project_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if verify.returncode != 0:
        raise GitRefError(f"--base: {ref!r} is not a commit in {project_dir}; allowed: a branch, tag or commit")
    shown = subprocess.run(
        ["git", "-C", str(project_dir), "cat-file", "blob", f"{ref}:./{name}"],
        capture_output=True,
        check=False,
    )
    if shown.returncode != 0:
        return None
    return decode_text(shown.stdout, f"{name} at {ref}")
