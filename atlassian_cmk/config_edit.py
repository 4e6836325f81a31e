"""Writing a break-glass change back into `Pulumi.<stack>.yaml`, comments and layout intact.

After `cmkctl revoke` the world says "disabled" while the stack file still says
`enabled: true`; the next deployment would quietly undo the revocation. The fix is a commit
that sets `atlassian-cmk:enabled` and the revocation block. This module makes that edit with
ruamel.yaml's round-trip mode (the comments in the stack file are its documentation), and
checks the result with the program's own validation before anything is written.
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import ScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from atlassian_cmk.config import NAMESPACE, StackConfig
from atlassian_cmk.stack_file import PROJECT_FILE, StackFileError, check_text, read_text
from atlassian_cmk.yaml_v3 import STR, resolve_plain

ENABLED_KEY: Final = f"{NAMESPACE}:enabled"
REVOCATION_KEY: Final = f"{NAMESPACE}:revocation"
ENROLLED_KEYS_KEY: Final = f"{NAMESPACE}:enrolledKeys"

# (mapping, sequence, offset) indentations tried in turn; the first that reproduces the file
# unchanged is the file's own layout. The first entry is the layout of the shipped stack files.
_INDENTS: Final = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (2, 2, 2), (4, 4, 0))


def _round_trip_yaml(text: str) -> tuple[YAML, Any]:
    """A round-trip loader set to the file's own indentation, and the loaded document."""
    fallback: tuple[YAML, Any] | None = None
    for mapping, sequence, offset in _INDENTS:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096  # never re-wrap a long reason
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        document = yaml.load(text)
        if _dump(yaml, document) == text:
            return yaml, document
        fallback = fallback or (yaml, document)
    assert fallback is not None
    return fallback


def _dump(yaml: YAML, document: Any) -> str:
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _config_map(document: Any, source: str) -> CommentedMap:
    if not isinstance(document, CommentedMap) or not isinstance(document.get("config"), CommentedMap):
        raise StackFileError(f"{source}: expected a mapping with a 'config:' section")
    config: CommentedMap = document["config"]
    return config


def _present(config: CommentedMap, full_key: str) -> str | None:
    """The key as the file spells it: `atlassian-cmk:enabled`, or the legacy `atlassian-cmk:config:enabled`
    the engine also accepts (pulumi/pulumi sdk/go/common/resource/config/key.go `ParseKey`), so an edit
    changes that key instead of adding a second spelling the reader refuses as set twice."""
    namespace, _, name = full_key.partition(":")
    return next((key for key in (full_key, f"{namespace}:config:{name}") if key in config), None)


def _trailing_slot(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where ruamel keeps the comment lines that follow `key`'s value (inside nested values)."""
    value = container[key]
    if isinstance(value, CommentedMap) and len(value):
        return _trailing_slot(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and len(value):
        return _trailing_slot(value, len(value) - 1)
    return container, key, 2 if isinstance(container, CommentedMap) else 0


def _get_comment(slot: tuple[Any, Any, int]) -> str | None:
    container, key, position = slot
    entry = container.ca.items.get(key)
    token = entry[position] if entry and len(entry) > position else None
    return str(token.value) if token is not None else None


def _set_comment(slot: tuple[Any, Any, int], text: str | None) -> None:
    container, key, position = slot
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    entry[position] = CommentToken(text, CommentMark(0), None) if text and text != "\n" else None


def _split_after_example(comment: str | None) -> tuple[str | None, str | None]:
    """Split the comment after `enabled` into what stays with it and what follows a new revocation block.

    The commented-out example of the block (a paragraph mentioning `revocation:`) stays above
    the real block; the paragraphs after it describe the next key and move below the block.
    """
    if comment is None:
        return None, None
    lines = comment.split("\n")
    example = next(
        (i for i, line in enumerate(lines) if i > 0 and line.strip().startswith("#") and "revocation:" in line), None
    )
    if example is None:
        end = 0
    else:
        end = example
        while end + 1 < len(lines) and lines[end + 1].strip().startswith("#"):
            end += 1
    keep = "\n".join(lines[: end + 1]) + "\n"
    rest = "\n".join(lines[end + 1 :])
    move = "\n" + rest if rest.strip() else None
    return keep, move


def _boolean(old: Any, value: bool) -> Any:
    """The new boolean in the old value's style: `pulumi config set` writes `"false"` (a quoted
    string, which the engine passes as the same `false`); keeping the quotes keeps the bytes, so
    revoke then restore gives the file back unchanged."""
    if isinstance(old, ScalarString):
        return type(old)("true" if value else "false")
    return value


def _text(value: str) -> Any:
    """Text that the engine must read as text: quoted when yaml.v3 would type it plain (`0042`, `2024-01-01`)."""
    return SingleQuotedScalarString(value) if resolve_plain(value)[0] != STR else value


def with_revocation(text: str, reason: str, ticket: str, source: str = "stack file") -> str:
    """The stack file with `enabled: false` and the revocation block (added or updated)."""
    yaml, document = _round_trip_yaml(text)
    config = _config_map(document, source)
    enabled_key = _present(config, ENABLED_KEY) or ENABLED_KEY
    config[enabled_key] = _boolean(config.get(enabled_key), False)
    revocation_key = _present(config, REVOCATION_KEY)
    if revocation_key is not None and isinstance(config[revocation_key], CommentedMap):
        config[revocation_key]["reason"] = _text(reason)
        config[revocation_key]["ticket"] = _text(ticket)
        return _dump(yaml, document)
    block = CommentedMap([("reason", _text(reason)), ("ticket", _text(ticket))])
    if revocation_key is not None:
        config[revocation_key] = block
        return _dump(yaml, document)
    slot = _trailing_slot(config, enabled_key)
    keep, move = _split_after_example(_get_comment(slot))
    _set_comment(slot, keep)
    config.insert(list(config).index(enabled_key) + 1, REVOCATION_KEY, block)
    if move:
        _set_comment(_trailing_slot(config, REVOCATION_KEY), move)
    return _dump(yaml, document)


def with_restoration(text: str, source: str = "stack file") -> str:
    """The stack file with `enabled: true` and no revocation block; its trailing comments kept."""
    yaml, document = _round_trip_yaml(text)
    config = _config_map(document, source)
    enabled_key = _present(config, ENABLED_KEY) or ENABLED_KEY
    revocation_key = _present(config, REVOCATION_KEY)
    if revocation_key is not None:
        keys = list(config)
        following = _get_comment(_trailing_slot(config, revocation_key))
        index = keys.index(revocation_key)
        del config[revocation_key]
        if following and index > 0:
            eol, _, rest = following.partition("\n")
            carried = (f"  {eol.strip()}\n" if eol.strip() else "") + rest
            slot = _trailing_slot(config, keys[index - 1])
            _set_comment(slot, (_get_comment(slot) or "\n") + carried)
    config[enabled_key] = _boolean(config.get(enabled_key), True)
    return _dump(yaml, document)


def with_key_generation(text: str, full_key: str, keys: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `full_key` (enrolledKeys; later generations alike) set to region -> ARN.

    An existing block is updated in place; a new one goes at the end of `config:`, after the
    commented example the shipped stack file keeps there.
    """
    yaml, document = _round_trip_yaml(text)
    config = _config_map(document, source)
    present = _present(config, full_key)
    if present is not None and isinstance(config[present], CommentedMap):
        block: CommentedMap = config[present]
        for region in [r for r in block if r not in keys]:
            del block[region]
        for region, arn in keys.items():
            block[region] = arn
        return _dump(yaml, document)
    config[present or full_key] = CommentedMap(keys.items())
    return _dump(yaml, document)


def with_enrolled_keys(text: str, keys: Mapping[str, str], source: str = "stack file") -> str:
    """The stack file with `atlassian-cmk:enrolledKeys` set to the given region -> key ARN map."""
    return with_key_generation(text, ENROLLED_KEYS_KEY, keys, source)


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
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
