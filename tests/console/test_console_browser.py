"""The console in headless Chromium against real processes: Patchworks' trigger-shape steps end
to end, from signing in to calling the copied VE URL, with an accessibility check and a
screenshot of every main page, and the key looked for in everything the browser was shown."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.console.conftest import (
    ADMIN_KEY,
    accessibility_problems,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.e2e

BAD = {"shapes": [{"id": "trigger", "type": "trigger"}, {"id": "stock", "type": "map"}]}
GOOD = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "stock", "type": "map", "expression": "{sku: payload.sku, in_stock: `true`}"},
        {"id": "reply", "type": "callback"},
    ]
}


def poll(check, what: str, timeout: float = 15.0):
    """Calls `check()` until it returns something truthy (the edge applies changes a moment
    after the control plane makes them); fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(0.1)


class Visits:
    """Every page the browser showed, to check each for the key, accessibility, and to keep a
    screenshot of the main ones."""

    def __init__(self, page) -> None:
        self.page = page
        self.html: list[str] = []
        self.urls: list[str] = []
        self.accessibility: dict[str, list[str]] = {}

    def look(self, name: str = "") -> None:
        self.html.append(self.page.content())
        self.urls.append(self.page.url)
        if name:
            screenshot(self.page, name)
            self.accessibility[name] = accessibility_problems(self.page)


def test_trigger_shape_steps_in_a_browser(context, console_stack):
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations before changes
    seen = Visits(page)
    page.goto("/sign-in")
    seen.look("sign-in")
    sign_in(page, ADMIN_KEY)
    assert page.url.endswith("/companies")
    seen.look("companies")

    # A company, a virtual environment and a flow.
    page.get_by_label("Name").fill("Acme")
    page.get_by_label("Slug").fill("acme")
    page.get_by_role("button", name="Create company").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Acme")
    page.locator("#env-name").fill("United Kingdom")
    page.locator("#env-prefix").fill("uk")
    page.get_by_role("button", name="Add virtual environment").click()
    assert page.get_by_role("cell", name="/uk").is_visible()
    page.get_by_label("New flow's name").fill("stock-check")
    page.get_by_role("button", name="Create flow").click()
    flow_url = page.url
    assert "/flows/" in flow_url
    page.goto(flow_url.replace("/flows/", "/companies/acme#").split("#")[0])
    seen.look("company")
    page.goto(flow_url)

    # A definition with an error: the message at its field path, the shape marked.
    page.get_by_label("Definition (JSON)").fill(json.dumps(BAD, indent=2))
    page.get_by_role("button", name="Save draft").click()
    errors = page.locator("#definition-errors")
    assert "definition.shapes[1].expression" in errors.inner_text()
    assert page.get_by_label("Definition (JSON)").get_attribute("aria-invalid") == "true"
    assert page.locator(".shape.has-errors").inner_text().count("stock") == 1
    seen.look("flow-invalid-definition")

    # Fixed: saved, and the outline shows the three shapes.
    page.get_by_label("Definition (JSON)").fill(json.dumps(GOOD, indent=2))
    page.get_by_role("button", name="Save draft").click()
    assert "Draft version 1 saved." in page.get_by_role("status").first.inner_text()
    assert page.locator("#definition-errors").count() == 0
    assert page.locator(".outline > li").count() == 3

    # Deployed to the VE, enabled.
    page.get_by_label("Environment").select_option(label="United Kingdom (/uk)")
    page.get_by_role("button", name="Deploy").click()
    row = page.get_by_role("row").filter(has_text="United Kingdom")
    assert "enabled" in row.inner_text()
    seen.look("flow")

    # The trigger shape: VE chosen, a callback added, its VE URL copied.
    page.get_by_role("link", name="Trigger shape (callback)").click()
    page.get_by_label("Virtual environment", exact=True).select_option(label="United Kingdom (/uk)")
    page.wait_for_url("**environment=*")
    assert "Deployed to United Kingdom: version 1, enabled." in page.inner_text("main")
    page.get_by_role("button", name="Add new callback").click()
    assert page.locator("article.callback").count() == 1
    page.get_by_role("button", name="Copy VE URL").click()
    confirmation = page.locator(".callback .copied")
    confirmation.filter(has_text="Copied the VE URL to the clipboard.").wait_for()
    ve_url = page.evaluate("navigator.clipboard.readText()")
    assert ve_url == page.locator("input[id^=ve-url-]").input_value()
    assert "/uk?patchworks_signature=" in ve_url
    seen.look("trigger")

    # The copied URL runs the flow (once the edge has the new callback).
    def answer(url: str, sku: str) -> httpx.Response | None:
        response = httpx.get(f"{url}&sku={sku}", timeout=10)
        return response if response.status_code == 200 else None

    first = poll(lambda: answer(ve_url, "A1"), "the VE URL answering 200")
    assert first.json() == [{"sku": "A1", "in_stock": True}]
    assert first.headers["content-type"].startswith("application/json")

    # Content type XML: the answer's Content-Type follows.
    page.locator("summary", has_text="Settings").click()
    page.get_by_label("Response content type").select_option(label="XML")
    page.get_by_role("button", name="Save settings").click()
    assert "Callback settings saved." in page.inner_text("main")
    assert page.get_by_label("Response content type").input_value() == "xml"
    poll(
        lambda: (
            (r := answer(ve_url, "A2")) and r.headers["content-type"].startswith("application/xml")
        ),
        "the answer's Content-Type becoming application/xml",
    )

    # Regenerated (grace: none): the old URL is refused, the new one answers.
    page.locator("summary", has_text="Settings").click()
    seen.look("trigger-settings")
    page.get_by_label("The old URL keeps working for").select_option("0")
    page.get_by_role("button", name="Regenerate signature").click()
    assert "Signature regenerated" in page.inner_text("main")
    new_url = page.locator("input[id^=ve-url-]").input_value()
    assert new_url != ve_url
    poll(lambda: httpx.get(ve_url, timeout=10).status_code == 403, "the old URL refused (403)")
    poll(lambda: answer(new_url, "A3"), "the new URL answering 200")

    # The run, with its shapes.
    page.goto("/companies/acme/runs")
    assert page.get_by_role("cell", name="stock-check").count() >= 3
    seen.look("runs")
    page.locator("table a[href^='/runs/']").first.click()
    shapes = page.locator("table.shapes tbody tr")
    assert [shapes.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == [
        "trigger",
        "stock",
        "reply",
    ]
    assert "United Kingdom (/uk)" in page.inner_text("main")  # where it ran
    seen.look("run")

    page.goto("/edges")
    assert page.get_by_text("connected", exact=True).count() >= 1
    seen.look("edges")
    page.goto("/keys")
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    assert "shown this once" in page.inner_text("main")
    seen.look("keys")

    # A change without the CSRF token is refused, and changes nothing.
    page.goto("/companies")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_label("Name").fill("Forged")
    page.get_by_label("Slug").fill("forged")
    page.get_by_role("button", name="Create company").click()
    assert "CSRF check failed" in page.inner_text("main")
    seen.look()
    assert "forged" not in [c.slug for c in console_stack.api.list_companies()]

    # Accessibility: no serious or critical violation on any main page.
    assert set(seen.accessibility) == {
        "sign-in",
        "companies",
        "company",
        "flow-invalid-definition",
        "flow",
        "trigger",
        "trigger-settings",
        "runs",
        "run",
        "edges",
        "keys",
    }
    assert {name: found for name, found in seen.accessibility.items() if found} == {}
    # The key: in no page, no URL, no line of the console's log.
    assert not [url for url in seen.urls if ADMIN_KEY in url]
    assert not [html for html in seen.html if ADMIN_KEY in html]
    assert ADMIN_KEY not in console_stack.console_log()


def test_versions_deploy_disable_and_roll_back(context, console_stack):
    api = console_stack.api
    api.create_company(name="Rollers", slug="rollers")
    flow = api.create_flow("rollers", "versions", GOOD).flow
    callback = api.create_callback(flow.id, name="hook")
    url = api.get_callback_url(callback.id).url + "&sku=R1"
    page = context.new_page()
    sign_in(page, ADMIN_KEY)
    page.goto(f"/flows/{flow.id}")

    def states() -> dict[str, str]:
        rows = page.locator("section[aria-labelledby=versions-h] tbody tr")
        return {
            rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i)
            .locator("td")
            .nth(1)
            .inner_text()
            for i in range(rows.count())
        }

    page.get_by_role("button", name="Deploy").click()  # the draft, to the default environment
    assert states() == {"2": "draft", "1": "deployed"}
    page.get_by_label("Definition (JSON)").fill(
        json.dumps(
            {
                **GOOD,
                "shapes": [*GOOD["shapes"][:2], {"id": "reply", "type": "callback", "status": 201}],
            }
        )
    )
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("button", name="Deploy").click()
    assert states() == {"3": "draft", "2": "deployed", "1": "inactive"}
    poll(lambda: httpx.get(url, timeout=10).status_code == 201, "version 2 answering 201")

    # Disabled: the callback answers 503 disabled; enabled again, it answers.
    page.get_by_role("button", name="Disable in Default").click()
    assert "disabled" in page.get_by_role("row").filter(has_text="Default").inner_text()
    poll(
        lambda: httpx.get(url, timeout=10).json().get("error") == "disabled",
        "the disabled deployment answering 503 disabled",
    )
    page.get_by_role("button", name="Enable in Default").click()

    # Rolled back: version 1 deployed again, and answering again with its 200.
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Deploy").click()
    assert "Version 1 deployed (enabled)." in page.inner_text("main")
    assert states() == {"3": "draft", "2": "inactive", "1": "deployed"}
    poll(lambda: httpx.get(url, timeout=10).status_code == 200, "version 1 answering 200 again")

    # The runs list filters by status.
    page.goto("/companies/rollers/runs")
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Filter").click()
    assert "No runs match." in page.inner_text("main")
    page.get_by_label("Status", exact=True).select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("table a[href^='/runs/']").count() >= 1
    assert accessibility_problems(page) == []


def test_without_a_mouse(context, console_stack):
    """Signing in and copying a callback's URL with the keyboard alone."""
    api = console_stack.api
    api.create_company(name="Keys Only", slug="keyboard")
    flow = api.create_flow("keyboard", "typed", GOOD).flow
    callback = api.create_callback(flow.id, name="typed")
    page = context.new_page()

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
                return
        pytest.fail(f"Tab never reached {selector}")

    page.goto("/sign-in")
    tab_to("#api_key")
    page.keyboard.type(ADMIN_KEY)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/companies")
    page.goto(f"/flows/{flow.id}/trigger")
    tab_to("button[data-copy^=url-]")
    page.keyboard.press("Enter")
    page.locator(".callback .copied").filter(has_text="Copied the URL").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == api.get_callback_url(callback.id).url
