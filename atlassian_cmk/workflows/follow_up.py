"""The stack-file change after a break-glass run: planned before any AWS call, printed or written after.

The change makes the stack say what the world now is (`enabled: false` plus the revocation block,
or `enabled: true`), so the next `pulumi up` keeps it. It is checked by the program's own
validation before the first request, and offered only when every key converged: after a split
(exit 2) or when nothing changed there is nothing true to commit yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from atlassian_cmk import config_edit
from atlassian_cmk.config import APPLY_ROLE_BREAK_GLASS_NOTE, StackConfig, StackConfigErrors, apply_role_missing
from atlassian_cmk.stack_file import StackFileError, read_text
from atlassian_cmk.workflows.report import ConfigChangeError, Transcript


@dataclass(frozen=True)
class PlannedChange:
    """The stack file as read before the run, and the same text after the follow-up edit."""

    path: Path
    before: str
    after: str


def plan_change(path: Path, edit: Callable[[str], str]) -> PlannedChange:
    """The stack file now and after `edit`, validated; ConfigChangeError (nothing read or changed) if not."""
    try:
        before = read_text(path, missing="no such stack file") or ""
        after = edit(before)
        config_edit.validate_text(after, str(path), path.parent)
    except (StackFileError, StackConfigErrors) as error:
        raise ConfigChangeError(f"{path}: the config change would not be valid: {error}") from None
    return PlannedChange(path, before, after)


def stack_file_changed(planned: PlannedChange) -> str | None:
    """Why the stack file is no longer the one the run checked (another edit, a `git pull`), or None."""
    try:
        now = read_text(planned.path, missing="no such stack file") or ""
    except StackFileError as error:
        return f"{planned.path.name} can no longer be read: {error}"
    if now != planned.before:
        return f"{planned.path.name} changed since the check (the guard judged the file as it was)"
    return None


def finish(
    transcript: Transcript,
    planned: PlannedChange,
    *,
    converged: bool,
    write: bool,
    summary: str,
    command: str,
    fixes: Sequence[str] = (),
    config: StackConfig | None = None,
) -> bool:
    """Print (or, with `write`, write) the change that makes the stack and the world agree again.

    Returns whether the file was written. Not converged (a split, failures): no diff and no commit
    advice, only what to do first; the change is offered by the run that converges. `fixes`: keys
    refused as not the stack's (`identity_rules.refused_key_remedy`), which a rerun alone can never
    change: what to fix is said instead of "run again". `config`: the stack's; without applyRoleArn the
    offered change is followed by `APPLY_ROLE_BREAK_GLASS_NOTE`, one line (break-glass is never blocked by
    it, but that pull request's `pulumi up` is refused until the role is set: `config.apply_role_missing`)."""
    path = planned.path
    if planned.before == planned.after:
        transcript.say(f"{path.name} already declares this; nothing to commit.", prefix="\n")
        return False
    if not converged and fixes:
        verb = f"Not writing {path}" if write else "No config change to commit yet"
        text = (
            f"{verb}: not every key converged, and running `cmkctl {command}` again cannot: cmkctl refused a key that "
            f"is not the stack's. Fix it first, then run `cmkctl {command}` again: " + "; ".join(fixes) + "."
        )
        transcript.say(text, prefix="\n")
        return False
    if not converged:
        if write:
            text = f"Not writing {path}: not every key converged; run `cmkctl {command}` again first."
        else:
            text = f"No config change to commit yet: not every key converged; run `cmkctl {command}` again first."
        transcript.say(text, prefix="\n")
        return False
    diff = config_edit.unified_diff(path, planned.before, planned.after)
    written = False
    if write:
        config_edit.write_stack_file(path, planned.after)
        written = True
        text = f"Wrote {path} ({summary}); commit it."
    else:
        text = f"Commit this change to {path} ({summary}), or rerun with --write-config."
    transcript.messages.append(text)
    transcript.add_line(f"\n{text}\n{diff}".rstrip("\n"))
    if config is not None and apply_role_missing(config) is not None:
        transcript.say(APPLY_ROLE_BREAK_GLASS_NOTE)
    return written
