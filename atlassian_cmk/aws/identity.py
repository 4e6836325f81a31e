"""Who and where a run acts: the caller from STS, and the endpoints botocore resolved for each client.

The endpoint is read back from the client botocore built (`client.meta.endpoint_url`), so it is
whatever botocore's own resolution chose: an `endpoint_url` argument, `AWS_ENDPOINT_URL_<SERVICE>`,
`AWS_ENDPOINT_URL`, the shared config file's `services` section or `endpoint_url`, unless
`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is set, else AWS's own endpoint. Source: botocore
`configprovider.py` (`ConfiguredEndpointProvider._ENDPOINT_URL_LOOKUP_ORDER`) and `session.py`
(`_add_configured_endpoint_provider`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import botocore.exceptions

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error
from atlassian_cmk.endpoints import redact_text

CREDENTIAL_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.ProfileNotFound,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.TokenRetrievalError,
    botocore.exceptions.SSOError,
    botocore.exceptions.NoRegionError,
    botocore.exceptions.InvalidConfigError,
)
"""Problems of the operator's AWS set-up (profile, credentials), not of a region: one line, exit 3."""

CONFIG_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.ConfigParseError,  # a malformed AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE
    botocore.exceptions.InvalidSTSRegionalEndpointsConfigError,  # AWS_STS_REGIONAL_ENDPOINTS=bogus
    botocore.exceptions.InvalidRetryConfigurationError,  # AWS_RETRY_MODE, AWS_MAX_ATTEMPTS
    botocore.exceptions.InvalidEndpointConfigurationError,
    botocore.exceptions.InvalidDefaultsMode,
    botocore.exceptions.InvalidRegionError,
    botocore.exceptions.InvalidIMDSEndpointError,
    botocore.exceptions.InvalidIMDSEndpointModeError,
)
"""The SDK's own configuration (environment variables, config and credentials files) is unusable. Like a
bad profile: one line, exit 3 (nothing could be read), never a traceback or exit 70. botocore raises
these while a session or client is built, before any request."""

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)


class CredentialsProblem(Exception):
    """The AWS profile or credentials cannot be used; the message is one line."""


@dataclass(frozen=True)
class Identity:
    """The caller as STS reports it; `error` says why it is unknown (never blocks a break-glass change)."""

    account: str | None
    arn: str | None
    error: str | None = None

    @property
    def caller(self) -> str:
        return self.arn or "unknown"


def credentials_problem(error: BaseException) -> str | None:
    """One line when `error` is the operator's profile or credentials, else None."""
    if isinstance(error, CREDENTIAL_ERRORS):
        return redact_text(f"AWS credentials or profile unusable: {describe_error(error)}")
    if isinstance(error, CONFIG_ERRORS):
        return redact_text(f"AWS configuration unusable: {describe_error(error)}")
    if type(error) is ValueError and str(error).startswith("Invalid endpoint"):
        # botocore endpoint.py (EndpointCreator._create_endpoint... is_valid_endpoint_url) raises a bare
        # ValueError for an endpoint URL it cannot use (e.g. no scheme): the URL may hold credentials.
        return redact_text(
            f"AWS configuration unusable: invalid endpoint URL {str(error).split(':', 1)[1].strip()} (AWS_ENDPOINT_URL*"
            " or endpoint_url in the config file; expected http(s)://host[:port])"
        )
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in _CREDENTIAL_CODES:
            return f"AWS credentials rejected: {describe_error(error)}"
    return None


def read_identity(client_factory: ClientFactory, region: str) -> Identity:
    """`sts:GetCallerIdentity` (needs no permission); raises CredentialsProblem for profile/credential errors."""
    try:
        answer = client_factory("sts", region).get_caller_identity()
    except Exception as error:
        problem = credentials_problem(error)
        if problem is not None:
            raise CredentialsProblem(problem) from error
        return Identity(None, None, describe_error(error))
    return Identity(str(answer["Account"]), str(answer["Arn"]))


def resolved_endpoints(
    client_factory: ClientFactory, services: Iterable[str], regions: Iterable[str]
) -> dict[tuple[str, str], str]:
    """(service, region) -> the endpoint URL botocore chose for that client. Makes no request.

    Raises CredentialsProblem when the profile cannot even be loaded (AWS_PROFILE=nope fails here).
    """
    endpoints: dict[tuple[str, str], str] = {}
    for service in services:
        for region in regions:
            try:
                client = client_factory(service, region)
            except Exception as error:
                problem = credentials_problem(error)
                if problem is not None:
                    raise CredentialsProblem(problem) from error
                raise
            endpoints[(service, region)] = str(client.meta.endpoint_url)
    return endpoints
