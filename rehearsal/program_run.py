"""Run the real `__main__.py` under Pulumi's official mock runtime and record what it registers.

Each run gets a fresh contextvars context, so the runtime's config map and root stack do not
leak between runs. The monitor records the raw RegisterResource requests: they carry the
resource options (`protect`, `retainOnDelete`) that the mocks' `new_resource` never sees, and
the serialized inputs that the policy pack receives from the engine.
"""

from __future__ import annotations

import contextvars
import logging
import runpy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parents[1]
PROGRAM = PROJECT_DIR / "__main__.py"
ACCOUNT_ID = "123456789012"  # moto's default account, so rehearsals against moto agree
CALLER_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/PulumiDeploy/ci"


@dataclass
class RegisteredResource:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    request: Any  # the RegisterResourceRequest protobuf, as the engine would receive it
    outputs: Any = None  # the response's outputs Struct: what AnalyzeStack sees (outputs, not inputs)

    @property
    def protect(self) -> bool:
        return bool(self.request.protect)

    @property
    def retain_on_delete(self) -> bool:
        return bool(self.request.retainOnDelete)


@dataclass
class ProgramRun:
    """What one run of the program did."""

    resources: list[RegisteredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]

    @property
    def kms_keys(self) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")]


class _Mocks(pulumi.runtime.Mocks):
    """Answers as AWS would shape them: key IDs, ARNs in the resource's own region."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        region = args.inputs.get("region", "us-east-1")
        if args.typ in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
            multi = args.inputs.get("multiRegion") or args.typ.endswith("ReplicaKey")
            key_id = ("mrk-" if multi else "") + str(uuid.uuid5(uuid.NAMESPACE_URL, args.name)).replace("-", "")
            arn = f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"
            return key_id, {**args.inputs, "keyId": key_id, "arn": arn}
        if args.typ == "aws:kms/alias:Alias":
            arn = f"arn:aws:kms:{region}:{ACCOUNT_ID}:{args.inputs['name']}"
            return args.inputs["name"], {**args.inputs, "arn": arn}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": CALLER_ARN, "userId": "AROAEXAMPLE:ci", "id": ACCOUNT_ID}
        return {}


class _RecordingMonitor(runtime_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self._run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self._run.resources.append(
                RegisteredResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=rpc.deserialize_properties(request.object),
                    request=request,
                    outputs=response.object,
                )
            )
        return response


class _WarningCollector(logging.Handler):
    def __init__(self, run: ProgramRun) -> None:
        super().__init__(level=logging.WARNING)
        self._run = run

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self._run.warnings.append(record.getMessage())


def run_program(
    raw_config: Mapping[str, Any], *, stack: str = "prod", preview: bool = True, secret_keys: Sequence[str] = ()
) -> ProgramRun:
    """Run `__main__.py` with the config map the engine would pass (full keys to strings) and the
    keys it names as secret (what pulumi-language-python-exec hands `set_all_config` from
    PULUMI_CONFIG_SECRET_KEYS). A secret's value, which the engine would decrypt, is given here
    in `raw_config` as plain text."""
    return contextvars.Context().run(_run, dict(raw_config), stack, preview, list(secret_keys))


def _run(raw_config: dict[str, Any], stack: str, preview: bool, secret_keys: list[str]) -> ProgramRun:
    run = ProgramRun()
    logger = logging.getLogger(f"pulumi-program-{uuid.uuid4()}")
    logger.propagate = False
    logger.addHandler(_WarningCollector(run))
    runtime_config.set_all_config(raw_config, secret_keys)
    runtime_mocks.set_mocks(
        _Mocks(),
        project="atlassian-cmk",
        stack=stack,
        preview=preview,
        logger=logger,
        monitor=_RecordingMonitor(_Mocks(), run),
    )
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(program))
    except Exception as error:  # noqa: BLE001 - the test asserts on it
        run.error = error
    root = get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    for name, value in exported.items():
        run.outputs[name] = _sync_await(pulumi.Output.from_input(value).future())
    return run
