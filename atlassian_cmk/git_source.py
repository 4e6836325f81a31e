"""The stack file as it was at a Git ref: the "before" side of a pull request's review."""

from __future__ import annotations

import subprocess
from pathlib import Path

from atlassian_cmk.stack_file import MAX_FILE_BYTES, PROJECT_FILE, StackFileError, decode_text, too_large


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
    source = f"{name} at {ref}"
    # The tree entry first: its mode tells a regular file from a symbolic link (120000, whose blob is
    # the link's target path), and its size is checked before the blob is read into memory.
    listed = subprocess.run(
        ["git", "-C", str(project_dir), "ls-tree", "-l", "-z", ref, "--", name],
        capture_output=True,
        check=False,
    )
    entry = listed.stdout.split(b"\0", 1)[0].decode("utf-8", errors="replace") if listed.returncode == 0 else ""
    if not entry:
        return None
    mode, kind, obj, size = entry.split("\t", 1)[0].split()
    if kind != "blob" or mode not in ("100644", "100755"):
        what = "a symbolic link" if mode == "120000" else "not a regular file"
        raise StackFileError(f"{source}: is {what}; allowed: a regular file in the project folder")
    if int(size) > MAX_FILE_BYTES:
        raise too_large(source)
    shown = subprocess.run(
        ["git", "-C", str(project_dir), "cat-file", "blob", obj],
        capture_output=True,
        check=False,
    )
    if shown.returncode != 0:
        return None
    return decode_text(shown.stdout, source)
