"""The TypeScript SDK (clients/typescript) against a real control plane and edge.

The tests themselves are TypeScript (clients/typescript/test/*.test.ts, node's own test runner
through tsx); this file starts the real processes as the end-to-end tests do and runs
`npm test` with the stack's addresses and an admin key in the environment. Without Node.js and
the SDK's npm packages (`make install` runs `npm ci` where npm exists) the test is skipped,
saying why, except under CI (`CI=true`), where they are required and it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_KEY, start_stack

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def missing_toolchain() -> str:
    """Why the TypeScript tests cannot run here, or "" when they can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js/npm not found: the TypeScript SDK tests need Node.js 20+"
    if not (SDK / "node_modules" / ".bin" / "tsx").exists():
        return "clients/typescript/node_modules is missing: run 'make install' (npm ci)"
    return ""


def test_typescript_sdk_against_a_real_stack(tmp_path):
    reason = missing_toolchain()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    stack = start_stack(tmp_path)
    try:
        env = {
            **os.environ,
            "BOOMERANG_TARGET": f"http://{stack.control_target}",
            "BOOMERANG_ADMIN_KEY": ADMIN_KEY,
            "BOOMERANG_EDGE_URL": stack.edge_url,
        }
        result = subprocess.run(
            ["npm", "test", "--prefix", str(SDK)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        stack.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The runner's summary: every test ran and none failed (a filter or an empty glob would
    # otherwise pass with nothing run).
    assert "# fail 0" in output, output
    assert "# pass 0" not in output, output
