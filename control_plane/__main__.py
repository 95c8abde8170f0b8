"""`python -m control_plane {serve,migrate}`: the control-plane process.

serve    runs the gRPC server (role from BOOMERANG_ROLE or --role); refuses to start on a
         database with pending migrations unless --migrate is given.
migrate  applies pending migrations and exits.
create-admin-key
         makes a new installation-wide key and prints it: the way back in for an operator with
         access to the database after every admin key was revoked or lost.
rotate-secret-key
         re-seals every callback signature, HMAC secret and connection secret with
         BOOMERANG_SECRET_KEY, opening the old ones with BOOMERANG_SECRET_KEY_PREVIOUS
         (docs/security.md, "Rotating the secret key").
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys

# grpc_io before anything imports grpc: it picks gRPC core's I/O path (boomerang/grpc_io.py).
from boomerang import event_loop, grpc_io  # noqa: F401
from control_plane import secrets
from control_plane.config import Settings
from control_plane.domain import connections
from control_plane.domain.api_keys import create_admin_key, ensure_admin_key
from control_plane.domain.callbacks import check_secret_key, reseal_signatures
from control_plane.store.db import open_database
from control_plane.store.migrate import migrate, pending


def _prepare(settings: Settings, run_migrations: bool) -> int:
    db = open_database(settings.database_url)
    # Every role: migrations seal old signatures with it, runners open connection secrets.
    secrets.configure(settings)
    with db.connection_context():
        if run_migrations:
            for name in migrate():
                print(f"applied migration {name}", flush=True)
        todo = pending()
        if todo:
            print(
                f"error: the database has pending migrations ({', '.join(todo)}); "
                "run `python -m control_plane migrate` first",
                file=sys.stderr,
            )
            return 2
        # Runners need only the connections' secrets; the API needs every sealed value.
        problem = connections.check_secret_key()
        if not problem and settings.role != "runner":
            problem = check_secret_key()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if settings.role != "runner":
            _, secret = ensure_admin_key(settings.admin_key)
            if secret:
                # Printed once, on first start; only its digest is stored.
                print(f"generated installation-wide API key (shown once): {secret}", flush=True)
    return 0


def _rotate(settings: Settings) -> int:
    code = _prepare(settings, run_migrations=False)
    if code:
        return code
    with open_database(settings.database_url).connection_context():
        count = reseal_signatures()
        resealed_connections = connections.reseal_secrets()
    print(
        f"re-sealed {count} callback signature(s) and HMAC secret(s) and "
        f"{resealed_connections} connection secret(s) with the current key",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control_plane")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument(
        "--role", choices=["all", "control", "runner"], help="overrides BOOMERANG_ROLE"
    )
    serve.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    sub.add_parser("migrate", help="apply pending migrations and exit")
    sub.add_parser("create-admin-key", help="create and print a new installation-wide key")
    sub.add_parser(
        "rotate-secret-key",
        help="re-seal callback and connection secrets with BOOMERANG_SECRET_KEY",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    run = event_loop.runner()  # refuses a bad BOOMERANG_EVENT_LOOP before anything starts
    if args.command == "migrate":
        return _prepare(settings, run_migrations=True)
    if args.command == "create-admin-key":
        with open_database(settings.database_url).connection_context():
            print(create_admin_key("created by create-admin-key"))
        return 0
    if args.command == "rotate-secret-key":
        return _rotate(settings)
    if args.role:
        settings = dataclasses.replace(settings, role=args.role)
    # Checked before anything else (migrations, keys) because grpc reports a busy port with a
    # C-core log line and a traceback; the operator needs one line naming the address and the
    # setting, and a server that cannot start should change nothing.
    problem = _cannot_bind(settings.listen)
    if problem:
        return _cannot_listen(settings, problem)
    code = _prepare(settings, run_migrations=args.migrate)
    if code:
        return code

    from control_plane.server import serve as run_server

    def started(_plane, port: int) -> None:
        host = settings.listen.rsplit(":", 1)[0]
        print(
            f"control plane ({settings.role}) listening on {host}:{port}, database "
            f"{settings.database_url.split('@')[-1]}; authenticate with "
            "'authorization: Bearer <API key>'",
            flush=True,
        )

    try:
        run(run_server(settings, started))
    except RuntimeError as e:
        if not str(e).startswith("Failed to bind"):  # grpc's words, should the check race
            raise
        return _cannot_listen(settings, "the address is in use or not available")
    return 0


def _cannot_listen(settings: Settings, problem: str) -> int:
    print(
        f"control plane: cannot listen on {settings.listen}: {problem}; "
        "set BOOMERANG_LISTEN to another host:port",
        file=sys.stderr,
    )
    return 2


def _cannot_bind(listen: str) -> str:
    """Why `listen` (host:port) cannot be bound now, or "" when it can (or port 0)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or int(port) == 0:
        return ""
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"cannot resolve {host!r} ({e.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
        try:
            probe.bind(address)
        except OSError as e:
            return os.strerror(e.errno) if e.errno else str(e)
    return ""


if __name__ == "__main__":
    sys.exit(main())
