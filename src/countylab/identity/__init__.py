"""Identity: organisations, users, roles, API tokens, web sessions, projects and grants."""
