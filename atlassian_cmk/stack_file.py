"""`Pulumi.yaml` + `Pulumi.<stack>.yaml` read exactly as the Pulumi engine reads them.

The program and the policy pack never read these files: the engine does, and hands them
`PULUMI_CONFIG` (full key to string). cmkctl, `cmkctl impact` and the rehearsal harness read
the files themselves, so this module computes that same map, step by step as the engine does:

1. YAML: yaml.v3's syntax and typing of plain scalars (`atlassian_cmk.yaml_v3`): `FALSE` is
   false, `0012345` the octal number 5349, `1e3` the float 1000, `2024-01-01` a timestamp.
2. Stack config (`sdk/go/common/resource/config/` in pulumi/pulumi): every key must parse as
   `<namespace>:<name>` (`key.go` `ParseKey`; a bare key is refused); each value becomes a
   string as `object.go` `MarshalString` makes it: booleans/numbers as JSON text, timestamps
   as Go's `Time.String()`, strings as written, objects and lists as JSON; `{secure: ...}` is
   a secret (`isSecureValue`), which the engine decrypts and names in PULUMI_CONFIG_SECRET_KEYS.
3. Project config (`pkg/workspace/config.go` `mergeConfig`, `sdk/go/common/workspace/project.go`
   `RewriteShorthandConfigValues`): `Pulumi.yaml` `config:` keys (bare = this project's
   namespace) with a `default` or `value` fill in what the stack file does not set, a string,
   int or bool as `fmt.Sprintf("%v")`, anything else as JSON; a key of this namespace with
   neither is required; `type:` is checked against the stack's value.

On top of the engine's reading, for people: the per-scalar facts (`Scalar`: the text written,
yaml.v3's tag, line) of this namespace, so a text key (see `config.TEXT_PATHS`) written as a
plain scalar that the engine would turn into a number, boolean, null or timestamp is refused
with the advice to quote it (`typing_problems`); secrets of this namespace are refused
(`secret_problems`); a stack importing a Pulumi ESC environment is refused, since cmkctl
cannot see what it sets. Files are bounded (`MAX_FILE_BYTES`), must be UTF-8, and every
message names the file, line and column.

Adding a key: register it in `config.KEYS` and, if it holds text anywhere, its paths in
`config.TEXT_PATHS`; this reader needs no change.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from atlassian_cmk import yaml_v3
from atlassian_cmk.config import (
    NAMESPACE,
    SECRET_REFUSAL,
    ConfigError,
    StackConfig,
    StackConfigErrors,
    is_text_path,
    parse_stack_config,
    shorten,
)
from atlassian_cmk.naming import stack_name_problem
from atlassian_cmk.yaml_v3 import Node, Scalar

MAX_FILE_BYTES: Final = 1024 * 1024
"""The largest `Pulumi.yaml` or stack file read: real ones are a few KB, and impact reads pull requests' files."""

PROJECT_FILE: Final = "Pulumi.yaml"
_NO_NAN: Final = "cannot be passed to a program (Go's JSON has no NaN or infinity)"


class StackFileError(ValueError):
    """The file is missing, too large, not UTF-8, not YAML, or holds something the engine would refuse."""


@dataclass(frozen=True)
class EngineConfig:
    """What the engine hands the program for one stack.

    `values`: PULUMI_CONFIG, full key to string (objects and lists as JSON text); a secret's
    value is not known here, so secret keys are absent from it and listed in `secret_keys`
    (PULUMI_CONFIG_SECRET_KEYS). `scalars`: every scalar of this namespace that reached
    `values`, by path (`atlassian-cmk:revocation.ticket`, `atlassian-cmk:regions[1]`), with
    the file it came from. `secrets`: paths of this namespace written as `{secure: ...}`.
    `environment`: the stack imports a Pulumi ESC environment.
    """

    values: dict[str, str]
    secret_keys: tuple[str, ...] = ()
    scalars: dict[str, tuple[str, Scalar]] = field(default_factory=dict)
    secrets: dict[str, tuple[str, Scalar]] = field(default_factory=dict)
    environment: bool = False


def stack_file_path(project_dir: Path, stack: str) -> Path:
    """`<project_dir>/Pulumi.<stack>.yaml`; raises StackFileError for a stack name that is not one."""
    problem = stack_name_problem(stack)
    if problem is not None:
        raise StackFileError(f"--stack: {shorten(stack)!r} is not allowed; {problem}")
    return project_dir / f"Pulumi.{stack}.yaml"


def read_text(path: Path, *, missing: str | None = None) -> str | None:
    """The file's text (bounded, UTF-8); None when it does not exist and `missing` is None.

    Raises StackFileError for a symbolic link, a FIFO or any other non-regular file (never followed,
    never waited on), a file larger than MAX_FILE_BYTES (at most that many bytes are read), or non-UTF-8.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        if missing is None:
            return None
        raise StackFileError(f"{path}: {missing}") from None
    except OSError as error:
        raise StackFileError(f"{path}: cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise StackFileError(f"{path}: is {kind}; allowed: a regular file in the project folder")
    try:
        # O_NOFOLLOW and O_NONBLOCK: a file swapped for a link or a FIFO after the check is refused, not
        # followed out of the project folder or waited on; fstat confirms what was opened.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise StackFileError(f"{path}: cannot be read ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise StackFileError(f"{path}: is not a regular file; allowed: a regular file in the project folder")
        data = handle.read(MAX_FILE_BYTES + 1)
    return decode_text(data, str(path))


def too_large(source: str) -> StackFileError:
    """The error for a file over MAX_FILE_BYTES."""
    return StackFileError(f"{source}: larger than {MAX_FILE_BYTES} bytes; allowed: a stack file of at most 1 MiB")


def decode_text(data: bytes, source: str) -> str:
    """Bytes of a config file as text; StackFileError when too large or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise too_large(source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(
            f"{source}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); save it as UTF-8"
        ) from None


def _load_yaml(text: str, source: str) -> Node:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise too_large(source)
    try:
        return yaml_v3.load(text)
    except yaml_v3.YamlError as error:
        raise StackFileError(f"{source}: not valid YAML: {error}") from None


def _at(source: str, scalar: Scalar | None) -> str:
    return f"{source}:{scalar.line}" if scalar is not None else source


def parse_key(text: str) -> tuple[str, str] | None:
    """key.go `ParseKey`: `<namespace>:<name>` or `<namespace>:config:<name>`; None otherwise."""
    parts = text.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


def _secure(node: Node) -> Scalar | None:
    """object.go `isSecureValue`: a mapping whose only key is `secure`, with a string value."""
    if isinstance(node, dict) and list(node) == ["secure"]:
        value = node["secure"]
        if isinstance(value, Scalar) and isinstance(value.value, str):
            return value
    return None


def _go_value(node: Node, path: str, source: str, out: EngineConfig) -> Any:
    """A value as object.go's `unmarshalObject` holds it, ready for JSON; records scalars and secrets."""
    secret = _secure(node)
    if secret is not None:
        out.secrets[path] = (source, secret)
        return {"secure": secret.value}
    if isinstance(node, dict):
        return {name: _go_value(child, f"{path}.{name}", source, out) for name, child in node.items()}
    if isinstance(node, list):
        return [_go_value(child, f"{path}[{index}]", source, out) for index, child in enumerate(node)]
    out.scalars[path] = (source, node)
    return _json_scalar(node, path, source)


def _json_scalar(scalar: Scalar, path: str, source: str) -> Any:
    value = scalar.value
    if isinstance(value, yaml_v3.GoTime):
        return value.go_string  # object.go: case time.Time -> v.String()
    if isinstance(value, float) and not isinstance(value, bool):
        try:
            yaml_v3.go_float_text(value)
        except ValueError:
            raise StackFileError(f"{_at(source, scalar)}: {path}: {scalar.text} {_NO_NAN}") from None
        return value
    return value


def _go_json(value: Any) -> str:
    """Go's json.Marshal of a decoded value: keys sorted, no spaces, floats as Go prints them,
    `<`, `>`, `&`, U+2028 and U+2029 escaped (encoding/json's HTML-safe default)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json(str(k))}:{_go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    if isinstance(value, float) and not isinstance(value, bool):
        return yaml_v3.go_float_text(value)
    text = json.dumps(value, ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _engine_text(node: Node, full_key: str, source: str, out: EngineConfig) -> str | None:
    """object.go `MarshalString` of a stack-file value; None for a secret (not readable here)."""
    go_value = _go_value(node, full_key, source, out)
    if _secure(node) is not None or _contains_secret(go_value):
        return None
    if isinstance(node, Scalar):
        return _scalar_text(node, full_key, source)
    return _go_json(go_value)


def _contains_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == ["secure"] or any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def _scalar_text(scalar: Scalar, full_key: str, source: str) -> str:
    try:
        return yaml_v3.engine_scalar_text(scalar)
    except ValueError:
        raise StackFileError(f"{_at(source, scalar)}: {full_key}: {scalar.text} {_NO_NAN}") from None


@dataclass(frozen=True)
class _ProjectKey:
    full_key: str
    default: Node | None
    value: Node | None
    type: str | None
    line: Scalar | None
    items: tuple[str, ...] | None = None


def _project_config(text: str | None, source: str) -> list[_ProjectKey]:
    """`Pulumi.yaml`'s `config:` block, shorthand rewritten as project.go does."""
    if text is None:
        return []
    document = _load_yaml(text, source)
    if not isinstance(document, dict):
        raise StackFileError(f"{source}: expected a mapping with name: {NAMESPACE}")
    name = document.get("name")
    if not isinstance(name, Scalar) or name.text != NAMESPACE:
        shown = name.text if isinstance(name, Scalar) else name
        raise StackFileError(
            f"{_at(source, name if isinstance(name, Scalar) else None)}: name: {shorten(shown)!r} is not allowed; "
            f"allowed: {NAMESPACE} (the project name is the namespace of every key)"
        )
    if "stackConfigDir" in document or isinstance(document.get("config"), Scalar):
        raise StackFileError(f"{source}: stackConfigDir is not supported; allowed: stack files next to Pulumi.yaml")
    config = document.get("config")
    if config is None:
        return []
    if not isinstance(config, dict):
        raise StackFileError(f"{source}: config: must be a mapping of keys to types or values")
    keys: list[_ProjectKey] = []
    spelled: dict[str, str] = {}
    for raw_key in sorted(config):
        node = config[raw_key]
        parsed = (NAMESPACE, raw_key) if ":" not in raw_key else parse_key(raw_key)
        if parsed is None:
            raise StackFileError(
                f"{source}: config: could not parse {shorten(raw_key)} as a configuration key "
                "(configuration keys should be of the form `<namespace>:<name>`)"
            )
        full_key = f"{parsed[0]}:{parsed[1]}"
        if full_key in spelled:
            # pkg/workspace/config.go mergeConfig walks the keys sorted and skips a key already set, so
            # the engine silently takes the first spelling; a reader of the file cannot tell which.
            raise StackFileError(
                f"{_at(source, _first(node))}: config: {shorten(raw_key)!r} and {shorten(spelled[full_key])!r} "
                f"both set {full_key} (the engine takes {shorten(spelled[full_key])!r} and ignores the other); "
                "allowed: one of them"
            )
        spelled[full_key] = raw_key
        own = parsed[0] == NAMESPACE
        if isinstance(node, list) or (
            isinstance(node, Scalar) and node.tag in (yaml_v3.STR, yaml_v3.INT, yaml_v3.BOOL)
        ):
            # project.go RewriteShorthandConfigValues: the project's own keys get a default, others a value.
            keys.append(_ProjectKey(full_key, node if own else None, None if own else node, None, _first(node)))
            continue
        if not isinstance(node, dict):
            raise StackFileError(
                f"{_at(source, _first(node))}: config: {raw_key}: expected a value, or a mapping with type and default"
            )
        unknown = set(node) - {"type", "description", "items", "default", "value", "secret"}
        if unknown:
            raise StackFileError(f"{source}: config: {raw_key}: unknown field {sorted(unknown)[0]!r}")
        type_node = node.get("type")
        type_name = type_node.text if isinstance(type_node, Scalar) else None
        items = _items(node.get("items"))
        if own and type_name == "array" and items is None:
            # project.go Project.Validate, word for word.
            raise StackFileError(
                f"{source}: The configuration key '{raw_key}' declares an array but does not specify the "
                "underlying type via the 'items' attribute"
            )
        default, value = _non_null(node.get("default")), _non_null(node.get("value"))
        if default is not None and value is not None:
            raise StackFileError(
                f"{source}: project config '{raw_key}' cannot have both a 'default' and 'value' attribute"
            )
        # project.go Project.Validate: only the project's own keys have a type and a default.
        if not own and (type_name is not None or default is not None):
            field_name = "type" if type_name is not None else "default value"
            raise StackFileError(
                f"{source}: Configuration key '{raw_key}' is not namespaced by the project and should not define a "
                f"{field_name}"
            )
        if type_name is not None and default is not None and not _type_matches(type_name, _plain(default), items):
            raise StackFileError(
                f"{source}: The default value specified for configuration key '{raw_key}' is not of the expected "
                f"type '{type_name}'"
            )
        keys.append(_ProjectKey(full_key, default, value, type_name, _first(node), items))
    return keys


def _items(node: Node | None) -> tuple[str, ...] | None:
    """project.go `ProjectConfigItemsType` (`items: {type: ..., items: ...}`) as the chain of item type names."""
    chain: list[str] = []
    while isinstance(node, dict):
        kind = node.get("type")
        chain.append(kind.text if isinstance(kind, Scalar) else "")
        node = node.get("items")
    return tuple(chain) or None


def _non_null(node: Node | None) -> Node | None:
    return None if isinstance(node, Scalar) and node.tag == yaml_v3.NULL else node


def _first(node: Node) -> Scalar | None:
    if isinstance(node, Scalar):
        return node
    children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found = _first(child)
        if found is not None:
            return found
    return None


def _project_value_text(node: Node, full_key: str, source: str, out: EngineConfig) -> str:
    """config.go `createConfigValue`: string/int/bool as `%v`, anything else as JSON."""
    if isinstance(node, Scalar):
        out.scalars[full_key] = (source, node)
        go_int = node.tag == yaml_v3.INT and isinstance(node.value, int) and node.value < 2**63
        if node.tag in (yaml_v3.STR, yaml_v3.BOOL) or go_int:
            return _scalar_text(node, full_key, source)
        if isinstance(node.value, yaml_v3.GoTime):
            moment = node.value.moment
            return json.dumps(moment.isoformat().replace("+00:00", "Z"))  # json.Marshal(time.Time): RFC 3339
    text = _engine_text(node, full_key, source, out)
    if text is None:
        raise StackFileError(f"{source}: config: {full_key}: a secret default cannot be read here")
    return text


_GO_ATOI: Final = re.compile(r"^[+-]?[0-9]+\Z")  # strconv.Atoi: base 10, no underscores or spaces


def _type_matches(type_name: str, value: Any, items: tuple[str, ...] | None = None) -> bool:
    """project.go `ValidateConfigValue`: `value` as Go holds it (a stack value's text, or its JSON
    decoded when it is an object; a default as yaml.v3 decoded it). Unknown type names pass here;
    `Project.Validate` has refused them already in the engine."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return isinstance(value, str) and bool(_GO_ATOI.match(value))
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "array":
        # ValidateConfigValue: an array needs its items type, and every item must match it.
        return (
            isinstance(value, list)
            and items is not None
            and all(_type_matches(items[0], item, items[1:] or None) for item in value)
        )
    if type_name == "object":
        return isinstance(value, dict)
    return True


def _stack_value_for_type(text: str, is_object: bool) -> Any:
    # config.go validateStackConfigValue: the decrypted text, JSON-decoded when the value is an object.
    return json.loads(text) if is_object else text


def _plain(node: Node) -> Any:
    """A default as yaml.v3 decodes it into `interface{}` (for the type check)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node.value


def engine_config(
    stack_text: str, project_text: str | None, *, stack: str, source: str, project_source: str = PROJECT_FILE
) -> EngineConfig:
    """The engine's reading of one stack: raises StackFileError where the engine (or this reader) refuses."""
    document = _load_yaml(stack_text, source)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{source}: expected a mapping with a 'config:' section")
    out = EngineConfig(values={}, environment=bool(document.get("environment")))
    config = document.get("config") or {}
    if isinstance(config, Scalar) and config.tag == yaml_v3.NULL:
        config = {}
    if not isinstance(config, dict):
        raise StackFileError(f"{source}: 'config:' must be a mapping of keys to values")
    secret_keys: list[str] = []
    objects: set[str] = set()
    for raw_key, node in config.items():
        parsed = parse_key(raw_key)
        if parsed is None:
            raise StackFileError(
                f"{_at(source, _first(node))}: could not parse {shorten(raw_key)} as a configuration key "
                f"(configuration keys should be of the form `<namespace>:<name>`); write {NAMESPACE}:{shorten(raw_key)}"
            )
        full_key = f"{parsed[0]}:{parsed[1]}"
        if full_key in out.values or full_key in secret_keys:
            raise StackFileError(f"{_at(source, _first(node))}: {full_key} is set twice")
        text = _engine_text(node, full_key, source, out)
        if text is None:
            secret_keys.append(full_key)
        else:
            out.values[full_key] = text
        if not isinstance(node, Scalar) or node.tag == yaml_v3.NULL:
            objects.add(full_key)  # object.go MarshalString: maps, lists and null are "object" values
    for key in _project_config(project_text, project_source):
        on_stack = key.full_key in out.values or key.full_key in secret_keys
        given = key.value if key.value is not None else key.default
        if not on_stack and given is not None:
            out.values[key.full_key] = _project_value_text(given, key.full_key, project_source, out)
        elif not on_stack and key.full_key.startswith(f"{NAMESPACE}:"):
            raise StackFileError(
                f"Stack '{stack}' is missing configuration value '{key.full_key}' ({project_source} requires it)"
            )
        elif (
            on_stack
            and key.type is not None
            and key.full_key in out.values
            and not _type_matches(
                key.type, _stack_value_for_type(out.values[key.full_key], key.full_key in objects), key.items
            )
        ):
            raise StackFileError(
                f"{source}: Stack '{stack}' with configuration key '{key.full_key}' must be of type '{key.type}' "
                f"({project_source})"
            )
    return EngineConfig(
        values=out.values,
        secret_keys=tuple(secret_keys),
        scalars=out.scalars,
        secrets=out.secrets,
        environment=out.environment,
    )


def raw_config_from_text(
    text: str, source: str = "stack file", project_text: str | None = None, stack: str = "prod"
) -> dict[str, str]:
    """PULUMI_CONFIG for a stack file's text (and `Pulumi.yaml`'s): full key to string."""
    return engine_config(text, project_text, stack=stack, source=source).values


def typing_problems(config: EngineConfig) -> list[ConfigError]:
    """Text values the engine would silently turn into something else (item 2 of issue 9).

    A plain scalar at a text path (`config.TEXT_PATHS`) that yaml.v3 types as a number,
    boolean, null or timestamp reaches the program as another text (`0012345` as `5349`).
    """
    problems: list[ConfigError] = []
    prefix = f"{NAMESPACE}:"
    for path, (source, scalar) in config.scalars.items():
        if not path.startswith(prefix) or not is_text_path(path[len(prefix) :]) or scalar.tag == yaml_v3.STR:
            continue
        try:
            reading = _describe(scalar)
        except ValueError:
            reading = "no value a program can receive"
        quoted = "'" + scalar.text.replace("'", "''") + "'"
        problems.append(
            ConfigError(
                path,
                scalar.text,
                "",
                message=f"{path}: {shorten(scalar.text)} is read by Pulumi as {reading}; quote it: {shorten(quoted)} "
                f"({source} line {scalar.line})",
            )
        )
    return problems


def _describe(scalar: Scalar) -> str:
    text = yaml_v3.engine_scalar_text(scalar)
    return {
        yaml_v3.INT: f"the number {text}",
        yaml_v3.FLOAT: f"the number {text}",
        yaml_v3.BOOL: f"the boolean {text}",
        yaml_v3.NULL: "null (no value)",
        yaml_v3.TIMESTAMP: f"the timestamp {text}",
    }.get(scalar.tag, f"{scalar.tag} {text}")


def secret_problems(config: EngineConfig) -> list[ConfigError]:
    """Secrets of this namespace (item 3): every value becomes a plaintext tag or policy condition."""
    return [
        ConfigError(
            path,
            secret.text,
            "",
            message=f"{path}: is a secret (secure: {shorten(secret.text, 24)}; {source} line {secret.line}); "
            f"{SECRET_REFUSAL}",
        )
        for path, (source, secret) in config.secrets.items()
        if path.startswith(f"{NAMESPACE}:")
    ]


def checked_stack_config(config: EngineConfig, source: str) -> StackConfig:
    """The validated config as cmkctl and impact judge it: the program's validation plus items 2 and 3.

    Raises StackFileError (ESC environment) or StackConfigErrors (every problem, one per line).
    """
    if config.environment:
        raise StackFileError(
            f"{source}: imports a Pulumi ESC environment (environment:); cmkctl cannot resolve ESC values, "
            f"which may set {NAMESPACE}:* keys, so it does not judge this stack; set them in the stack file"
        )
    problems = secret_problems(config) + typing_problems(config)
    try:
        parsed = parse_stack_config(config.values)
    except StackConfigErrors as errors:
        raise StackConfigErrors(problems + errors.errors) from None
    if problems:
        raise StackConfigErrors(problems)
    return parsed


def load_engine_config(project_dir: Path, stack: str) -> EngineConfig:
    """The engine's reading of `Pulumi.yaml` + `Pulumi.<stack>.yaml` in `project_dir`."""
    path = stack_file_path(project_dir, stack)
    text = read_text(path, missing="no such stack file (choose the stack with --stack, the folder with --project-dir)")
    assert text is not None
    project_path = project_dir / PROJECT_FILE
    project_text = read_text(project_path)
    return engine_config(text, project_text, stack=stack, source=str(path), project_source=str(project_path))


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Read and validate the stack as cmkctl judges it; raises StackFileError or StackConfigErrors."""
    return checked_stack_config(load_engine_config(project_dir, stack), str(stack_file_path(project_dir, stack)))


def check_text(text: str, source: str, project_text: str | None = None, stack: str = "prod") -> StackConfig:
    """`load_stack_config` for a text in hand (an edit about to be written, a file at a Git ref)."""
    return checked_stack_config(engine_config(text, project_text, stack=stack, source=source), source)
