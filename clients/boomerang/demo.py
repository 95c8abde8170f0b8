"""The demo callback `make run` prints: created through the SDK, idempotently.

Running it again finds what exists (company `demo`, flow `stock-check`, its first callback),
deploys the demo definition only if the default environment does not already run it, and
enables the deployment. Returns the callback URL.
"""

from __future__ import annotations

from boomerang.sdk import Client, NotFound, definition_dict

COMPANY = "demo"
FLOW = "stock-check"
# trigger → map → callback: answers "is SKU X in stock?" from the request's query or JSON body.
DEFINITION = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {
            "id": "stock",
            "type": "map",
            "expression": "{sku: payload.sku || 'ABC-123', in_stock: `true`, quantity: `42`}",
        },
        {"id": "reply", "type": "callback"},
    ]
}


def ensure_demo(client: Client) -> str:
    try:
        client.get_company(COMPANY)
    except NotFound:
        client.create_company(name="Demo company", slug=COMPANY)
    flow = next((f for f in client.list_flows(COMPANY) if f.name == FLOW), None)
    if flow is None:
        flow = client.create_flow(COMPANY, FLOW, DEFINITION).flow
    deployed = {d.environment_id: d for d in client.list_deployments(flow.id)}.get("")
    running = None
    if deployed is not None:
        running = definition_dict(client.get_version(flow.id, deployed.version_number))
    if running != DEFINITION:
        client.update_draft(flow.id, DEFINITION)
        client.deploy_version(flow.id)
    elif not deployed.enabled:
        client.set_deployment_enabled(flow.id, True)
    callback = next(iter(client.list_callbacks(flow.id)), None)
    if callback is None:
        callback = client.create_callback(flow.id, name="stock check")
    return client.get_callback_url(callback.id).url
