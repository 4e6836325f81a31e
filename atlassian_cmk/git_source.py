"""The stack file as it was at a Git ref: the "before" side of a pull request's review."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitRefError(ValueError):
    """The ref cannot be read (unknown ref, not a Git checkout)."""


def stack_text_at_ref(project_dir: Path, stack: str, ref: str) -> str | None:
    """The text of `Pulumi.<stack>.yaml` at `ref`, or None when the file did not exist there."""
    verify = subprocess.run(
        ["git", "-C", str(project_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if verify.returncode != 0:
        raise GitRefError(f"--base: {ref!r} is not a commit in {project_dir}; allowed: a branch, tag or commit")
    shown = subprocess.run(
        ["git", "-C", str(project_dir), "show", f"{ref}:./Pulumi.{stack}.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        return None
    return shown.stdout
