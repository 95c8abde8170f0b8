"""Console fixtures: real processes (control plane, edge, console) on loopback, and headless
Chromium driven by Playwright.

Chromium is Debian's (`apt-get install -y chromium`, /usr/bin/chromium; BOOMERANG_CHROMIUM names
another): Playwright's own browser download cannot work on the machines this is built on. Where
it is missing the browser tests skip, saying why, except under CI (CI=true), where they fail.
Screenshots of the main pages go to tests/console/screenshots/ (git-ignored), for reviewers.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from boomerang.local import LocalStack
from boomerang.sdk import Client

ADMIN_KEY = "bmk_console-admin-key-0123456789abcdefghijklmnopqrs"
CHROMIUM = os.environ.get("BOOMERANG_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"


@dataclass
class ConsoleStack:
    stack: LocalStack
    api: Client
    log_dir: Path

    @property
    def url(self) -> str:
        return self.stack.console_url

    def console_log(self) -> str:
        return (self.log_dir / "console.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory) -> Iterator[ConsoleStack]:
    """The control plane, an edge and the console, as `make run` starts them."""
    tmp = tmp_path_factory.mktemp("console")
    stack = LocalStack(state_dir=tmp / "state", admin_key=ADMIN_KEY, log_dir=tmp / "logs")
    try:
        stack.start_control_plane()
        stack.start_edge()
        stack.start_console()
        with Client(stack.control_target, ADMIN_KEY) as api:
            yield ConsoleStack(stack, api, tmp / "logs")
    finally:
        stack.stop()


def chromium_path() -> str:
    """Debian's Chromium, or the reason the browser tests cannot run (they fail under CI)."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else "")
    if path:
        return path
    reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (required under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


@pytest.fixture
def context(browser, console_stack):
    """A fresh browser profile (no cookies) that may use the clipboard."""
    context = browser.new_context(base_url=console_stack.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_stack.url)
    yield context
    context.close()


def sign_in(page, key: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def http_sign_in(url: str, key: str) -> httpx.Client:
    """An HTTP client signed in to the console (cookies kept), for checks below the browser."""
    http = httpx.Client(base_url=url, follow_redirects=True, timeout=15)
    page = http.get("/sign-in")
    signed_in = http.post("/sign-in", data={"csrf_token": csrf_token(page.text), "api_key": key})
    assert signed_in.status_code == 200, signed_in.text
    return http
