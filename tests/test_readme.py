"""The README names what the code has: every config key, exit code, guardrail and policy setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atlassian_cmk.config import KEYS
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.guardrail_catalog import GUARDRAILS
from atlassian_cmk.realms import REALMS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_two_setup_commands_are_there() -> None:
    assert "make test" in README and "make demo" in README


@pytest.mark.parametrize("key", KEYS)
def test_every_config_key_is_documented(key: str) -> None:
    assert f"| `{key}` |" in README


def test_every_realm_is_documented() -> None:
    for realm in REALMS.values():
        assert f"`{realm.name}` ({' + '.join(realm.regions)})" in README


def test_the_exit_code_table_matches_the_code() -> None:
    section = README.split("Exit codes (the CI apply and drift jobs rely on them):")[1].split("\n## ")[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


@pytest.mark.parametrize("guardrail", GUARDRAILS, ids=lambda g: g.name)
def test_every_guardrail_is_documented_with_its_level(guardrail: object) -> None:
    from atlassian_cmk.guardrail_catalog import Guardrail

    assert isinstance(guardrail, Guardrail)
    assert f"| `{guardrail.name}` | {guardrail.enforcement} |" in README


def test_every_policy_setting_is_documented_under_its_policy() -> None:
    from policies.guardrails.settings import OPTIONS

    for policy, options in OPTIONS.items():
        for option in options:
            assert f"| `{policy}` | `{option.name}` |" in README
