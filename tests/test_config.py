"""The stack configuration schema: what is accepted, what is refused, and how it is said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.config import StackConfigErrors, parse_stack_config
from atlassian_cmk.stack_file import StackFileError, check_text, load_stack_config, raw_config_from_text
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY, SAMPLE_ATLASSIAN_ROLE, sample_config_value

PRINCIPAL = SAMPLE_ATLASSIAN_ROLE
PROJECT_DIR = Path(__file__).resolve().parents[1]


SAMPLE_APPLY_ROLE = "arn:aws:iam::123456789012:role/cmk-apply"
"""The shipped Pulumi.prod.yaml's sample `applyRoleArn`, in the emulator's (and the sample) account."""


def engine_config(**overrides: Any) -> dict[str, Any]:
    """A valid config map as the engine passes it: strings, objects as JSON text."""
    raw: dict[str, Any] = {
        "atlassian-cmk:realm": "us",
        "atlassian-cmk:enabled": "true",
        "atlassian-cmk:contextTag": "AcmeCMK",
        "atlassian-cmk:atlassianKeyPolicy": sample_config_value(),
        # The keys' own account, known before any key exists (the pack's root-administrator check).
        "aws:allowedAccountIds": '["123456789012"]',
        # Required by the program and the pack (`config.apply_role_missing`); `applyRoleArn=None` drops it.
        "atlassian-cmk:applyRoleArn": SAMPLE_APPLY_ROLE,
    }
    for key, value in overrides.items():
        full = f"atlassian-cmk:{key}"
        if value is None:
            raw.pop(full, None)
        else:
            raw[full] = value if isinstance(value, str) else json.dumps(value)
    return raw


def only_error(raw: dict[str, Any]) -> str:
    with pytest.raises(StackConfigErrors) as caught:
        parse_stack_config(raw)
    assert len(caught.value.errors) == 1, str(caught.value)
    return str(caught.value.errors[0])


@pytest.mark.parametrize(
    ("realm", "regions"),
    [
        ("us", ("us-east-1", "us-west-2")),
        ("eu", ("eu-central-1", "eu-west-1")),
        ("au", ("ap-southeast-2",)),
        ("ca", ("ca-central-1",)),
        ("de", ("eu-central-1",)),
        ("in", ("ap-south-1",)),
        ("jp", ("ap-northeast-1",)),
        ("kr", ("ap-northeast-2",)),
        ("sg", ("ap-southeast-1",)),
    ],
)
def test_realm_selects_its_regions(realm: str, regions: tuple[str, ...]) -> None:
    config = parse_stack_config(engine_config(realm=realm))
    assert config.regions == regions
    assert config.realm == realm


def test_explicit_regions_stand_in_for_a_realm_not_in_the_table() -> None:
    config = parse_stack_config(engine_config(realm=None, regions=["eu-west-2", "eu-west-3"]))
    assert config.regions == ("eu-west-2", "eu-west-3")
    assert config.realm == "explicit"


def test_defaults_for_optional_keys() -> None:
    config = parse_stack_config(engine_config())
    assert config.enabled is True
    assert config.reencryption.status == "none"
    assert config.multi_region is False
    assert config.key_administrators == ()
    assert config.revocation is None


def test_disabled_with_justification_is_accepted() -> None:
    config = parse_stack_config(
        engine_config(enabled="false", revocation={"reason": "Suspected breach", "ticket": "SEC-1"})
    )
    assert config.enabled is False
    assert config.revocation is not None and config.revocation.ticket == "SEC-1"


def test_pulumi_capitalised_booleans_are_accepted_like_config_get_bool() -> None:
    assert parse_stack_config(engine_config(enabled="True")).enabled is True


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"realm": "mars"}, "atlassian-cmk:realm", "'mars' is not allowed; allowed: us, eu, au, ca, de, in, jp"),
        ({"regions": ["us-east-1"]}, "atlassian-cmk:regions", "not allowed together with realm"),
        ({"realm": None}, "atlassian-cmk:realm", "missing; set exactly one of"),
        (
            {"realm": None, "regions": ["us-east-1", "us-west-2", "eu-west-1"]},
            "atlassian-cmk:regions",
            "one or two distinct AWS regions",
        ),
        ({"realm": None, "regions": ["us-east-1", "mars-1"]}, "atlassian-cmk:regions", "'mars-1' is not allowed"),
        ({"realm": None, "regions": "us-east-1"}, "atlassian-cmk:regions", "a list of one or two"),
        ({"enabled": None}, "atlassian-cmk:enabled", "missing; required; allowed: true or false"),
        ({"enabled": "no"}, "atlassian-cmk:enabled", "'no' is not allowed; allowed: true or false"),
        ({"enabled": "yes"}, "atlassian-cmk:enabled", "'yes' is not allowed"),
        ({"enabled": "off"}, "atlassian-cmk:enabled", "'off' is not allowed"),
        ({"enabled": "0"}, "atlassian-cmk:enabled", "'0' is not allowed"),
        ({"enabled": "false"}, "atlassian-cmk:revocation", "missing; required when enabled is false"),
        (
            {"enabled": "false", "revocation": {"ticket": "SEC-1"}},
            "atlassian-cmk:revocation.reason",
            "required: non-empty text",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach", "ticket": "  "}},
            "atlassian-cmk:revocation.ticket",
            "required: non-empty text",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach; see SEC-1", "ticket": "SEC-1"}},
            "atlassian-cmk:revocation.reason",
            "'breach; see SEC-1' is not allowed; allowed: use letters, digits, spaces and _ . : / = + - @ "
            "(ASCII, the AWS tag character set), not U+003B SEMICOLON",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach", "ticket": "SEC 1"}},
            "atlassian-cmk:revocation.ticket",
            "'SEC 1' is not allowed; allowed: a ticket id such as SEC-1234: at most 256",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "line one\nline two", "ticket": "SEC-1"}},
            "atlassian-cmk:revocation.reason",
            "'line one\\nline two' is not allowed; allowed: use letters, digits, spaces and _ . : / = + - @ "
            "(ASCII, the AWS tag character set), not U+000A LINE FEED",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach\n", "ticket": "SEC-1"}},
            "atlassian-cmk:revocation.reason",
            "not U+000A LINE FEED",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach", "ticket": "SEC-1\r"}},
            "atlassian-cmk:revocation.ticket",
            "not U+000D CARRIAGE RETURN",
        ),
        (
            {"enabled": "false", "revocation": {"reason": "breach", "ticket": "SEC-1", "by": "me"}},
            "atlassian-cmk:revocation.by",
            "unknown field",
        ),
        (
            {"atlassianKeyPolicy": None},
            "atlassian-cmk:atlassianKeyPolicy",
            "missing; required, no default; paste the statements from Atlassian's 'Set up your AWS account",
        ),
        ({"atlassianKeyPolicy": []}, "atlassian-cmk:atlassianKeyPolicy", "[] is not allowed; allowed: paste"),
        (
            {"atlassianKeyPolicy": [{"Effect": "Permit", "Principal": {"AWS": PRINCIPAL}, "Action": "kms:Decrypt"}]},
            "atlassian-cmk:atlassianKeyPolicy[0]",
            "not an IAM statement (atlassianKeyPolicy[0].Effect: 'Permit' is not allowed; Allow or Deny)",
        ),
        (
            {"atlassianKeyPolicy": [{"Effect": "Allow", "Principal": {"AWS": PRINCIPAL}, "Resource": "*"}]},
            "atlassian-cmk:atlassianKeyPolicy[0]",
            "atlassianKeyPolicy[0].Action: missing; required (or NotAction)",
        ),
        (
            {"atlassianKeyPolicy": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]},
            "atlassian-cmk:atlassianKeyPolicy[0].Principal",
            "no *, no NotPrincipal",
        ),
        (
            {
                "atlassianKeyPolicy": [
                    {"Effect": "Allow", "NotPrincipal": {"AWS": PRINCIPAL}, "Action": "kms:*", "Resource": "*"}
                ]
            },
            "atlassian-cmk:atlassianKeyPolicy[0].Principal",
            "no *, no NotPrincipal",
        ),
        (
            {
                "atlassianKeyPolicy": [
                    {"Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEEXAMPLE123"}, "Action": "kms:*"}
                ]
            },
            "atlassian-cmk:atlassianKeyPolicy[0].Principal.AWS",
            "a unique ID (a deleted principal); paste Atlassian's ARN",
        ),
        (
            {
                "atlassianKeyPolicy": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::<ATLASSIAN_ACCOUNT>:root"},
                        "Action": "kms:*",
                    }
                ]
            },
            "atlassian-cmk:atlassianKeyPolicy[0]",
            "'<ATLASSIAN_ACCOUNT>' is not allowed; a placeholder: replace it with the value from your enrollment "
            "ticket",
        ),
        (
            {
                "atlassianKeyPolicy": [
                    {
                        "Sid": "EnableRootAccountAdministration",
                        "Effect": "Allow",
                        "Principal": {"AWS": PRINCIPAL},
                        "Action": "kms:*",
                    }
                ]
            },
            "atlassian-cmk:atlassianKeyPolicy[0].Sid",
            "reserved for the product's own statements",
        ),
        ({"atlassianKeyPolicyRevision": "ATL 1"}, "atlassian-cmk:atlassianKeyPolicyRevision", "a ticket id such as"),
        (
            {"keyAdministrators": ["someone@example.com"]},
            "atlassian-cmk:keyAdministrators",
            "'someone@example.com' is not allowed",
        ),
        ({"contextTag": "AcmeCMK123456"}, "atlassian-cmk:contextTag", "'AcmeCMK123456' is not allowed; allowed: 1-12"),
        ({"contextTag": "Acme-CMK"}, "atlassian-cmk:contextTag", "'Acme-CMK' is not allowed"),
        ({"contextTag": None}, "atlassian-cmk:contextTag", "missing; required"),
        (
            {"reencryption": {"status": "running"}},
            "atlassian-cmk:reencryption.status",
            "'running' is not allowed; allowed: none, preparing, in-progress, complete",
        ),
        ({"reencryption": "in-progress"}, "atlassian-cmk:reencryption", "an object with status, ticket"),
        ({"multiRegion": "yes"}, "atlassian-cmk:multiRegion", "'yes' is not allowed"),
        ({"realm": "sg", "multiRegion": "true"}, "atlassian-cmk:multiRegion", "only for a dual-region realm"),
        ({"enable": "false"}, "atlassian-cmk:enable", "allowed keys: realm, regions, enabled"),
    ],
)
def test_each_bad_value_is_one_line_naming_key_value_and_allowed(
    overrides: dict[str, Any], key: str, fragment: str
) -> None:
    message = only_error(engine_config(**overrides))
    assert message.startswith(f"{key}: ")
    assert fragment in message
    assert "\n" not in message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(StackConfigErrors) as caught:
        parse_stack_config(engine_config(realm="mars", enabled="no", contextTag="x-y"))
    keys = [error.key for error in caught.value.errors]
    assert keys == ["atlassian-cmk:realm", "atlassian-cmk:enabled", "atlassian-cmk:contextTag"]


def test_other_namespaces_are_ignored() -> None:
    config = parse_stack_config({**engine_config(), "aws:region": "us-east-1", "pulumi:tags": "{}"})
    assert config.regions == ("us-east-1", "us-west-2")


# --- the stack file, read as the engine (yaml.v3) reads it ------------------------------------

STACK_YAML = """
config:
  aws:region: us-east-1
  atlassian-cmk:realm: us
  atlassian-cmk:enabled: {enabled}
  atlassian-cmk:contextTag: AcmeCMK
  atlassian-cmk:atlassianKeyPolicy:
    - Effect: Allow
      Principal: {{AWS: {principal}}}
      Action: [kms:Decrypt, kms:Encrypt]
      Resource: "*"
"""


@pytest.mark.parametrize("word", ["no", "off", "yes", "on", "n", "y", "NO"])
def test_yaml_1_1_booleans_are_strings_and_refused(word: str) -> None:
    raw = raw_config_from_text(STACK_YAML.format(enabled=word, principal=PRINCIPAL))
    assert raw["atlassian-cmk:enabled"] == word
    assert only_error(raw).startswith(f"atlassian-cmk:enabled: {word!r} is not allowed")


def test_yaml_true_and_false_are_booleans() -> None:
    raw = raw_config_from_text(STACK_YAML.format(enabled="true", principal=PRINCIPAL))
    assert parse_stack_config(raw).enabled is True


def test_quoted_and_nested_values_reach_the_schema_as_the_engine_passes_them() -> None:
    text = STACK_YAML.format(enabled="false", principal=PRINCIPAL) + (
        "  atlassian-cmk:revocation:\n    reason: 'yes'\n    ticket: 1234\n"
    )
    config = parse_stack_config(raw_config_from_text(text))
    assert config.revocation is not None
    assert (config.revocation.reason, config.revocation.ticket) == ("yes", "1234")


def test_bare_keys_in_a_stack_file_are_refused_as_the_engine_refuses_them() -> None:
    # pulumi/pulumi sdk/go/common/resource/config/key.go ParseKey: `<namespace>:<name>` only.
    text = (
        "config:\n  realm: sg\n  enabled: true\n  contextTag: Acme\n  atlassianKeyPolicy: "
        + sample_config_value()
        + "\n"
    )
    with pytest.raises(StackFileError, match=r"stack file:2: could not parse realm as a configuration key"):
        raw_config_from_text(text)


def test_secret_values_of_our_namespace_are_refused() -> None:
    with pytest.raises(
        StackConfigErrors, match=r"atlassian-cmk:contextTag: is a secret \(secure: AAABAD==; .*line 3\)"
    ):
        check_text("config:\n  atlassian-cmk:contextTag:\n    secure: AAABAD==\n", "stack file")


def test_invalid_yaml_is_one_line() -> None:
    with pytest.raises(StackFileError, match="not valid YAML") as caught:
        raw_config_from_text("config:\n  a: [unclosed\n")
    assert "\n" not in str(caught.value)


def test_missing_stack_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"Pulumi\.nope\.yaml: no such stack file"):
        load_stack_config(tmp_path, "nope")


def test_the_shipped_prod_stack_is_a_valid_us_realm() -> None:
    config = load_stack_config(PROJECT_DIR, "prod")
    assert config.realm == "us"
    assert config.regions == ("us-east-1", "us-west-2")
    assert config.enabled is True


EAST = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
WEST = "arn:aws:kms:us-west-2:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab"


def test_enrolled_keys_are_the_identity_of_each_region_in_realm_order() -> None:
    config = parse_stack_config(engine_config(enrolledKeys={"us-west-2": WEST, "us-east-1": EAST}))

    assert config.enrolled_keys is not None
    assert config.enrolled_keys.regions == ("us-east-1", "us-west-2")
    west = config.enrolled_keys.arn("us-west-2")
    assert west is not None and (west.region, west.account, west.key_id) == (
        "us-west-2",
        "123456789012",
        "2234abcd-12ab-34cd-56ef-1234567890ab",
    )
    assert parse_stack_config(engine_config()).enrolled_keys is None


@pytest.mark.parametrize(
    ("enrolled", "key", "fragment"),
    [
        ({"us-east-1": EAST}, "atlassian-cmk:enrolledKeys", "missing an ARN for us-west-2"),
        (
            {"us-east-1": EAST, "us-west-2": "arn:aws:kms:us-west-2:123456789012:alias/atlassian-cmk/prod"},
            "atlassian-cmk:enrolledKeys.us-west-2",
            "a KMS key ARN (key/, not alias/)",
        ),
        ({"us-east-1": EAST, "us-west-2": EAST}, "atlassian-cmk:enrolledKeys.us-west-2", "a key in us-west-2"),
        (
            {"us-east-1": EAST, "us-west-2": WEST.replace("123456789012", "999999999999")},
            "atlassian-cmk:enrolledKeys",
            "every key in one AWS account",
        ),
        (
            {"us-east-1": EAST.replace("arn:aws:", "arn:aws-cn:"), "us-west-2": WEST},
            "atlassian-cmk:enrolledKeys.us-east-1",
            "partition aws for region us-east-1",
        ),
        ([EAST, WEST], "atlassian-cmk:enrolledKeys", "a map of region to KMS key ARN"),
        (
            {"us-east-1": f" {EAST}", "us-west-2": WEST},
            "atlassian-cmk:enrolledKeys.us-east-1",
            "the ARN without surrounding spaces (remove them, or quote the value without them)",
        ),
        (
            {"us-east-1": EAST, "us-west-2": f"{WEST} "},
            "atlassian-cmk:enrolledKeys.us-west-2",
            "without surrounding spaces",
        ),
        (
            {"us-east-1": EAST.replace("key/", "key/mrk-"), "us-west-2": WEST},
            "atlassian-cmk:enrolledKeys.us-east-1",
            "an ARN matching multiRegion: false (this one is a multi-region key (mrk- key ID))",
        ),
    ],
)
def test_bad_enrolled_keys_are_one_line_naming_the_key_and_what_is_allowed(
    enrolled: object, key: str, fragment: str
) -> None:
    message = only_error(engine_config(enrolledKeys=enrolled))

    assert message.startswith(f"{key}: ")
    assert fragment in message
    assert "\n" not in message


def test_multi_region_true_with_single_region_enrolled_keys_is_refused_naming_the_loss() -> None:
    message = only_error(engine_config(multiRegion="true", enrolledKeys={"us-east-1": EAST, "us-west-2": WEST}))

    assert message.startswith("atlassian-cmk:enrolledKeys.us-east-1: ")
    assert "an ARN matching multiRegion: true (this one is a single-region key)" in message
    assert "Atlassian would lose the key it holds in us-east-1" in message


def test_enrolled_keys_problems_are_said_without_python_reprs() -> None:
    west_elsewhere = WEST.replace("123456789012", "999999999999")
    accounts = only_error(engine_config(enrolledKeys={"us-east-1": EAST, "us-west-2": west_elsewhere}))
    missing = only_error(engine_config(enrolledKeys={"us-east-1": EAST}))

    for message in (accounts, missing):  # Python's list/dict reprs quote their items; the example map does not
        assert "['" not in message and "{'" not in message, message
    assert "'123456789012, 999999999999'" in accounts


def test_the_shipped_commented_enrolled_keys_block_is_valid_once_uncommented() -> None:
    text = (PROJECT_DIR / "Pulumi.prod.yaml").read_text()
    start = text.index("  # atlassian-cmk:enrolledKeys:\n")
    block = text[start:].split("\n")[:3]
    uncommented = "\n".join(line.replace("  # ", "  ", 1) for line in block) + "\n"
    config = check_text(text + uncommented, "Pulumi.prod.yaml", None, "prod")

    assert config.enrolled_keys is not None and config.enrolled_keys.regions == ("us-east-1", "us-west-2")


def test_an_enrolled_region_the_stack_no_longer_has_is_left_to_the_identity_guard() -> None:
    config = parse_stack_config(
        engine_config(realm=None, regions=["us-east-1"], enrolledKeys={"us-east-1": EAST, "us-west-2": WEST})
    )

    from atlassian_cmk.identity_rules import dropped_keys

    assert [(f.region, f.arn) for f in dropped_keys(config)] == [("us-west-2", WEST)]


def test_atlassians_principals_are_derived_from_its_statements() -> None:
    second = "arn:aws:iam::279766244153:role/SAMPLE-Second"
    statements = [
        {"Effect": "Allow", "Principal": {"AWS": [PRINCIPAL, second]}, "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": PRINCIPAL}, "Action": "kms:DescribeKey", "Resource": "*"},
    ]
    config = parse_stack_config(engine_config(atlassianKeyPolicy=statements))
    assert config.atlassian_principals == (PRINCIPAL, second)
    assert config.atlassian_key_policy == tuple(statements)


def test_a_whole_pasted_policy_document_gives_its_statements() -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": "279766244153"}, "Action": "kms:Decrypt", "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    assert parse_stack_config(engine_config(atlassianKeyPolicy=document)).atlassian_key_policy == (statement,)


def test_every_problem_is_listed_once_in_one_line_each() -> None:
    with pytest.raises(StackConfigErrors) as caught:
        parse_stack_config(engine_config(atlassianKeyPolicy=None, contextTag="Acme-CMK"))
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines] == [
        "atlassian-cmk:atlassianKeyPolicy",
        "atlassian-cmk:contextTag",
    ]


def test_several_bad_atlassian_statements_give_one_line_each() -> None:
    good = SAMPLE_ATLASSIAN_KEY_POLICY[0]
    raw = engine_config(
        atlassianKeyPolicy=[
            {**good, "Sid": "A", "Principal": "*"},
            {**good, "Sid": "B", "Principal": {"AWS": "AROAEXAMPLEEXAMPLE123"}},
            {k: v for k, v in good.items() if k != "Resource"},
            {**good, "Sid": "D"},
            {**good, "Sid": "D"},
        ]
    )
    with pytest.raises(StackConfigErrors) as caught:
        parse_stack_config(raw)
    lines = [str(e) for e in caught.value.errors]
    assert [line.split(":", 2)[1].split(" ")[0] for line in lines] == [
        "atlassianKeyPolicy[0].Principal",
        "atlassianKeyPolicy[1].Principal.AWS",
        "atlassianKeyPolicy[2].Resource",
        "atlassianKeyPolicy[4].Sid",
    ], lines
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(
    ("principal", "placeholder"),
    [
        ("arn:aws:iam::279766244153:role/Your-Role", False),
        ("arn:aws:iam::279766244153:role/YOUR_ROLE_EXAMPLE_ACCOUNT", False),
        ("arn:aws:iam::<atlassian-account>:role/X", True),
        ("arn:aws:iam::{{account}}:role/X", True),
        ("arn:aws:iam::279766244153:role/REPLACE_ME", True),
    ],
)
def test_only_explicit_markers_are_placeholders(principal: str, placeholder: bool) -> None:
    statement = {**SAMPLE_ATLASSIAN_KEY_POLICY[0], "Principal": {"AWS": principal}}
    raw = engine_config(atlassianKeyPolicy=[statement])
    if placeholder:
        assert "a placeholder: replace it with the value from your enrollment ticket" in only_error(raw)
    else:
        assert parse_stack_config(raw).atlassian_key_policy[0]["Principal"] == {"AWS": principal}


@pytest.mark.parametrize(
    ("arn", "fragment"),
    [
        ("arn:aws-cn:iam::123456789012:role/cmk-apply", "allowed: a role in partition aws (the keys' partition)"),
        ("arn:aws-us-gov:iam::123456789012:role/cmk-apply", "allowed: a role in partition aws (the keys' partition)"),
        ("arn:aws:iam::123456789012:role/" + "r" * 65, "at most 64 characters (IAM's limit; this one has 65)"),
        ("arn:aws:iam::123456789012:role/ci/" + "r" * 65, "at most 64 characters (IAM's limit; this one has 65)"),
        ("arn:aws:iam::999999999999:role/cmk-apply", "allowed: a role in the account aws:allowedAccountIds names"),
    ],
)
def test_apply_role_arn_outside_the_keys_partition_account_or_name_limit_is_one_line(arn: str, fragment: str) -> None:
    message = only_error(engine_config(applyRoleArn=arn))
    assert "applyRoleArn" in message and fragment in message and "\n" not in message


def test_apply_role_arn_at_the_name_limit_in_the_allowed_account_is_accepted() -> None:
    arn = "arn:aws:iam::123456789012:role/ci/" + "r" * 64
    assert parse_stack_config(engine_config(applyRoleArn=arn)).apply_role_arn == arn
