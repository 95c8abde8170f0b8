"""Signing in and what a session may do, against real processes: CSRF on every change, cookie
flags, sign-out, keys that stop working, a company key that sees only its company (in the
browser), and the key in no page, URL or log line."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.conftest import (
    ADMIN_KEY,
    accessibility_problems,
    csrf_token,
    http_sign_in,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenants(console_stack):
    """Two companies, each with a flow and a callback, and a company key for the first."""
    api = console_stack.api
    found = {}
    for slug in ("alpha", "beta"):
        api.create_company(name=slug.capitalize(), slug=slug)
        api.create_environment(slug, f"{slug} staging", f"{slug}-staging")
        flow = api.create_flow(slug, f"{slug}-orders").flow
        callback = api.create_callback(flow.id, name=f"{slug}-hook")
        found[slug] = (flow, callback)
    alpha_key = api.create_api_key("alpha console", company="alpha").secret
    return found, alpha_key


def test_sign_in_cookie_is_http_only_strict_and_expires(console_stack):
    http = httpx.Client(base_url=console_stack.url, timeout=10)
    form = http.get("/sign-in")
    signed_in = http.post(
        "/sign-in", data={"csrf_token": csrf_token(form.text), "api_key": ADMIN_KEY}
    )
    assert signed_in.status_code == 303
    cookie = next(
        h for h in signed_in.headers.get_list("set-cookie") if h.startswith("boomerang_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here; over TLS it is Secure
    # The cookie names a session; it does not carry the key, even encoded.
    value = cookie.split(";")[0].split("=", 1)[1]
    assert ADMIN_KEY not in value and len(value) < 100
    assert http.get("/companies").status_code == 200


def test_pages_carry_security_headers(console_stack):
    page = http_sign_in(console_stack.url, ADMIN_KEY).get("/companies")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


def test_without_a_session_every_page_sends_to_sign_in(console_stack):
    http = httpx.Client(base_url=console_stack.url, timeout=10)
    for path in ("/", "/companies", "/edges", "/keys", "/runs/x", "/flows/x/trigger"):
        response = http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/sign-in"), path
    forger = httpx.Client(
        base_url=console_stack.url, cookies={"boomerang_session": "made-up.signature"}
    )
    forged = forger.get("/companies")
    assert forged.headers["location"] == "/sign-in"


def test_sign_in_refuses_bad_keys_without_echoing_them(console_stack, tenants):
    http = httpx.Client(base_url=console_stack.url, timeout=10)
    wrong = "bmk_not-a-real-key-but-long-enough-to-look-like-one"
    edge_key = console_stack.api.create_api_key("an edge", scope="edge").secret
    for key, status, message in (
        (wrong, 401, "this key is unknown or revoked"),
        (edge_key, 403, "cannot manage anything"),
        ("", 422, "enter an API key"),
    ):
        form = http.get("/sign-in")
        refused = http.post("/sign-in", data={"csrf_token": csrf_token(form.text), "api_key": key})
        assert refused.status_code == status
        assert message in refused.text
        assert 'aria-invalid="true"' in refused.text  # the message sits at the key's field
        assert not key or key not in refused.text
        assert "boomerang_session=" not in refused.headers.get("set-cookie", "")


def test_sign_in_without_its_csrf_token_is_refused(console_stack):
    http = httpx.Client(base_url=console_stack.url, timeout=10)
    http.get("/sign-in")  # the cookie, but not the form's token
    refused = http.post("/sign-in", data={"api_key": ADMIN_KEY})
    assert refused.status_code == 403
    assert "CSRF check failed" in refused.text
    assert http.get("/companies").status_code == 303  # no session was made


def test_every_change_needs_the_sessions_csrf_token(console_stack, tenants):
    flows, _ = tenants
    alpha_flow, alpha_callback = flows["alpha"]
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    other = http_sign_in(console_stack.url, ADMIN_KEY)
    others_token = csrf_token(other.get("/companies").text)
    changes = [
        ("/companies", {"name": "Gamma", "slug": "gamma"}),
        ("/companies/alpha/delete", {"confirm": "alpha"}),
        ("/companies/alpha/environments", {"name": "x", "url_prefix": "x"}),
        ("/companies/alpha/flows", {"name": "sneaky"}),
        (f"/flows/{alpha_flow.id}/draft", {"definition": "{}"}),
        (f"/flows/{alpha_flow.id}/deploy", {"number": "0"}),
        (f"/callbacks/{alpha_callback.id}/regenerate", {"grace_period": "0"}),
        (f"/callbacks/{alpha_callback.id}/delete", {}),
        ("/keys", {"name": "sneaky"}),
        ("/sign-out", {}),
    ]
    for path, data in changes:
        for token in (None, "", others_token, "x" * 43):
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            refused = http.post(path, data=sent)
            assert refused.status_code == 403, (path, token)
            assert "CSRF check failed" in refused.text
    api = console_stack.api
    assert "gamma" not in [c.slug for c in api.list_companies()]
    assert [f.name for f in api.list_flows("alpha")] == ["alpha-orders"]
    assert api.get_callback(alpha_callback.id).signature == alpha_callback.signature
    assert http.get("/companies").status_code == 200  # still signed in


def test_sign_out_ends_the_session(console_stack):
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    cookie = http.cookies["boomerang_session"]
    token = csrf_token(http.get("/companies").text)
    out = http.post("/sign-out", data={"csrf_token": token})
    assert out.url.path == "/sign-in"
    replay = httpx.Client(base_url=console_stack.url, cookies={"boomerang_session": cookie})
    again = replay.get("/companies")
    assert again.status_code == 303  # the old cookie names no session any more


def test_a_revoked_key_ends_its_session(console_stack, tenants):
    api = console_stack.api
    created = api.create_api_key("short-lived", company="beta")
    http = http_sign_in(console_stack.url, created.secret)
    assert http.get("/companies/beta").status_code == 200
    api.revoke_api_key(created.api_key.id)
    after = http.get("/companies/beta")
    assert after.url.path == "/sign-in"


def test_control_plane_errors_are_shown_at_their_field(console_stack, tenants):
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    token = csrf_token(http.get("/companies/alpha").text)
    taken = http.post(
        "/companies/alpha/environments",
        data={"csrf_token": token, "name": "again", "url_prefix": "alpha-staging"},
    )
    assert taken.status_code == 409
    assert "ERROR_REASON_URL_PREFIX_TAKEN" in taken.text
    bad = http.post(
        "/companies/alpha/environments",
        data={"csrf_token": token, "name": "x", "url_prefix": "Not A Prefix!"},
    )
    assert bad.status_code == 422
    errors = re.search(
        r'<ul class="field-errors" id="env-prefix-errors">(.*?)</ul>', bad.text, re.S
    )
    assert errors and errors.group(1).strip()
    assert 'id="env-prefix" name="url_prefix" type="text" value="Not A Prefix!"' in bad.text


def test_a_company_key_sees_nothing_of_another_company(context, console_stack, tenants):
    flows, alpha_key = tenants
    beta_flow, beta_callback = flows["beta"]
    page = context.new_page()
    sign_in(page, alpha_key)
    assert page.url.endswith("/companies/alpha")
    page.goto("/companies")
    names = page.locator("main table tbody tr").all_inner_texts()
    assert len(names) == 1 and "alpha" in names[0]
    assert "beta" not in page.content().lower()
    assert page.get_by_role("button", name="Create company").count() == 0
    for path in (
        "/companies/beta",
        "/companies/beta/runs",
        f"/flows/{beta_flow.id}",
        f"/flows/{beta_flow.id}/trigger",
    ):
        response = page.goto(path)
        assert response.status == 404, path
        assert "Not found" in page.inner_text("main")
        assert beta_flow.name not in page.content()
    page.goto("/edges")
    assert "Not allowed for this key" in page.inner_text("main")
    page.goto("/keys")
    companies = set(page.locator("main table tbody tr td:nth-child(2)").all_inner_texts())
    assert companies == {"alpha"}
    screenshot(page, "company-key")
    assert accessibility_problems(page) == []
    # Changing beta's callback through the form's URL is refused like everything else.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(
        f"/callbacks/{beta_callback.id}/regenerate",
        form={"csrf_token": token, "grace_period": "0"},
    )
    assert response.status == 404
    assert console_stack.api.get_callback(beta_callback.id).signature == beta_callback.signature
    assert alpha_key not in console_stack.console_log()
    assert ADMIN_KEY not in console_stack.console_log()


def test_callback_settings_are_checked_at_their_field(console_stack, tenants):
    flows, _ = tenants
    flow, callback = flows["alpha"]
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    token = csrf_token(http.get(f"/flows/{flow.id}/trigger").text)
    path = f"/callbacks/{callback.id}/settings"
    for data, field_id in (
        ({"content_type": "json", "timeout_ms": "900000"}, f"timeout-{callback.id}"),
        ({"content_type": "json", "rate_limit_per_minute": "lots"}, f"rate-{callback.id}"),
        ({"content_type": "custom", "custom_content_type": ""}, f"custom-ct-{callback.id}"),
        (
            {"content_type": "custom", "custom_content_type": "not a mime"},
            f"custom-ct-{callback.id}",
        ),
    ):
        refused = http.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 422, data
        assert f'id="{field_id}-errors"' in refused.text, data
    assert console_stack.api.get_callback(callback.id).content_type == "application/json"
    saved = http.post(
        path,
        data={
            "csrf_token": token,
            "content_type": "custom",
            "custom_content_type": "text/csv",
            "timeout_ms": "5000",
            "rate_limit_per_minute": "60",
        },
    )
    assert saved.status_code == 200 and "Callback settings saved." in saved.text
    after = console_stack.api.get_callback(callback.id)
    assert (after.content_type, after.timeout_ms, after.rate_limit_per_minute) == (
        "text/csv",
        5000,
        60,
    )


def test_create_and_delete_environments_keys_and_companies(console_stack):
    api = console_stack.api
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    token = csrf_token(http.get("/companies").text)
    assert (
        http.post("/companies", data={"csrf_token": token, "name": "D", "slug": "doomed"}).url.path
        == "/companies/doomed"
    )
    http.post(
        "/companies/doomed/environments",
        data={"csrf_token": token, "name": "Test", "url_prefix": "test"},
    )
    (environment,) = api.list_environments("doomed")
    gone = http.post(
        f"/companies/doomed/environments/{environment.id}/delete", data={"csrf_token": token}
    )
    assert "Virtual environment deleted." in gone.text
    assert list(api.list_environments("doomed")) == []

    created = http.post("/keys", data={"csrf_token": token, "name": "once", "company": "doomed"})
    assert created.status_code == 201
    secret = re.search(
        r'id="new-secret" class="url" type="text" readonly value="([^"]+)"', created.text
    )
    assert secret and http_sign_in(console_stack.url, secret.group(1)).get("/").url.path == (
        "/companies/doomed"
    )
    listed = http.get("/keys?company=doomed")
    assert secret.group(1) not in listed.text  # shown once, in the answer that made it
    (key,) = [k for k in api.list_api_keys("doomed") if k.name == "once"]
    revoked = http.post(f"/keys/{key.id}/revoke", data={"csrf_token": token})
    assert "Key once revoked." in revoked.text
    assert [k.HasField("revoke_time") for k in api.list_api_keys("doomed")] == [True]

    flow_page = http.post("/companies/doomed/flows", data={"csrf_token": token, "name": "brief"})
    flow_id = flow_page.url.path.rsplit("/", 1)[1]
    added = http.post(f"/flows/{flow_id}/callbacks", data={"csrf_token": token, "name": "cb"})
    assert "Callback cb added." in added.text
    (callback,) = api.list_callbacks(flow_id)
    removed = http.post(f"/callbacks/{callback.id}/delete", data={"csrf_token": token})
    assert "Callback deleted." in removed.text and list(api.list_callbacks(flow_id)) == []
    flow_gone = http.post(f"/flows/{flow_id}/delete", data={"csrf_token": token})
    assert flow_gone.url.path == "/companies/doomed" and "Flow brief deleted." in flow_gone.text
    assert list(api.list_flows("doomed")) == []

    wrong = http.post("/companies/doomed/delete", data={"csrf_token": token, "confirm": "doom"})
    assert wrong.status_code == 422 and 'id="confirm-delete-errors"' in wrong.text
    assert "doomed" in [c.slug for c in api.list_companies()]
    deleted = http.post("/companies/doomed/delete", data={"csrf_token": token, "confirm": "doomed"})
    assert deleted.url.path == "/companies"
    assert "doomed" not in [c.slug for c in api.list_companies()]


def test_regenerating_with_a_grace_period_says_until_when(console_stack, tenants):
    flows, _ = tenants
    flow, callback = flows["beta"]
    http = http_sign_in(console_stack.url, ADMIN_KEY)
    page = http.get(f"/flows/{flow.id}/trigger")
    token = csrf_token(page.text)
    refused = http.post(
        f"/callbacks/{callback.id}/regenerate", data={"csrf_token": token, "grace_period": "5"}
    )
    assert refused.status_code == 422 and f'id="grace-{callback.id}-errors"' in refused.text
    done = http.post(
        f"/callbacks/{callback.id}/regenerate", data={"csrf_token": token, "grace_period": "3600"}
    )
    assert "the old URL keeps working for the grace period" in done.text
    after = console_stack.api.get_callback(callback.id)
    assert after.signature != callback.signature
    until = after.previous_signature_expire_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"The previous signature keeps working until {until}." in done.text
