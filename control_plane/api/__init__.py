"""The gRPC surface: thin servicers (authenticate, validate, call the domain, convert)."""
