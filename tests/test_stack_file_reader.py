"""The stack-file reader against the engine's rules (issue 9).

Expected values come from the engine's source, not from this reader:
- go-yaml/yaml v3 `resolve.go` (plain-scalar typing) and `decode.go` (aliases, duplicate keys);
- pulumi/pulumi `sdk/go/common/resource/config/object.go` (`unmarshalObject`: a timestamp becomes
  `time.Time.String()`; `MarshalString`: booleans and numbers as Go's JSON text), `key.go`
  (`ParseKey`), `pkg/workspace/config.go` (`mergeConfig`: project defaults, required keys, types).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.config import StackConfigErrors, is_text_path
from atlassian_cmk.config_edit import with_enrolled_keys, with_restoration, with_revocation
from atlassian_cmk.realms import is_region_name
from atlassian_cmk.stack_file import (
    MAX_FILE_BYTES,
    StackFileError,
    check_text,
    engine_config,
    load_stack_config,
    raw_config_from_text,
)
from atlassian_cmk.yaml_v3 import BOOL, FLOAT, INT, NULL, STR, TIMESTAMP
from rehearsal.program_run import run_program
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_ACCOUNT, sample_config_value

VALID = (
    "config:\n"
    "  atlassian-cmk:realm: us\n"
    "  atlassian-cmk:enabled: true\n"
    f"  atlassian-cmk:atlassianKeyPolicy: {sample_config_value()}\n"
    "  atlassian-cmk:contextTag: AcmeCMK\n"
)
REVOKED = VALID.replace("enabled: true", "enabled: false") + (
    "  atlassian-cmk:revocation:\n    reason: Suspected breach\n    ticket: SEC-1234\n"
)

# (plain scalar as written, yaml.v3's tag, the string the program receives)
SPELLINGS = [
    # resolve.go resolveMapList: the only boolean spellings; yes/no/on/off stay strings.
    ("true", BOOL, "true"),
    ("True", BOOL, "true"),
    ("TRUE", BOOL, "true"),
    ("false", BOOL, "false"),
    ("False", BOOL, "false"),
    ("FALSE", BOOL, "false"),
    ("tRUE", STR, "tRUE"),
    ("yes", STR, "yes"),
    ("no", STR, "no"),
    ("on", STR, "on"),
    ("off", STR, "off"),
    # strconv.ParseInt(s, 0, 64): a leading 0 is legacy octal, 0o/0x/0b prefixes; underscores dropped first.
    ("0012345", INT, "5349"),
    ("0042", INT, "34"),
    ("0o17", INT, "15"),
    ("0x1F", INT, "31"),
    ("0b101", INT, "5"),
    ("-0b11", INT, "-3"),
    ("1_000", INT, "1000"),
    ("+12", INT, "12"),
    ("-0", INT, "0"),
    ("18446744073709551615", INT, "18446744073709551615"),  # ParseUint
    # yamlStyleFloat then Go's JSON float text (encoding/json floatEncoder).
    ("08", FLOAT, "8"),  # not octal, so a float
    ("1e3", FLOAT, "1000"),
    ("3.0", FLOAT, "3"),
    (".5", FLOAT, "0.5"),
    ("1.5e-7", FLOAT, "1.5e-7"),
    ("1e21", FLOAT, "1e+21"),
    ("99999999999999999999", FLOAT, "100000000000000000000"),
    ("1e400", STR, "1e400"),  # ParseFloat fails with ErrRange
    # parseTimestamp, then object.go: time.Time.String().
    ("2024-01-01", TIMESTAMP, "2024-01-01 00:00:00 +0000 UTC"),
    ("2024-1-5", TIMESTAMP, "2024-01-05 00:00:00 +0000 UTC"),
    ("2001-12-14T21:59:43.10Z", TIMESTAMP, "2001-12-14 21:59:43.1 +0000 UTC"),
    ("2024-02-30", STR, "2024-02-30"),
    # null: object{} marshals as JSON null.
    ("null", NULL, "null"),
    ("~", NULL, "null"),
    ("NULL", NULL, "null"),
    ("007a", STR, "007a"),
    ("SEC-1234", STR, "SEC-1234"),
]


@pytest.mark.parametrize(("written", "tag", "received"), SPELLINGS)
def test_plain_scalars_reach_the_program_as_the_engine_passes_them(written: str, tag: str, received: str) -> None:
    config = engine_config(f"config:\n  other:key: {written}\n", None, stack="prod", source="s")
    assert config.values["other:key"] == received
    assert config.scalars["other:key"][1].tag == tag


@pytest.mark.parametrize(
    ("written", "received"),
    [("'0012345'", "0012345"), ('"FALSE"', "FALSE"), ("!!str 0042", "0042"), ("|\n    0042", "0042\n")],
)
def test_quoted_tagged_and_block_scalars_stay_text(written: str, received: str) -> None:
    assert raw_config_from_text(f"config:\n  other:key: {written}\n")["other:key"] == received


def test_objects_and_lists_reach_the_program_as_go_json() -> None:
    text = "config:\n  other:obj: {b: 0042, a: [1e3, FALSE, 2024-01-01, null, '<x>']}\n"
    assert raw_config_from_text(text)["other:obj"] == (
        '{"a":[1000,false,"2024-01-01 00:00:00 +0000 UTC",null,"\\u003cx\\u003e"],"b":34}'
    )


def test_nan_cannot_be_passed_to_a_program() -> None:
    with pytest.raises(StackFileError, match=r"s:2: other:key: \.nan cannot be passed"):
        engine_config("config:\n  other:key: .nan\n", None, stack="prod", source="s")


@pytest.mark.parametrize(
    ("key", "written", "message"),
    [
        (
            "contextTag",
            "0012345",
            "atlassian-cmk:contextTag: 0012345 is read by Pulumi as the number 5349; quote it: '0012345'",
        ),
        ("contextTag", "1e3", "atlassian-cmk:contextTag: 1e3 is read by Pulumi as the number 1000; quote it: '1e3'"),
        ("contextTag", "TRUE", "atlassian-cmk:contextTag: TRUE is read by Pulumi as the boolean true; quote it"),
        ("realm", "null", "atlassian-cmk:realm: null is read by Pulumi as null (no value); quote it: 'null'"),
    ],
)
def test_text_keys_typed_by_yaml_are_refused_with_the_quote_advice(key: str, written: str, message: str) -> None:
    text = VALID.replace("atlassian-cmk:contextTag: AcmeCMK", "atlassian-cmk:contextTag: Acme").replace(
        f"atlassian-cmk:{key}: " + ("Acme" if key == "contextTag" else "us"), f"atlassian-cmk:{key}: {written}"
    )
    with pytest.raises(StackConfigErrors) as caught:
        check_text(text, "Pulumi.prod.yaml")
    assert any(str(error).startswith(message) for error in caught.value.errors), caught.value


BLOCK_STATEMENT = (
    "  atlassian-cmk:atlassianKeyPolicy:\n"
    "    - Sid: SAMPLEAtlassianUse\n"
    "      Effect: Allow\n"
    "      Principal:\n"
    "        AWS: {principal}\n"
    "      Action: kms:Decrypt\n"
    '      Resource: "*"\n'
    "      Condition:\n"
    "        Bool:\n"
    "          aws:SecureTransport: {secure}\n"
)


def block_policy(principal: str, secure: str = "'true'", revision: str = "") -> str:
    text = VALID.replace(
        f"  atlassian-cmk:atlassianKeyPolicy: {sample_config_value()}\n",
        BLOCK_STATEMENT.format(principal=principal, secure=secure),
    )
    return text + (f"  atlassian-cmk:atlassianKeyPolicyRevision: {revision}\n" if revision else "")


def test_atlassians_statements_written_as_yaml_reach_the_program_as_text() -> None:
    config = check_text(block_policy(f"'{SAMPLE_ATLASSIAN_ACCOUNT}'", revision="ATL-1234"), "s")
    (statement,) = config.atlassian_key_policy
    assert statement["Principal"] == {"AWS": SAMPLE_ATLASSIAN_ACCOUNT}
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}
    assert config.atlassian_key_policy_revision == "ATL-1234"


@pytest.mark.parametrize(
    ("principal", "secure", "revision", "message"),
    [
        # yaml.v3 types an unquoted account ID as an int: the engine's JSON holds a number, and
        # an account ID with a leading 0 becomes another number (legacy octal), so refuse both.
        (
            SAMPLE_ATLASSIAN_ACCOUNT,
            "'true'",
            "",
            f"atlassian-cmk:atlassianKeyPolicy[0].Principal.AWS: {SAMPLE_ATLASSIAN_ACCOUNT} is read by Pulumi as "
            f"the number {SAMPLE_ATLASSIAN_ACCOUNT}; quote it: '{SAMPLE_ATLASSIAN_ACCOUNT}'",
        ),
        (
            "012345670123",
            "'true'",
            "",
            "atlassian-cmk:atlassianKeyPolicy[0].Principal.AWS: 012345670123 is read by Pulumi as the number "
            f"{int('12345670123', 8)}; quote it: '012345670123'",
        ),
        (
            f"'{SAMPLE_ATLASSIAN_ACCOUNT}'",
            "true",
            "",
            "atlassian-cmk:atlassianKeyPolicy[0].Condition.Bool.aws:SecureTransport: true is read by Pulumi as the "
            "boolean true; quote it: 'true'",
        ),
        (
            f"'{SAMPLE_ATLASSIAN_ACCOUNT}'",
            "'true'",
            "1234",
            "atlassian-cmk:atlassianKeyPolicyRevision: 1234 is read by Pulumi as the number 1234; quote it: '1234'",
        ),
    ],
)
def test_atlassians_statements_typed_by_yaml_are_refused_with_the_quote_advice(
    principal: str, secure: str, revision: str, message: str
) -> None:
    with pytest.raises(StackConfigErrors) as caught:
        check_text(block_policy(principal, secure, revision), "s")
    assert any(str(error).startswith(message) for error in caught.value.errors), caught.value


@pytest.mark.parametrize(
    ("ticket", "reading"),
    [("0042", "the number 34; quote it: '0042'"), ("2024-01-01", "the timestamp 2024-01-01 00:00:00 +0000 UTC")],
)
def test_nested_text_is_checked_too(ticket: str, reading: str) -> None:
    text = REVOKED.replace("ticket: SEC-1234", f"ticket: {ticket}")
    assert json.loads(raw_config_from_text(text)["atlassian-cmk:revocation"])["ticket"] != ticket
    message = re.escape(f"atlassian-cmk:revocation.ticket: {ticket} is read by Pulumi as {reading}")
    with pytest.raises(StackConfigErrors, match=message):
        check_text(text, "s")


@pytest.mark.parametrize("spelling", ["FALSE", "False", "false", "'false'"])
def test_enabled_false_in_every_spelling_the_engine_reads_as_false(spelling: str) -> None:
    text = REVOKED.replace("enabled: false", f"enabled: {spelling}")
    assert check_text(text, "s").enabled is False


def test_enabled_true_spelled_upper_case_is_true() -> None:
    assert check_text(VALID.replace("enabled: true", "enabled: TRUE"), "s").enabled is True


def test_project_defaults_fill_in_the_stack_and_reach_cmkctl(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: atlassian-cmk\nruntime: python\nconfig:\n"
        "  multiRegion: {type: boolean, default: true}\n"
        "  atlassian-cmk:contextTag: {type: string, default: FromProject}\n"
        "  aws:region: us-east-1\n"
    )
    (tmp_path / "Pulumi.prod.yaml").write_text(VALID.replace("  atlassian-cmk:contextTag: AcmeCMK\n", ""))
    config = load_stack_config(tmp_path, "prod")
    assert (config.multi_region, config.context_tag) == (True, "FromProject")
    # Shorthand: the project's own keys get a default, other namespaces a value (project.go).
    assert (
        raw_config_from_text(VALID, project_text="name: atlassian-cmk\nconfig:\n  aws:region: eu-west-1\n")[
            "aws:region"
        ]
        == "eu-west-1"
    )


def test_project_types_and_required_keys_are_checked_as_the_engine_checks_them() -> None:
    project = "name: atlassian-cmk\nconfig:\n  multiRegion: {type: boolean}\n  extra: {type: string}\n"
    with pytest.raises(StackFileError, match="Stack 'prod' is missing configuration value 'atlassian-cmk:extra'"):
        raw_config_from_text(VALID + "  atlassian-cmk:multiRegion: true\n", project_text=project)
    typed = project.replace("  extra: {type: string}\n", "")
    with pytest.raises(StackFileError, match="'atlassian-cmk:multiRegion' must be of type 'boolean'"):
        raw_config_from_text(VALID + "  atlassian-cmk:multiRegion: yes\n", project_text=typed)
    with pytest.raises(StackFileError, match="name: 'other' is not allowed"):
        raw_config_from_text(VALID, project_text="name: other\n")


def test_a_bare_key_beside_the_full_one_is_refused_not_merged() -> None:
    text = REVOKED + "  enabled: true\n"
    with pytest.raises(StackFileError, match="could not parse enabled as a configuration key"):
        check_text(text, "s")


def test_a_secret_value_is_refused_without_echoing_the_ciphertext() -> None:
    ciphertext = "v1:" + "A" * 500
    text = REVOKED.replace("reason: Suspected breach", f"reason:\n      secure: {ciphertext}")
    config = engine_config(text, None, stack="prod", source="s")
    assert config.secret_keys == ("atlassian-cmk:revocation",)
    with pytest.raises(StackConfigErrors) as caught:
        check_text(text, "s")
    (line,) = [str(e) for e in caught.value.errors if "secret" in str(e)]
    assert line.startswith("atlassian-cmk:revocation.reason: is a secret") and "plaintext KMS tags" in line
    assert ciphertext not in line and len(line) < 400


def test_an_esc_environment_import_is_refused() -> None:
    with pytest.raises(StackFileError, match="imports a Pulumi ESC environment"):
        check_text("environment:\n  - acme/prod\n" + VALID, "s")


def test_an_alias_bomb_is_one_line_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(9)]
    with pytest.raises(StackFileError, match="document contains excessive aliasing") as caught:
        raw_config_from_text("\n".join(lines) + "\n")
    assert "\n" not in str(caught.value)


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(StackFileError, match=f"larger than {MAX_FILE_BYTES} bytes"):
        raw_config_from_text(VALID + "#" * MAX_FILE_BYTES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config:\n  atlassian-cmk:enabled: true\n  atlassian-cmk:enabled: false\n",
            'line 3: mapping key "atlassian-cmk:enabled" already defined at line 2',
        ),
        ("config:\n\tatlassian-cmk:enabled: true\n", "line 2, column 1: .*a tab: YAML indents with spaces"),
        ("config:\n  a: [unclosed\n", r"line 3, column 1: did not find expected ',' or '\]'"),
    ],
)
def test_parser_errors_name_line_column_and_cause(text: str, message: str) -> None:
    with pytest.raises(StackFileError, match=f"s: not valid YAML: {message}") as caught:
        engine_config(text, None, stack="prod", source="s")
    assert "\n" not in str(caught.value)


def test_long_values_are_shortened_in_messages() -> None:
    text = VALID.replace("AcmeCMK", "x" * 100_000)
    with pytest.raises(StackConfigErrors) as caught:
        check_text(text, "s")
    assert len(str(caught.value)) < 400 and "(100000 characters)" in str(caught.value)


def test_non_utf8_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.prod.yaml").write_bytes(VALID.encode() + b"  other:k: \xff\n")
    assert main(["status", "--project-dir", str(tmp_path)]) == 64
    assert "not UTF-8 text (byte 0xff" in capsys.readouterr().err


@pytest.mark.parametrize("stack", ["x/../../elsewhere/evil", "a.b", "café", "", "a" * 101])
def test_stack_names_are_refused_unless_pulumi_and_kms_both_accept_them(
    stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["status"], ["impact", "--base", "HEAD"]):
        assert main([*command, "--stack", stack, "--project-dir", str(tmp_path)]) == 64
        assert "--stack:" in capsys.readouterr().err


def test_regions_come_from_botocores_partition_data() -> None:
    assert all(is_region_name(r) for r in ("us-east-1", "eu-west-2", "us-gov-west-1", "cn-north-1", "ap-southeast-4"))
    assert not any(is_region_name(r) for r in ("zz-fake-9", "aws-global", "us-east-99", "US-EAST-1"))
    text = VALID.replace("atlassian-cmk:realm: us", "atlassian-cmk:regions: [us-east-1, zz-fake-9]")
    with pytest.raises(StackConfigErrors, match="atlassian-cmk:regions: 'zz-fake-9' is not allowed"):
        check_text(text, "s")


def test_revoke_then_restore_gives_back_the_file_pulumi_config_set_wrote() -> None:
    # `pulumi config set atlassian-cmk:enabled true` stores the string "true": yaml.v3 quotes it.
    written = VALID.replace("enabled: true", 'enabled: "true"')
    revoked = with_revocation(written, "Suspected breach", "0042")
    assert 'atlassian-cmk:enabled: "false"' in revoked and "ticket: '0042'" in revoked
    assert check_text(revoked, "s").revocation is not None
    assert with_restoration(revoked) == written


def test_the_program_refuses_secrets_of_the_namespace_as_the_engine_marks_them() -> None:
    values = raw_config_from_text(REVOKED)
    run = run_program(values, secret_keys=["atlassian-cmk:revocation"])
    assert run.error is not None and "atlassian-cmk:revocation: is a secret" in str(run.error)
    assert run.kms_keys == []


def test_values_beyond_the_readers_bound_are_refused_in_one_line() -> None:
    copies = ",".join(["*w"] * 5)
    text = f"config:\n  other:wide: &w [{','.join(['x'] * 30_000)}]\n  other:copies: [{copies}]\n"
    with pytest.raises(StackFileError, match="more than 100000 values once aliases are expanded") as caught:
        raw_config_from_text(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("project", "stack_extra", "message"),
    [
        # project.go Project.Validate
        ("  aws:region: {default: us-east-1}\n", "", "'aws:region' is not namespaced by the project"),
        ("  multiRegion: {type: boolean, default: yes}\n", "", "default value .* 'multiRegion' is not of the expected"),
        # config.go validateStackConfigValue: an object value is not a string
        (
            "  extra: {type: string}\n",
            "  atlassian-cmk:extra: {a: 1}\n",
            "'atlassian-cmk:extra' must be of type 'string'",
        ),
        ("  extra: {type: integer}\n", "  atlassian-cmk:extra: 1_000\n", None),  # yaml.v3 reads 1000
        ("  extra: {type: integer}\n", "  atlassian-cmk:extra: '1_000'\n", "must be of type 'integer'"),
    ],
)
def test_project_schema_rules_of_the_engine(project: str, stack_extra: str, message: str | None) -> None:
    project_text = "name: atlassian-cmk\nconfig:\n" + project
    if message is None:
        assert raw_config_from_text(VALID + stack_extra, project_text=project_text)["atlassian-cmk:extra"] == "1000"
        return
    with pytest.raises(StackFileError, match=message):
        raw_config_from_text(VALID + stack_extra, project_text=project_text)


ENROLLED_EAST = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENROLLED_WEST = "arn:aws:kms:us-west-2:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab"


def test_enrolled_key_arns_are_registered_as_text() -> None:
    assert is_text_path("enrolledKeys.us-east-1")
    text = VALID + f"  atlassian-cmk:enrolledKeys:\n    us-east-1: {ENROLLED_EAST}\n    us-west-2: {ENROLLED_WEST}\n"
    config = check_text(text, "s")
    assert config.enrolled_keys is not None
    assert [k.arn for k in config.enrolled_keys] == [ENROLLED_EAST, ENROLLED_WEST]


def test_an_enrolled_key_typed_by_yaml_is_refused_with_the_quote_advice() -> None:
    # A pasted value yaml.v3 types (here a number) is refused where the text is still seen, naming the path.
    text = VALID + f"  atlassian-cmk:enrolledKeys:\n    us-east-1: {ENROLLED_EAST}\n    us-west-2: 0012345\n"
    message = re.escape("atlassian-cmk:enrolledKeys.us-west-2: 0012345 is read by Pulumi as the number 5349; quote it")
    with pytest.raises(StackConfigErrors, match=message):
        check_text(text, "s")


def test_the_enroll_writer_keeps_every_byte_it_does_not_add() -> None:
    # `cmkctl enroll --write-config` edits the file as revoke/restore do (config_edit): the quotes,
    # comments and order people wrote stay, the block is added as text the reader accepts.
    before = VALID.replace("atlassian-cmk:contextTag: AcmeCMK", "atlassian-cmk:contextTag: 'AcmeCMK'  # Atlassian's")
    assert "'AcmeCMK'  # Atlassian's" in before
    after = with_enrolled_keys(before, {"us-east-1": ENROLLED_EAST, "us-west-2": ENROLLED_WEST})
    assert after.startswith(before)
    config = check_text(after, "s")
    assert config.enrolled_keys is not None and config.context_tag == "AcmeCMK"
    assert [k.arn for k in config.enrolled_keys] == [ENROLLED_EAST, ENROLLED_WEST]
