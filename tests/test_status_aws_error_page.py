"""Issue 12, item 4: an AWS answer whose body is an HTML page (here the emulator's own 500 page: moto
does not implement CloudTrail LookupEvents) reaches `cmkctl status` as one summarised line."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlassian_cmk.cli.main import main
from tests.support.cmkctl import kms, live, provision, runtime, stack_dir


def test_status_summarises_a_cloudtrail_error_page_to_code_and_message(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    # Disabled outside cmkctl: no revoked-at tag, so status asks CloudTrail when it happened.
    kms(moto_endpoint, "us-east-1").disable_key(KeyId=live(moto_endpoint, "us-east-1").key_id)

    main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    captured = capsys.readouterr()
    out = captured.out + captured.err
    lines = [line for line in out.splitlines() if "CloudTrail lookup failed" in line]
    assert lines, out
    for line in lines:
        assert "CloudTrail lookup failed: HTTP 500: 500 Internal Server Error" in line, line
        assert "<" not in line and "doctype" not in line.lower(), line
        assert len(line) <= 250, line  # the message is cut (kms_reads.MAX_MESSAGE_CHARS), with an ellipsis
