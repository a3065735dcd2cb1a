"""The errors the Azure adapters raise, each saying what to configure or whether to retry.

A missing identity, a workspace that is not there and a missing role are configuration
problems: they are `SettingsError`s (the CLI exits 2, as for an invalid setting), each naming
the setting that selects what is wrong; the message is kept exactly as the adapter wrote it.
"""

from __future__ import annotations

from typing import NoReturn

from shared.errors import SettingsError, TrackingUnavailable


class AzureConfigurationError(SettingsError):
    """An Azure-side configuration problem; `setting` is the setting that selects it."""

    SETTING = "AZURE_CLIENT_ID"

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(setting or self.SETTING, message)
        # The message alone (it already says what to configure), not "setting: message".
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


class CredentialUnavailable(AzureConfigurationError):
    """No token could be had for a scope: the message names the credential and what to set."""


class WorkspaceNotFound(AzureConfigurationError):
    """The coordinates name no workspace this identity can see (permanent: fix the settings)."""

    SETTING = "AZURE_ML_WORKSPACE_NAME"


class AzureAccessDenied(AzureConfigurationError):
    """Azure refused the identity (401/403): a role assignment is missing (permanent)."""


class AzureUnavailable(TrackingUnavailable):
    """Azure could not be reached or answered 5xx: transient, the invocation is retried."""


def translate(exc: BaseException, what: str) -> BaseException:
    """The project's error for an Azure SDK failure about `what`; other errors as they are.

    azure-core's exceptions are imported here, when a failure is being classified, so that
    importing this module stays free of SDK imports.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(exc, "status_code", None)
    reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return WorkspaceNotFound(f"{what}: not found, or not visible to this identity")
    if status in (401, 403):
        return AzureAccessDenied(
            f"{what}: access refused ({status}); grant the app's identity a role on it "
            "(AzureML Data Scientist on the workspace)"
        )
    if isinstance(exc, ClientAuthenticationError):
        # Raised by the credential itself (no token), before any request was answered.
        return CredentialUnavailable(f"{what}: no token: {reason}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return AzureUnavailable(f"{what}: Azure unreachable: {reason}")
    if isinstance(exc, HttpResponseError) and (status is None or status >= 500 or status == 429):
        return AzureUnavailable(f"{what}: Azure answered {status}: {reason}")
    return exc


def reraise(exc: BaseException, what: str) -> NoReturn:
    """Raise `translate(exc, what)` from `exc`, or `exc` itself when it is not Azure's."""
    mapped = translate(exc, what)
    if mapped is exc:
        raise exc
    raise mapped from exc
