"""Endpoints as operators see them: credentials redacted, and whether a URL stays on this machine.

An endpoint URL may carry credentials (`http://user:secret@host`); the drift workflow copies
cmkctl's output into a job summary, so every URL cmkctl prints goes through `redact_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts that are this machine: the emulator of the tests and `make demo`."""

AWS_HOST_SUFFIXES: Final = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
"""Hosts of AWS's own endpoints; anything else is a configured endpoint worth naming."""

_USERINFO_RE: Final = re.compile(
    # The userinfo is everything before the LAST '@' of the authority (RFC 3986 3.2: the host holds no '@';
    # a password may). With a scheme, or scheme-less at the start of a token (botocore echoes a
    # scheme-less `user:secret@host` back in its "Invalid endpoint" error).
    r"""(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://|(?<![^\s"'(=<]))(?P<userinfo>[^/?#\s"'<>]+)@(?=[^/?#\s"'<>@]+)"""
)
_SECRET_QUERY_RE: Final = re.compile(
    # Query values whose name says secret: AWSAccessKeyId, Signature, X-Amz-Security-Token, X-Amz-Credential,
    # token, password, secret, api_key... (presigned and legacy SigV2 URLs carry these).
    r"""(?i)(?P<key>[?&;][^=&\s"'#]*(?:secret|token|passw|pwd|signature|credential|key|auth)[^=&\s"'#]*=)"""
    r"""[^&;\s"'#]+"""
)
REDACTED: Final = "***"


def redact_text(text: str) -> str:
    """`text` with the user:password of every URL and credential-like query values replaced by ***."""
    text = _USERINFO_RE.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _SECRET_QUERY_RE.sub(lambda m: f"{m['key']}{REDACTED}", text)


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine (the host, not a name that merely contains 'localhost')."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS


def is_aws_endpoint(url: str) -> bool:
    """Whether `url` is one of AWS's own endpoints (no custom endpoint configured)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host.endswith(AWS_HOST_SUFFIXES)


def not_loopback(endpoints: Iterable[str]) -> list[str]:
    """The endpoints (redacted, sorted, distinct) that leave this machine."""
    return sorted({redact_text(url) for url in endpoints if not is_loopback(url)})


def where_label(endpoints: Iterable[str]) -> str:
    """`AWS` when every endpoint is AWS's own, else the distinct configured endpoints, redacted."""
    custom = sorted({redact_text(url) for url in endpoints if not is_aws_endpoint(url)})
    return "AWS" if not custom else ", ".join(custom)


def where_by_service(endpoints: Mapping[tuple[str, str], str]) -> str:
    """Where each service's requests go, as botocore resolved its clients ((service, region) -> URL).

    `AWS` when every one is AWS's own; the one configured endpoint when every service uses it
    (`AWS_ENDPOINT_URL`); else each distinct endpoint with the services that use it, e.g.
    `cloudtrail http://10.0.0.5:4566; kms, sts AWS`. A service-specific setting
    (`AWS_ENDPOINT_URL_CLOUDTRAIL`, or `endpoint_url` in a profile's service section) redirects
    that service alone (botocore/configprovider.py, ConfiguredEndpointProvider.provide: the
    service-specific environment variable first, then the global one, then the config file's),
    and the reader must see that those reads come from elsewhere. Credentials redacted.
    """
    if not endpoints:
        return "AWS"
    # A service whose regions resolve differently is named once per endpoint.
    by_label: dict[str, set[str]] = {}
    for (service, _), url in endpoints.items():
        by_label.setdefault("AWS" if is_aws_endpoint(url) else redact_text(url), set()).add(service)
    if len(by_label) == 1:
        return next(iter(by_label))
    return "; ".join(f"{', '.join(sorted(services))} {label}" for label, services in sorted(by_label.items()))
