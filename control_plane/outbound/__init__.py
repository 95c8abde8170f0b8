"""Calls from flows to other systems: connections' credentials, the HTTP client, egress rules."""
