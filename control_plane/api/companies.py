"""CompanyService and EnvironmentService."""

from __future__ import annotations

from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import company_service_pb2_grpc as cs_grpc
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import environment_service_pb2_grpc as es_grpc
from control_plane.domain import companies, environments, quotas
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Servicer


class CompanyServicer(Servicer, cs_grpc.CompanyServiceServicer):
    async def CreateCompany(self, request, context):
        return await self.call(
            context,
            lambda p: cs.CreateCompanyResponse(
                company=convert.company(companies.create_company(p, request.name, request.slug))
            ),
            writes=True,
        )

    async def GetCompany(self, request, context):
        return await self.call(
            context,
            lambda p: cs.GetCompanyResponse(
                company=convert.company(companies.get_company(p, request.slug))
            ),
        )

    async def ListCompanies(self, request, context):
        def fn(p):
            rows, token = companies.list_companies(p, request.page_size, request.page_token)
            return cs.ListCompaniesResponse(
                companies=[convert.company(c) for c in rows], next_page_token=token
            )

        return await self.call(context, fn)

    async def DeleteCompany(self, request, context):
        def fn(p):
            companies.delete_company(p, request.slug)
            return cs.DeleteCompanyResponse()

        return await self.call(context, fn, writes=True)

    async def GetQuotas(self, request, context):
        return await self.call(
            context,
            lambda p: cs.GetQuotasResponse(
                quotas=convert.quotas(quotas.get_quotas(p, request.company))
            ),
        )

    async def SetQuotas(self, request, context):
        def fn(p):
            values = quotas.Quotas(**{name: getattr(request.quotas, name) for name in quotas.NAMES})
            now = quotas.set_quotas(p, request.company, values, list(request.update_mask.paths))
            return cs.SetQuotasResponse(quotas=convert.quotas(now))

        return await self.call(context, fn)


class EnvironmentServicer(Servicer, es_grpc.EnvironmentServiceServicer):
    async def CreateEnvironment(self, request, context):
        def fn(p):
            env = environments.create_environment(
                p, request.company, request.name, request.url_prefix
            )
            return es.CreateEnvironmentResponse(
                environment=convert.environment(env, request.company)
            )

        return await self.call(context, fn, writes=True)

    async def GetEnvironment(self, request, context):
        def fn(p):
            env = environments.get_environment(p, request.id)
            return es.GetEnvironmentResponse(environment=convert.environment(env, env.company.slug))

        return await self.call(context, fn)

    async def ListEnvironments(self, request, context):
        def fn(p):
            rows, token = environments.list_environments(
                p, request.company, request.page_size, request.page_token
            )
            return es.ListEnvironmentsResponse(
                environments=[convert.environment(e, request.company) for e in rows],
                next_page_token=token,
            )

        return await self.call(context, fn)

    async def DeleteEnvironment(self, request, context):
        def fn(p):
            environments.delete_environment(p, request.id)
            return es.DeleteEnvironmentResponse()

        return await self.call(context, fn, writes=True)
