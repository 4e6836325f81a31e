"""Reading `Pulumi.<stack>.yaml` the way the Pulumi engine reads it, for tools that run without it.

cmkctl and `cmkctl impact` read the stack file directly; the Pulumi program receives the
same values from the engine. To agree with the engine on every value, this module hands
`parse_stack_config` the same raw map the engine would: the text of each top-level scalar as
written (YAML 1.2, no YAML 1.1 booleans) and structured values as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from atlassian_cmk.config import NAMESPACE, StackConfig, parse_stack_config


class StackFileError(ValueError):
    """The stack file is missing, is not YAML, or holds something the engine would refuse."""


def stack_file_path(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def raw_config_from_text(text: str, source: str = "stack file") -> dict[str, Any]:
    """The engine's view of a stack file's `config:` section: full key to raw value."""
    # The base loader keeps every scalar as the text written: exactly what the engine passes
    # a program for a top-level scalar, and YAML 1.2 by construction (no yes/no booleans).
    try:
        document = YAML(typ="base").load(text)
    except YAMLError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StackFileError(f"{source}: not valid YAML ({first_line})") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{source}: expected a mapping with a 'config:' section")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{source}: 'config:' must be a mapping of keys to values")
    raw: dict[str, Any] = {}
    for key, value in config.items():
        full_key = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            if full_key.startswith(f"{NAMESPACE}:"):
                raise StackFileError(f"{source}: {full_key} is a secret; this product's keys must be plain text")
            continue
        raw[full_key] = json.dumps(value) if isinstance(value, dict | list) else value
    return raw


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Read and validate `Pulumi.<stack>.yaml`; raises StackFileError or StackConfigErrors."""
    path = stack_file_path(project_dir, stack)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackFileError(
            f"{path}: no such stack file (choose the stack with --stack, the folder with --project-dir)"
        ) from None
    except OSError as error:
        raise StackFileError(f"{path}: cannot be read ({error.strerror})") from None
    return parse_stack_config(raw_config_from_text(text, str(path)))
