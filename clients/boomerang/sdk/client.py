"""`Client`: one method per RPC of the control plane's management services."""

from __future__ import annotations

from boomerang.sdk.api_keys import ApiKeyMethods
from boomerang.sdk.callbacks import CallbackMethods
from boomerang.sdk.companies import CompanyMethods
from boomerang.sdk.connections import ConnectionMethods
from boomerang.sdk.flows import FlowMethods
from boomerang.sdk.runs import RunMethods


class Client(
    CompanyMethods, FlowMethods, CallbackMethods, ConnectionMethods, ApiKeyMethods, RunMethods
):
    """A synchronous client of a Boomerang control plane; use it as a context manager.

    >>> with Client("127.0.0.1:50051", api_key) as client:
    ...     company = client.create_company(name="Acme", slug="acme")

    Methods take keyword-friendly arguments and return the resource message (`Company`,
    `Callback`, ...), or the whole response where it carries more than one thing
    (`create_flow`, `deploy_version`, `create_api_key`, `get_callback_url`). Connections'
    credentials are built with `basic_auth`, `bearer_auth`, `api_key_auth` and
    `oauth2_client_credentials` (`boomerang.sdk`). `list_*` methods
    of paginated RPCs are generators over every page; deletes return None. Every failure raises
    a `BoomerangError` subclass (`boomerang.sdk.errors`).

    Reads are retried on UNAVAILABLE by gRPC's retry policy (see `boomerang.sdk.channel`).
    """
