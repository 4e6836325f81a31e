"""The stack configuration as the running Pulumi program receives it from the engine.

The engine passes every config value of the stack (full key to string, objects as JSON) to the
program, through the runtime's config map or the PULUMI_CONFIG environment variable. Handing
that map whole to `parse_stack_config` lets it reject unknown keys (typos such as
`atlassian-cmk:enable`), which `pulumi.Config.get` cannot do key by key.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import config as runtime_config


def raw_stack_config() -> dict[str, Any]:
    """Every config value the engine gave this program, by full key."""
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return raw


def secret_keys_of(raw: dict[str, Any], namespace: str) -> list[str]:
    """The keys of `namespace` the engine marked secret.

    The engine names secret keys in PULUMI_CONFIG_SECRET_KEYS; pulumi-language-python-exec hands
    them to `pulumi.runtime.set_all_config` (pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec),
    which is what `is_config_secret` answers from. The values themselves arrive decrypted.
    """
    return sorted(key for key in raw if key.startswith(f"{namespace}:") and runtime_config.is_config_secret(key))
