"""Writing a break-glass change back into `Pulumi.<stack>.yaml`, every other byte intact.

After `cmkctl revoke` the world says "disabled" while the stack file still says
`enabled: true`; the next deployment would quietly undo the revocation. The fix is a commit
that sets `atlassian-cmk:enabled` and the revocation block. This module makes that edit at the
level of lines, guided by where libyaml's parser places each node (`yaml_layout`): a value is
swapped within its own span, keeping its quoting, case, spacing and trailing comment; a block is
inserted or removed as whole lines in the file's own indentation and line ending. So revoke then
restore gives the file back byte for byte, whoever wrote it (`pulumi config set` writes
`"true"`, quoted). The result is checked with the program's own validation before anything is
written.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from atlassian_cmk import yaml_layout, yaml_v3
from atlassian_cmk.config import NAMESPACE, StackConfig, shorten
from atlassian_cmk.stack_file import PROJECT_FILE, StackFileError, check_text, read_text
from atlassian_cmk.yaml_v3 import STR, resolve_plain

ENABLED_KEY: Final = f"{NAMESPACE}:enabled"
REVOCATION_KEY: Final = f"{NAMESPACE}:revocation"
ENROLLED_KEYS_KEY: Final = f"{NAMESPACE}:enrolledKeys"
NEXT_KEYS_KEY: Final = f"{NAMESPACE}:nextKeys"

_Edit = tuple[int, int, str]  # replace text[start:end] with the string
_UNPRINTABLE: Final = frozenset("\x85\u2028\u2029\ufeff")


def _printable(value: str) -> bool:
    return all(c in "\t" or (c.isprintable() and c not in _UNPRINTABLE) for c in value)


def _reads_back(source: str, value: str) -> bool:
    """`source`, written as a block mapping's value, is read by yaml.v3 as the string `value`."""
    try:
        node = yaml_v3.load(f"k: {source}\n")
    except yaml_v3.YamlError:
        return False
    scalar = node.get("k") if isinstance(node, dict) else None
    return isinstance(scalar, yaml_v3.Scalar) and scalar.tag == STR and scalar.text == value


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _double_quoted(value: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for char in value:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable() and char not in _UNPRINTABLE:
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def yaml_text(value: str, style: str = "") -> str:
    """`value` as YAML source that yaml.v3 reads as that very text, in `style` where it can be.

    Plain ("") only when yaml.v3 would type it as text and the syntax allows it (`0042`,
    `2024-01-01`, `a: b` are quoted); then single quotes; double quotes (escaped) for line
    breaks and characters YAML does not allow raw.
    """
    candidates = {"": value, "'": _single_quoted(value), '"': _double_quoted(value)}
    order = [style, "'", '"'] if style in candidates else ["", "'", '"']
    for choice in order:
        source = candidates[choice]
        if choice == "" and resolve_plain(value)[0] != STR:
            continue
        if (choice != "'" or _printable(value)) and _reads_back(source, value):
            return source
    raise StackFileError(f"cannot write {shorten(value)!r} as YAML text")


def _boolean_text(layout: yaml_layout.Layout, node: object, value: bool) -> str:
    """`value` in the old boolean's spelling: TRUE <-> FALSE, True <-> False, "true" <-> "false"."""
    word = "true" if value else "false"
    if not isinstance(node, yaml_layout.Scalar) or node.style not in ("", "'", '"'):
        return word
    old = node.value
    if old.lower() in ("true", "false"):
        word = word.upper() if old.isupper() else word.capitalize() if old[:1].isupper() else word
    return f"{node.style}{word}{node.style}"


def _layout(text: str, source: str) -> tuple[yaml_layout.Layout, yaml_layout.Mapping]:
    try:
        yaml_v3.load(text)
    except yaml_v3.YamlError as error:
        raise StackFileError(f"{source}: not valid YAML: {error}") from None
    layout = yaml_layout.Layout(text)
    root = layout.root
    entry = root.get("config") if isinstance(root, yaml_layout.Mapping) else None
    if entry is None or not isinstance(entry.value, yaml_layout.Mapping):
        raise StackFileError(f"{source}: expected a mapping with a 'config:' section")
    if entry.value.flow or not entry.value.entries:
        raise StackFileError(f"{source}: config: is written in flow style ({{...}}); write it as a block to edit it")
    return layout, entry.value


def _present(config: yaml_layout.Mapping, full_key: str) -> yaml_layout.Entry | None:
    """The entry as the file spells it: `atlassian-cmk:enabled`, or the legacy `atlassian-cmk:config:enabled`
    the engine also accepts (pulumi/pulumi sdk/go/common/resource/config/key.go `ParseKey`), so an edit
    changes that key instead of adding a second spelling the reader refuses as set twice."""
    namespace, _, name = full_key.partition(":")
    return config.get(full_key) or config.get(f"{namespace}:config:{name}")


def _swap(layout: yaml_layout.Layout, entry: yaml_layout.Entry, source_text: str, source: str) -> _Edit:
    """Replace only the value's own characters (tag, spacing and trailing comment stay)."""
    value = entry.value
    if getattr(value, "anchor", None) is not None:
        raise StackFileError(
            f"{source}: {entry.key}: carries an anchor (&{value.anchor}) other values may share; "
            "write it without the anchor to let cmkctl edit it"
        )
    if isinstance(value, yaml_layout.Scalar | yaml_layout.Other) and value.end > value.start:
        return value.start, value.end, source_text
    # An empty value (`key:`): write it after the colon.
    colon = layout.text.index(":", entry.key_start + len(entry.key))
    return colon + 1, colon + 1, f" {source_text}"


def _entry_lines(layout: yaml_layout.Layout, entry: yaml_layout.Entry, source: str) -> tuple[int, int]:
    """(start, end) of the whole lines an entry is written on."""
    start = layout.line_start(entry.key_start)
    if layout.text[start : entry.key_start].strip(" "):
        raise StackFileError(f"{source}: {entry.key}: not at the start of its line; write it as a block to edit it")
    return start, layout.line_end(entry.end)


def _indent(layout: yaml_layout.Layout, entry: yaml_layout.Entry) -> str:
    return layout.text[layout.line_start(entry.key_start) : entry.key_start]


def _step(layout: yaml_layout.Layout, config: yaml_layout.Mapping) -> str:
    """One level of the file's own indentation: that of the first nested block mapping under config:."""
    for entry in config.entries:
        if isinstance(entry.value, yaml_layout.Mapping) and entry.value.entries:
            inner = len(_indent(layout, entry.value.entries[0])) - len(_indent(layout, entry))
            if inner > 0:
                return " " * inner
    return _indent(layout, config.entries[0]) or "  "


def _block(layout: yaml_layout.Layout, config: yaml_layout.Mapping, key: str, fields: Mapping[str, str]) -> str:
    indent, step, nl = _indent(layout, config.entries[0]), _step(layout, config), layout.newline
    return f"{indent}{key}:{nl}" + "".join(f"{indent}{step}{name}: {yaml_text(v)}{nl}" for name, v in fields.items())


def _line(layout: yaml_layout.Layout, config: yaml_layout.Mapping, key: str, value: str) -> str:
    return f"{_indent(layout, config.entries[0])}{key}: {value}{layout.newline}"


def _at(layout: yaml_layout.Layout, offset: int, lines: str) -> _Edit:
    """Insert whole lines at a line start (a line break first where the text ends without one)."""
    if offset > 0 and layout.text[offset - 1] not in "\r\n\x85\u2028\u2029":
        lines = layout.newline + lines
    return offset, offset, lines


def _config_end(layout: yaml_layout.Layout, config: yaml_layout.Mapping) -> int:
    """Where a new key goes: after the last entry and the comment lines that follow it at its indentation
    (the commented examples the shipped stack file keeps last), before blank lines and the next top-level key."""
    depth = len(_indent(layout, config.entries[0]))
    insert = layout.line_end(config.entries[-1].end)
    for start, end in layout.lines_after(config.entries[-1].end):
        line = layout.text[start:end]
        stripped = line.strip()
        if stripped.startswith("#") and len(line) - len(line.lstrip(" ")) >= depth:
            insert = end
        elif stripped:
            break
    return insert


def _after_example(layout: yaml_layout.Layout, config: yaml_layout.Mapping, entry: yaml_layout.Entry) -> int:
    """Where a new revocation block goes: below `enabled`, and below the commented-out example of
    the block (a comment paragraph mentioning `revocation:`) when one follows it."""
    index = config.entries.index(entry)
    limit = config.entries[index + 1].key_start if index + 1 < len(config.entries) else len(layout.text)
    insert = layout.line_end(entry.end)
    in_example = False
    for start, end in layout.lines_after(entry.end):
        if start >= limit:
            break
        stripped = layout.text[start:end].strip()
        if stripped.startswith("#") and (in_example or "revocation:" in stripped):
            in_example, insert = True, end
        elif in_example:
            break
    return insert


def _apply(text: str, edits: list[_Edit]) -> str:
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _set_block(
    layout: yaml_layout.Layout,
    config: yaml_layout.Mapping,
    present: yaml_layout.Entry | None,
    key: str,
    fields: Mapping[str, str],
    where: int,
    source: str,
) -> list[_Edit]:
    """Edits that make `key` a block mapping of exactly `fields` (values swapped in place, in their style)."""
    if present is None:
        return [_at(layout, where, _block(layout, config, key, fields))]
    block = present.value
    if not isinstance(block, yaml_layout.Mapping) or block.flow or block.anchor is not None:
        start, end = _entry_lines(layout, present, source)
        return [(start, end, _block(layout, config, present.key, fields))]
    edits: list[_Edit] = []
    for entry in block.entries:
        if entry.key in fields:
            style = entry.value.style if isinstance(entry.value, yaml_layout.Scalar) else ""
            edits.append(_swap(layout, entry, yaml_text(fields[entry.key], style), source))
        else:
            start, end = _entry_lines(layout, entry, source)
            edits.append((start, end, ""))
    indent = _indent(layout, block.entries[0])
    new = [f"{indent}{name}: {yaml_text(v)}{layout.newline}" for name, v in fields.items() if block.get(name) is None]
    if new:
        edits.append(_at(layout, layout.line_end(block.entries[-1].end), "".join(new)))
    return edits


def with_revocation_fields(text: str, fields: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `enabled: false` and the revocation block holding exactly `fields`, in order.

    `fields`: name to text (`reason`, `ticket`, and any later field of the block); each value is
    quoted exactly where yaml.v3 would read it as anything but that text. An existing block is
    updated in place (other fields' lines removed); a new one goes below `enabled` and its
    commented example. Raises StackFileError when the file cannot be edited this way.
    """
    layout, config = _layout(text, source)
    edits: list[_Edit] = []
    enabled = _present(config, ENABLED_KEY)
    if enabled is not None:
        edits.append(_swap(layout, enabled, _boolean_text(layout, enabled.value, False), source))
        where = _after_example(layout, config, enabled)
    else:
        where = _config_end(layout, config)
        edits.append(_at(layout, where, _line(layout, config, ENABLED_KEY, "false")))
    edits += _set_block(layout, config, _present(config, REVOCATION_KEY), REVOCATION_KEY, fields, where, source)
    return _apply(text, edits)


def with_revocation(text: str, reason: str, ticket: str, source: str = "stack file") -> str:
    """The stack file with `enabled: false` and the revocation block (`reason`, `ticket`) added or updated."""
    return with_revocation_fields(text, {"reason": reason, "ticket": ticket}, source)


def with_restoration(text: str, source: str = "stack file") -> str:
    """The stack file with `enabled: true` and no revocation block (its lines removed whole)."""
    layout, config = _layout(text, source)
    edits: list[_Edit] = []
    enabled = _present(config, ENABLED_KEY)
    if enabled is not None:
        edits.append(_swap(layout, enabled, _boolean_text(layout, enabled.value, True), source))
    else:
        edits.append(_at(layout, _config_end(layout, config), _line(layout, config, ENABLED_KEY, "true")))
    revocation = _present(config, REVOCATION_KEY)
    if revocation is not None:
        start, end = _entry_lines(layout, revocation, source)
        edits.append((start, end, ""))
    return _apply(text, edits)


def with_key_generation(text: str, full_key: str, keys: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `full_key` (enrolledKeys; later generations alike) set to region -> ARN.

    An existing block is updated in place; a new one goes at the end of `config:`, after the
    commented examples the shipped stack file keeps there.
    """
    layout, config = _layout(text, source)
    edits = _set_block(layout, config, _present(config, full_key), full_key, keys, _config_end(layout, config), source)
    return _apply(text, edits)


def with_enrolled_keys(text: str, keys: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `atlassian-cmk:enrolledKeys` set to the given region -> key ARN map."""
    return with_key_generation(text, ENROLLED_KEYS_KEY, keys, source)


def with_next_keys(text: str, keys: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `atlassian-cmk:nextKeys` set to the next generation's region -> key ARN map."""
    return with_key_generation(text, NEXT_KEYS_KEY, keys, source)


def validate_text(text: str, source: str, project_dir: Path | None = None) -> StackConfig:
    """The edited text judged as cmkctl judges a stack file (with `project_dir`'s Pulumi.yaml).

    Raises StackFileError or StackConfigErrors.
    """
    project_text = read_text(project_dir / PROJECT_FILE) if project_dir is not None else None
    return check_text(text, source, project_text)


def unified_diff(path: Path, before: str, after: str) -> str:
    """The edit as a reviewer sees it in the pull request."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path.name}", f"b/{path.name}"
        )
    )


def write_stack_file(path: Path, text: str) -> None:
    """Validate, then replace the file atomically (a crash leaves the old file, never half a file)."""
    validate_text(text, str(path), path.parent)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:  # the text's own line endings
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
