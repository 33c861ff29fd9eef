"""Schema-driven tests: the API against its own OpenAPI document, on a real server."""
