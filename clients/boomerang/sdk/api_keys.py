"""API keys: installation-wide or scoped to one company; secrets are shown once."""

from __future__ import annotations

from collections.abc import Iterator

from boomerang.sdk.transport import Transport
from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import resources_pb2 as r


class ApiKeyMethods(Transport):
    def create_api_key(
        self, name: str, company: str = "", scope: str = "full"
    ) -> aks.CreateApiKeyResponse:
        """Returns the key and its `secret`, which is never shown again. An empty `company`
        makes an installation-wide key (PermissionDenied for a company key). `scope`: "full",
        or "edge" / "runner" for machine keys that may only sync and run flows (installation-
        wide; only an installation-wide full key may create them)."""
        request = aks.CreateApiKeyRequest(
            company=company, name=name, scope=r.ApiKeyScope.Value(f"API_KEY_SCOPE_{scope.upper()}")
        )
        return self._call(self._api_keys.CreateApiKey, request)

    def list_api_keys(self, company: str = "", *, page_size: int = 0) -> Iterator[r.ApiKey]:
        request = aks.ListApiKeysRequest(company=company, page_size=page_size)
        return self._pages(self._api_keys.ListApiKeys, request, "api_keys")

    def revoke_api_key(self, id: str) -> r.ApiKey:
        """FailedPrecondition (API_KEY_REVOKED) when already revoked."""
        return self._call(self._api_keys.RevokeApiKey, aks.RevokeApiKeyRequest(id=id)).api_key
