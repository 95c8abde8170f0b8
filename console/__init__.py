"""Boomerang's web console: server-rendered pages over the control plane's gRPC API.

The console is a client like the CLI: every page is built from SDK calls made with the signed-in
user's API key, and it keeps nothing of its own beyond sessions (docs/console.md).
"""
