"""Where a YAML document's nodes sit in its text, so an edit can touch only their bytes.

libyaml's events (PyYAML's parser, the same scanner yaml.v3 ports) mark each node's line and
column; this module turns them into character offsets of the text as written. Offsets come
from line and column, not from the marks' index: libyaml's index skips a byte-order mark that
the pure-Python parser counts, while both count lines by YAML's own breaks (CRLF, CR, LF, NEL,
U+2028, U+2029) and columns in characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import yaml

from atlassian_cmk import yaml_v3

_BREAK: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


@dataclass(frozen=True)
class Scalar:
    """A scalar: `start`/`end` the token itself (a tag or anchor before it excluded); `style` is
    "" (plain), "'", '"', "|" or ">"; `anchor` its anchor name, if any."""

    start: int
    end: int
    style: str
    value: str
    anchor: str | None


@dataclass(frozen=True)
class Other:
    """An alias, a sequence or a flow mapping: only where it is (`end` after its last character)."""

    start: int
    end: int
    anchor: str | None


@dataclass(frozen=True)
class Entry:
    """One `key: value` of a block mapping: `key_start` where the key is written, `end` after the
    value's last non-space character."""

    key: str
    key_start: int
    value: Any  # Scalar | Mapping | Other
    end: int


@dataclass(frozen=True)
class Mapping:
    """A mapping; `flow` when written `{...}` (then `entries` is empty: it is edited as a whole)."""

    start: int
    end: int
    flow: bool
    entries: tuple[Entry, ...]
    anchor: str | None

    def get(self, key: str) -> Entry | None:
        """The entry whose key reads `key`, or None."""
        return next((entry for entry in self.entries if entry.key == key), None)


class Layout:
    """A parsed text with its line table: `root` is the first document's top node (None when empty)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [match.end() for match in _BREAK.finditer(text)]
        first = _BREAK.search(text)
        self.newline = first.group() if first is not None else "\n"
        self._bom = 1 if text.startswith("\ufeff") else 0
        self._token_starts = self._scalar_token_starts()
        self.root = self._parse()

    def offset(self, mark: Any) -> int:
        """The character offset of a libyaml mark."""
        line, column = int(mark.line), int(mark.column)
        return self.line_starts[line] + column + (self._bom if line == 0 else 0)

    def line_start(self, offset: int) -> int:
        """Offset of the first character of the line holding `offset`."""
        return max(start for start in self.line_starts if start <= offset)

    def line_end(self, offset: int) -> int:
        """Offset just after the line break that ends the line holding `offset` (the text's end if none)."""
        match = _BREAK.search(self.text, offset)
        return match.end() if match is not None else len(self.text)

    def lines_after(self, offset: int) -> list[tuple[int, int]]:
        """(start, end with its break) of every line after the one holding `offset`."""
        starts = [s for s in self.line_starts if s > offset and s < len(self.text)]
        return [(start, self.line_end(start)) for start in starts]

    def _trimmed(self, start: int, end: int) -> int:
        while end > start and self.text[end - 1] in " \t\r\n\x85\u2028\u2029":
            end -= 1
        return end

    def _scalar_token_starts(self) -> dict[tuple[int, int], tuple[int, int]]:
        # A scalar event's start includes its tag and anchor; the token's own start is the scalar.
        starts: dict[tuple[int, int], tuple[int, int]] = {}
        for token in yaml.scan(self.text, Loader=yaml_v3.parser_class()):
            if isinstance(token, yaml.tokens.ScalarToken):
                end, start = token.end_mark, token.start_mark
                if end is not None and start is not None:
                    starts[(end.line, end.column)] = (start.line, start.column)
        return starts

    def _parse(self) -> Any:
        parser = yaml_v3.parser_class()(self.text)
        try:
            events: list[Any] = []
            while parser.check_event():
                event = parser.get_event()
                events.append(event)
                if isinstance(event, yaml.events.DocumentEndEvent):
                    break
        finally:
            parser.dispose()
        starts = [i for i, e in enumerate(events) if isinstance(e, yaml.events.DocumentStartEvent)]
        if not starts or isinstance(events[starts[0] + 1], yaml.events.DocumentEndEvent):
            return None
        node, _ = self._node(events, starts[0] + 1)
        return node

    def _node(self, events: list[Any], index: int) -> tuple[Any, int]:
        """The node starting at events[index], and the index after it."""
        event = events[index]
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.events.ScalarEvent):
            end_mark: Any = event.end_mark
            line, column = self._token_starts.get((end_mark.line, end_mark.column), (0, 0))
            start = self.line_starts[line] + column + (self._bom if line == 0 else 0)
            start = max(start, self.offset(event.start_mark))
            end = self._trimmed(start, self.offset(end_mark))
            return Scalar(start, end, event.style or "", event.value, anchor), index + 1
        if isinstance(event, yaml.events.AliasEvent):
            return Other(self.offset(event.start_mark), self.offset(event.end_mark), None), index + 1
        start = self.offset(event.start_mark)
        flow = bool(event.flow_style)
        is_mapping = isinstance(event, yaml.events.MappingStartEvent)
        entries: list[Entry] = []
        end = start
        index += 1
        while not isinstance(events[index], yaml.events.CollectionEndEvent):
            if is_mapping:
                key, index = self._node(events, index)
                value, index = self._node(events, index)
                end = max(key.end, value.end)
                entries.append(Entry(key.value if isinstance(key, Scalar) else "", key.start, value, end))
            else:
                child, index = self._node(events, index)
                end = child.end
        if flow:
            end = self.offset(events[index].end_mark)
        if is_mapping:
            return Mapping(start, end, flow, () if flow else tuple(entries), anchor), index + 1
        return Other(start, end, anchor), index + 1
