"""Issue 12, item 4: an AWS answer whose body is an HTML page (a werkzeug-style 500 page, as a server or
proxy in front of the API may answer) reaches `cmkctl status` as one summarised line."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.cli.main import main
from tests.support.cmkctl import kms, live, provision, runtime, stack_dir
from tests.support.faults import fast_client_factory
from tests.support.loopback import serve_on_loopback

ERROR_PAGE = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error and was unable to complete your request. Either the server "
    b"is overloaded or there is an error in the application.</p>\n"
)


class _ErrorPage(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(ERROR_PAGE)))
        self.end_headers()
        self.wfile.write(ERROR_PAGE)


@pytest.fixture
def error_page() -> Iterator[str]:
    with serve_on_loopback(_ErrorPage) as url:
        yield url


def test_status_summarises_a_cloudtrail_error_page_to_code_and_message(
    tmp_path: Path, moto_endpoint: str, error_page: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    # Disabled outside cmkctl: no revoked-at tag, so status asks CloudTrail when it happened.
    kms(moto_endpoint, "us-east-1").disable_key(KeyId=live(moto_endpoint, "us-east-1").key_id)
    base = runtime(moto_endpoint)
    pages = fast_client_factory(error_page)

    def factory(service: str, region: str) -> Any:
        return pages(service, region) if service == "cloudtrail" else base.client_factory(service, region)

    main(["status", "--project-dir", str(project)], runtime=dataclasses.replace(base, client_factory=factory))

    captured = capsys.readouterr()
    out = captured.out + captured.err
    lines = [line for line in out.splitlines() if "CloudTrail lookup failed" in line]
    assert lines, out
    for line in lines:
        assert "CloudTrail lookup failed: HTTP 500: 500 Internal Server Error" in line, line
        assert "<" not in line and "doctype" not in line.lower(), line
        assert len(line) <= 250, line  # the message is cut (kms_reads.MAX_MESSAGE_CHARS), with an ellipsis
