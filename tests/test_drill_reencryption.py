"""`cmkctl drill --reencryption` against moto's HTTP server: a whole re-encryption on the drill's own keys.

Each step's outcome, the guard's refusal while in progress (nothing disabled), the promotion (the alias
moves, no key created), the retirement (disabled, never deleted), an interruption mid-walk, and the
requests sent (through the recording proxy): never ScheduleKeyDeletion, never PutKeyPolicy.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from atlassian_cmk.cli import drill_reencryption as walk
from atlassian_cmk.cli.drill import REENCRYPTION_DRILL_PERMISSIONS, DrillInterrupted, run_drill
from atlassian_cmk.cli.main import main
from atlassian_cmk.drill_rules import TAG_DRILL_CLEANUP
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_DRILL, TAG_KEY_PAIR, TAG_REENCRYPTION, alias_name
from tests.support.aws import client_factory_for
from tests.support.faults import fault_proxy

REGIONS = ("us-east-1", "us-west-2")
NEVER = {"ScheduleKeyDeletion", "CancelKeyDeletion", "DeleteKey", "PutKeyPolicy", "ReplicateKey"}


def _keys(aws: Any) -> dict[str, list[dict[str, Any]]]:
    """Per region: every key in the emulator with its state and tags."""
    keys: dict[str, list[dict[str, Any]]] = {}
    for region in REGIONS:
        kms = aws("kms", region)
        keys[region] = [
            {
                "arn": entry["KeyArn"],
                "state": kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]["KeyState"],
                "tags": {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=entry["KeyId"])["Tags"]},
            }
            for entry in kms.list_keys()["Keys"]
        ]
    return keys


def test_the_reencryption_drill_walks_every_phase_and_never_deletes(moto_endpoint: str) -> None:
    with fault_proxy(moto_endpoint) as proxy:
        out = io.StringIO()
        result = run_drill(
            cli=main, realm="us", out=out, client_factory=client_factory_for(proxy.url), reencryption=True
        )
        sent = proxy.operations()

    assert [(s.name, s.outcome) for s in result.steps] == [
        (walk.STEP_ENROLL, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_ONE, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_PREPARING, ExitCode.AS_DECLARED),
        (walk.STEP_ENROLL_NEXT, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_NEXT, ExitCode.AS_DECLARED),  # evidence absent: Atlassian never calls the emulator
        (walk.STEP_REVOKE_REFUSED, ExitCode.REFUSED),
        (walk.STEP_NOTHING_DISABLED, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_IN_PROGRESS, ExitCode.AS_DECLARED),  # evidence absent: Atlassian never calls the emulator
        (walk.STEP_STATUS_COMPLETE, ExitCode.AS_DECLARED),  # evidence absent: Atlassian never calls the emulator
        (walk.STEP_PROMOTED, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_PROMOTED, ExitCode.AS_DECLARED),  # evidence absent: Atlassian never calls the emulator
        (walk.STEP_RETIRED, ExitCode.AS_DECLARED),
        (walk.STEP_STATUS_RETIRED, ExitCode.AS_DECLARED),
        (walk.STEP_LEFT_DISABLED, ExitCode.AS_DECLARED),
        (walk.STEP_ALL_DISABLED, ExitCode.AS_DECLARED),
    ]
    assert result.passed
    text = out.getvalue()
    assert "Verdict: PASS. A whole re-encryption" in text
    # One line per step (its "..." start line for commands; a long line wrapped within 100 columns, its
    # continuation indented): nothing of the nested commands leaks.
    walk_lines = text.split("\nTimeline")[0].splitlines()[1:]
    assert all(line.startswith(("  ok   ", "  ... ", "    ")) for line in walk_lines)
    assert sum(line.startswith("  ok   ") for line in walk_lines) == 15
    assert max(len(line) for line in text.splitlines() if "arn:aws:kms" not in line) <= 100

    # The refusal is the re-encryption guard's, and it disabled nothing in either generation.
    assert "re-encryption" in result.step(walk.STEP_REVOKE_REFUSED).output
    assert result.step(walk.STEP_NOTHING_DISABLED).output.count("Enabled") == 4
    # Status per generation at each phase (atlassian_cmk/status.py's GEN/ROLE table as main prints it).
    preparing = result.step(walk.STEP_STATUS_PREPARING).output
    assert "next" in preparing and "current" in preparing
    promoted = result.step(walk.STEP_STATUS_PROMOTED).output
    assert "retired" in promoted and "current" in promoted and "next" not in promoted.split("\n", 1)[1]

    generation_1, generation_2 = (
        {key.region: key.arn for key in result.keys[:2]},
        {key.region: key.arn for key in result.keys[2:]},
    )
    assert set(generation_1) == set(generation_2) == set(REGIONS)
    assert result.step(walk.STEP_PROMOTED).output == ", ".join(f"{r} -> {generation_2[r]}" for r in REGIONS)
    assert result.roles == {
        **dict.fromkeys(generation_1.values(), "retired"),
        **dict.fromkeys(generation_2.values(), "current"),
    }

    aws = client_factory_for(moto_endpoint)
    keys = _keys(aws)
    for region in REGIONS:
        kms = aws("kms", region)
        assert {key["arn"] for key in keys[region]} == {generation_1[region], generation_2[region]}
        assert all(key["state"] == "Disabled" and key["tags"][TAG_DRILL] == "true" for key in keys[region])
        roles = {key["arn"]: key["tags"][TAG_KEY_PAIR] for key in keys[region]}
        assert roles == {generation_1[region]: "retired", generation_2[region]: "current"}
        assert all(key["tags"][TAG_REENCRYPTION] == "none" for key in keys[region])
        assert kms.describe_key(KeyId=alias_name(result.stack))["KeyMetadata"]["Arn"] == generation_2[region]
        aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"] if "atlassian-cmk" in a["AliasName"]}
        assert aliases == {alias_name(result.stack)}  # the /next alias went with the next generation

    declared = {permission.split(":", 1)[1] for permission in REENCRYPTION_DRILL_PERMISSIONS}
    assert sent - {"LookupEvents"} <= declared, sent - declared
    assert {"CreateKey", "UpdateAlias", "DeleteAlias", "DisableKey"} <= sent
    assert not sent & NEVER


def test_cmkctl_drill_reencryption_json_names_each_key_by_generation(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "--reencryption", "--realm", "sg", "--format", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["command"] == "drill" and document["exit_code"] == 0
    assert [row["generation"] for row in document["regions"]] == ["retired", "current"]
    assert {row["region"] for row in document["regions"]} == {"ap-southeast-1"}
    assert all(step["ok"] for step in document["steps"]) and len(document["steps"]) == 15
    assert "Re-encryption drill stack drill-" in captured.err  # progress lines on stderr with JSON


def test_a_reencryption_drill_interrupted_mid_walk_leaves_every_key_disabled_and_tagged(moto_endpoint: str) -> None:
    def interrupted_after_the_refusal(argv: list[str], **kwargs: Any) -> int:
        if argv[-1] == "status" and any("in-progress" in line for line in _stack_text(argv)):
            raise KeyboardInterrupt  # Ctrl-C in the status after the refused revoke: both generations live
        return main(argv, **kwargs)

    with fault_proxy(moto_endpoint) as proxy:
        with pytest.raises(DrillInterrupted, match=r"its 4 key\(s\) are disabled and tagged"):
            run_drill(
                cli=interrupted_after_the_refusal,
                client_factory=client_factory_for(proxy.url),
                out=io.StringIO(),
                reencryption=True,
            )
        sent = proxy.operations()

    keys = _keys(client_factory_for(moto_endpoint))
    for region in REGIONS:
        assert len(keys[region]) == 2
        for key in keys[region]:
            assert key["state"] == "Disabled" and key["tags"][TAG_DRILL] == "true"
            assert key["tags"][TAG_DRILL_CLEANUP].endswith(" interrupted")
    assert not sent & NEVER


def _stack_text(argv: list[str]) -> list[str]:
    """The drill stack file a nested command would read (argv carries --stack and --project-dir)."""
    from pathlib import Path

    stack, project = argv[argv.index("--stack") + 1], argv[argv.index("--project-dir") + 1]
    return (Path(project) / f"Pulumi.{stack}.yaml").read_text().splitlines()


def test_a_reencryption_drill_interrupted_while_creating_the_next_generation_finds_its_keys(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the next generation's first CreateKey reached KMS but before its answer was kept:
    the clean-up finds that key by the drill's unique stack tag and disables it too."""
    import atlassian_cmk.cli.drill as drill_module

    real_create = drill_module.create_key_pair  # type: ignore[attr-defined]

    def create_then_ctrl_c(config: Any, stack: str, **kwargs: Any) -> Any:
        if kwargs.get("key_pair") != "next":
            return real_create(config, stack, **kwargs)
        real_create(config, stack, **{**kwargs, "created_keys": None})  # the answers are lost on the way back
        raise KeyboardInterrupt

    monkeypatch.setattr(drill_module, "create_key_pair", create_then_ctrl_c)
    with pytest.raises(DrillInterrupted, match=r"its 4 key\(s\) are disabled and tagged"):
        run_drill(cli=main, client_factory=client_factory_for(moto_endpoint), out=io.StringIO(), reencryption=True)
    keys = _keys(client_factory_for(moto_endpoint))
    assert all(
        key["state"] == "Disabled" and key["tags"][TAG_DRILL_CLEANUP].endswith(" interrupted")
        for region in REGIONS
        for key in keys[region]
    )
    assert sorted(key["tags"][TAG_KEY_PAIR] for region in REGIONS for key in keys[region]) == [
        "current",
        "current",
        "next",
        "next",
    ]
