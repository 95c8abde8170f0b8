"""The `boomerang` command: the SDK, one subcommand per RPC, grouped by resource.

    boomerang companies create --slug acme --name Acme
    boomerang flows deploy FLOW_ID --environment uk | jq -r .deployment.version_id

Results go to stdout as JSON (proto field names, every field present; lists as arrays). A failed
call prints one line `error: CODE (REASON): message` and one line per field violation on stderr
and exits 1; a usage error exits 2. Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from boomerang.sdk import (
    NO_AUTH,
    BoomerangError,
    Client,
    api_key_auth,
    basic_auth,
    bearer_auth,
    oauth2_client_credentials,
)
from boomerang.sdk.channel import tls_credentials
from boomerang.sdk.structs import message_dict

DEFAULT_TARGET = "127.0.0.1:50051"
RUN_STATUSES = ("running", "responded", "succeeded", "failed", "timed_out")
QUOTA_NAMES = (
    "environments",
    "flows",
    "versions_kept",
    "callbacks",
    "connections",
    "definition_bytes",
    "definition_depth",
    "runs_in_flight",
    "answer_bytes",
    "api_keys",
)
KEY_SCOPES = ("full", "edge", "runner")

Handler = Callable[[Client, argparse.Namespace], Any]


class UsageError(Exception):
    """Bad input found after parsing (e.g. an unreadable definition file): exit 2."""


def read_definition(path: str) -> dict[str, Any]:
    """A JSON object from `path` ("-" for stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"cannot read definition {path!r}: {err}") from err
    if not isinstance(doc, dict):
        raise UsageError(f'definition {path!r} must be a JSON object, e.g. {{"shapes": []}}')
    return doc


class Commands:
    """Builds `<resource> <verb>` subparsers; each verb stores its handler as `handler`."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._resources = parser.add_subparsers(dest="resource", metavar="RESOURCE", required=True)

    def resource(self, name: str, help: str) -> argparse._SubParsersAction:
        parser = self._resources.add_parser(name, help=help, description=help)
        return parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    @staticmethod
    def verb(
        verbs: argparse._SubParsersAction, name: str, help: str, handler: Handler
    ) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        return parser


def _environment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment",
        default="",
        metavar="ENV",
        help="VE id or URL prefix (default: the default environment)",
    )


def _env_id(c: Client, company: str, id_or_prefix: str) -> str:
    """A VE named by id or URL prefix, as its id; a usage error when the company has neither."""
    env_id = c.environment_id(company, id_or_prefix)
    if env_id == id_or_prefix and not any(e.id == env_id for e in c.list_environments(company)):
        raise UsageError(f"company {company!r} has no VE with id or URL prefix {id_or_prefix!r}")
    return env_id


def _flow_env(c: Client, a: argparse.Namespace) -> str:
    """`--environment` of a flow command as an id: a URL prefix is looked up in its company."""
    return a.environment and _env_id(c, c.get_flow(a.id).company, a.environment)


def _callback_env(c: Client, a: argparse.Namespace) -> str:
    return a.environment and _env_id(c, c.get_callback(a.id).company, a.environment)


def _companies(cmd: Commands) -> None:
    v = cmd.resource("companies", "companies (tenants); need an installation-wide key")
    p = cmd.verb(
        v, "create", "create a company", lambda c, a: c.create_company(name=a.name, slug=a.slug)
    )
    p.add_argument("--slug", required=True)
    p.add_argument("--name", required=True)
    cmd.verb(v, "list", "list companies", lambda c, a: c.list_companies())
    for verb, help, fn in (
        ("get", "show a company", Client.get_company),
        ("delete", "delete a company with everything it owns", Client.delete_company),
    ):
        cmd.verb(v, verb, help, lambda c, a, fn=fn: fn(c, a.slug)).add_argument("slug")


def _quotas(cmd: Commands) -> None:
    v = cmd.resource("quotas", "per-company quotas (docs/quotas.md)")
    p = cmd.verb(v, "get", "show the quotas in force", lambda c, a: c.get_quotas(a.company))
    p.add_argument("--company", default="", help="company slug (default: the installation's)")
    p = cmd.verb(
        v,
        "set",
        "set the quotas given (0: back to the default); needs an installation-wide key",
        lambda c, a: c.set_quotas(a.company, **{n: getattr(a, n) for n in QUOTA_NAMES}),
    )
    p.add_argument("--company", default="", help="company slug (default: the installation's)")
    for name in QUOTA_NAMES:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N")


def _environments(cmd: Commands) -> None:
    v = cmd.resource("environments", "virtual environments (VEs) of a company")
    p = cmd.verb(
        v,
        "create",
        "create a VE",
        lambda c, a: c.create_environment(a.company, a.name, a.url_prefix),
    )
    p.add_argument("--company", required=True, help="company slug")
    p.add_argument("--name", required=True)
    p.add_argument("--url-prefix", required=True, help="last path segment of VE callback URLs")
    p = cmd.verb(v, "list", "list a company's VEs", lambda c, a: c.list_environments(a.company))
    p.add_argument("--company", required=True, help="company slug")
    for verb, help, fn in (
        ("get", "show a VE", Client.get_environment),
        ("delete", "delete a VE (undeploy its flows first)", Client.delete_environment),
    ):
        p = cmd.verb(
            v,
            verb,
            help,
            lambda c, a, fn=fn: fn(c, _env_id(c, a.company, a.id) if a.company else a.id),
        )
        p.add_argument("id", help="VE id, or its URL prefix with --company")
        p.add_argument("--company", default="", help="company slug, to name the VE by prefix")


def _flows(cmd: Commands) -> None:
    v = cmd.resource("flows", "process flows, their versions and deployments")
    p = cmd.verb(
        v,
        "create",
        "create a flow (draft 1)",
        lambda c, a: c.create_flow(a.company, a.name, read_definition(a.file) if a.file else None),
    )
    p.add_argument("--company", required=True, help="company slug")
    p.add_argument("--name", required=True)
    p.add_argument("--file", help="initial definition, a JSON file ('-' for stdin)")
    p = cmd.verb(v, "list", "list a company's flows", lambda c, a: c.list_flows(a.company))
    p.add_argument("--company", required=True, help="company slug")
    for verb, help, fn in (
        ("get", "show a flow", Client.get_flow),
        (
            "delete",
            "delete a flow with its versions, deployments and callbacks",
            Client.delete_flow,
        ),
        ("draft", "show the draft version", Client.get_draft),
        ("deployments", "list deployments", Client.list_deployments),
    ):
        cmd.verb(v, verb, help, lambda c, a, fn=fn: fn(c, a.id)).add_argument("id")
    p = cmd.verb(
        v,
        "versions",
        "list versions, newest first (without definitions unless --full)",
        lambda c, a: c.list_versions(a.id, full=a.full),
    )
    p.add_argument("id")
    p.add_argument("--full", action="store_true", help="include each version's definition")
    p = cmd.verb(
        v,
        "update-draft",
        "replace the draft's definition",
        lambda c, a: c.update_draft(a.id, read_definition(a.file), a.number),
    )
    p.add_argument("id")
    p.add_argument("--file", required=True, help="definition, a JSON file ('-' for stdin)")
    p.add_argument("--number", type=int, default=0, help="fail unless this is still the draft")
    p = cmd.verb(v, "version", "show one version", lambda c, a: c.get_version(a.id, a.number))
    p.add_argument("id")
    p.add_argument("number", type=int, help="version number (0 for the draft)")
    p = cmd.verb(
        v,
        "deploy",
        "deploy a version (the draft by default)",
        lambda c, a: c.deploy_version(a.id, a.number, _flow_env(c, a), a.disabled),
    )
    p.add_argument("id")
    p.add_argument("--number", type=int, default=0, help="version number (default: the draft)")
    _environment(p)
    p.add_argument("--disabled", action="store_true", help="leave the deployment disabled")
    for verb, help, handler in (
        (
            "enable",
            "enable a deployment",
            lambda c, a: c.set_deployment_enabled(a.id, True, _flow_env(c, a)),
        ),
        (
            "disable",
            "disable a deployment (its callbacks answer 503)",
            lambda c, a: c.set_deployment_enabled(a.id, False, _flow_env(c, a)),
        ),
        (
            "undeploy",
            "remove a deployment",
            lambda c, a: c.delete_deployment(a.id, _flow_env(c, a)),
        ),
    ):
        p = cmd.verb(v, verb, help, handler)
        p.add_argument("id")
        _environment(p)


def _callback_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("--content-type", help="json, xml, text (txt), html, csv, yaml or any MIME type")
    p.add_argument("--timeout-ms", type=int, help="how long the caller waits for the callback")
    p.add_argument(
        "--rate-limit-per-minute", type=int, help="requests per minute per edge (0: unlimited)"
    )


def _security_settings(p: argparse.ArgumentParser) -> None:
    """Settings only `update` takes (docs/callback-security.md)."""
    p.add_argument(
        "--hmac-scheme",
        choices=["none", "patchworks", "standard-webhooks"],
        help="require an HMAC of each request ('none' turns it off and forgets the secret)",
    )
    p.add_argument(
        "--hmac-secret-file",
        metavar="FILE",
        help="file holding the HMAC secret ('-' for stdin); never on the command line, where "
        "other users of the machine could read it",
    )
    p.add_argument(
        "--allowed-origins",
        type=lambda text: [o.strip() for o in text.split(",") if o.strip()],
        metavar="ORIGINS",
        help="comma-separated CORS origins, e.g. https://app.example.com, or '*'; '' clears",
    )
    p.add_argument("--mode", choices=["sync", "webhook"], help="how the edge answers callers")
    p.add_argument(
        "--async-after-ms",
        type=int,
        metavar="MS",
        help="answer 202 with a status URL after this long (0: never; below --timeout-ms)",
    )


def read_secret(path: str, what: str) -> str:
    """A secret from the file `path` ("-" for stdin), without its final line break. Secrets are
    never taken as argument values: other users of the machine can read a command line."""
    if path == "-":
        return sys.stdin.read().rstrip("\r\n")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except (OSError, UnicodeError) as err:
        # The OS error names the file, never its content.
        raise UsageError(f"cannot read the {what} file: {err}") from err


def _hmac_secret(a: argparse.Namespace) -> str:
    if not a.hmac_secret_file:
        return ""
    if a.hmac_scheme is None:
        raise UsageError("--hmac-secret-file needs --hmac-scheme")
    return read_secret(a.hmac_secret_file, "HMAC secret")


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration(text: str) -> timedelta:
    """ "90s", "30m", "24h", "7d", "500ms" or a bare number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 24h, 7d)")
    return timedelta(milliseconds=round(float(m.group(1)) * _UNITS_MS[m.group(2) or "s"]))


def _callbacks(cmd: Commands) -> None:
    v = cmd.resource("callbacks", "callbacks: the secret URLs that run a flow")
    p = cmd.verb(
        v,
        "create",
        "create a callback",
        lambda c, a: c.create_callback(
            a.flow,
            a.name or "",
            a.content_type or "",
            a.timeout_ms or 0,
            a.rate_limit_per_minute or 0,
        ),
    )
    p.add_argument("--flow", required=True, metavar="FLOW_ID")
    _callback_settings(p)
    p = cmd.verb(
        v, "list", "list a flow's callbacks (no signatures)", lambda c, a: c.list_callbacks(a.flow)
    )
    p.add_argument("--flow", required=True, metavar="FLOW_ID")
    for verb, help, fn in (
        ("get", "show a callback with its signature and URL", Client.get_callback),
        ("delete", "delete a callback", Client.delete_callback),
    ):
        cmd.verb(v, verb, help, lambda c, a, fn=fn: fn(c, a.id)).add_argument("id")
    p = cmd.verb(
        v,
        "regenerate",
        "replace the signature",
        lambda c, a: (
            c.regenerate_signature_and_wait(a.id, a.wait_for_edges_ms, a.grace_period)
            if a.wait_for_edges_ms
            else c.regenerate_signature(a.id, a.grace_period)
        ),
    )
    p.add_argument("id")
    p.add_argument(
        "--grace-period",
        type=duration,
        help="keep the old signature working this long, e.g. 90s, 30m, 24h, 7d (at most 30d)",
    )
    p.add_argument(
        "--wait-for-edges-ms",
        type=int,
        default=0,
        help="wait up to this long for connected edges to apply it (prints pending_edge_ids)",
    )
    p = cmd.verb(
        v,
        "update",
        "change the settings given",
        lambda c, a: c.update_callback(
            a.id,
            name=a.name,
            content_type=a.content_type,
            timeout_ms=a.timeout_ms,
            rate_limit_per_minute=a.rate_limit_per_minute,
            hmac_scheme=a.hmac_scheme,
            hmac_secret=_hmac_secret(a),
            allowed_origins=a.allowed_origins,
            mode=a.mode,
            async_after_ms=a.async_after_ms,
        ),
    )
    p.add_argument("id")
    _callback_settings(p)
    _security_settings(p)
    p = cmd.verb(
        v,
        "url",
        "show the URL (and a VE's)",
        lambda c, a: c.get_callback_url(a.id, _callback_env(c, a)),
    )
    p.add_argument("id")
    _environment(p)


# --auth kinds, and the options each takes: (required, optional); "*_file" options hold secrets.
AUTH_OPTIONS = {
    "none": ((), ()),
    "basic": (("username", "password_file"), ()),
    "bearer": (("token_file",), ()),
    "api-key": (("api_key_name", "api_key_file"), ("api_key_in",)),
    "oauth2": (("token_url", "client_id", "client_secret_file"), ("scope", "audience")),
}
_AUTH_FIELDS = sorted({name for req, opt in AUTH_OPTIONS.values() for name in (*req, *opt)})


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _auth(a: argparse.Namespace):
    """The credentials `--auth` and its options describe; None without --auth (on update: keep
    the stored ones)."""
    given = [name for name in _AUTH_FIELDS if getattr(a, name) is not None]
    if a.auth is None:
        if given:
            raise UsageError(f"{_option(given[0])} needs --auth")
        return None
    required, optional = AUTH_OPTIONS[a.auth]
    for name in given:
        if name not in required + optional:
            raise UsageError(f"{_option(name)} does not go with --auth {a.auth}")
    missing = [_option(name) for name in required if getattr(a, name) is None]
    if missing:
        raise UsageError(f"--auth {a.auth} needs {', '.join(missing)}")
    if sum(getattr(a, name) == "-" for name in given if name.endswith("_file")) > 1:
        raise UsageError("only one secret can come from stdin ('-')")
    if a.auth == "basic":
        return basic_auth(a.username, read_secret(a.password_file, "password"))
    if a.auth == "bearer":
        return bearer_auth(read_secret(a.token_file, "token"))
    if a.auth == "api-key":
        value = read_secret(a.api_key_file, "API key")
        return api_key_auth(a.api_key_name, value, a.api_key_in or "header")
    if a.auth == "oauth2":
        secret = read_secret(a.client_secret_file, "client secret")
        return oauth2_client_credentials(
            a.token_url, a.client_id, secret, a.scope or (), a.audience or ""
        )
    return NO_AUTH


def header(text: str) -> tuple[str, str]:
    """ "Name: value" as (name, value)."""
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(
            f"not a header: {text!r} (e.g. 'Accept: application/json')"
        )
    return name.strip(), value.strip()


def _headers(a: argparse.Namespace) -> dict[str, str] | None:
    if a.no_headers:
        if a.header:
            raise UsageError("--no-headers and --header contradict each other")
        return {}
    return None if a.header is None else dict(a.header)


def _connection_settings(p: argparse.ArgumentParser, create: bool) -> None:
    if create:
        p.add_argument("--company", required=True, help="company slug")
    p.add_argument("--name", required=create, help="what connector shapes name it by (a slug)")
    p.add_argument("--base-url", required=create, help="absolute http(s) URL")
    p.add_argument(
        "--header",
        type=header,
        action="append",
        metavar="'NAME: VALUE'",
        help="a default header (repeat for more)" + ("; replaces them all" if not create else ""),
    )
    if not create:
        p.add_argument("--no-headers", action="store_true", help="remove every default header")
    p.add_argument(
        "--timeout",
        dest="connection_timeout",  # not the global --timeout, each call's deadline
        type=duration,
        help="time for one call, 100ms to 60s (default 30s)"
        + ("; 0: the default" if not create else ""),
    )
    p.add_argument("--rate-limit-per-minute", type=int, help="calls per minute (0: unlimited)")
    p.add_argument(
        "--auth",
        choices=list(AUTH_OPTIONS),
        help="credentials: each kind takes the options below"
        + ("; replaces the stored ones whole ('none' removes them)" if not create else ""),
    )
    secret = "never on the command line ('-' for stdin)"
    p.add_argument("--username", help="basic")
    p.add_argument(
        "--password-file", metavar="FILE", help=f"basic: file holding the password, {secret}"
    )
    p.add_argument("--token-file", metavar="FILE", help=f"bearer: file holding the token, {secret}")
    p.add_argument("--api-key-name", metavar="NAME", help="api-key: header or query parameter name")
    p.add_argument(
        "--api-key-in", choices=["header", "query"], help="api-key: where (default header)"
    )
    p.add_argument(
        "--api-key-file", metavar="FILE", help=f"api-key: file holding the key, {secret}"
    )
    p.add_argument("--token-url", help="oauth2: the token endpoint")
    p.add_argument("--client-id", help="oauth2")
    p.add_argument(
        "--client-secret-file",
        metavar="FILE",
        help=f"oauth2: file holding the client secret, {secret}",
    )
    p.add_argument("--scope", action="append", help="oauth2: a scope (repeat for more)")
    p.add_argument("--audience", help="oauth2: the audience parameter some providers require")


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _connections(cmd: Commands) -> None:
    v = cmd.resource("connections", "connections: upstream systems connector shapes call")
    p = cmd.verb(
        v,
        "create",
        "create a connection",
        lambda c, a: c.create_connection(
            a.company,
            a.name,
            a.base_url,
            default_headers=dict(a.header or ()),
            timeout_s=_seconds(a.connection_timeout),
            rate_limit_per_minute=a.rate_limit_per_minute or 0,
            auth=_auth(a),
        ),
    )
    _connection_settings(p, create=True)
    p = cmd.verb(
        v,
        "list",
        "list a company's connections (no secrets)",
        lambda c, a: c.list_connections(a.company),
    )
    p.add_argument("--company", required=True, help="company slug")
    for verb, help, fn in (
        ("get", "show a connection (secrets are never shown)", Client.get_connection),
        ("delete", "delete a connection", Client.delete_connection),
    ):
        cmd.verb(v, verb, help, lambda c, a, fn=fn: fn(c, a.id)).add_argument("id")
    p = cmd.verb(
        v,
        "update",
        "change the settings given; the secret is kept unless --auth is given",
        lambda c, a: c.update_connection(
            a.id,
            name=a.name,
            base_url=a.base_url,
            default_headers=_headers(a),
            timeout_s=_seconds(a.connection_timeout),
            rate_limit_per_minute=a.rate_limit_per_minute,
            auth=_auth(a),
        ),
    )
    p.add_argument("id")
    _connection_settings(p, create=False)


def _keys(cmd: Commands) -> None:
    v = cmd.resource("keys", "API keys")
    p = cmd.verb(
        v,
        "create",
        "create a key; its secret is shown once",
        lambda c, a: c.create_api_key(a.name, a.company, a.scope),
    )
    p.add_argument("--name", required=True)
    p.add_argument("--company", default="", help="company slug (default: installation-wide)")
    p.add_argument(
        "--scope",
        choices=KEY_SCOPES,
        default="full",
        help="full (default); edge: for an edge (sync and run flows only); runner: run flows only",
    )
    p = cmd.verb(v, "list", "list keys", lambda c, a: c.list_api_keys(a.company))
    p.add_argument("--company", default="", help="only this company's keys")
    cmd.verb(v, "revoke", "revoke a key", lambda c, a: c.revoke_api_key(a.id)).add_argument("id")


def _runs(cmd: Commands) -> None:
    v = cmd.resource("runs", "runs: the audit trail")
    p = cmd.verb(
        v,
        "list",
        "list a company's runs, newest first",
        lambda c, a: c.list_runs(
            a.company, a.flow, a.status, start_time_from=a.since, start_time_to=a.until
        ),
    )
    p.add_argument("--company", required=True, help="company slug")
    p.add_argument("--flow", default="", metavar="FLOW_ID")
    p.add_argument("--status", choices=RUN_STATUSES)
    p.add_argument("--since", type=datetime.fromisoformat, help="ISO 8601 time (UTC if naive)")
    p.add_argument("--until", type=datetime.fromisoformat, help="ISO 8601 time (UTC if naive)")
    cmd.verb(v, "get", "show a run with its shape log", lambda c, a: c.get_run(a.id)).add_argument(
        "id"
    )


def _edges(cmd: Commands) -> None:
    v = cmd.resource("edges", "edges and the change revision each applied")
    cmd.verb(v, "list", "list edges (needs an installation-wide key)", lambda c, a: c.list_edges())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boomerang", description="Manage a Boomerang control plane. Output is JSON."
    )
    parser.add_argument(
        "--target",
        default=os.environ.get("BOOMERANG_TARGET", DEFAULT_TARGET),
        help=f"control plane host:port (env BOOMERANG_TARGET; default {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("BOOMERANG_API_KEY", ""),
        help="API key (env BOOMERANG_API_KEY)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument(
        "--tls", action="store_true", help="connect over TLS (system roots unless --tls-ca)"
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("BOOMERANG_TLS_CA") or None,
        metavar="PEM",
        help="CA certificates to trust; implies TLS (env BOOMERANG_TLS_CA)",
    )
    parser.add_argument(
        "--tls-cert",
        default=os.environ.get("BOOMERANG_TLS_CLIENT_CERT") or None,
        metavar="PEM",
        help="client certificate for mutual TLS (env BOOMERANG_TLS_CLIENT_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        default=os.environ.get("BOOMERANG_TLS_CLIENT_KEY") or None,
        metavar="PEM",
        help="the client certificate's key (env BOOMERANG_TLS_CLIENT_KEY)",
    )
    cmd = Commands(parser)
    for add in (
        _companies,
        _quotas,
        _environments,
        _flows,
        _callbacks,
        _connections,
        _keys,
        _runs,
        _edges,
    ):
        add(cmd)
    return parser


def render(result: Message | Iterable[Message] | None) -> str | None:
    """JSON text of a message, or of a list of messages; None for no result (deletes)."""
    if result is None:
        return None
    if isinstance(result, Message):
        data: Any = message_dict(result)
    else:
        data = [message_dict(m) for m in result]
    return json.dumps(data, indent=2, ensure_ascii=False)


def error_lines(err: BoomerangError) -> list[str]:
    return [
        f"error: {err}",
        *(f"  {field}: {description}" for field, description in err.field_violations),
    ]


def _credentials(args: argparse.Namespace):
    """TLS credentials from --tls-ca/--tls-cert/--tls-key, or None (plaintext, or --tls)."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    try:
        return tls_credentials(args.tls_ca, args.tls_cert, args.tls_key)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot use the TLS files: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        credentials = _credentials(args)
        with Client(
            args.target,
            args.api_key,
            timeout=args.timeout,
            secure=args.tls,
            credentials=credentials,
        ) as client:
            # Lists are generators: consume them here, so every failure is caught below.
            output = render(args.handler(client, args))
    except BoomerangError as err:
        print("\n".join(error_lines(err)), file=sys.stderr)
        return 1
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug or a local failure: still one line, never a traceback
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if output is not None:
        _print(output)
    return 0


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # The reader left (`| head`): silence the interpreter's own flush at exit as well.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
