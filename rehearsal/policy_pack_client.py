"""Drive the real policy pack over its gRPC wire protocol, as the Pulumi engine does.

`start_policy_pack` starts the pack with the CLI's command (`pack_command`: its own folder as
working directory, the stack's environment), reads the port it prints and connects. The request builders
turn what the real program registers under Pulumi mocks (rehearsal.program_run) into
AnalyzeRequest / AnalyzerResource messages, so any drift between the component and the pack shows
up here. A later GitOps rehearsal suite reuses these helpers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2
from pulumi.runtime.proto.analyzer_pb2_grpc import AnalyzerStub

from rehearsal.policy_config import PolicyConfig, PolicyInfo, reconcile_policy_config
from rehearsal.program_run import PROJECT_DIR, ProgramRun, RegisteredResource

POLICY_PACK_DIR = PROJECT_DIR / "policies"
PROJECT = "atlassian-cmk"
ORGANIZATION = "acme"

_LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVEL_VALUES = {name: value for value, name in _LEVELS.items()}


@dataclass(frozen=True)
class Violation:
    """One diagnostic the pack returned: which policy, how binding, what it said, about which resource."""

    policy: str
    level: str  # "mandatory" | "advisory" | ...
    message: str
    urn: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.policy} ({self.urn or 'stack'}): {self.message}"


def describe(violations: Iterable[Violation]) -> str:
    """Every violation, one per paragraph, for assertion messages."""
    return "\n".join(str(v) for v in violations) or "(no violations)"


class PolicyPackClient:
    """A started pack: GetAnalyzerInfo, Configure, Analyze, AnalyzeStack.

    The connection is made on first use (reading the port the pack prints), so a test can start
    the pack, arrange AWS and run the program while the pack imports, as the engine overlaps them.
    """

    def __init__(self, process: subprocess.Popen[bytes], stderr: IO[bytes], channels: ExitStack) -> None:
        self.process = process
        self._stderr = stderr
        self._channels = channels
        self._stub: AnalyzerStub | None = None
        self._info: analyzer_pb2.AnalyzerInfo | None = None

    @property
    def stub(self) -> AnalyzerStub:
        if self._stub is None:
            assert self.process.stdout is not None
            first_line = self.process.stdout.readline().decode().strip()  # blocks until the pack serves
            if not first_line.isdigit():
                self.process.kill()
                self.process.wait()
                self._stderr.seek(0)
                raise RuntimeError(
                    f"policy pack did not print its port (got {first_line!r}):\n{self._stderr.read().decode()[-4000:]}"
                )
            channel = self._channels.enter_context(grpc.insecure_channel(f"127.0.0.1:{first_line}"))
            self._stub = AnalyzerStub(channel)
        return self._stub

    @property
    def info(self) -> analyzer_pb2.AnalyzerInfo:
        if self._info is None:
            self._info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        return self._info

    def default_levels(self) -> dict[str, str]:
        return {p.name: _LEVELS[p.enforcementLevel] for p in self.info.policies}

    def policy_infos(self) -> list[PolicyInfo]:
        """Each policy's level and config schema, as GetAnalyzerInfo reports them to the CLI."""
        return [
            PolicyInfo(
                name=p.name,
                level=_LEVELS[p.enforcementLevel],
                properties=json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {},
            )
            for p in self.info.policies
        ]

    def configure(self, policy_config: Mapping[str, Any] | None = None) -> dict[str, PolicyConfig]:
        """Send what `--policy-pack-config FILE` becomes, reconciled as the CLI does.

        `policy_config` is the file's document (policy name -> level string or object). Raises
        PolicyConfigRejected where the CLI would stop the run; returns what was sent.
        """
        reconciled = reconcile_policy_config(self.policy_infos(), policy_config)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, entry in reconciled.items():
            config = analyzer_pb2.PolicyConfig(enforcementLevel=_LEVEL_VALUES[entry.level])
            config.properties.update(entry.properties or {})
            request.policyConfig[name].CopyFrom(config)
        self.stub.Configure(request)
        return reconciled

    def analyze(self, request: analyzer_pb2.AnalyzeRequest) -> list[Violation]:
        """Violations of one resource; like the engine, attribute them to that resource's URN."""
        return _violations(self.stub.Analyze(request), default_urn=request.urn)

    def analyze_stack(self, resources: Iterable[analyzer_pb2.AnalyzerResource]) -> list[Violation]:
        return _violations(self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=list(resources))))


def _violations(response: analyzer_pb2.AnalyzeResponse, default_urn: str = "") -> list[Violation]:
    return [
        Violation(policy=d.policyName, level=_LEVELS[d.enforcementLevel], message=d.message, urn=d.urn or default_urn)
        for d in response.diagnostics
    ]


def pack_env(
    raw_config: Mapping[str, Any], base_env: Mapping[str, str], stack: str, *, dry_run: bool, project: str = PROJECT
) -> dict[str, str]:
    """The environment the engine gives a policy pack: the stack's identity and its config as JSON.

    pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go (constructEnv): PULUMI_CONFIG,
    PULUMI_ORGANIZATION, PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN, over the CLI's own environment.
    """
    env = dict(base_env)
    env.update(
        {
            "PULUMI_PROJECT": project,
            "PULUMI_STACK": stack,
            "PULUMI_DRY_RUN": "true" if dry_run else "false",
            "PULUMI_ORGANIZATION": ORGANIZATION,
            "PULUMI_CONFIG": json.dumps({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw_config.items()}),
        }
    )
    return env


ENGINE_ADDRESS = "127.0.0.1:1"
"""Stands in for the engine's gRPC address on the pack's command line.

`pulumi.policy` parses it but neither it nor pulumi_policy connects to it (the engine talks to the
pack, on the port the pack prints), so no engine needs to listen there.
"""


def pack_command(python: str, pack_dir: Path) -> list[str]:
    """The command the Pulumi CLI runs a Python policy pack with, in the pack's folder.

    pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go (RunPlugin, kind analyzer):
    `<venv python> -u -m pulumi.policy <engine address> <absolute pack dir>`, working directory the
    pack folder; `pulumi.policy` then runs the folder's `__main__.py` with the folder first on sys.path.
    """
    return [python, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, str(pack_dir.resolve())]


@contextmanager
def start_policy_pack(
    raw_config: Mapping[str, Any],
    env: Mapping[str, str],
    stack: str = "prod",
    *,
    dry_run: bool = True,
    pack_dir: Path = POLICY_PACK_DIR,
    python: str | None = None,
    project: str = PROJECT,
) -> Iterator[PolicyPackClient]:
    """Run the pack as the engine does (`pack_command`); yield its client; kill the pack afterwards.

    `python` is the pack's interpreter: its own virtualenv's in `make check-pack-venv` and the
    published-copy check; this process's (which has the pack's requirements) in the suite.
    `project` is the stack's project (PULUMI_PROJECT): another one stands for a foreign project's
    stack under an org-wide policy group.
    """
    with tempfile.TemporaryFile() as stderr, ExitStack() as channels:
        process = subprocess.Popen(
            pack_command(python or sys.executable, pack_dir),
            cwd=pack_dir,
            env=pack_env(raw_config, env, stack, dry_run=dry_run, project=project),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            yield PolicyPackClient(process, stderr, channels)
        finally:
            channels.close()
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def resource_options(
    resource: RegisteredResource, *, protect: bool | None = None, delete_before_replace: bool | None = None
) -> analyzer_pb2.AnalyzerResourceOptions:
    """The options the engine passes with a resource, from the recorded registration."""
    request = resource.request
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=request.protect if protect is None else protect,
        ignoreChanges=list(request.ignoreChanges),
        additionalSecretOutputs=list(request.additionalSecretOutputs),
        parent=resource.parent,
    )
    if delete_before_replace is not None:
        options.deleteBeforeReplace = delete_before_replace
        options.deleteBeforeReplaceDefined = True
    elif request.deleteBeforeReplaceDefined:
        options.deleteBeforeReplace = request.deleteBeforeReplace
        options.deleteBeforeReplaceDefined = True
    return options


def properties_of(resource: RegisteredResource) -> struct_pb2.Struct:
    """A mutable copy of the serialized inputs, for tests that simulate a hand-edited component."""
    copy = struct_pb2.Struct()
    copy.CopyFrom(resource.request.object)
    return copy


def analyze_request(
    resource: RegisteredResource,
    *,
    properties: struct_pb2.Struct | None = None,
    protect: bool | None = None,
    delete_before_replace: bool | None = None,
) -> analyzer_pb2.AnalyzeRequest:
    """The per-resource request the engine sends before the resource's step."""
    return analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=properties if properties is not None else resource.request.object,
        urn=resource.urn,
        name=resource.name,
        options=resource_options(resource, protect=protect, delete_before_replace=delete_before_replace),
    )


UNKNOWN_STRING: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's wire sentinel for a string output not known until apply (pulumi_policy/proxy.py
UNKNOWN_STRING_VALUE): in preview, the outputs of a resource being created or replaced."""


def with_outputs(properties: struct_pb2.Struct, overrides: Mapping[str, str]) -> struct_pb2.Struct:
    """A copy of a resource's outputs with some string outputs set (e.g. `arn` of the deployed key, or unknown)."""
    copy = struct_pb2.Struct()
    copy.CopyFrom(properties)
    for name, value in overrides.items():
        copy.fields[name].string_value = value
    return copy


def analyzer_resource(
    resource: RegisteredResource, *, properties: struct_pb2.Struct | None = None, protect: bool | None = None
) -> analyzer_pb2.AnalyzerResource:
    """One resource of the AnalyzeStack request: its outputs, as the engine sends them (not its inputs)."""
    outputs = resource.outputs if resource.outputs is not None else resource.request.object
    return analyzer_pb2.AnalyzerResource(
        type=resource.type,
        properties=properties if properties is not None else outputs,
        urn=resource.urn,
        name=resource.name,
        options=resource_options(resource, protect=protect),
        parent=resource.parent,
        dependencies=list(resource.request.dependencies),
    )


def analyze_program_run(
    client: PolicyPackClient,
    run: ProgramRun,
    *,
    stack: bool = True,
    outputs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Violation]:
    """Analyze every resource the program registered, then (optionally) the whole stack.

    `outputs` (resource name -> string outputs) stands in for the engine's state in AnalyzeStack:
    the ARN of the key already deployed, or `UNKNOWN_STRING` for one the plan creates or replaces.
    Without it, the mocks' outputs are used (a key the mocks made up).
    """
    assert run.error is None, f"the program failed: {run.error}"
    violations: list[Violation] = []
    for resource in run.resources:
        violations.extend(client.analyze(analyze_request(resource)))
    if stack:
        overrides = outputs or {}
        violations.extend(
            client.analyze_stack(
                analyzer_resource(
                    r,
                    properties=with_outputs(r.outputs, overrides[r.name]) if r.name in overrides else None,
                )
                for r in run.resources
            )
        )
    return violations


def by_policy(violations: Iterable[Violation], policy: str) -> list[Violation]:
    return [v for v in violations if v.policy == policy]


@dataclass(frozen=True)
class StepVerdicts:
    """What `pulumi up` does with each resource's step, judged by that resource's Analyze alone.

    The engine refuses only a resource whose own Analyze returned a mandatory violation; the
    steps of the other resources go on (pulumi/pulumi pkg/resource/deploy/step_generator.go,
    analyzeAll). AnalyzeStack runs after the steps, so it refuses nothing already applied.
    """

    violations: Mapping[str, list[Violation]]  # urn -> that resource's violations

    def refused(self) -> set[str]:
        return {urn for urn, found in self.violations.items() if any(v.level == "mandatory" for v in found)}

    def proceeding(self) -> set[str]:
        return set(self.violations) - self.refused()


def judge_each_step(client: PolicyPackClient, run: ProgramRun) -> StepVerdicts:
    """Analyze every resource the program registered on its own, as `pulumi up` enforces."""
    assert run.error is None, f"the program failed: {run.error}"
    return StepVerdicts({r.urn: client.analyze(analyze_request(r)) for r in run.resources})
