"""'Did you mean ...?' for a misspelled key, field or command: the closest known name, if any is close."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name most like `word` (difflib ratio >= 0.6, case-insensitive), or None."""
    names = list(known)
    lowered = {name.lower(): name for name in names}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`"did you mean X? "` to put before the list of allowed names, or "" when nothing is close."""
    match = closest(word, known)
    return f"did you mean {match}? " if match else ""
