"""Pack processes shared across tests: one per (stack config, stack), AWS on a closed port."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from rehearsal.policy_pack_client import PolicyPackClient, start_policy_pack
from tests.support.counting_proxy import closed_port_url


def env_without_aws() -> dict[str, str]:
    """The test process's environment minus any AWS settings (each test adds its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class PackPool:
    """Pack processes shared across tests, one per (stack config, stack).

    The engine gives a pack its stack configuration once, at start, so a different configuration
    needs a different process. Tests that share a process call `configure` first (it replaces the
    whole policy config), and must not rely on live reads: a process caches the deployed state.
    AWS points at a closed port, so an accidental live read fails closed at once and visibly.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(env) if env is not None else {**env_without_aws(), "AWS_ENDPOINT_URL": closed_port_url()}
        self._stack = ExitStack()
        self._clients: dict[tuple[str, str], PolicyPackClient] = {}

    def get(self, raw_config: Mapping[str, Any], stack: str = "prod") -> PolicyPackClient:
        key = (json.dumps(raw_config, sort_keys=True), stack)
        if key not in self._clients:
            self._clients[key] = self._stack.enter_context(start_policy_pack(raw_config, self._env, stack))
        return self._clients[key]

    def __enter__(self) -> PackPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
