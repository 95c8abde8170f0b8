/**
 * What the tests need from the running stack, given by tests/clients/test_typescript_sdk.py,
 * which starts the real control plane and edge: BOOMERANG_TARGET (the control plane),
 * BOOMERANG_ADMIN_KEY (an installation-wide key) and BOOMERANG_EDGE_URL.
 */
import { randomBytes } from "node:crypto";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests need a running Boomerang; run them through ` +
        "`.venv/bin/python -m pytest tests/clients/test_typescript_sdk.py`",
    );
  }
  return value;
}

export const target = required("BOOMERANG_TARGET");
export const adminKey = required("BOOMERANG_ADMIN_KEY");
export const edgeUrl = required("BOOMERANG_EDGE_URL");

/** A company slug no other test uses (the test files share one stack). */
export function uniqueSlug(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}
