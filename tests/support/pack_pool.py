"""Pack processes shared across tests: one per (stack config, stack, project), AWS on a closed port."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from rehearsal.policy_pack_client import PROJECT, PolicyPackClient, start_policy_pack
from tests.support.counting_proxy import closed_port_url


def env_without_aws() -> dict[str, str]:
    """The test process's environment minus any AWS settings (each test adds its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class PackPool:
    """Pack processes shared across tests, one per (stack config, stack, project).

    The engine gives a pack its stack configuration and identity once, at start, in its environment
    (`pack_env`), so a different configuration needs a different process. The policy config is
    another matter: the engine sends it over gRPC in `Configure`, and pulumi_policy's server replaces
    both its config and its enforcement levels wholesale on each call (pulumi/pulumi-policy
    sdk/python/lib/pulumi_policy/policy.py, `Configure`: `self.__policy_pack_config = config`), so a
    process configured again judges exactly as a fresh one configured once. Tests that share a process
    therefore call `configure` first, and must not rely on live reads: a process caches the deployed
    state for its lifetime (policies/guardrails/context.py, DEPLOYED_STATE: one preview, one process).
    AWS points at a closed port, so an accidental live read fails closed at once and visibly.

    The suite's session fixture `pack_pool` (tests/conftest.py) is one pool per pytest process
    (per xdist worker), so test modules on one worker share their processes.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(env) if env is not None else {**env_without_aws(), "AWS_ENDPOINT_URL": closed_port_url()}
        self._stack = ExitStack()
        self._clients: dict[tuple[str, str, str], PolicyPackClient] = {}

    def get(self, raw_config: Mapping[str, Any], stack: str = "prod", project: str = PROJECT) -> PolicyPackClient:
        """The pool's process for this stack config, stack and project (started on first use).

        Call `configure` on it before analysing: an earlier test may have configured it otherwise."""
        key = (json.dumps(raw_config, sort_keys=True), stack, project)
        if key not in self._clients:
            self._clients[key] = self._stack.enter_context(
                start_policy_pack(raw_config, self._env, stack, project=project)
            )
        return self._clients[key]

    @property
    def started(self) -> int:
        """How many pack processes the pool has started."""
        return len(self._clients)

    def __enter__(self) -> PackPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
