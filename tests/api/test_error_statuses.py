"""Every error class over gRPC: status, ErrorInfo reason, BadRequest fields — and no change.

docs/design.md §5: bad input anywhere gets a clear error and changes nothing. Each case runs against
a company holding one of every object (helpers.build_tenant) with the installation-wide key, and the
whole database (every row, the revision counter included) must be the same after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import run_service_pb2 as rs
from control_plane.domain.ids import new_id
from control_plane.store import changes
from tests.api.helpers import (
    CALLBACK_FLOW,
    Failure,
    Stubs,
    Tenant,
    build_tenant,
    database_state,
    method,
    outcome,
    struct,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
MISSING = new_id()  # well-formed, never stored
LONG = "x" * 201


def shapes(*extra: dict) -> dict:
    """A definition: the trigger, then `extra` (so the first of them is shapes[1])."""
    return {"shapes": [{"id": "trigger", "type": "trigger"}, *extra]}


@dataclass(frozen=True)
class Case:
    rpc: str
    request: Callable[[Tenant, Tenant], Message]  # (company acme, another company)
    code: grpc.StatusCode
    reason: str  # without the ERROR_REASON_ prefix
    fields: tuple[str, ...] = ()


BAD = "INVALID_ARGUMENT"
BAD_DEFINITION = "INVALID_DEFINITION"

CASES = [
    # INVALID_ARGUMENT: each offending field named.
    Case(
        "companies.CreateCompany",
        lambda t, x: cs.CreateCompanyRequest(name="Acme 2", slug="Bad Slug"),
        INVALID,
        BAD,
        ("slug",),
    ),
    Case(
        "companies.CreateCompany",
        lambda t, x: cs.CreateCompanyRequest(name="", slug="acme2"),
        INVALID,
        BAD,
        ("name",),
    ),
    Case(
        "companies.CreateCompany",
        lambda t, x: cs.CreateCompanyRequest(name=" ", slug="-x"),
        INVALID,
        BAD,
        ("name", "slug"),
    ),
    Case(
        "companies.CreateCompany",
        lambda t, x: cs.CreateCompanyRequest(name=LONG, slug="acme2"),
        INVALID,
        BAD,
        ("name",),
    ),
    Case(
        "companies.ListCompanies",
        lambda t, x: cs.ListCompaniesRequest(page_size=-1),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "companies.ListCompanies",
        lambda t, x: cs.ListCompaniesRequest(page_size=1001),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "companies.ListCompanies",
        lambda t, x: cs.ListCompaniesRequest(page_token="garbage"),
        INVALID,
        BAD,
        ("page_token",),
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, x: es.CreateEnvironmentRequest(company=t.slug, name="UK", url_prefix="UK Live"),
        INVALID,
        BAD,
        ("url_prefix",),
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, x: es.CreateEnvironmentRequest(company=t.slug, name="UK", url_prefix="uk/live"),
        INVALID,
        BAD,
        ("url_prefix",),
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, x: es.CreateEnvironmentRequest(company=t.slug, name="", url_prefix=""),
        INVALID,
        BAD,
        ("name", "url_prefix"),
    ),
    Case(
        "environments.GetEnvironment",
        lambda t, x: es.GetEnvironmentRequest(id="xyz"),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "environments.DeleteEnvironment",
        lambda t, x: es.DeleteEnvironmentRequest(id=t.spare_env.upper()),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "environments.ListEnvironments",
        lambda t, x: es.ListEnvironmentsRequest(company=t.slug, page_token="AAAA"),
        INVALID,
        BAD,
        ("page_token",),
    ),
    Case(
        "flows.CreateFlow",
        lambda t, x: fs.CreateFlowRequest(company=t.slug, name=""),
        INVALID,
        BAD,
        ("name",),
    ),
    Case(
        "flows.CreateFlow",
        lambda t, x: fs.CreateFlowRequest(
            company=t.slug, name="f", definition=struct(shapes({"id": "x", "type": "teleport"}))
        ),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes[1].type",),
    ),
    Case("flows.GetFlow", lambda t, x: fs.GetFlowRequest(id="xyz"), INVALID, BAD, ("id",)),
    Case("flows.DeleteFlow", lambda t, x: fs.DeleteFlowRequest(id="xyz"), INVALID, BAD, ("id",)),
    Case(
        "flows.ListFlows",
        lambda t, x: fs.ListFlowsRequest(company=t.slug, page_size=1001),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "flows.GetDraft", lambda t, x: fs.GetDraftRequest(flow_id="xyz"), INVALID, BAD, ("flow_id",)
    ),
    Case(
        "flows.ListVersions",
        lambda t, x: fs.ListVersionsRequest(flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "flows.GetVersion",
        lambda t, x: fs.GetVersionRequest(flow_id=t.flow, number=-1),
        INVALID,
        BAD,
        ("number",),
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, number=-1),
        INVALID,
        BAD,
        ("number",),
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, environment_id="xyz"),
        INVALID,
        BAD,
        ("environment_id",),
    ),
    Case(
        "flows.SetDeploymentEnabled",
        lambda t, x: fs.SetDeploymentEnabledRequest(flow_id=t.flow, environment_id="xyz"),
        INVALID,
        BAD,
        ("environment_id",),
    ),
    Case(
        "flows.ListDeployments",
        lambda t, x: fs.ListDeploymentsRequest(flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "flows.DeleteDeployment",
        lambda t, x: fs.DeleteDeploymentRequest(flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(flow_id="xyz", definition=struct(CALLBACK_FLOW)),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(flow_id=t.flow),
        INVALID,
        BAD_DEFINITION,
        ("definition",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(flow_id=t.flow, definition=struct({})),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow,
            definition=struct(shapes({"id": "m", "type": "map", "expression": "foo[["})),
        ),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes[1].expression",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow, definition=struct(shapes({"id": "x", "type": "teleport"}))
        ),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes[1].type",),
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow,
            definition=struct(
                shapes({"id": "r", "type": "callback", "status": 99}, {"id": "r", "type": "map"})
            ),
        ),
        INVALID,
        BAD_DEFINITION,
        (
            "definition.shapes[1].status",
            "definition.shapes[2].id",
            "definition.shapes[2].expression",
        ),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(flow_id=t.flow, content_type=99),
        INVALID,
        BAD,
        ("content_type",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(
            flow_id=t.flow,
            content_type=cbs.CONTENT_TYPE_CUSTOM,
            custom_content_type="not a mime type",
        ),
        INVALID,
        BAD,
        ("custom_content_type",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(
            flow_id=t.flow, content_type=cbs.CONTENT_TYPE_CUSTOM
        ),
        INVALID,
        BAD,
        ("custom_content_type",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(
            flow_id=t.flow, content_type=cbs.CONTENT_TYPE_XML, custom_content_type="application/x-y"
        ),
        INVALID,
        BAD,
        ("custom_content_type",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(flow_id=t.flow, timeout_ms=300_001),
        INVALID,
        BAD,
        ("timeout_ms",),
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(flow_id=t.flow, timeout_ms=-1, name=LONG),
        INVALID,
        BAD,
        ("name", "timeout_ms"),
    ),
    Case(
        "callbacks.GetCallback",
        lambda t, x: cbs.GetCallbackRequest(id="xyz"),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "callbacks.ListCallbacks",
        lambda t, x: cbs.ListCallbacksRequest(flow_id=t.flow, page_size=-5),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "callbacks.DeleteCallback",
        lambda t, x: cbs.DeleteCallbackRequest(id="xyz"),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "callbacks.RegenerateSignature",
        lambda t, x: cbs.RegenerateSignatureRequest(id="xyz"),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "callbacks.GetCallbackUrl",
        lambda t, x: cbs.GetCallbackUrlRequest(id=t.callback, environment_id="xyz"),
        INVALID,
        BAD,
        ("environment_id",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(id=t.callback, name="n"),
        INVALID,
        BAD,
        ("update_mask",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(id=t.callback, update_mask=[""]),
        INVALID,
        BAD,
        ("update_mask[0]",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(id=t.callback, update_mask=["signature"]),
        INVALID,
        BAD,
        ("update_mask[0]",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(
            id=t.callback, name="n", update_mask=["name", "colour"]
        ),
        INVALID,
        BAD,
        ("update_mask[1]",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(
            id=t.callback, timeout_ms=999_999, update_mask=["timeout_ms"]
        ),
        INVALID,
        BAD,
        ("timeout_ms",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(
            id=t.callback,
            content_type=cbs.CONTENT_TYPE_CUSTOM,
            custom_content_type="x",
            update_mask=["content_type"],
        ),
        INVALID,
        BAD,
        ("custom_content_type",),
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(id="xyz", name="n", update_mask=["name"]),
        INVALID,
        BAD,
        ("id",),
    ),
    Case(
        "keys.CreateApiKey",
        lambda t, x: aks.CreateApiKeyRequest(company=t.slug, name=""),
        INVALID,
        BAD,
        ("name",),
    ),
    Case(
        "keys.ListApiKeys",
        lambda t, x: aks.ListApiKeysRequest(page_size=1001),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "keys.RevokeApiKey", lambda t, x: aks.RevokeApiKeyRequest(id="xyz"), INVALID, BAD, ("id",)
    ),
    Case(
        "runs.ListRuns",
        lambda t, x: rs.ListRunsRequest(company=t.slug, flow_id="xyz"),
        INVALID,
        BAD,
        ("flow_id",),
    ),
    Case(
        "runs.ListRuns",
        lambda t, x: rs.ListRunsRequest(company=t.slug, status=99),
        INVALID,
        BAD,
        ("status",),
    ),
    Case(
        "runs.ListRuns",
        lambda t, x: rs.ListRunsRequest(company=t.slug, page_token="!!"),
        INVALID,
        BAD,
        ("page_token",),
    ),
    Case("runs.GetRun", lambda t, x: rs.GetRunRequest(id="xyz"), INVALID, BAD, ("id",)),
    # NOT_FOUND: each kind of object.
    Case(
        "companies.GetCompany",
        lambda t, x: cs.GetCompanyRequest(slug="nope"),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "companies.GetCompany",
        lambda t, x: cs.GetCompanyRequest(slug=""),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "companies.DeleteCompany",
        lambda t, x: cs.DeleteCompanyRequest(slug="nope"),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, x: es.CreateEnvironmentRequest(company="nope", name="n", url_prefix="p"),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "flows.ListFlows",
        lambda t, x: fs.ListFlowsRequest(company="nope"),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "keys.CreateApiKey",
        lambda t, x: aks.CreateApiKeyRequest(company="nope", name="k"),
        NOT_FOUND,
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "environments.GetEnvironment",
        lambda t, x: es.GetEnvironmentRequest(id=MISSING),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "environments.DeleteEnvironment",
        lambda t, x: es.DeleteEnvironmentRequest(id=MISSING),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, environment_id=MISSING),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "callbacks.GetCallbackUrl",
        lambda t, x: cbs.GetCallbackUrlRequest(id=t.callback, environment_id=MISSING),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    # Even an installation-wide key cannot mix companies: another company's VE is not found.
    Case(
        "callbacks.GetCallbackUrl",
        lambda t, x: cbs.GetCallbackUrlRequest(id=t.callback, environment_id=x.env),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, environment_id=x.spare_env),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.SetDeploymentEnabled",
        lambda t, x: fs.SetDeploymentEnabledRequest(flow_id=t.flow, environment_id=x.env),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.DeleteDeployment",
        lambda t, x: fs.DeleteDeploymentRequest(flow_id=t.flow, environment_id=x.env),
        NOT_FOUND,
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case("flows.GetFlow", lambda t, x: fs.GetFlowRequest(id=MISSING), NOT_FOUND, "FLOW_NOT_FOUND"),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(flow_id=MISSING, definition=struct(CALLBACK_FLOW)),
        NOT_FOUND,
        "FLOW_NOT_FOUND",
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, x: cbs.CreateCallbackRequest(flow_id=MISSING),
        NOT_FOUND,
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.GetVersion",
        lambda t, x: fs.GetVersionRequest(flow_id=t.flow, number=99),
        NOT_FOUND,
        "VERSION_NOT_FOUND",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, number=99),
        NOT_FOUND,
        "VERSION_NOT_FOUND",
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow, definition=struct(CALLBACK_FLOW), number=99
        ),
        NOT_FOUND,
        "VERSION_NOT_FOUND",
    ),
    Case(
        "flows.SetDeploymentEnabled",
        lambda t, x: fs.SetDeploymentEnabledRequest(flow_id=t.flow, environment_id=t.spare_env),
        NOT_FOUND,
        "DEPLOYMENT_NOT_FOUND",
    ),
    Case(
        "flows.DeleteDeployment",
        lambda t, x: fs.DeleteDeploymentRequest(flow_id=t.flow, environment_id=t.spare_env),
        NOT_FOUND,
        "DEPLOYMENT_NOT_FOUND",
    ),
    Case(
        "callbacks.GetCallback",
        lambda t, x: cbs.GetCallbackRequest(id=MISSING),
        NOT_FOUND,
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, x: cbs.UpdateCallbackRequest(id=MISSING, name="n", update_mask=["name"]),
        NOT_FOUND,
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "callbacks.DeleteCallback",
        lambda t, x: cbs.DeleteCallbackRequest(id=MISSING),
        NOT_FOUND,
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "keys.RevokeApiKey",
        lambda t, x: aks.RevokeApiKeyRequest(id=MISSING),
        NOT_FOUND,
        "API_KEY_NOT_FOUND",
    ),
    Case("runs.GetRun", lambda t, x: rs.GetRunRequest(id=MISSING), NOT_FOUND, "RUN_NOT_FOUND"),
    # ALREADY_EXISTS.
    Case(
        "companies.CreateCompany",
        lambda t, x: cs.CreateCompanyRequest(name="Other", slug=t.slug),
        EXISTS,
        "SLUG_TAKEN",
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, x: es.CreateEnvironmentRequest(company=t.slug, name="Other", url_prefix="live"),
        EXISTS,
        "URL_PREFIX_TAKEN",
    ),
    # FAILED_PRECONDITION.
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow, definition=struct(CALLBACK_FLOW), number=1
        ),
        PRECONDITION,
        "VERSION_IMMUTABLE",
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, x: fs.UpdateDraftRequest(
            flow_id=t.flow, definition=struct(CALLBACK_FLOW), number=2
        ),
        PRECONDITION,
        "VERSION_IMMUTABLE",
    ),
    Case(
        "environments.DeleteEnvironment",
        lambda t, x: es.DeleteEnvironmentRequest(id=t.env),
        PRECONDITION,
        "ENVIRONMENT_IN_USE",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(flow_id=t.flow, number=1),
        PRECONDITION,
        "ALREADY_DEPLOYED",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, x: fs.DeployVersionRequest(
            flow_id=t.flow, number=2, environment_id=t.env, disabled=True
        ),
        PRECONDITION,
        "ALREADY_DEPLOYED",
    ),
]


async def test_every_error_class(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    t, x = await build_tenant(s, md, "acme"), await build_tenant(s, md, "globex")
    before = database_state()
    head = changes.head()

    wrong = []
    for case in CASES:
        got = await outcome(method(s, case.rpc)(case.request(t, x), metadata=md))
        expected = Failure(case.code, f"ERROR_REASON_{case.reason}", list(case.fields))
        if got != expected:
            wrong.append(f"{case.rpc}: got {got}, expected {expected}")
        elif database_state() != before:
            wrong.append(f"{case.rpc} ({case.reason}, {case.fields}) changed the database")
            before = database_state()

    assert not wrong, "\n".join(wrong)
    assert changes.head() == head  # no revision taken by any refused write


async def test_revoking_twice_is_a_failed_precondition(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md)
    key = (
        await s.keys.CreateApiKey(aks.CreateApiKeyRequest(company="acme", name="k"), metadata=md)
    ).api_key
    first = await s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=key.id), metadata=md)
    before = database_state()

    got = await outcome(s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=key.id), metadata=md))

    assert got == Failure(PRECONDITION, "ERROR_REASON_API_KEY_REVOKED", [])
    assert database_state() == before  # the first revoke time stands
    listed = (
        await s.keys.ListApiKeys(aks.ListApiKeysRequest(company="acme"), metadata=md)
    ).api_keys
    assert [k.revoke_time for k in listed] == [first.api_key.revoke_time]


async def test_a_url_prefix_is_unique_per_company_only(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    for slug in ("acme", "globex"):
        await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)
        env = (
            await s.environments.CreateEnvironment(
                es.CreateEnvironmentRequest(company=slug, name="Live", url_prefix="live"),
                metadata=md,
            )
        ).environment
        assert (env.company, env.url_prefix) == (slug, "live")

    taken = await outcome(
        s.environments.CreateEnvironment(
            es.CreateEnvironmentRequest(company="globex", name="Again", url_prefix="live"),
            metadata=md,
        )
    )
    assert taken == Failure(EXISTS, "ERROR_REASON_URL_PREFIX_TAKEN", [])
    listed = await s.environments.ListEnvironments(
        es.ListEnvironmentsRequest(company="globex"), metadata=md
    )
    assert [e.name for e in listed.environments] == ["Live"]
