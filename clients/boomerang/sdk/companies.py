"""Companies (tenants) and their virtual environments."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.field_mask_pb2 import FieldMask

from boomerang.sdk.transport import Transport
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import resources_pb2 as r


class CompanyMethods(Transport):
    def create_company(self, *, name: str, slug: str) -> r.Company:
        """Needs an installation-wide key. AlreadyExists (SLUG_TAKEN), InvalidArgument."""
        request = cs.CreateCompanyRequest(name=name, slug=slug)
        return self._call(self._companies.CreateCompany, request).company

    def get_company(self, slug: str) -> r.Company:
        return self._call(self._companies.GetCompany, cs.GetCompanyRequest(slug=slug)).company

    def list_companies(self, *, page_size: int = 0) -> Iterator[r.Company]:
        """Every company the key may see, oldest first, fetched `page_size` at a time."""
        request = cs.ListCompaniesRequest(page_size=page_size)
        return self._pages(self._companies.ListCompanies, request, "companies")

    def delete_company(self, slug: str) -> None:
        """Deletes the company with everything it owns. Needs an installation-wide key."""
        self._call(self._companies.DeleteCompany, cs.DeleteCompanyRequest(slug=slug))

    def get_quotas(self, company: str = "") -> r.Quotas:
        """The quotas in force for a company (a company key may read its own), or without
        `company` the installation's defaults (needs an installation-wide key)."""
        request = cs.GetQuotasRequest(company=company)
        return self._call(self._companies.GetQuotas, request).quotas

    def set_quotas(
        self,
        company: str = "",
        *,
        environments: int | None = None,
        flows: int | None = None,
        versions_kept: int | None = None,
        callbacks: int | None = None,
        connections: int | None = None,
        definition_bytes: int | None = None,
        definition_depth: int | None = None,
        runs_in_flight: int | None = None,
        answer_bytes: int | None = None,
        api_keys: int | None = None,
    ) -> r.Quotas:
        """Sets the quotas given (0: back to the default) for a company, or without `company`
        for the installation; returns those now in force. Needs an installation-wide key.
        Over a quota, calls fail with ResourceExhausted (QUOTA_EXCEEDED; `err.metadata` holds
        `quota`, `limit` and `used`)."""
        values = {
            "environments": environments,
            "flows": flows,
            "versions_kept": versions_kept,
            "callbacks": callbacks,
            "connections": connections,
            "definition_bytes": definition_bytes,
            "definition_depth": definition_depth,
            "runs_in_flight": runs_in_flight,
            "answer_bytes": answer_bytes,
            "api_keys": api_keys,
        }
        given = {name: value for name, value in values.items() if value is not None}
        request = cs.SetQuotasRequest(
            company=company, quotas=r.Quotas(**given), update_mask=FieldMask(paths=list(given))
        )
        return self._call(self._companies.SetQuotas, request).quotas

    def create_environment(self, company: str, name: str, url_prefix: str) -> r.Environment:
        """AlreadyExists (URL_PREFIX_TAKEN), InvalidArgument, NotFound (company)."""
        request = es.CreateEnvironmentRequest(company=company, name=name, url_prefix=url_prefix)
        return self._call(self._environments.CreateEnvironment, request).environment

    def get_environment(self, id: str) -> r.Environment:
        request = es.GetEnvironmentRequest(id=id)
        return self._call(self._environments.GetEnvironment, request).environment

    def list_environments(self, company: str, *, page_size: int = 0) -> Iterator[r.Environment]:
        request = es.ListEnvironmentsRequest(company=company, page_size=page_size)
        return self._pages(self._environments.ListEnvironments, request, "environments")

    def environment_id(self, company: str, id_or_prefix: str) -> str:
        """The id of `company`'s VE whose id or URL prefix is `id_or_prefix`, so callers may name
        a VE the way its URLs show it. "" (the default environment) stays ""; a value that names
        no VE is returned as given, for the RPC to answer NotFound (ENVIRONMENT_NOT_FOUND)."""
        if not id_or_prefix:
            return ""
        by_prefix = ""
        for env in self.list_environments(company):
            if env.id == id_or_prefix:
                return env.id
            if env.url_prefix == id_or_prefix:
                by_prefix = env.id
        return by_prefix or id_or_prefix

    def delete_environment(self, id: str) -> None:
        """FailedPrecondition (ENVIRONMENT_IN_USE) while a flow is deployed to it."""
        self._call(self._environments.DeleteEnvironment, es.DeleteEnvironmentRequest(id=id))
