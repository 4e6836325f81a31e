"""`--write-config` edits touch only the bytes they must (issue 9 item 5), through cmkctl against the emulator.

Revoke then restore gives back the file byte for byte however it was written (spelling and
quoting of `enabled`, spaced trailing comments, CRLF, 4-space indentation, the legacy key, a
file `pulumi config set` wrote); enroll adds its block and touches nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.config_edit import with_revocation, with_revocation_fields
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.stack_file import check_text
from tests.support.cmkctl import REAL_STACK_FILE, provision, runtime, stack_dir

ENABLED = "  atlassian-cmk:enabled: true\n"

# What `pulumi config set` leaves (yaml.v3's encoder, indent 2, keys sorted; pulumi/pulumi
# sdk/go/common/util/yamlutil/encode.go YamlEncode): strings yaml.v3 would type are double-quoted.
PULUMI_WRITTEN = """config:
  atlassian-cmk:atlassianKeyPolicy:
    - Action:
        - kms:Encrypt
        - kms:Decrypt
        - kms:ReEncrypt*
        - kms:GenerateDataKey*
        - kms:DescribeKey
      Effect: Allow
      Principal:
        AWS: arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess
      Resource: '*'
      Sid: SAMPLEAtlassianUseOfTheKey
  atlassian-cmk:contextTag: AcmeCMK
  atlassian-cmk:enabled: "true"
  atlassian-cmk:multiRegion: "false"
  atlassian-cmk:realm: us
  aws:region: us-east-1
"""


def _enabled(spelling: str) -> Callable[[str], str]:
    return lambda text: text.replace(ENABLED, f"  atlassian-cmk:enabled: {spelling}\n")


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def _four_spaces(text: str) -> str:
    # Every indentation doubled; after a sequence dash too, so an item's mapping stays aligned.
    return re.sub(r"(?m)^( +)(- )?", lambda m: m.group(1) * 2 + ("-   " if m.group(2) else ""), text)


FILES: dict[str, Callable[[str], str]] = {
    "TRUE": _enabled("TRUE"),
    "True": _enabled("True"),
    "double-quoted": _enabled('"true"'),
    "single-quoted": _enabled("'true'"),
    "spaced-comment": _enabled("true   # the switch"),
    "crlf": _crlf,
    "four-spaces": _four_spaces,
    "legacy-key": lambda text: text.replace("atlassian-cmk:enabled:", "atlassian-cmk:config:enabled:"),
    "pulumi-config-set": lambda _: PULUMI_WRITTEN,
}


def _project(tmp_path: Path, name: str) -> tuple[Path, bytes]:
    project = stack_dir(tmp_path)
    path = project / "Pulumi.prod.yaml"
    original = FILES[name](REAL_STACK_FILE.read_bytes().decode("utf-8")).encode("utf-8")
    path.write_bytes(original)
    return project, original


@pytest.mark.parametrize("name", list(FILES))
def test_revoke_then_restore_give_back_the_original_bytes(
    name: str, tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, original = _project(tmp_path, name)
    path = project / "Pulumi.prod.yaml"
    provision(project, moto_endpoint)
    common = ["--project-dir", str(project), "--yes", "--write-config"]

    revoke = ["revoke", *common, "--reason", "Suspected breach: key exposed", "--ticket", "0042"]
    assert main(revoke, runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED, capsys.readouterr()
    revoked = path.read_bytes()
    assert main(["restore", *common, "--ticket", "SEC-2"], runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED

    assert path.read_bytes() == original
    # The revoked file changed only the value of enabled (same spelling and quotes) and added the block.
    config = check_text(revoked.decode("utf-8"), "revoked")
    assert config.enabled is False and config.revocation is not None
    assert config.revocation.ticket == "0042"
    removed = [line for line in original.splitlines(keepends=True) if line not in revoked.splitlines(keepends=True)]
    assert len(removed) == 1 and b"enabled:" in removed[0]
    newline = b"\r\n" if name == "crlf" else b"\n"
    assert all(line.endswith(newline) for line in revoked.splitlines(keepends=True))


@pytest.mark.parametrize(
    ("spelling", "revoked"),
    [
        ("TRUE", "FALSE"),
        ("True", "False"),
        ('"true"', '"false"'),
        ("'true'", "'false'"),
        ("true   # the switch", "false   # the switch"),
        ("!!bool true  # tagged", "!!bool false  # tagged"),
    ],
)
def test_enabled_keeps_its_spelling_quotes_spacing_and_comment(spelling: str, revoked: str) -> None:
    text = REAL_STACK_FILE.read_text(encoding="utf-8").replace(ENABLED, f"  atlassian-cmk:enabled: {spelling}\n")

    edited = with_revocation(text, "breach", "SEC-1")

    assert f"\n  atlassian-cmk:enabled: {revoked}\n" in edited


def test_the_block_writer_takes_ordered_fields_and_quotes_what_yaml_would_type() -> None:
    text = REAL_STACK_FILE.read_text(encoding="utf-8")
    fields = {"reason": "breach", "ticket": "0042", "id": "2024-01-01", "note": "a: b", "flag": "TRUE"}

    once = with_revocation_fields(text, fields)

    assert (
        "  atlassian-cmk:revocation:\n    reason: breach\n    ticket: '0042'\n    id: '2024-01-01'\n"
        "    note: 'a: b'\n    flag: 'TRUE'\n"
    ) in once
    # A later revocation rewrites the block in place: values in their style, stale fields gone.
    twice = with_revocation_fields(once, {"reason": "it's back", "ticket": "SEC-9"})
    assert "  atlassian-cmk:revocation:\n    reason: it's back\n    ticket: 'SEC-9'\n\n" in twice
    assert "id:" not in twice.split("atlassian-cmk:revocation:\n")[-1].split("\n\n")[0]


@pytest.mark.parametrize("name", ["crlf", "four-spaces", "TRUE"])
def test_enroll_adds_its_block_and_touches_no_other_byte(
    name: str, tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, original = _project(tmp_path, name)
    path = project / "Pulumi.prod.yaml"
    keys = {key.region: key.arn for key in provision(project, moto_endpoint)}

    code = main(["enroll", "--project-dir", str(project), "--write-config"], runtime=runtime(moto_endpoint))

    assert code == ExitCode.AS_DECLARED, capsys.readouterr()
    after = path.read_bytes()
    assert after.startswith(original)
    nl, indent = ("\r\n" if name == "crlf" else "\n"), ("    " if name == "four-spaces" else "  ")
    block = f"{indent}atlassian-cmk:enrolledKeys:{nl}" + "".join(
        f"{indent * 2}{region}: {arn}{nl}" for region, arn in keys.items()
    )
    assert after[len(original) :].decode("utf-8") == block
