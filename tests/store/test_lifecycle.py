"""The version / deployment lifecycle of docs/design.md §2, as a table of scenarios, on every
backend.

Each scenario starts from a company with one VE ("ve") and a flow whose draft v1 holds
definition "a", runs its steps through control_plane.domain.flows, and states the versions
(number, state, definition) and deployments ({environment: (version, enabled)}) it must end with.
Whatever the steps, a version that stopped being the draft must never change again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from control_plane.domain import companies, environments, flows
from control_plane.domain.flows import DEPLOYED, DRAFT, INACTIVE
from control_plane.domain.tenancy import Principal
from control_plane.store.models import FlowVersion
from tests.api.helpers import CALLBACK_FLOW

ADMIN = Principal(key_id="k", company_id=None)

# Definitions by tag, and whether each has a callback shape.
DEFINITIONS = {
    "a": (CALLBACK_FLOW, True),
    "b": (
        {
            "shapes": [
                {"id": "trigger", "type": "trigger"},
                {"id": "reply", "type": "callback", "status": 201},
            ]
        },
        True,
    ),
    "plain": (
        {
            "shapes": [
                {"id": "trigger", "type": "trigger"},
                {"id": "shape", "type": "map", "expression": "payload"},
            ]
        },
        False,
    ),
}


# Steps. Environments are named: "" is the default environment, "ve" the VE.
def deploy(number: int = 0, env: str = "", disabled: bool = False) -> tuple:
    return ("deploy", number, env, disabled)


def edit(tag: str) -> tuple:
    return ("edit", tag)


def enable(env: str, enabled: bool) -> tuple:
    return ("enable", env, enabled)


def undeploy(env: str) -> tuple:
    return ("undeploy", env)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[tuple]
    versions: list[tuple[int, str, str]]  # (number, state, definition tag), newest first
    deployments: dict[str, tuple[int, bool]]  # environment -> (version number, enabled)


SCENARIOS = [
    Scenario("new flow: only a draft", [], [(1, DRAFT, "a")], {}),
    Scenario(
        "draft has_callback follows its definition", [edit("plain")], [(1, DRAFT, "plain")], {}
    ),
    Scenario(
        "deploy draft: deployed, new draft copy",
        [deploy()],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
    Scenario(
        "deploy draft by its number",
        [deploy(1)],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
    Scenario(
        "deploy draft disabled",
        [deploy(disabled=True)],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"": (1, False)},
    ),
    Scenario(
        "draft to VE while v1 on default: both deployed",
        [deploy(), edit("b"), deploy(env="ve")],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, DEPLOYED, "a")],
        {"": (1, True), "ve": (2, True)},
    ),
    Scenario(
        "redeploy to default: v1 inactive",
        [deploy(), edit("b"), deploy()],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, INACTIVE, "a")],
        {"": (2, True)},
    ),
    Scenario(
        "redeploy to default: v1 stays deployed in VE",
        [deploy(), deploy(1, "ve"), edit("b"), deploy()],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, DEPLOYED, "a")],
        {"": (2, True), "ve": (1, True)},
    ),
    Scenario(
        "redeploy to VE: v1 stays deployed on default",
        [deploy(), deploy(1, "ve"), edit("b"), deploy(env="ve")],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, DEPLOYED, "a")],
        {"": (1, True), "ve": (2, True)},
    ),
    Scenario(
        "rollback: inactive v1 again, draft unchanged",
        [deploy(), edit("b"), deploy(), edit("plain"), deploy(1)],
        [(3, DRAFT, "plain"), (2, INACTIVE, "b"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
    Scenario(
        "inactive version deployed to a VE",
        [deploy(), edit("b"), deploy(), deploy(1, "ve")],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, DEPLOYED, "a")],
        {"": (2, True), "ve": (1, True)},
    ),
    Scenario(
        "disable a deployment: still deployed",
        [deploy(), enable("", False)],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"": (1, False)},
    ),
    Scenario(
        "disable then enable",
        [deploy(), enable("", False), enable("", True)],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
    Scenario(
        "enable twice is harmless",
        [deploy(env="ve"), enable("ve", True)],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"ve": (1, True)},
    ),
    Scenario(
        "redeploy over a disabled deployment enables it",
        [deploy(disabled=True), edit("b"), deploy()],
        [(3, DRAFT, "b"), (2, DEPLOYED, "b"), (1, INACTIVE, "a")],
        {"": (2, True)},
    ),
    Scenario(
        "delete deployment: version inactive",
        [deploy(), undeploy("")],
        [(2, DRAFT, "a"), (1, INACTIVE, "a")],
        {},
    ),
    Scenario(
        "delete one of two deployments: still deployed",
        [deploy(), deploy(1, "ve"), undeploy("")],
        [(2, DRAFT, "a"), (1, DEPLOYED, "a")],
        {"ve": (1, True)},
    ),
    Scenario(
        "edit draft never touches the deployed version",
        [deploy(), edit("b"), edit("plain")],
        [(2, DRAFT, "plain"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
    Scenario(
        "deploy, undeploy, deploy the old version again",
        [deploy(), edit("b"), undeploy(""), deploy(1)],
        [(2, DRAFT, "b"), (1, DEPLOYED, "a")],
        {"": (1, True)},
    ),
]


def _frozen_rows(flow_id: str, draft_number: int) -> dict[int, tuple]:
    """Every non-draft version as stored: these must never change once frozen."""
    return {
        v.number: (v.id, v.definition, v.has_callback, v.updated_at)
        for v in FlowVersion.select().where(
            (FlowVersion.flow == flow_id) & (FlowVersion.number != draft_number)
        )
    }


def _run(step: tuple, flow_id: str, env_ids: dict[str, str]) -> None:
    kind, *args = step
    if kind == "deploy":
        number, env, disabled = args
        draft_before = flows.get_flow(ADMIN, flow_id).draft_number
        dep, version, draft = flows.deploy_version(ADMIN, flow_id, number, env_ids[env], disabled)
        assert (version.state, draft.state) == (DEPLOYED, DRAFT)
        assert dep.version_id == version.version.id and dep.enabled is not disabled
        deployed_draft = number in (0, draft_before)
        assert draft.version.number == draft_before + (1 if deployed_draft else 0)
        if deployed_draft:  # the new draft is a copy of what was deployed
            assert draft.version.definition == version.version.definition
    elif kind == "edit":
        (tag,) = args
        flows.update_draft(ADMIN, flow_id, DEFINITIONS[tag][0], 0)
    elif kind == "enable":
        env, enabled = args
        assert (
            flows.set_deployment_enabled(ADMIN, flow_id, env_ids[env], enabled).enabled is enabled
        )
    elif kind == "undeploy":
        (env,) = args
        flows.delete_deployment(ADMIN, flow_id, env_ids[env])
    else:
        raise AssertionError(f"unknown step {step}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_lifecycle(db, scenario):
    companies.create_company(ADMIN, "Acme", "acme")
    env_ids = {"": "", "ve": environments.create_environment(ADMIN, "acme", "VE", "ve").id}
    flow, _ = flows.create_flow(ADMIN, "acme", "stock", DEFINITIONS["a"][0])

    frozen: dict[int, tuple] = {}
    for step in scenario.steps:
        _run(step, flow.id, env_ids)
        draft_number = flows.get_flow(ADMIN, flow.id).draft_number
        now = _frozen_rows(flow.id, draft_number)
        assert {n: now[n] for n in frozen} == frozen, f"a frozen version changed at {step}"
        frozen = now

    versions, _ = flows.list_versions(ADMIN, flow.id, full=True)
    tags = {json.dumps(d, sort_keys=True): tag for tag, (d, _) in DEFINITIONS.items()}
    assert [
        (
            v.version.number,
            v.state,
            tags[json.dumps(json.loads(v.version.definition), sort_keys=True)],
        )
        for v in versions
    ] == scenario.versions
    assert [v.version.has_callback for v in versions] == [
        DEFINITIONS[tag][1] for _, _, tag in scenario.versions
    ]
    names = {env_id: name for name, env_id in env_ids.items()}
    assert {
        names[d.environment_id]: (d.version.number, d.enabled)
        for d in flows.list_deployments(ADMIN, flow.id)
    } == scenario.deployments
    # The single-version views agree with the list.
    draft = flows.get_draft(ADMIN, flow.id)
    assert (draft.version.number, draft.state) == scenario.versions[0][:2]
    for number, state, _ in scenario.versions:
        assert flows.get_version(ADMIN, flow.id, number).state == state
