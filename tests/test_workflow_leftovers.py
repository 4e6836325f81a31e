"""Issue 12's leftovers in the break-glass workflow: the stack file re-read at the moment of use, no
override advice when AWS is unreachable, no commit advice after a split."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from tests.support.cmkctl import REGIONS, live, provision, runtime, stack_dir
from tests.support.counting_proxy import closed_port_url
from tests.support.faults import fault_proxy

REVOKE = ["revoke", "--reason", "Suspected breach", "--ticket", "SEC-1"]


def _states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


def test_a_stack_file_changed_while_confirming_stops_the_revoke_before_any_disable(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    path = project / "Pulumi.prod.yaml"
    base = runtime(moto_endpoint)

    def ask(prompt: str) -> str:
        # Meanwhile someone pulls a change that declares re-encryption in progress.
        path.write_text(path.read_text().replace("    status: none", "    status: in-progress"))
        return "prod"

    rt = Runtime(base.client_factory, base.policy, base.now, ask)
    code = main([*REVOKE, "--project-dir", str(project)], runtime=rt)
    err = capsys.readouterr().err

    assert code == ExitCode.REFUSED
    assert _states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}
    assert "Pulumi.prod.yaml changed since the check" in err and "nothing was disabled" in err


def test_an_unreachable_revoke_does_not_suggest_the_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    code = main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(closed_port_url(), attempts=1))
    err = capsys.readouterr().err

    assert code == ExitCode.UNREACHABLE
    assert "could not be read" in err
    assert "--override-reencryption-guard" not in err and "override" not in err.lower()


@pytest.mark.parametrize("write", [False, True], ids=["print", "--write-config"])
def test_a_split_revoke_prints_no_commit_advice(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], write: bool
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    before = (project / "Pulumi.prod.yaml").read_text()
    flags = ["--write-config"] if write else []
    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-west-2", times=1000, operations={"DisableKey"})
        code = main([*REVOKE, "--yes", *flags, "--project-dir", str(project)], runtime=runtime(proxy.url))
    out = capsys.readouterr().out

    assert code == ExitCode.SPLIT
    assert _states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Enabled"}
    assert "Commit this change" not in out and "commit the change" not in out.lower()
    assert "+++ b/Pulumi.prod.yaml" not in out  # no diff to commit while the realm is split
    assert "run `cmkctl revoke` again first" in out
    assert (project / "Pulumi.prod.yaml").read_text() == before
