"""The OpenAPI description (edge/openapi.yaml, docs/openapi.md): valid OpenAPI 3.1, in step with
README's status table and edge/errors.py, and served by the edge as checked in.

tests/e2e/test_openapi_live.py checks it against a live edge with schemathesis."""

from __future__ import annotations

import inspect

import yaml
from openapi_spec_validator import validate

from edge import errors
from edge.app import OPENAPI_PATH
from tests.e2e.test_http_fuzz import documented_answers

BUDGETS = "budget_<name>"


def description() -> dict:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def documented_pairs(doc: dict) -> set[tuple[int, str]]:
    """(status, reason) for every error response of every operation: the reasons are the
    `error` enum (or const) its schema narrows the shared Error schema to."""
    pairs: set[tuple[int, str]] = set()
    for item in doc["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if not status.isdigit():
                    continue
                response = resolve(doc, response)
                for media in response.get("content", {}).values():
                    for part in media.get("schema", {}).get("allOf", []):
                        error = part.get("properties", {}).get("error", {})
                        for reason in error.get("enum", [error.get("const")]):
                            if reason:
                                pairs.add((int(status), reason))
    return pairs


def resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        target = doc
        for part in node["$ref"].split("/")[1:]:
            target = target[part]
        node = target
    return node


def test_the_description_is_valid_openapi_3_1():
    doc = description()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # raises on anything invalid


def test_every_status_and_reason_in_the_readme_table_is_described():
    doc = description()
    statuses, readme_pairs = documented_answers()
    described = documented_pairs(doc)
    budgets = {r for _, r in described if r.startswith("budget_")}
    assert budgets, "no budget_<name> reasons described"
    missing = set()
    for status, reason in readme_pairs:
        reasons = budgets if reason == BUDGETS else {reason}
        missing |= {(status, r) for r in reasons if (status, r) not in described}
    assert not missing, f"README statuses/reasons not in edge/openapi.yaml: {sorted(missing)}"
    described_statuses = {
        int(s)
        for item in doc["paths"].values()
        for method, op in item.items()
        if method != "parameters"
        for s in op["responses"]
        if s.isdigit()
    }
    assert statuses <= described_statuses, sorted(statuses - described_statuses)
    # And the other way round: the description promises nothing the README does not list.
    readme = {(s, r) for s, r in readme_pairs if r != BUDGETS}
    readme |= {(s, r) for s, r in described if r.startswith("budget_")}
    assert described <= readme, sorted(described - readme)


def test_every_reason_of_the_edge_is_in_the_error_enum():
    enum = set(description()["components"]["schemas"]["Reason"]["enum"])
    ours = {
        cls.reason
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.CallbackError) and cls is not errors.CallbackError
    }
    assert ours, "no error classes found in edge/errors.py"
    assert not ours - enum, f"reasons missing from the Reason enum: {sorted(ours - enum)}"
    # Sanic's own errors on the callback surface (routing, protocol).
    for status in (400, 404, 405, 417):
        assert errors._SANIC_REASONS[status] in enum
    described = {r for _, r in documented_pairs(description())}
    assert described <= enum, sorted(described - enum)
    assert enum <= described, f"Reason values no response uses: {sorted(enum - described)}"
