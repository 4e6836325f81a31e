"""What every policy needs besides the resource: the stack, its configuration, the deployed keys.

The engine runs the pack with the stack's environment (PULUMI_PROJECT, PULUMI_STACK,
PULUMI_DRY_RUN, PULUMI_CONFIG), and pulumi_policy configures the Pulumi runtime from it before
each call. So the pack reads the stack's configuration exactly as the program does and validates
it with the one schema (`parse_stack_config`): pack and program cannot disagree on a value.

The deployed state is read from AWS at most once per pack process: the pack lives for one
preview or update, and the engine may call it for hundreds of resources on four threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import pulumi
from pulumi.runtime import config as runtime_config

from atlassian_cmk.aws.cloudtrail import read_reencryption_activity
from atlassian_cmk.aws.kms_reads import aws_endpoint_note, default_client_factory, read_deployed_state
from atlassian_cmk.config import StackConfig, StackConfigErrors, parse_stack_config
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.reencryption_activity import ReencryptionActivity, enrolled_pair


def raw_stack_config() -> dict[str, Any]:
    """Every config value the engine gave the pack, by full key (`atlassian-cmk:enabled` -> "false").

    The engine passes the stack's config as PULUMI_CONFIG (pulumi/pulumi
    pkg/resource/plugin/analyzer_plugin.go, constructEnv) and pulumi_policy loads it into the
    runtime's config before each call. The pack reads it here rather than through the program's
    `components/` (a published pack holds only this folder), handing it whole to the core's schema.
    """
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return raw


def stack_name() -> str:
    """The stack being previewed or updated."""
    try:
        return pulumi.get_stack()
    except Exception:  # noqa: BLE001 - the runtime is not configured outside the engine
        return os.environ.get("PULUMI_STACK", "")


def stack_config() -> StackConfig | StackConfigErrors:
    """The stack's validated configuration, or every error in it (the caller fails closed)."""
    try:
        return parse_stack_config(raw_stack_config())
    except StackConfigErrors as errors:
        return errors


def invalid_config_message(errors: StackConfigErrors, policy: str) -> str:
    """The fail-closed violation for a stack configuration the schema rejects."""
    lines = "\n".join(f"  - {error}" for error in errors.errors)
    return (
        f"the stack configuration (Pulumi.{stack_name()}.yaml) is invalid, so {policy} cannot decide and "
        f"fails closed; fix these values:\n{lines}"
    )


K = TypeVar("K")
V = TypeVar("V")

StateReader = Callable[[str, tuple[str, ...], KeyGeneration | None, str | None], DeployedState]
"""(stack, regions, recorded keys or None, alias or None for the stack's own) -> the deployed state: by
recorded ARN (the alias read beside them), else through the alias."""


class _SingleFlight(Generic[K, V]):
    """One computation per key per pack process, shared by every policy and thread: the first caller
    computes; concurrent callers for the same key wait for its answer instead of starting their own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[K, Future[V]] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as error:  # noqa: BLE001 - never raises today; keep waiters from hanging
                future.set_exception(error)
        return future.result()


class DeployedStateCache:
    """One read of the deployed keys per (stack, regions, recorded keys, alias), shared by every policy
    and thread, so the pack makes at most one round of reads per region per process."""

    def __init__(self, reader: StateReader) -> None:
        self._reader = reader
        self._reads: _SingleFlight[tuple[str, tuple[str, ...], KeyGeneration | None, str | None], DeployedState] = (
            _SingleFlight()
        )

    def get(
        self, stack: str, regions: tuple[str, ...], enrolled: KeyGeneration | None = None, alias: str | None = None
    ) -> DeployedState:
        """`alias`: another generation's alias (`alias/atlassian-cmk/<stack>/next`); None: the stack's own."""
        return self._reads.get((stack, regions, enrolled, alias), lambda: self._reader(stack, regions, enrolled, alias))


DEPLOYED_STATE = DeployedStateCache(
    lambda stack, regions, enrolled, alias: read_deployed_state(
        stack, regions, key_pair_alias=alias, with_policy=True, enrolled=enrolled
    )
)
"""The pack process's one cache: a new process (a new preview or update) reads afresh."""


def deployed_state(config: StackConfig) -> DeployedState:
    """The stack's deployed keys: the enrolled ones by ARN once enrolled, else through the alias."""
    return DEPLOYED_STATE.get(stack_name(), config.regions, config.enrolled_keys)


def is_update() -> bool:
    """Whether the engine runs `pulumi up` (PULUMI_DRY_RUN false), not a preview.

    pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go (constructEnv) sets PULUMI_DRY_RUN per run;
    anything but "false" counts as a preview, which reads nothing twice.
    """
    return os.environ.get("PULUMI_DRY_RUN") == "false"


def deployed_after_steps(stack: str, regions: tuple[str, ...], enrolled: KeyGeneration | None = None) -> DeployedState:
    """The deployed keys as AnalyzeStack should judge them (the enrolled ones by ARN once enrolled).

    The engine calls AnalyzeStack once the steps are done (pkg/resource/deploy/step_generator.go,
    AnalyzeResources). In `pulumi up` the cached read, made before the steps for the per-resource
    checks, shows the keys as they were; read them again. In a preview nothing changed: the cache.
    """
    if is_update():
        return read_deployed_state(stack, regions, with_policy=False, enrolled=enrolled)
    return DEPLOYED_STATE.get(stack, regions, enrolled)


def unreadable_suffix() -> str:
    """Where the reads went and how to make them work, for fail-closed messages."""
    return (
        f" (reads went to {aws_endpoint_note()}: give the pack credentials for kms:DescribeKey and "
        "kms:ListResourceTags)"
    )


ActivityReader = Callable[[StackConfig], ReencryptionActivity | None]
"""config -> CloudTrail's evidence of re-encryption while two generations are enrolled (None otherwise)."""


class ReencryptionActivityCache:
    """One CloudTrail read per enrolled pair of generations per pack process, shared by every thread.

    LookupEvents allows 2 requests per second per account and region: the engine's four Analyze
    threads and every key of the realm must not each read it.
    """

    def __init__(self, reader: ActivityReader) -> None:
        self.reader = reader
        self._reads: _SingleFlight[Any, ReencryptionActivity | None] = _SingleFlight()

    def get(self, config: StackConfig) -> ReencryptionActivity | None:
        pair = enrolled_pair(config)
        if pair is None:
            return None
        key = (pair.old, pair.new, config.atlassian_key_policy_revision, len(config.atlassian_key_policy))
        return self._reads.get(key, lambda: self.reader(config))


REENCRYPTION_ACTIVITY = ReencryptionActivityCache(
    lambda config: read_reencryption_activity(config, default_client_factory, now=datetime.now(UTC))
)
"""The pack process's one read of CloudTrail's evidence (`atlassian_cmk.reencryption_activity`)."""
