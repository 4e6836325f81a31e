"""The header names every endpoint botocore uses for the services a command calls (issue 15 review item 6):
a service-specific `AWS_ENDPOINT_URL_<SERVICE>` redirects that service alone and must not go unsaid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlassian_cmk.aws.kms_reads import default_client_factory
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.endpoints import where_by_service
from tests.support.cmkctl import provision, stack_dir


def test_status_names_a_service_specific_endpoint_in_text_and_json(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    # CloudTrail elsewhere (nothing is read there for enabled keys), with credentials in the URL.
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", "http://user:secret@127.0.0.2:9")
    rt = Runtime(client_factory=default_client_factory)

    code = main(["status", "--project-dir", str(project)], runtime=rt)
    text = capsys.readouterr().out
    main(["status", "--json", "--project-dir", str(project)], runtime=rt)
    document = json.loads(capsys.readouterr().out)

    assert code == 0, text
    where = f"cloudtrail http://***@127.0.0.2:9; kms, sts {moto_endpoint}"
    header = " ".join(text[: text.index("\n\n")].split())  # the header wraps within 100 columns
    assert f"endpoint {where}" in header
    assert document["context"]["endpoint"] == where
    assert "secret" not in text + json.dumps(document)


def test_one_endpoint_for_every_service_is_said_once() -> None:
    url = "http://127.0.0.1:5000"
    assert where_by_service({("kms", "us-east-1"): url, ("cloudtrail", "us-east-1"): url}) == url
    aws = "https://kms.us-east-1.amazonaws.com"
    assert where_by_service({("kms", "us-east-1"): aws, ("sts", "us-east-1"): "https://sts.amazonaws.com"}) == "AWS"
