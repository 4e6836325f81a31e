"""YAML read as gopkg.in/yaml.v3 reads it: the parser the Pulumi engine uses for every config file.

The engine (`sdk/go/common/encoding/marshal.go` in pulumi/pulumi imports `gopkg.in/yaml.v3`)
types each plain scalar before Pulumi turns it into the string a program sees, so `0012345` is
the octal number 5349 and `FALSE` the boolean false. This module reproduces that typing:

- syntax: libyaml's scanner and parser (PyYAML's CParser). yaml.v3's `scannerc.go`/`parserc.go`
  are a Go port of libyaml, so both accept and refuse the same texts, with the same causes.
- typing: `resolve()` in go-yaml/yaml v3 `resolve.go`, rule for rule (see `resolve_plain`).
- aliases: expanded with yaml.v3's own budget (`decode.go` `allowedAliasRatio`: beyond 1000
  decoded nodes, at most 99% may come from aliases, falling to 10% from 400,000 to 4,000,000
  nodes), so an alias bomb fails with yaml.v3's "document contains excessive aliasing" after a
  bounded amount of work instead of exhausting memory.
- mapping keys: duplicates refused with yaml.v3's message (`decode.go` `d.mapping` with
  `uniqueKeys`): `line N: mapping key "k" already defined at line M`.

The result is a tree of `dict`/`list`/`Scalar`, where every `Scalar` keeps its text, its
yaml.v3 tag, its Go value and where it was written, so callers can say both what the engine
reads and what the human wrote.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import yaml

Node = Any
"""A decoded value: `dict[str, Node]`, `list[Node]` or `Scalar`."""

STR: Final = "!!str"
INT: Final = "!!int"
FLOAT: Final = "!!float"
BOOL: Final = "!!bool"
NULL: Final = "!!null"
TIMESTAMP: Final = "!!timestamp"
_LONG_PREFIX: Final = "tag:yaml.org,2002:"
_RESOLVABLE: Final = ("", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP)

_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1

# resolve.go `resolveMapList`: the only spellings of booleans, null and special floats.
_RESOLVE_MAP: Final[dict[str, tuple[str, object]]] = {
    **{s: (BOOL, True) for s in ("true", "True", "TRUE")},
    **{s: (BOOL, False) for s in ("false", "False", "FALSE")},
    **{s: (NULL, None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: (FLOAT, math.nan) for s in (".nan", ".NaN", ".NAN")},
    **{s: (FLOAT, math.inf) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: (FLOAT, -math.inf) for s in ("-.inf", "-.Inf", "-.INF")},
}
# resolve.go `resolveTable`: the first character decides which rules are tried at all.
_HINTS: Final = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"), **dict.fromkeys("yYnNtTfFoO~", "M")}
_YAML_STYLE_FLOAT: Final = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_DOT_FLOAT: Final = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?\Z")
# resolve.go `allowedTimestampFormats`, as Go's time.Parse reads them ("1" = one or two digits).
_DATE = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_CLOCK = r"(\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?"
_TIMESTAMP_FORMATS: Final = (
    re.compile(rf"^{_DATE}[Tt]{_CLOCK}(Z|[+-]\d{{2}}:\d{{2}})\Z"),
    re.compile(rf"^{_DATE} {_CLOCK}()\Z"),
    re.compile(rf"^{_DATE}()()()()()\Z"),
)

# decode.go: alias_ratio_range_low / high.
_ALIAS_RATIO_LOW: Final = 400_000
_ALIAS_RATIO_HIGH: Final = 4_000_000

MERGE_KEY: Final = "<<"
"""yaml.v3's merge key (resolve.go `mergeTag`); refused anywhere as a mapping key."""


class YamlError(ValueError):
    """The text is not YAML yaml.v3 would decode; the message has line, column and the parser's cause."""


@dataclass(frozen=True)
class GoTime:
    """A yaml.v3 timestamp (Go `time.Time`); `go_string` is what Go's `Time.String()` prints."""

    moment: datetime
    offset_name: str

    @property
    def go_string(self) -> str:
        """`2006-01-02 15:04:05.999999999 -0700 MST`, as Pulumi passes a timestamp (object.go)."""
        m = self.moment
        text = m.strftime("%Y-%m-%d %H:%M:%S")
        if m.microsecond:
            text += ("." + f"{m.microsecond:06d}").rstrip("0")
        offset = m.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        return f"{text} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d} {self.offset_name}"


@dataclass(frozen=True)
class Scalar:
    """One scalar as yaml.v3 decodes it into an `interface{}`.

    `text`: the scalar's text after YAML unescaping; `tag`: yaml.v3's resolved tag (`!!str`,
    `!!int`, `!!float`, `!!bool`, `!!null`, `!!timestamp`); `value`: the Go value (str, int,
    float, bool, None or GoTime); `plain`: written without quotes or block style and without an
    explicit tag; `line`/`column`: 1-based position in the file.
    """

    text: str
    tag: str
    value: object
    plain: bool
    line: int
    column: int


def resolve_plain(text: str, tag: str = "") -> tuple[str, object]:
    """resolve.go `resolve(tag, in)`: yaml.v3's tag and Go value for a scalar's text.

    `tag` is "" for a plain scalar or an explicit short tag (`!!int`). Raises YamlError where
    yaml.v3 fails ("cannot decode !!str `x` as a !!int").
    """
    if tag not in _RESOLVABLE:
        return tag, text
    rtag, out = _resolve_untagged(text, tag)
    if tag in ("", rtag, STR):
        return (STR, text) if tag == STR else (rtag, out)
    if tag == FLOAT and rtag == INT and isinstance(out, int):
        return FLOAT, float(out)
    raise YamlError(f"cannot decode {rtag} `{text}` as a {tag}")


def _resolve_untagged(text: str, tag: str) -> tuple[str, object]:
    hint = _HINTS.get(text[0], "." if text[0] == "." else None) if text else "N"
    if hint is None or tag == STR:
        return STR, text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if hint == "." and _DOT_FLOAT.match(text):
        value = float(text)
        if math.isfinite(value):  # Go's ParseFloat fails with ErrRange past float64
            return FLOAT, value
    if hint in ("D", "S"):
        if tag in ("", TIMESTAMP):
            stamp = _parse_timestamp(text)
            if stamp is not None:
                return TIMESTAMP, stamp
        plain = text.replace("_", "")  # yaml.v3 drops every underscore before reading a number
        number = _go_parse_int(plain, signed=True)
        if number is None:
            number = _go_parse_int(plain, signed=False)
        if number is not None:
            return INT, number
        if _YAML_STYLE_FLOAT.match(plain):
            value = float(plain)
            if math.isfinite(value):
                return FLOAT, value
        for prefix, base in (("0b", 2), ("-0b", 2), ("0o", 8), ("-0o", 8)):
            if plain.startswith(prefix):
                digits = plain[len(prefix) :]
                parsed = _digits(digits, base)
                if parsed is not None:
                    value_int = -parsed if prefix.startswith("-") else parsed
                    if _INT64[0] <= value_int <= _UINT64_MAX:
                        return INT, value_int
    return STR, text


def _digits(digits: str, base: int) -> int | None:
    allowed = "0123456789abcdefABCDEF"[: base + (base > 10) * (base - 10)]
    if not digits or any(c not in allowed for c in digits):
        return None
    return int(digits, base)


def _go_parse_int(text: str, *, signed: bool) -> int | None:
    """Go's strconv.ParseInt(s, 0, 64) (signed) or ParseUint(s, 0, 64): base from the prefix.

    A leading `0` means octal (legacy YAML 1.1, kept by yaml.v3), `0x` hex, `0o` octal, `0b` binary.
    """
    body, negative = text, False
    if signed and body[:1] in ("+", "-"):
        negative, body = body[0] == "-", body[1:]
    base, digits = 10, body
    lowered = body[:2].lower()
    if lowered in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[lowered], body[2:]
    elif body.startswith("0") and len(body) > 1:
        base, digits = 8, body[1:]
    parsed = _digits(digits, base)
    if parsed is None:
        return None
    value = -parsed if negative else parsed
    low, high = _INT64 if signed else (0, _UINT64_MAX)
    return value if low <= value <= high else None


def _parse_timestamp(text: str) -> GoTime | None:
    """resolve.go `parseTimestamp`: the formats yaml.v3 tries with Go's time.Parse."""
    for pattern in _TIMESTAMP_FORMATS:
        match = pattern.match(text)
        if match is None:
            continue
        year, month, day, hour, minute, second, fraction, zone = (match.group(i) for i in range(1, 9))
        try:
            if not 1 <= int(month) <= 12 or not 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]:
                continue
            micro = int((fraction or ".0")[1:7].ljust(6, "0"))
            tz, name = UTC, "UTC"
            if zone and zone != "Z":
                sign = -1 if zone[0] == "-" else 1
                delta = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
                if delta:
                    # Go's time.Parse names a foreign fixed offset after itself ("+0200 +0200")
                    # unless it matches the local zone: the engine's machine decides. Offsets are
                    # refused wherever they matter (text keys), so this rare case stays approximate.
                    tz, name = timezone(delta), f"{'+' if sign > 0 else '-'}{zone[1:3]}{zone[4:6]}"
            moment = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tz
            )
        except ValueError:
            continue
        return GoTime(moment, name)
    return None


def go_float_text(value: float) -> str:
    """Go's encoding/json text of a float64 (`floatEncoder`): how Pulumi passes a YAML float.

    `1e3` becomes `1000`, `1.5e-07` becomes `1.5e-7`; NaN and infinities cannot be encoded
    (Go's json.Marshal fails, and so does the engine).
    """
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    # Python's repr and Go's strconv both give the shortest digits that read back exactly.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # abs(value) == 0.DIGITS * 10**point
    sign = "-" if value < 0 else ""
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        exp = point - 1
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_text = f"{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if exp_text.startswith("-0"):
            exp_text = "-" + exp_text[2:]  # encoding/json: "clean up e-09 to e-9"
        return f"{sign}{body}e{exp_text}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


MAX_NODES: Final = 100_000
"""This reader's own bound on decoded values, below yaml.v3's (which lets a 1 MB file expand to over
a million): a stack file holds hundreds, and a bounded count keeps time and memory small."""


_HUNDREDS: Final = "a stack file holds hundreds"


class _AliasBudget:
    """decode.go `d.unmarshal`: count decoded nodes and those reached through an alias."""

    def __init__(self) -> None:
        self.decoded = 0
        self.aliased = 0
        self.depth = 0

    def count(self, line: int) -> None:
        self.decoded += 1
        if self.decoded > MAX_NODES:
            raise YamlError(
                f"line {line}: more than {MAX_NODES} values once aliases are expanded; a stack file has hundreds"
            )
        if self.depth > 0:
            self.aliased += 1
        if (
            self.aliased > 100
            and self.decoded > 1000
            and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
        ):
            raise YamlError(
                f"line {line}: document contains excessive aliasing (yaml.v3's limit; the engine refuses it too)"
            )


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW))


def parser_class() -> Any:
    """libyaml's parser class (PyYAML's CSafeLoader), or its pure-Python port where libyaml is missing."""
    # Only the parser's events are used (never a loader's constructors): CSafeLoader is libyaml,
    # SafeLoader its pure-Python port, for machines without libyaml.
    return getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


def _events(text: str) -> list[Any]:
    try:
        parser = parser_class()(text)
        events: list[Any] = []
        try:
            while parser.check_event():
                events.append(parser.get_event())
                if len(events) > MAX_NODES:
                    line = _position(events[-1])[0]
                    raise YamlError(f"line {line}: more than {MAX_NODES} values; {_HUNDREDS}")
        finally:
            parser.dispose()
        return events
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        cause = "; ".join(part for part in (error.problem, error.context) if part)
        if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
            cause += " (a tab: YAML indents with spaces)"
        raise YamlError(f"{where}{cause}") from None
    except yaml.reader.ReaderError as error:
        # libyaml's reader reports an offset only; yaml.v3 (readerc.go) refuses the same characters.
        line, column = _line_column(text, error.position)
        raise YamlError(
            f"line {line}, column {column}: unacceptable character #x{error.character:04x}: {error.reason}"
        ) from None
    except yaml.YAMLError as error:
        raise YamlError(str(error).strip().splitlines()[0]) from None


def _line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of libyaml's offset, a UTF-8 byte offset into `text`."""
    before = text.encode("utf-8")[: max(offset, 0)].decode("utf-8", errors="ignore")
    offset = len(before)
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def load(text: str) -> Node:
    """The first document of `text` decoded as yaml.v3 decodes into `interface{}`; None when empty.

    Raises YamlError (syntax, duplicate keys, excessive aliasing, unknown tags, and merge keys `<<`:
    yaml.v3 merges them, this reader refuses them anywhere, with line and column).
    """
    events = _events(text)
    ends: dict[int, int] = {}
    anchors: dict[str, int] = {}
    open_nodes: list[int] = []
    root: int | None = None
    for index, event in enumerate(events):
        if isinstance(event, yaml.events.DocumentStartEvent):
            if root is not None:
                break  # the engine reads the first document only
            root = index + 1
            continue
        if isinstance(event, yaml.events.AliasEvent | yaml.events.ScalarEvent):
            ends[index] = index + 1
        elif isinstance(event, yaml.events.CollectionStartEvent):
            open_nodes.append(index)
            if len(open_nodes) > _MAX_DEPTH:
                line = _position(event)[0]
                raise YamlError(f"line {line}: nested more than {_MAX_DEPTH} levels deep")
            continue
        elif isinstance(event, yaml.events.CollectionEndEvent):
            ends[open_nodes[-1]] = index + 1
            index = open_nodes.pop()
        else:
            continue
        started = events[index]
        if getattr(started, "anchor", None) is not None and not isinstance(started, yaml.events.AliasEvent):
            anchors[started.anchor] = index
    if root is None or root not in ends:
        return None
    return _Decoder(events, ends, anchors).decode(root)


_MAX_DEPTH: Final = 100
"""Nesting beyond this is refused: a stack file needs a handful of levels."""


def _position(event: Any) -> tuple[int, int]:
    """1-based line and column where an event starts."""
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


class _Decoder:
    def __init__(self, events: list[Any], ends: dict[int, int], anchors: dict[str, int]) -> None:
        self.events = events
        self.ends = ends
        self.anchors = anchors
        self.budget = _AliasBudget()

    def decode(self, index: int) -> Node:
        event = self.events[index]
        line, column = _position(event)
        self.budget.count(line)
        if isinstance(event, yaml.events.AliasEvent):
            if event.anchor not in self.anchors:
                raise YamlError(f'line {line}: unknown anchor "{event.anchor}" referenced')
            if self.budget.depth >= _MAX_DEPTH:
                raise YamlError(f"line {line}: aliases nested more than {_MAX_DEPTH} levels deep")
            self.budget.depth += 1
            try:
                return self.decode(self.anchors[event.anchor])
            finally:
                self.budget.depth -= 1
        if isinstance(event, yaml.events.ScalarEvent):
            return _scalar(event, line, column)
        child = index + 1
        if isinstance(event, yaml.events.SequenceStartEvent):
            items: list[Node] = []
            while not isinstance(self.events[child], yaml.events.SequenceEndEvent):
                items.append(self.decode(child))
                child = self.ends[child]
            return items
        mapping: dict[str, Node] = {}
        seen: dict[str, int] = {}
        while not isinstance(self.events[child], yaml.events.MappingEndEvent):
            key_line, key_column = _position(self.events[child])
            key = self.decode(child)
            value_index = self.ends[child]
            if not isinstance(key, Scalar):
                raise YamlError(f"line {key_line}: a mapping key must be a scalar")
            if key.text == MERGE_KEY:
                # yaml.v3 merges a plain (or `!`-tagged) `<<` key into the mapping: decode.go `isMerge`,
                # the parser's default tag for a plain `<<` (decode.go `parser.scalar`) and `d.merge`,
                # also into the engine's stack-file struct. Refused rather than reproduced: a merge hides
                # keys from a reader of the file. A quoted "<<" is a plain key to yaml.v3; refused too.
                raise YamlError(
                    f"line {key_line}, column {key_column}: merge key (<<) refused: the Pulumi engine (yaml.v3) "
                    "merges its values into this mapping; write the keys out"
                )
            if key.text in seen:
                # decode.go d.mapping: "line %d: mapping key %#v already defined at line %d"
                raise YamlError(f'line {key_line}: mapping key "{key.text}" already defined at line {seen[key.text]}')
            seen[key.text] = key_line
            mapping[key_name(key)] = self.decode(value_index)
            child = self.ends[value_index]
        return mapping


def key_name(key: Scalar) -> str:
    """A mapping key as Pulumi names it: `fmt.Sprintf("%v", k)` of the decoded key (object.go)."""
    return engine_scalar_text(key) if key.tag != STR else key.text


def _scalar(event: Any, line: int, column: int) -> Scalar:
    text: str = event.value
    if event.tag == "!":
        return Scalar(text, STR, text, False, line, column)  # the non-specific tag: a string
    explicit = event.tag or ""
    if explicit.startswith(_LONG_PREFIX):
        explicit = "!!" + explicit[len(_LONG_PREFIX) :]
    plain = event.style in (None, "") and not explicit
    if explicit and explicit not in _RESOLVABLE:
        raise YamlError(f"line {line}: tag {explicit} is not read here; write the value without a tag")
    if not plain and not explicit:
        return Scalar(text, STR, text, False, line, column)  # decode.go `indicatedString`
    tag, value = resolve_plain(text, explicit)
    return Scalar(text, tag, value, plain, line, column)


def engine_scalar_text(scalar: Scalar) -> str:
    """How Pulumi passes a top-level scalar to a program (object.go `MarshalString`).

    Booleans, ints and floats as their JSON text, timestamps as Go's `Time.String()`, null as
    `null`; strings as written. Raises ValueError for NaN/Inf (the engine fails on them too).
    """
    value = scalar.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_text(value)
    if isinstance(value, GoTime):
        return value.go_string
    if value is None:
        return "null"
    return str(value)
