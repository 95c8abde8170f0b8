"""The `boomerang` command as a user runs it: a real process against the in-process plane."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from client_samples import CALLBACK_FLOW, MISSING_ID

from tests.conftest import ADMIN_KEY

# The console script pip installed next to this interpreter (pyproject's [project.scripts]).
BOOMERANG = Path(sys.executable).with_name("boomerang")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


@pytest.fixture
def cli(plane):
    """Runs `boomerang ARGS` without blocking the event loop the control plane serves from."""

    async def run(*args: str, key: str = ADMIN_KEY) -> Result:
        env = {**os.environ, "BOOMERANG_TARGET": plane.target, "BOOMERANG_API_KEY": key}
        proc = await asyncio.create_subprocess_exec(
            str(BOOMERANG),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        return Result(proc.returncode or 0, out.decode(), err.decode())

    return run


async def test_create_deploy_and_list(cli, tmp_path):
    company = (await cli("companies", "create", "--slug", "acme", "--name", "Acme")).json()
    assert company["slug"] == "acme" and len(company["id"]) == 26
    assert [c["slug"] for c in (await cli("companies", "list")).json()] == ["acme"]

    env = (
        await cli(
            "environments", "create", "--company", "acme", "--name", "UK", "--url-prefix", "uk"
        )
    ).json()
    definition = tmp_path / "flow.json"
    definition.write_text(json.dumps(CALLBACK_FLOW))
    created = (
        await cli(
            "flows", "create", "--company", "acme", "--name", "stock", "--file", str(definition)
        )
    ).json()
    flow_id = created["flow"]["id"]
    # Struct numbers are doubles; the CLI prints the integers the user wrote.
    assert created["draft"]["definition"] == CALLBACK_FLOW

    deployed = (
        await cli("flows", "deploy", flow_id, "--environment", env["id"], "--disabled")
    ).json()
    # Every field is printed, false and empty ones too, so `jq` never meets a missing key.
    assert deployed["deployment"]["enabled"] is False
    assert deployed["version"]["state"] == "VERSION_STATE_DEPLOYED"
    assert (await cli("flows", "enable", flow_id, "--environment", env["id"])).json()["enabled"]
    deployments = (await cli("flows", "deployments", flow_id)).json()
    assert [(d["environment_id"], d["enabled"]) for d in deployments] == [(env["id"], True)]

    callback = (await cli("callbacks", "create", "--flow", flow_id, "--content-type", "xml")).json()
    assert callback["content_type"] == "application/xml" and callback["timeout_ms"] == 30000
    urls = (await cli("callbacks", "url", callback["id"], "--environment", env["id"])).json()
    assert urls["environment_url"].endswith(
        f"/acme/{callback['id']}/uk?patchworks_signature={callback['signature']}"
    )
    updated = (await cli("callbacks", "update", callback["id"], "--timeout-ms", "500")).json()
    assert (updated["content_type"], updated["timeout_ms"]) == ("application/xml", 500)
    listed = (await cli("callbacks", "list", "--flow", flow_id)).json()
    assert [c["id"] for c in listed] == [callback["id"]] and listed[0]["signature"] == ""

    deleted = await cli("callbacks", "delete", callback["id"])
    assert (deleted.code, deleted.stdout, deleted.stderr) == (0, "", "")
    assert (await cli("callbacks", "list", "--flow", flow_id)).json() == []


async def test_error_is_one_line_and_exit_1(cli):
    result = await cli("flows", "get", MISSING_ID)
    assert result.code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: NOT_FOUND (ERROR_REASON_FLOW_NOT_FOUND): ")
    assert MISSING_ID in lines[0]


async def test_field_violations_follow_the_error_line(cli):
    result = await cli("companies", "create", "--slug", "Not A Slug", "--name", "")
    assert result.code == 1 and "Traceback" not in result.stderr
    first, *violations = result.stderr.splitlines()
    assert first.startswith("error: INVALID_ARGUMENT (ERROR_REASON_INVALID_ARGUMENT): ")
    assert [v.split(":")[0].strip() for v in violations] == ["name", "slug"]


async def test_bad_key_and_unreachable_server(cli):
    result = await cli("companies", "list", key="bmk_wrong")
    assert result.code == 1
    assert result.stderr.startswith("error: UNAUTHENTICATED (ERROR_REASON_INVALID_API_KEY): ")

    unreachable = await cli(
        "--target",
        "127.0.0.1:1",
        "--timeout",
        "3",
        "companies",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme",
    )
    assert unreachable.code == 1 and "Traceback" not in unreachable.stderr
    assert unreachable.stderr.startswith("error: UNAVAILABLE: ")
    assert len(unreachable.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("companies",),
        ("companies", "create", "--slug", "acme"),
        ("flows", "deploy", "x", "--number", "two"),
        ("flows", "update-draft", "x", "--file", "/nonexistent/flow.json"),
    ],
)
async def test_usage_errors_exit_2(cli, args):
    result = await cli(*args)
    assert result.code == 2 and result.stdout == ""
    assert "error:" in result.stderr and "Traceback" not in result.stderr


async def test_a_ve_is_named_by_its_url_prefix_wherever_its_id_is_taken(cli, tmp_path):
    await cli("companies", "create", "--slug", "acme", "--name", "Acme")
    env = (
        await cli(
            "environments", "create", "--company", "acme", "--name", "UK", "--url-prefix", "uk"
        )
    ).json()
    assert (await cli("environments", "get", "uk", "--company", "acme")).json()["id"] == env["id"]
    definition = tmp_path / "flow.json"
    definition.write_text(json.dumps(CALLBACK_FLOW))
    flow_id = (
        await cli(
            "flows", "create", "--company", "acme", "--name", "stock", "--file", str(definition)
        )
    ).json()["flow"]["id"]

    deployed = (await cli("flows", "deploy", flow_id, "--environment", "uk")).json()
    assert deployed["deployment"]["environment_id"] == env["id"]
    assert not (await cli("flows", "disable", flow_id, "--environment", "uk")).json()["enabled"]
    callback = (await cli("callbacks", "create", "--flow", flow_id)).json()
    urls = (await cli("callbacks", "url", callback["id"], "--environment", "uk")).json()
    assert f"/acme/{callback['id']}/uk?" in urls["environment_url"]
    undeployed = await cli("flows", "undeploy", flow_id, "--environment", "uk")
    assert undeployed.code == 0, undeployed.stderr
    assert (await cli("flows", "deployments", flow_id)).json() == []

    # A name that is neither is a usage error that says what was looked for, and where.
    missing = await cli("flows", "deploy", flow_id, "--environment", "nowhere")
    assert missing.code == 2 and "no VE with id or URL prefix 'nowhere'" in missing.stderr
    deleted = await cli("environments", "delete", "uk", "--company", "acme")
    assert deleted.code == 0, deleted.stderr
    assert (await cli("environments", "list", "--company", "acme")).json() == []


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("txt", "text/plain"),
        ("TEXT", "text/plain"),
        (" json ", "application/json"),
        ("html", "text/html"),
        ("csv", "text/csv"),
        ("application/vnd.acme+json", "application/vnd.acme+json"),
    ],
)
async def test_content_type_aliases(cli, tmp_path, given, stored):
    await cli("companies", "create", "--slug", "acme", "--name", "Acme")
    definition = tmp_path / "flow.json"
    definition.write_text(json.dumps(CALLBACK_FLOW))
    flow_id = (
        await cli(
            "flows", "create", "--company", "acme", "--name", "stock", "--file", str(definition)
        )
    ).json()["flow"]["id"]
    created = await cli("callbacks", "create", "--flow", flow_id, "--content-type", given)
    assert created.code == 0, created.stderr
    assert created.json()["content_type"] == stored
