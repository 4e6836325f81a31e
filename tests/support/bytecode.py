"""Compile the project's own modules once per run, for the Python processes the suite starts.

This machine sets PYTHONDONTWRITEBYTECODE=1, so every process the suite starts (about 120 policy
packs, with the CLI's command, and each cmkctl run) would compile the core, the pack and the
rehearsal modules from source at every import: 0.14 s of a live pack's 0.8 s of CPU
(`bench/bench_pack_start.py`). The variable stops Python *writing* bytecode, not reading it, so
compiling once here lets every process read it. These are the `__pycache__` files Python writes
itself without the variable (gitignored; `pulumi policy publish` archives tracked files only,
rehearsal/published_pack.py), each checked against its source's mtime and size on import as usual, so
an edited module is never run stale. compileall skips modules already up to date.
"""

from __future__ import annotations

import compileall
import re
from pathlib import Path
from typing import Final

PROJECT_DIR: Final = Path(__file__).resolve().parents[2]
FOLDERS: Final = ("atlassian_cmk", "components", "policies", "rehearsal")
SKIPPED: Final = re.compile(r"[/\\](venv|atlassian_cmk)[/\\]")
"""policies/venv (a pack virtualenv, if built) and policies/atlassian_cmk (the symlink to the core, compiled once)."""


def compile_project() -> bool:
    """Write the bytecode of every module in FOLDERS that is missing or stale; True if all compiled."""
    ok = True
    for folder in FOLDERS:
        root = PROJECT_DIR / folder
        skip = SKIPPED if folder == "policies" else None
        ok = bool(compileall.compile_dir(root, quiet=2, rx=skip, workers=1)) and ok
    return ok
