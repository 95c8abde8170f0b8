"""Plumbing every gRPC service of the control plane shares, whatever its role: the runtime
(database pool, settings), authentication and error mapping for servicers, and the conversions
between stored rows and messages. Arrows point down: api/, sync/ and runs/ import this package;
it imports none of them."""
