"""Values read from AWS made safe to print: control characters escaped, markdown neutralised.

Tag values, key descriptions and error messages come from whoever can write them (kms:TagResource is
enough). Printed raw, a tag holding `\\n\\nResult: exit 0` forges a result line, and `\\x1b[2J` drives the
operator's terminal; the drift job copies status output into a GitHub job summary, which is markdown.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Sequence
from typing import Final

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` on one line: every control character (C0, DEL, C1, line/paragraph separators, bidi
    overrides) written as a visible escape (`\\n`, `\\x1b`, `\\u202e`); other characters unchanged."""
    return _CONTROL_RE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """Each line of `text` through `printable` (the line breaks themselves kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def markdown_code_block(text: str) -> str:
    """`text` as a fenced code block that nothing inside can close: markdown renders none of it.

    The fence is one backtick longer than the longest backtick run in `text` (CommonMark 4.5: a
    closing fence must be at least as long as the opening one)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{printable_lines(unicodedata.normalize('NFC', text))}\n{fence}\n"


TEXT_WIDTH: Final = 100
"""The columns a text a person reads fits (a terminal, a ticket, a CI log, a code block in a pull request)."""


def fit_lines(lines: Sequence[str], width: int = TEXT_WIDTH) -> list[str]:
    """Each line at most `width` columns: a longer one wrapped at spaces, its continuation indented two
    more than its own indent. A word longer than the width (an ARN, a URL) is never broken; a line
    that already fits is kept as is (a table's padding included)."""
    fitted: list[str] = []
    for line in lines:
        if len(line) <= width:
            fitted.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")))
        fitted.extend(
            textwrap.wrap(
                line.strip(),
                width,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return fitted
